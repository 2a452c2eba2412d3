// `swarmform promote` on copies of the shipped stack configs (in a temp dir): round trips that keep
// comments and every other key, and each refusal exits 1 naming the key.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { run } from "../../cli/main";
import { formatChanges, planPromotion } from "../../components/config/promote";

const ROOT = path.resolve(__dirname, "../..");
jest.setTimeout(60_000);

/** A temp copy of the project's Pulumi.yaml, Pulumi.*.yaml and stacks/. */
function copyProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-promote-"));
  for (const f of fs.readdirSync(ROOT).filter((f) => /^Pulumi(\..+)?\.yaml$/.test(f)))
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  fs.cpSync(path.join(ROOT, "stacks"), path.join(dir, "stacks"), { recursive: true });
  return dir;
}

async function swarmform(root: string, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, {
    cwd: root,
    env: {},
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
  });
  return { code, out, err };
}

const read = (dir: string, stack: string) => fs.readFileSync(path.join(dir, `Pulumi.${stack}.yaml`), "utf8");
const config = (text: string) => (parse(text) as { config: Record<string, unknown> }).config;
const comments = (text: string) => text.split("\n").filter((l) => l.trim().startsWith("#"));

let dir: string;
beforeEach(() => (dir = copyProject()));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("promote dev -> staging -> prod", () => {
  it("copies the changed pin, prints key/old/new, keeps comments, key order and every other key", async () => {
    const before = read(dir, "staging");
    const r = await swarmform(dir, ["promote", "--from", "dev", "--to", "staging"]);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    const devApi = config(read(dir, "dev"))["swarmform:images"] as Record<string, Record<string, string>>;
    const oldApi = (config(before)["swarmform:images"] as Record<string, Record<string, string>>).maxime.api;
    expect(r.out[0].split(/\s+/)).toEqual(["KEY", "OLD", "NEW"]);
    expect(r.out[1].split(/\s+/)).toEqual(["swarmform:images.maxime.api", oldApi, devApi.maxime.api]);
    expect(r.out).toHaveLength(3);
    const after = read(dir, "staging");
    expect(comments(after)).toEqual(comments(before));
    expect(Object.keys(config(after))).toEqual(Object.keys(config(before)));
    const without = (c: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(c).filter(([k]) => k !== "swarmform:images"));
    expect(without(config(after))).toEqual(without(config(before)));
    expect(config(after)["swarmform:images"]).toEqual(devApi);
    // Only the pin's line changed.
    const diff = before.split("\n").filter((l, i) => l !== after.split("\n")[i]);
    expect(diff).toEqual([`      api: ${oldApi}`]);
    // The result is valid for staging, and promoting again changes nothing.
    expect((await swarmform(dir, ["validate", "--stack", "staging"])).code).toBe(0);
    const again = await swarmform(dir, ["promote", "--from", "dev", "--to", "staging"]);
    expect([again.code, again.out]).toEqual([0, [expect.stringMatching(/nothing to change/)]]);
    expect(read(dir, "staging")).toBe(after);
    // Then on to prod: digests are there, so prod accepts them.
    const prod = await swarmform(dir, ["promote", "--from", "staging", "--to", "prod"]);
    expect(prod.code).toBe(0);
    expect((await swarmform(dir, ["validate", "--stack", "prod"])).code).toBe(0);
  });

  it("--dry-run prints the table and writes nothing", async () => {
    const before = read(dir, "staging");
    const r = await swarmform(dir, ["promote", "--from", "dev", "--to", "staging", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.out[1]).toMatch(/^swarmform:images\.maxime\.api /);
    expect(r.out.at(-1)).toMatch(/dry run: Pulumi\.staging\.yaml not written/);
    expect(read(dir, "staging")).toBe(before);
  });

  it("creates the images map in a target that has none, after its other keys", async () => {
    const text = read(dir, "staging").replace(/\n {2}# What staging deploys[\s\S]*$/, "\n");
    fs.writeFileSync(path.join(dir, "Pulumi.staging.yaml"), text);
    expect(config(text)["swarmform:images"]).toBeUndefined();
    const r = await swarmform(dir, ["promote", "--from", "dev", "--to", "staging"]);
    expect(r.code).toBe(0);
    expect(r.out.slice(1, -1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ["swarmform:images.maxime.api", "(none)"],
      ["swarmform:images.maxime.database", "(none)"],
      ["swarmform:images.maxime.website", "(none)"],
    ]);
    const after = read(dir, "staging");
    expect(after.startsWith(text.trimEnd())).toBe(true);
    expect(Object.keys(config(after)).at(-1)).toBe("swarmform:images");
  });
});

describe("refusals exit 1, name the key, and write nothing", () => {
  const refused = async (args: string[], key: RegExp, edit?: () => void) => {
    edit?.();
    const before = ["staging", "prod"].map((s) => read(dir, s));
    const r = await swarmform(dir, ["promote", ...args]);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(key);
    expect(r.err.at(-1)).toMatch(/refused; Pulumi\.\w+\.yaml is unchanged/);
    expect(["staging", "prod"].map((s) => read(dir, s))).toEqual(before);
    return r.err[0];
  };

  it("skipping an environment (dev -> prod) unless --force", async () => {
    const msg = await refused(
      ["--from", "dev", "--to", "prod"],
      /^swarmform:environment: refused: dev -> prod skips staging/,
    );
    expect(msg).toMatch(/--force/);
    const forced = await swarmform(dir, ["promote", "--from", "dev", "--to", "prod", "--force"]);
    expect(forced.code).toBe(0);
  });

  it("a mutable tag (no digest) to prod", async () => {
    await refused(
      ["--from", "staging", "--to", "prod"],
      /^swarmform:images\.maxime\.database: refused for prod: prod accepts only digests/,
      () => {
        const f = path.join(dir, "Pulumi.staging.yaml");
        fs.writeFileSync(
          f,
          fs
            .readFileSync(f, "utf8")
            .replace(/database: alpha-1\.0\.0@sha256:[a-f0-9]+/, "database: alpha-1.0.0"),
        );
      },
    );
  });

  it("latest to staging", async () => {
    await refused(
      ["--from", "dev", "--to", "staging"],
      /^swarmform:images\.maxime\.website: refused for staging: staging does not accept latest/,
      () => {
        const f = path.join(dir, "Pulumi.dev.yaml");
        fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace(/website: \S+/, "website: latest"));
      },
    );
  });

  it("a pin missing from the source", async () => {
    await refused(
      ["--from", "dev", "--to", "staging"],
      /^swarmform:images\.maxime\.api: staging deploys this service, but Pulumi\.dev\.yaml has no pin for it/,
      () => {
        const f = path.join(dir, "Pulumi.dev.yaml");
        fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace(/\n +api: \S+/, ""));
      },
    );
  });

  it.each([
    [["--from", "dev"], "promote: --from STACK and --to STACK are both required"],
    [["--from", "dev", "--to", "nope"], "no stack config Pulumi.nope.yaml in DIR"],
    [["--from", "dev", "--to", "b@d"], 'promote: --to "b@d" is not a stack name'],
    [["--from", "dev", "--from", "staging", "--to", "prod"], "promote: --from is given more than once"],
    [
      ["--stack", "dev"],
      "promote: unknown option --stack; promote takes --from STACK, --to STACK, --dry-run, --force, --help",
    ],
    [
      ["--from", "dev", "--to", "staging", "prod"],
      'promote: unexpected argument "prod"; promote takes --from STACK, --to STACK, --dry-run, --force, --help',
    ],
    [
      ["--from", "dev", "--to", "staging", "--force=yes"],
      "promote: Option '--force' does not take an argument",
    ],
  ])("usage error, exit 2 with the usage, nothing written: %j", async (args, message) => {
    const before = ["staging", "prod"].map((s) => read(dir, s));
    const r = await swarmform(dir, ["promote", ...args]);
    expect([r.code, r.out]).toEqual([2, []]);
    expect(r.err[0]).toBe(`swarmform: ${message.replace("DIR", dir)}`);
    expect(r.err[1]).toMatch(/^Usage: swarmform promote /);
    expect(["staging", "prod"].map((s) => read(dir, s))).toEqual(before);
  });
});

describe("planPromotion (pure)", () => {
  it("keeps an inline comment on a pin it changes", () => {
    const file = (stack: string, env: string, api: string) => ({
      stack,
      file: `Pulumi.${stack}.yaml`,
      text: `config:\n  swarmform:environment: ${env}\n  swarmform:images:\n    s:\n      api: ${api} # the api\n`,
    });
    const plan = planPromotion(file("dev", "dev", "1.10"), file("staging", "staging", "v1"), {
      force: false,
      deployed: [["s", "api"]],
    });
    expect(plan.issues).toEqual([]);
    // 1.10 is quoted, so that Pulumi reads the tag back as a string (not the number 1.1).
    expect(plan.text).toBe(file("staging", "staging", '"1.10"').text);
    expect(formatChanges(plan.changes)).toEqual([
      "KEY                     OLD  NEW",
      "swarmform:images.s.api  v1   1.10",
    ]);
  });
});

test("bin/swarmform promote --dry-run on the shipped files writes nothing", () => {
  const before = read(ROOT, "staging");
  const r = spawnSync(
    path.join(ROOT, "bin", "swarmform"),
    ["promote", "--from", "dev", "--to", "staging", "--dry-run"],
    {
      encoding: "utf8",
    },
  );
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^KEY +OLD +NEW/);
  expect(read(ROOT, "staging")).toBe(before);
});
