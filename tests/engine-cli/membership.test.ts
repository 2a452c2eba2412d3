// The real Pulumi engine: `pulumi preview`, `up`, `refresh` and `destroy` of SwarmMembership (our SwarmNode
// dynamic provider) on the multi-host testbed. Every step is a separate `pulumi` process (tests/engine-cli/cli.ts),
// so the dynamic provider is read back from the state by a fresh process each time. The CLI is the one
// tools/pulumi/build.sh builds from Go modules (with our own Node.js language host; see tools/pulumi/README.md).
//
// One stack evolves through the tests, in order; each depends on the state the previous ones left.

import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import type { HostSpec } from "../../components/config/types";
import { closeAllTransports } from "../../components/hosts/transport";
import {
  countManagers,
  NODE_LS_FORMAT,
  parseNodeList,
  parseSwarmInfo,
  quorumNeeded,
} from "../../components/swarm/plan";
import { startTestbed, Testbed } from "../testbed/testbed";
import { pulumiBin, PulumiProject } from "./cli";
import { parsePreviewDiff, parseEvents, summaryOf, PlannedResource } from "./output";

jest.setTimeout(30 * 60 * 1000);

const STACK = "engine";
const NODE_TYPE = "pulumi-nodejs:dynamic/swarm:SwarmNode";
let tb: Testbed;
let pj: PulumiProject;

type Role = "manager" | "worker";
interface Want {
  readonly role: Role;
  readonly labels: Record<string, string>;
}
/** The hosts of the stack, by testbed host name. `keep: yes` marks the nodes that the scale-down keeps. */
let want: Record<string, Want> = {
  h1: { role: "manager", labels: { zone: "a", keep: "yes" } },
  h2: { role: "manager", labels: { zone: "b" } },
  h3: { role: "manager", labels: { zone: "c" } },
  h4: { role: "worker", labels: { zone: "a", keep: "yes" } },
  h5: { role: "worker", labels: { zone: "b" } },
};

function hostSpecs(): HostSpec[] {
  return tb.hosts
    .filter((h) => want[h.name])
    .map((h) => ({
      name: h.name,
      address: h.address,
      role: want[h.name].role,
      labels: want[h.name].labels,
      user: "root",
      port: h.sshPort,
      hostKeyFingerprint: tb.hostKeyFingerprints[h.name],
      availability: "active",
    }));
}

/** Writes the hosts into Pulumi.<stack>.yaml, keeping what the CLI wrote there (encryption salt, secret key). */
function writeConfig(): void {
  const file = path.join(pj.dir, `Pulumi.${STACK}.yaml`);
  const doc = (fs.existsSync(file) ? YAML.parse(fs.readFileSync(file, "utf8")) : null) ?? {};
  doc.config = {
    ...(doc.config ?? {}),
    "swarmform-engine:hosts": hostSpecs(),
    "swarmform-engine:swarm": {
      defaultAddrPool: ["10.123.0.0/16"],
      dataPathPort: 4789,
      certExpiry: "2160h0m0s",
      forceQuorumLoss: false,
    },
  };
  fs.writeFileSync(file, YAML.stringify(doc));
}

async function sh(host: string, cmd: string): Promise<string> {
  const r = await tb.exec(host, cmd);
  if (r.code !== 0) throw new Error(`${host}: ${cmd}: ${r.stderr}`);
  return r.stdout;
}
const localState = async (host: string) =>
  parseSwarmInfo(await sh(host, "docker info --format '{{json .Swarm}}'")).localNodeState;
const nodeLs = async (host: string) =>
  parseNodeList(await sh(host, `docker node ls --format '${NODE_LS_FORMAT}'`));
const managersOf = async (host: string) =>
  (await nodeLs(host))
    .filter((n) => n.managerStatus !== "")
    .map((n) => n.hostname)
    .sort();
const labelsOf = async (manager: string, host: string): Promise<Record<string, string>> =>
  JSON.parse(await sh(manager, `docker node inspect ${host} --format '{{json .Spec.Labels}}'`)) ?? {};

/** The SwarmNode resources that `pulumi preview --diff` plans to change (sames left out). */
async function plannedChanges(): Promise<PlannedResource[]> {
  const r = await pj.must(["preview", "--diff"]);
  return parsePreviewDiff(r.stdout).filter((p) => p.type === NODE_TYPE && p.op !== "same");
}

/** `pulumi up --json`: the engine's events, and its summary of resource changes. */
async function up() {
  const r = await pj.must(["up", "--yes", "--skip-preview", "--json"]);
  const events = parseEvents(r.stdout);
  const summary = summaryOf(events);
  expect(summary.result).toBe("succeeded");
  return { events, changes: summary.resourceChanges };
}

const nodeName = (urn: string) => urn.split("::").pop()!;

/** Written straight to stderr as each test passes (jest shows its own report only when the file ends). */
const t0 = Date.now();
function passed(): void {
  process.stderr.write(
    `engine-cli [${Math.round((Date.now() - t0) / 1000)}s] passed: ${expect.getState().currentTestName}\n`,
  );
}

beforeAll(async () => {
  const bin = pulumiBin();
  tb = await startTestbed({ hosts: 5, name: "engine-cli" });
  await tb.importBusybox("busybox:testbed");
  pj = await PulumiProject.create(STACK, bin);
  writeConfig();
  await pj.must(["config", "set", "--secret", "privateKey"], tb.privateKey);
});

afterAll(async () => {
  await closeAllTransports();
  if (tb) await tb.down();
  if (pj) {
    console.log(`engine-cli: pulumi runs (ms): ${JSON.stringify(pj.runs)}`);
    pj.remove();
  }
});

test("preview of a 3+2 cluster plans 5 SwarmNode creates and changes nothing on the hosts", async () => {
  const p = await pj.preview();
  const nodes = p.steps.filter((s) => s.newState?.type === NODE_TYPE);
  expect(nodes.map((s) => [s.op, nodeName(s.urn)]).sort()).toEqual(
    ["h1", "h2", "h3", "h4", "h5"].map((h) => ["create", `swarm-h${h.slice(1)}`]),
  );
  expect(p.changeSummary).toEqual({ create: 7 }); // + the stack and the SwarmMembership component
  for (const h of ["h1", "h2", "h3", "h4", "h5"]) expect(await localState(h)).toBe("inactive");
  passed();
});

let nodeIds: Record<string, string> = {};

test("up forms the swarm; a second up reports no changes", async () => {
  const first = await up();
  expect(first.changes).toEqual({ create: 7 });
  const ls = await nodeLs("h1");
  expect(ls.map((n) => n.hostname).sort()).toEqual(["h1", "h2", "h3", "h4", "h5"]);
  expect(countManagers(ls)).toEqual({ total: 3, reachable: 3 });
  expect(await labelsOf("h2", "h4")).toEqual({ zone: "a", keep: "yes" });
  nodeIds = Object.fromEntries(ls.map((n) => [n.hostname, n.id]));
  const out = await pj.outputs();
  expect(out.managerToken).toBe("[secret]");
  expect(
    (out.nodes as { name: string; member: boolean; role: string }[]).map((n) => [n.name, n.role, n.member]),
  ).toEqual([
    ["h1", "manager", true],
    ["h2", "manager", true],
    ["h3", "manager", true],
    ["h4", "worker", true],
    ["h5", "worker", true],
  ]);

  const second = await up();
  expect(second.changes).toEqual({ same: 7 });
  expect(Object.fromEntries((await nodeLs("h1")).map((n) => [n.hostname, n.id]))).toEqual(nodeIds);
  passed();
});

test("the state holds the join tokens and the SSH key only as ciphertext", async () => {
  const workerToken = (await sh("h1", "docker swarm join-token -q worker")).trim();
  const managerToken = (await sh("h1", "docker swarm join-token -q manager")).trim();
  const keyLines = tb.privateKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
  expect(workerToken).toMatch(/^SWMTKN-1-/);
  expect(keyLines.length).toBeGreaterThan(0);

  const state = await pj.exportState();
  expect(state).toContain("ciphertext");
  // Not the tokens themselves, nor any token-shaped text ("SWMTKN-1-" alone is in the provider's own source,
  // which is serialized into the state: its scrubber's regular expression).
  expect(state).not.toContain(workerToken);
  expect(state).not.toContain(managerToken);
  expect(state).not.toMatch(/SWMTKN-1-[0-9a-z]{40,}/);
  for (const l of keyLines) expect(state).not.toContain(l);
  expect(state).not.toContain("PRIVATE KEY");
  // The same export with the secrets decrypted holds them: the check above looked where they are.
  const shown = await pj.exportState(true);
  expect(shown).toContain(workerToken);
  expect(shown).toContain(managerToken);
  expect(shown).toContain(keyLines[0]);
  passed();
});

test("a label change previews as an update of that node only, naming labels, and applies", async () => {
  want = { ...want, h4: { role: "worker", labels: { zone: "d", keep: "yes" } } };
  writeConfig();
  expect((await plannedChanges()).map((p) => [p.op, nodeName(p.urn), p.changed])).toEqual([
    ["update", "swarm-h4", ["labels"]],
  ]);
  expect((await up()).changes).toEqual({ update: 1, same: 6 });
  expect(await labelsOf("h1", "h4")).toEqual({ zone: "d", keep: "yes" });
  expect(await labelsOf("h1", "h5")).toEqual({ zone: "b" });
  passed();
});

test("a promotion and a demotion each preview as an update of one node, naming role, and apply", async () => {
  want = { ...want, h5: { role: "manager", labels: { zone: "b" } } };
  writeConfig();
  expect((await plannedChanges()).map((p) => [p.op, nodeName(p.urn), p.changed])).toEqual([
    ["update", "swarm-h5", ["role"]],
  ]);
  expect((await up()).changes).toEqual({ update: 1, same: 6 });
  expect(await managersOf("h1")).toEqual(["h1", "h2", "h3", "h5"]);

  want = { ...want, h3: { role: "worker", labels: { zone: "c" } } };
  writeConfig();
  expect((await plannedChanges()).map((p) => [p.op, nodeName(p.urn), p.changed])).toEqual([
    ["update", "swarm-h3", ["role"]],
  ]);
  expect((await up()).changes).toEqual({ update: 1, same: 6 });
  expect(await managersOf("h1")).toEqual(["h1", "h2", "h5"]);
  // Same nodes throughout: promotions and demotions happen in place.
  expect(Object.fromEntries((await nodeLs("h1")).map((n) => [n.hostname, n.id]))).toEqual(nodeIds);
  passed();
});

test("scale down 3+2 -> 1+1 while a 4-replica service runs: parallel deletes, quorum and tasks kept", async () => {
  // The service runs on the nodes that stay (label keep=yes: h1, h4), so no task has to move.
  await sh(
    "h1",
    "docker service create -d --name web --replicas 4 --constraint node.labels.keep==yes " +
      "--restart-condition any busybox:testbed sleep 100000",
  );
  const running = async () =>
    (await sh("h1", "docker service ps web --filter desired-state=running --format '{{.CurrentState}}'"))
      .split("\n")
      .filter((l) => l.startsWith("Running")).length;
  for (let i = 0; i < 120 && (await running()) < 4; i++) await new Promise((r) => setTimeout(r, 1000));
  expect(await running()).toBe(4);

  want = { h1: want.h1, h4: want.h4 }; // h2 and h5 (managers) and h3 (worker) go
  writeConfig();
  const planned = await plannedChanges();
  expect(planned.filter((p) => p.op === "delete").map((p) => nodeName(p.urn))).toEqual(
    expect.arrayContaining(["swarm-h2", "swarm-h3", "swarm-h5"]),
  );
  expect(planned.filter((p) => p.op !== "update").length).toBe(3);

  // Watch quorum and the service from the manager that stays, while the engine runs the deletes.
  let watching = true;
  const samples: { quorum: boolean; running: number }[] = [];
  const watcher = (async () => {
    while (watching) {
      try {
        const c = countManagers(await nodeLs("h1"));
        samples.push({ quorum: c.reachable >= quorumNeeded(c.total), running: await running() });
      } catch {
        samples.push({ quorum: false, running: -1 });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  const { events, changes } = await up().finally(() => (watching = false));
  await watcher;
  expect(changes.delete).toBe(3);

  // The engine ran deletes concurrently: some delete started before another one finished.
  const deletes = events.filter((e) => e.op === "delete" && e.type === NODE_TYPE);
  const spans = ["swarm-h2", "swarm-h3", "swarm-h5"].map((n) => {
    const of = deletes.filter((e) => nodeName(e.urn) === n);
    return { n, start: of.find((e) => e.kind === "pre")!.seq, end: of.find((e) => e.kind === "done")!.seq };
  });
  const overlapping = spans.some((a) => spans.some((b) => a !== b && a.start < b.start && b.start < a.end));
  expect(overlapping).toBe(true);

  expect(samples.length).toBeGreaterThan(0);
  expect(samples.filter((s) => !s.quorum || s.running !== 4)).toEqual([]);
  expect((await nodeLs("h1")).map((n) => n.hostname).sort()).toEqual(["h1", "h4"]);
  for (const h of ["h2", "h3", "h5"]) expect(await localState(h)).toBe("inactive");
  expect(await running()).toBe(4);
  passed();
});

test("drift: a node leaves by hand; refresh reports it; up re-joins it", async () => {
  await sh("h4", "docker swarm leave --force");
  const r = await pj.must(["refresh", "--yes", "--skip-preview", "--json"]);
  const refreshed = parseEvents(r.stdout).filter((e) => e.kind === "done" && e.type === NODE_TYPE);
  expect(refreshed.filter((e) => e.op === "update").map((e) => nodeName(e.urn))).toEqual(["swarm-h4"]);
  const nodes = (await pj.outputs()).nodes as { name: string; member: boolean }[];
  // Stack outputs are those of the last up; the state of the resource is what refresh changed.
  const state = JSON.parse(await pj.exportState()) as {
    deployment: { resources: { urn: string; outputs?: { member?: boolean } }[] };
  };
  const h4 = state.deployment.resources.find((x) => x.urn.endsWith("::swarm-h4"))!;
  expect(h4.outputs?.member).toBe(false);
  expect(nodes.find((n) => n.name === "h4")?.member).toBe(true);

  const planned = await plannedChanges();
  expect(planned.map((p) => [p.op, nodeName(p.urn)])).toEqual([["update", "swarm-h4"]]);
  expect((await up()).changes).toEqual({ update: 1, same: 3 });
  expect(await localState("h4")).toBe("active");
  expect((await nodeLs("h1")).map((n) => n.hostname).sort()).toEqual(["h1", "h4"]);
  expect(await labelsOf("h1", "h4")).toEqual({ zone: "d", keep: "yes" });
  passed();
});

test("destroy leaves every host out of any swarm, and the state empty", async () => {
  await sh("h1", "docker service rm web");
  await pj.must(["destroy", "--yes", "--skip-preview"]);
  for (const h of ["h1", "h2", "h3", "h4", "h5"]) expect(await localState(h)).toBe("inactive");
  const state = JSON.parse(await pj.exportState()) as { deployment: { resources?: unknown[] } };
  expect(state.deployment.resources ?? []).toEqual([]);
  passed();
});
