// Swarm membership end to end: the SwarmNode provider's CRUD, called directly (no Pulumi CLI here),
// against real dockerds on the multi-host testbed (tests/testbed). The provider used throughout is the one
// Pulumi runs: SwarmNode's `__provider` text (the bundle of components/swarm/provider.ts), evaluated as Pulumi's
// dynamic-provider process does.
//
// One swarm evolves through the scenarios, in order: 3+2 from nothing; no-op re-runs; label/promote/demote;
// drift; refusals; parallel scale-down to 1+1 (including the init node) while a service runs; a new join;
// faults. Each test depends on the state the previous ones left.

import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { closeAllTransports } from "../../components/hosts/transport";
import { swarmNodeProvider, SwarmNodeInputs, SwarmNodeOutputs } from "../../components/swarm/provider";
import { swarmNodeProviderText } from "../../components/swarm/SwarmNode";
import { NodeSsh } from "../../components/swarm/nodeOps";
import {
  parseNodeList,
  parseSwarmInfo,
  quorumNeeded,
  countManagers,
  NODE_LS_FORMAT,
} from "../../components/swarm/plan";
import { startTestbed, Testbed } from "../testbed/testbed";

jest.setTimeout(20 * 60 * 1000);

// The deserialized provider runs outside jest's sandbox: its globalThis is node's own. The step log and the
// SSH connection pool of that copy live there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
const realGlobal = requireFromString("module.exports = globalThis") as Record<symbol, unknown>;
const EVENTS = Symbol.for("swarmform.swarm.events");
type Ev = { node: string; what: string; at: number };
const events = (): Ev[] => realGlobal[EVENTS] as Ev[];
const clearEvents = () => (realGlobal[EVENTS] = []);

/** Closes the SSH connections of the deserialized copy (its pool is on node's globalThis). */
function closeRealPool(): void {
  const pool = realGlobal[Symbol.for("swarmform.transport.pool")] as
    { connections: Map<string, { client?: { end(): void } }> } | undefined;
  for (const c of pool?.connections.values() ?? []) c.client?.end();
  pool?.connections.clear();
}

let tb: Testbed;
let provider: pulumi.dynamic.ResourceProvider;
let providerText: string;
const state: Record<string, SwarmNodeOutputs> = {};
const timings: Record<string, number> = {};
const INIT = { defaultAddrPool: ["10.120.0.0/16"], dataPathPort: 4789, certExpiry: "720h0m0s" };

function ssh(host: string): NodeSsh {
  const h = tb.hosts.find((x) => x.name === host)!;
  return {
    name: h.name,
    address: h.address,
    port: h.sshPort,
    user: "root",
    hostKeyFingerprint: tb.hostKeyFingerprints[h.name],
  };
}

function inputs(
  host: string,
  role: "manager" | "worker",
  labels: Record<string, string> = {},
  extra: Partial<SwarmNodeInputs> = {},
): SwarmNodeInputs {
  return {
    ...ssh(host),
    privateKey: tb.privateKey,
    role,
    availability: "active",
    labels,
    bootstrap: host === "h1",
    init: host === "h1" ? INIT : undefined,
    managers: ["h1", "h2", "h3"].map(ssh),
    expectedSwarmId: host === "h1" ? undefined : state.h1?.swarmId,
    forceQuorumLoss: false,
    timeouts: { readySeconds: 60, drainSeconds: 120, connectSeconds: 5 },
    ...extra,
  };
}

/** What Pulumi does on `up` for an existing resource: check, diff against state, update if needed. */
async function converge(
  host: string,
  news: SwarmNodeInputs,
): Promise<{ changed: boolean; replaces: string[] }> {
  const checked = (await provider.check!(state[host], news)).inputs as SwarmNodeInputs;
  const d = await provider.diff!(host, state[host], checked);
  if (d.changes) {
    const r = await provider.update!(host, state[host], checked);
    state[host] = r.outs as SwarmNodeOutputs;
  }
  return { changed: d.changes === true, replaces: d.replaces ?? [] };
}

async function create(host: string, news: SwarmNodeInputs): Promise<void> {
  const checked = (await provider.check!({}, news)).inputs as SwarmNodeInputs;
  const r = await provider.create!(checked);
  expect(r.id).toBe(host);
  state[host] = r.outs as SwarmNodeOutputs;
}

/** The pid file of a testbed host's dockerd (next to its socket; the folder carries SWARMFORM_TESTBED_PREFIX). */
function dockerPidFile(host: string): string {
  return path.join(path.dirname(tb.hosts.find((h) => h.name === host)!.dockerSocket), "docker.pid");
}

async function sh(host: string, cmd: string): Promise<string> {
  const r = await tb.exec(host, cmd);
  if (r.code !== 0) throw new Error(`${host}: ${cmd}: ${r.stderr}`);
  return r.stdout;
}

async function nodeLs(host: string) {
  return parseNodeList(await sh(host, `docker node ls --format '${NODE_LS_FORMAT}'`));
}

async function localState(host: string): Promise<string> {
  return parseSwarmInfo(await sh(host, "docker info --format '{{json .Swarm}}'")).localNodeState;
}

async function labelsOf(manager: string, host: string): Promise<Record<string, string>> {
  return JSON.parse(await sh(manager, `docker node inspect ${host} --format '{{json .Spec.Labels}}'`)) ?? {};
}

/** Waits (bounded) for a condition checked by `probe`. */
async function eventually(what: string, seconds: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not true after ${seconds}s`);
}

beforeAll(async () => {
  tb = await startTestbed({ hosts: 6, name: "membership" });
  await tb.importBusybox("busybox:testbed");
  // The provider text SwarmNode stores, evaluated as Pulumi's dynamic-provider process does.
  providerText = swarmNodeProviderText();
  provider = requireFromString(providerText).handler() as pulumi.dynamic.ResourceProvider;
  clearEvents();
});

afterAll(async () => {
  await closeAllTransports();
  closeRealPool();
  if (tb) await tb.down();
  // Measured times, for the report.
  console.log(`membership timings (ms): ${JSON.stringify(timings)}`);
});

test("the stored provider holds no secret and its evaluated copy is a working provider", () => {
  expect(providerText).not.toContain("PRIVATE KEY");
  expect(providerText).toContain("docker swarm join");
  expect(typeof provider.create).toBe("function");
  expect(provider).not.toBe(swarmNodeProvider);
  expect(realGlobal).not.toBe(globalThis);
});

test("from nothing to 3 managers + 2 workers with labels", async () => {
  const t0 = Date.now();
  await create("h1", inputs("h1", "manager", { zone: "a", "traefik.acme": "true" }));
  // Every other node joins at once, as SwarmMembership orders them: the leader adds the two managers to raft one
  // at a time by itself.
  await Promise.all([
    create("h2", inputs("h2", "manager", { zone: "b" })),
    create("h3", inputs("h3", "manager", { zone: "c" })),
    create("h4", inputs("h4", "worker", { zone: "a", "storage.tier": "fast ssd" })),
    create("h5", inputs("h5", "worker", { zone: "b" })),
  ]);
  timings.converge5 = Date.now() - t0;

  const ls = await nodeLs("h1");
  expect(ls.map((n) => n.hostname).sort()).toEqual(["h1", "h2", "h3", "h4", "h5"]);
  expect(countManagers(ls)).toEqual({ total: 3, reachable: 3 });
  expect(await labelsOf("h1", "h4")).toEqual({ zone: "a", "storage.tier": "fast ssd" });
  expect(await labelsOf("h2", "h1")).toEqual({ zone: "a", "traefik.acme": "true" });

  // Outputs: one swarm; tokens only on the bootstrap node, separate, real.
  const swarmId = state.h1.swarmId;
  expect(swarmId).toMatch(/^[a-z0-9]{25}$/);
  for (const h of ["h2", "h3", "h4", "h5"]) expect(state[h].swarmId).toBe(swarmId);
  expect(state.h1.managerToken).toMatch(/^SWMTKN-1-/);
  expect(state.h1.workerToken).toMatch(/^SWMTKN-1-/);
  expect(state.h1.workerToken).not.toBe(state.h1.managerToken);
  expect(state.h4.managerToken).toBe("");
  expect(state.h4).toMatchObject({ role: "worker", member: true, state: "ready", availability: "active" });

  // Init options took effect.
  const spec = JSON.parse(await sh("h1", "docker info --format '{{json .Swarm.Cluster}}'"));
  expect(spec.DefaultAddrPool).toEqual(["10.120.0.0/16"]);
  expect(spec.Spec.CAConfig.NodeCertExpiry).toBe(720 * 3600 * 1e9);
});

test("read + diff after creation reports no changes; an update with the same inputs changes nothing", async () => {
  clearEvents();
  const desired: Record<string, SwarmNodeInputs> = {
    h1: inputs("h1", "manager", { zone: "a", "traefik.acme": "true" }),
    h2: inputs("h2", "manager", { zone: "b" }),
    h3: inputs("h3", "manager", { zone: "c" }),
    h4: inputs("h4", "worker", { zone: "a", "storage.tier": "fast ssd" }),
    h5: inputs("h5", "worker", { zone: "b" }),
  };
  for (const h of Object.keys(desired)) {
    const r = await provider.read!(h, state[h]);
    state[h] = r.props as SwarmNodeOutputs;
    expect(state[h].member).toBe(true);
    const d = await provider.diff!(h, state[h], desired[h]);
    expect({ h, changes: d.changes, replaces: d.replaces }).toEqual({ h, changes: false, replaces: [] });
  }
  // A new address replaces the node, delete before replace (the same host cannot be a member twice).
  expect(await provider.diff!("h4", state.h4, { ...desired.h4, address: "10.213.47.250" })).toEqual({
    changes: true,
    replaces: ["address", "advertiseAddress"],
    deleteBeforeReplace: true,
  });
  // Re-running create on an existing member adopts it: same node id, nothing joined (the join this process may
  // try first is refused by the node), no init.
  const before = state.h5.nodeId;
  await create("h5", desired.h5);
  expect(state.h5.nodeId).toBe(before);
  expect(events().filter((e) => /join|init|node-update|promote|demote/.test(e.what))).toEqual([]);
  expect((await nodeLs("h1")).length).toBe(5);
});

test("a label change, a promotion and a demotion each change only what they must", async () => {
  const before = Object.fromEntries(
    await Promise.all(["h1", "h2", "h3", "h4", "h5"].map(async (h) => [h, await labelsOf("h1", h)] as const)),
  );
  clearEvents();
  const r1 = await converge("h4", inputs("h4", "worker", { zone: "b", "storage.tier": "fast ssd" }));
  expect(r1).toEqual({ changed: true, replaces: [] });
  expect(events().map((e) => `${e.node}:${e.what}`)).toEqual(["h4:node-update"]);
  expect(await labelsOf("h1", "h4")).toEqual({ zone: "b", "storage.tier": "fast ssd" });
  for (const h of ["h1", "h2", "h3", "h5"]) expect(await labelsOf("h1", h)).toEqual(before[h]);

  clearEvents();
  await converge("h5", inputs("h5", "manager", { zone: "b" }));
  expect(events().map((e) => `${e.node}:${e.what}`)).toEqual(["h5:lock", "h5:promote", "h5:unlock"]);
  clearEvents();
  await converge("h3", inputs("h3", "worker", { zone: "c" }));
  expect(events().map((e) => `${e.node}:${e.what}`)).toEqual(["h3:lock", "h3:demote", "h3:unlock"]);
  let ls = await nodeLs("h1");
  expect(
    ls
      .filter((n) => n.managerStatus !== "")
      .map((n) => n.hostname)
      .sort(),
  ).toEqual(["h1", "h2", "h5"]);
  expect(state.h3.role).toBe("worker");
  expect(state.h5.role).toBe("manager");
  expect(await labelsOf("h1", "h5")).toEqual({ zone: "b" });

  // Back to 3+2 (h3 manager, h5 worker) for the next tests; node ids never changed.
  const ids = ["h3", "h5"].map((h) => state[h].nodeId);
  await converge("h3", inputs("h3", "manager", { zone: "c" }));
  await converge("h5", inputs("h5", "worker", { zone: "b" }));
  ls = await nodeLs("h1");
  expect(
    ls
      .filter((n) => n.managerStatus !== "")
      .map((n) => n.hostname)
      .sort(),
  ).toEqual(["h1", "h2", "h3"]);
  expect(["h3", "h5"].map((h) => state[h].nodeId)).toEqual(ids);
  expect(ls.length).toBe(5);
});

test("drift: a node that left by hand reads as not a member, and the next update re-joins it", async () => {
  await sh("h5", "docker swarm leave --force");
  const r = await provider.read!("h5", state.h5);
  state.h5 = r.props as SwarmNodeOutputs;
  expect(state.h5.member).toBe(false);
  const d = await provider.diff!("h5", state.h5, inputs("h5", "worker", { zone: "b" }));
  expect(d).toMatchObject({ changes: true, replaces: [] });
  const oldId = state.h5.nodeId;
  await converge("h5", inputs("h5", "worker", { zone: "b" }));
  expect(state.h5.member).toBe(true);
  expect(state.h5.nodeId).not.toBe(oldId);
  expect(await localState("h5")).toBe("active");
  expect(await labelsOf("h1", "h5")).toEqual({ zone: "b" });
  // The stale entry is gone: each host is listed once.
  expect((await nodeLs("h1")).map((n) => n.hostname).sort()).toEqual(["h1", "h2", "h3", "h4", "h5"]);
});

test("a host in another swarm is refused with an error naming it, without secrets", async () => {
  await sh("h6", "docker swarm init --advertise-addr " + ssh("h6").address);
  const err = await create("h6", inputs("h6", "worker")).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err?.message).toMatch(/swarm node h6 \(.*\): already a member of another swarm/);
  expect(err?.message).not.toContain(tb.privateKey.split("\n")[1]);
  expect(err?.message).not.toMatch(/SWMTKN/);
  await sh("h6", "docker swarm leave --force");
  expect((await nodeLs("h1")).length).toBe(5);
});

test("an unreachable address fails, bounded, with an error naming the host", async () => {
  const slotBase = Number(ssh("h1").address.split(".")[3]) - 1; // 16 * slot
  const address = `${ssh("h1").address.split(".").slice(0, 3).join(".")}.${slotBase + 15}`;
  const t0 = Date.now();
  const err = await provider.create!({
    ...inputs("h6", "worker"),
    name: "ghost",
    address,
    timeouts: { readySeconds: 5, connectSeconds: 2 },
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  const elapsed = Date.now() - t0;
  expect(err?.message).toMatch(
    new RegExp(`swarm node ghost \\(${address.replace(/\./g, "\\.")}\\): not ready after 5s`),
  );
  expect(err?.message).not.toContain(tb.privateKey.split("\n")[1]);
  expect(elapsed).toBeLessThan(60000); // bounded (generous: the point is it does not hang)
});

test("scale down 3+2 -> 1+1 in parallel (incl. the init node) while a 4-replica service runs", async () => {
  await sh(
    "h1",
    "docker service create -d --name web --replicas 4 --restart-condition any busybox:testbed sleep 100000",
  );
  await eventually("web 4/4", 60, async () =>
    (await sh("h1", "docker service ls --format '{{.Replicas}}' -f name=web")).startsWith("4/4"),
  );

  // Watch quorum from the surviving manager while the deletes run.
  let watching = true;
  const samples: { ok: boolean; quorum?: boolean }[] = [];
  const watcher = (async () => {
    while (watching) {
      const r = await tb.exec("h3", `docker node ls --format '${NODE_LS_FORMAT}'`).catch(() => undefined);
      if (r && r.code === 0) {
        const c = countManagers(parseNodeList(r.stdout));
        samples.push({ ok: true, quorum: c.reachable >= quorumNeeded(c.total) });
      } else samples.push({ ok: false });
      await new Promise((res) => setTimeout(res, 300));
    }
  })();

  clearEvents();
  // As Pulumi would: the three deletes at once (two managers, one of them the init node, and a worker).
  const results = await Promise.allSettled(["h1", "h2", "h5"].map((h) => provider.delete!(h, state[h])));
  watching = false;
  await watcher;
  expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok"))).toEqual(["ok", "ok", "ok"]);

  // Never two managers demoted at once: the lock intervals do not interleave, each demote inside one.
  const ev = events();
  const lockSeq = ev
    .filter((e) => ["lock", "unlock", "demote"].includes(e.what))
    .map((e) => `${e.node}:${e.what}`);
  expect(lockSeq.length).toBe(6);
  for (let i = 0; i < lockSeq.length; i += 3) {
    const node = lockSeq[i].split(":")[0];
    expect(lockSeq.slice(i, i + 3)).toEqual([`${node}:lock`, `${node}:demote`, `${node}:unlock`]);
  }
  // Removal order for each manager: drain, demote, leave, node rm.
  for (const h of ["h1", "h2"]) {
    expect(
      ev.filter((e) => e.node === h && e.what !== "lock" && e.what !== "unlock").map((e) => e.what),
    ).toEqual(["drain", "demote", "leave", "node-rm"]);
  }

  // Quorum held at every sample that answered, and the survivor answers at the end.
  expect(samples.length).toBeGreaterThan(0);
  expect(samples.filter((s) => s.ok && s.quorum === false)).toEqual([]);
  expect(samples[samples.length - 1].ok).toBe(true);

  const ls = await nodeLs("h3");
  expect(ls.map((n) => n.hostname).sort()).toEqual(["h3", "h4"]);
  for (const h of ["h1", "h2", "h5"]) expect(await localState(h)).toBe("inactive");
  const running = (
    await sh("h3", "docker service ps web --filter desired-state=running --format '{{.CurrentState}}'")
  )
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("Running"));
  expect(running.length).toBe(4);
  for (const h of ["h1", "h2", "h5"]) delete state[h];
});

test("after the init node is gone, a new node still joins (one join alone, measured)", async () => {
  const t0 = Date.now();
  await create("h6", inputs("h6", "worker", { zone: "c" }));
  timings.oneJoin = Date.now() - t0;
  expect((await nodeLs("h3")).map((n) => n.hostname).sort()).toEqual(["h3", "h4", "h6"]);
  expect(await labelsOf("h3", "h6")).toEqual({ zone: "c" });
});

test("the last manager is not removed while other nodes remain", async () => {
  const err = await provider.delete!("h3", state.h3).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err?.message).toMatch(/swarm node h3 .*refusing to remove the last reachable manager/);
  expect(await localState("h3")).toBe("active");
});

test("a worker whose dockerd is down is removed with node rm --force", async () => {
  const pidfile = dockerPidFile("h6");
  await sh("h3", `kill $(cat ${pidfile})`);
  await eventually("h6 dockerd down", 30, async () => (await tb.exec("h6", "docker info")).code !== 0);
  clearEvents();
  await provider.delete!("h6", state.h6);
  expect(events().map((e) => `${e.node}:${e.what}`)).toEqual(["h6:node-rm-force"]);
  expect((await nodeLs("h3")).map((n) => n.hostname).sort()).toEqual(["h3", "h4"]);
});

test("quorum: with one of 3 managers down, removing a reachable one is refused; the dead one can go", async () => {
  // Back to 3 managers: h1 and h2 re-join (as managers) the swarm that h3 now leads.
  await create(
    "h1",
    inputs("h1", "manager", {}, { bootstrap: false, init: undefined, expectedSwarmId: state.h3.swarmId }),
  );
  await create("h2", inputs("h2", "manager", {}, { expectedSwarmId: state.h3.swarmId }));
  expect(countManagers(await nodeLs("h3"))).toEqual({ total: 3, reachable: 3 });

  await sh("h3", `kill $(cat ${dockerPidFile("h2")})`);
  await eventually("h2 unreachable", 60, async () =>
    (await nodeLs("h3")).some((n) => n.hostname === "h2" && n.managerStatus === "Unreachable"),
  );
  const err = await provider.delete!("h1", state.h1).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err?.message).toMatch(
    /swarm node h1 .*refusing to remove it from the managers: afterwards 1 of 2 managers reachable, 2 needed for quorum/,
  );
  expect(await localState("h1")).toBe("active");
  expect(countManagers(await nodeLs("h3"))).toEqual({ total: 3, reachable: 2 });

  // Removing the unreachable manager restores a healthy raft group (demote, then node rm --force).
  clearEvents();
  await provider.delete!("h2", state.h2);
  expect(events().map((e) => `${e.node}:${e.what}`)).toEqual([
    "h2:lock",
    "h2:demote",
    "h2:node-rm-force",
    "h2:unlock",
  ]);
  expect(countManagers(await nodeLs("h3"))).toEqual({ total: 2, reachable: 2 });
  await provider.delete!("h1", state.h1);
  expect((await nodeLs("h3")).map((n) => n.hostname).sort()).toEqual(["h3", "h4"]);
  delete state.h1;
  delete state.h2;
});

test("pulumi destroy order: the worker, then the last manager dissolves the swarm", async () => {
  await provider.delete!("h4", state.h4);
  await provider.delete!("h3", state.h3);
  expect(await localState("h3")).toBe("inactive");
  expect(await localState("h4")).toBe("inactive");
});
