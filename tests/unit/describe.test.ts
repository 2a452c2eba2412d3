// `swarmform describe` for the dev config, checked against the config and stack file it came from.
import * as path from "path";
import { parse } from "yaml";
import * as fs from "fs";
import { describeStack } from "../../cli/describe";
import { run } from "../../cli/main";
import { renderMermaid, renderText, Topology } from "../../components/cluster/topology";

const ROOT = path.resolve(__dirname, "../..");
jest.setTimeout(120_000);

type Host = { name: string; role: string; labels?: Record<string, string> };
/** The keys of Pulumi.dev.yaml that this test reads. */
interface DevConfig {
  "swarmform:nodes": { hosts: Host[] };
  "swarmform:networks": { name: string; subnet: string }[];
  "swarmform:images": Record<string, Record<string, string>>;
  "swarmform:stackVariables": Record<string, string>;
}
const dev = (parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: DevConfig })
  .config;
const stackFile = parse(fs.readFileSync(path.join(ROOT, "stacks/popcube.yaml"), "utf8")) as {
  services: Record<string, { deploy?: { replicas?: number }; "x-traefik"?: { host: string } }>;
};

let t: Topology;
beforeAll(async () => {
  t = (await describeStack(ROOT, "dev", {})).topology;
});

test("nodes: every host of nodes.hosts, with its role and labels", () => {
  const hosts = dev["swarmform:nodes"].hosts;
  expect(t.nodes.map((n) => [n.name, n.role, n.labels])).toEqual(
    hosts.map((h) => [h.name, h.role, h.labels ?? {}]),
  );
  expect([t.managers, t.workers]).toEqual([
    hosts.filter((h) => h.role === "manager").length,
    hosts.filter((h) => h.role === "worker").length,
  ]);
});

test("networks: the config's networks and the stack's own, none encrypted in dev", () => {
  const configured = dev["swarmform:networks"].map((n) => [`swarmform-dev_${n.name}`, n.subnet]);
  expect(t.networks.map((n) => [n.name, n.subnet]).sort()).toEqual(
    [...configured, ["maxime_backend", undefined]].sort(),
  );
  expect(t.networks.every((n) => !n.encrypted)).toBe(true);
});

test("services: the stack file's services with their replicas, pinned images and routes", () => {
  const pins = dev["swarmform:images"].maxime;
  for (const [key, svc] of Object.entries(stackFile.services)) {
    const s = t.services.find((x) => x.name === `maxime_${key}`)!;
    expect(s.replicas).toBe(svc.deploy?.replicas ?? 1);
    expect(s.image.endsWith(`:${pins[key]}`)).toBe(true);
    const host = svc["x-traefik"]?.host.replace(
      "${DOMAIN:-dev.popcube.xyz}",
      dev["swarmform:stackVariables"].DOMAIN,
    );
    expect(s.routes).toEqual(host ? [`Host(\`${host}\`)`] : []);
    expect(s.networks).toContain("maxime_backend");
  }
  const traefik = t.services.find((x) => x.name === "swarmform-dev_traefik")!;
  expect(traefik.constraints).toContain("node.labels.swarmform.traefik==true");
  // Every placement label that a service needs is on some node.
  for (const c of t.services.flatMap((s) => s.constraints)) {
    const m = /^node\.labels\.(.+)==(.+)$/.exec(c);
    if (m) expect(t.nodes.some((n) => n.labels[m[1]] === m[2])).toBe(true);
  }
});

test("resources: one SwarmNode per host, one docker Service per service", () => {
  const count = (type: string) => t.resources.filter((r) => r.type === type).length;
  expect(count("pulumi-nodejs:dynamic/swarm:SwarmNode")).toBe(dev["swarmform:nodes"].hosts.length);
  expect(count("docker:index/service:Service")).toBe(t.services.length);
});

test("text and mermaid name every node, network and service", () => {
  const text = renderText(t).join("\n");
  const mermaid = renderMermaid(t).join("\n");
  expect(mermaid.split("\n")[0]).toBe("flowchart LR");
  for (const name of [
    ...t.nodes.map((n) => n.name),
    ...t.networks.map((n) => n.name),
    ...t.services.map((s) => s.name),
  ]) {
    expect(text).toContain(name);
    expect(mermaid).toContain(name);
  }
});

test("the README embeds the current mermaid diagram of dev", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  expect(readme).toContain("```mermaid\n" + renderMermaid(t).join("\n") + "\n```");
});

/** `swarmform ARGS` in the project, in process: exit code, stdout and stderr lines. */
async function swarmform(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, {
    cwd: ROOT,
    env: {},
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
  });
  return { code, out, err };
}

test("swarmform describe --stack dev --format mermaid prints the diagram of describeStack", async () => {
  const r = await swarmform(["describe", "--stack", "dev", "--format", "mermaid"]);
  expect(r.code).toBe(0);
  expect(r.out).toEqual(renderMermaid(t));
});

test.each([
  [["describe"], "describe: --stack NAME is required"],
  [
    ["describe", "--stack", "dev", "--stack", "prod"],
    "describe: --stack is given more than once; describe takes one stack",
  ],
  [
    ["describe", "--stack", "dev", "--format", "svg"],
    'describe: --format "svg" is not one of: text, mermaid',
  ],
  [
    ["describe", "--stack", "dev", "--format", "text", "--format", "mermaid"],
    "describe: --format is given more than once",
  ],
  [["describe", "--stack", "b@d"], 'describe: --stack "b@d" is not a stack name'],
  [
    ["describe", "--stack"],
    "describe: --stack needs a value; describe takes --stack NAME, --format FORMAT, --help",
  ],
  [
    ["describe", "--stack", "dev", "--full"],
    "describe: unknown option --full; describe takes --stack NAME, --format FORMAT, --help",
  ],
  [
    ["describe", "--stack", "dev", "Pulumi.dev.yaml"],
    'describe: unexpected argument "Pulumi.dev.yaml"; describe takes --stack NAME, --format FORMAT, --help',
  ],
])("usage error, exit 2 with the usage: %j", async (args, message) => {
  const r = await swarmform(args);
  expect([r.code, r.out]).toEqual([2, []]);
  expect(r.err[0]).toBe(`swarmform: ${message}`);
  expect(r.err[1]).toMatch(/^Usage: swarmform describe /);
});
