import { interpolate } from "../../components/config/interpolate";
import { parseStackText } from "../../components/config/compose";

const vars = { SET: "value", EMPTY: "", OTHER: "other" };
const run = (text: string) => interpolate(text, vars);

describe("interpolate: every form of the Compose spec", () => {
  it.each([
    ["$SET", "value"],
    ["${SET}", "value"],
    ["pre-${SET}-post", "pre-value-post"],
    ["$SET/x", "value/x"],
    ["${UNSET}", ""],
    ["$UNSET", ""],
    ["${EMPTY}", ""],
    // :- default when unset OR empty; - default only when unset
    ["${SET:-d}", "value"],
    ["${UNSET:-d}", "d"],
    ["${EMPTY:-d}", "d"],
    ["${SET-d}", "value"],
    ["${UNSET-d}", "d"],
    ["${EMPTY-d}", ""],
    // :+ alt when set and non-empty; + alt when set
    ["${SET:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${UNSET:+alt}", ""],
    ["${SET+alt}", "alt"],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET+alt}", ""],
    // :? / ? pass the value through when satisfied
    ["${SET:?need it}", "value"],
    ["${EMPTY?need it}", ""],
    // $$ is a literal $
    ["$$", "$"],
    ["$$SET", "$SET"],
    ["^/(sys|proc)($$|/)", "^/(sys|proc)($|/)"],
    ["cost: $${SET}", "cost: ${SET}"],
    // defaults are interpolated themselves, and may contain ":" and "/"
    ["${UNSET:-${OTHER}}", "other"],
    ["${UNSET:-${ALSO_UNSET:-deep}}", "deep"],
    ["${REGISTRY:-registry.dev.popcube.xyz:5000}/api", "registry.dev.popcube.xyz:5000/api"],
    ["{{.Node.ID}}", "{{.Node.ID}}"],
    ["no dollar", "no dollar"],
  ])("%s -> %s", (text, expected) => {
    const r = run(text);
    expect(r.errors).toEqual([]);
    expect(r.value).toBe(expected);
  });
});

describe("interpolate: errors", () => {
  it("a required var that is unset gives its message", () => {
    expect(run("${UNSET:?set UNSET please}").errors).toEqual([
      "required variable UNSET is missing a value: set UNSET please",
    ]);
    expect(run("${UNSET?msg}").errors).toEqual(["required variable UNSET is missing a value: msg"]);
  });
  it(":? also refuses an empty var, ? does not", () => {
    expect(run("${EMPTY:?msg}").errors).toEqual(["required variable EMPTY is empty: msg"]);
    expect(run("${EMPTY?msg}").errors).toEqual([]);
  });
  it("reports every missing var, not only the first", () => {
    expect(run("${A:?a} ${B:?b}").errors).toHaveLength(2);
  });
  it("refuses bad syntax", () => {
    expect(run("${SET").errors[0]).toMatch(/unterminated/);
    expect(run("${}").errors[0]).toMatch(/variable name/);
    expect(run("${SET:x}").errors[0]).toMatch(/unknown operator/);
    expect(run("a $ b").errors[0]).toMatch(/\$\$/);
  });
});

describe("interpolation in a stack file", () => {
  const text = [
    "services:", // 1
    "  api:", // 2
    "    image: ${IMAGE:?IMAGE must name the api image}", // 3
    "    environment:", // 4
    "      A: ${UNSET}", // 5
    "      B: ${X:-fallback}", // 6
    "      C: $$HOME", // 7
    "    deploy:", // 8
    "      replicas: ${REPLICAS:-3}", // 9
    "    labels:", // 10
    "      - other=${NEEDED?give NEEDED}", // 11
  ].join("\n");
  const opts = { file: "/tmp/s/stack.yaml", displayPath: "stacks/stack.yaml", vars: {} };

  it("reports a missing required var at its file:line with its message, and all of them", () => {
    const r = parseStackText(text, opts);
    expect(r.stack).toBeUndefined();
    expect(r.issues).toEqual([
      {
        origin: { file: "stacks/stack.yaml", line: 3, path: "services.api.image" },
        message: "required variable IMAGE is missing a value: IMAGE must name the api image",
      },
      {
        origin: { file: "stacks/stack.yaml", line: 11, path: "services.api.labels[0]" },
        message: "required variable NEEDED is missing a value: give NEEDED",
      },
    ]);
  });

  it("interpolates after parsing: values, numbers from strings, $$ and unset vars", () => {
    const r = parseStackText(text, { ...opts, vars: { IMAGE: "nginx:1.27", NEEDED: "yes", REPLICAS: "4" } });
    expect(r.issues).toEqual([]);
    const api = r.stack!.services[0];
    expect(api.image).toBe("nginx:1.27");
    expect(api.environment).toEqual({ A: "", B: "fallback", C: "$HOME" });
    expect(api.replicas).toBe(4);
    expect(api.containerLabels.other).toBe("yes");
  });

  it("does not interpolate keys, and a value with YAML meaning stays a string", () => {
    const r = parseStackText("services:\n  ${X}:\n    image: nginx:1\n    environment:\n      K: ${V}\n", {
      ...opts,
      vars: { V: "true", X: "x" },
    });
    expect(r.issues.map((i) => i.message).join()).toMatch(/service name "\$\{X\}"/);
    const ok = parseStackText("services:\n  a:\n    image: nginx:1\n    environment:\n      K: ${V}\n", {
      ...opts,
      vars: { V: "true" },
    });
    expect(ok.stack!.services[0].environment.K).toBe("true");
  });
});
