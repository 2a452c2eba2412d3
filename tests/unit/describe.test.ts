// `swarmform describe` for the dev config, checked against the config and stack file it came from.
import * as path from "path";
import { parse } from "yaml";
import * as fs from "fs";
import { describeStack } from "../../cli/describe";
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
