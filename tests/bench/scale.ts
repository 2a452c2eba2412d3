// Benchmark: swarm membership beyond this machine (7 managers + 300 workers), simulated.
//
//   npm run bench:scale                      projection from tests/bench/fixtures/scale-latencies.json
//   npm run bench:scale -- --fixture FILE    from another fixture
//   sudo npm run bench:scale -- --measure [--runs N]
//                                            measures the latencies on a 10-host testbed and writes the fixture
//
// The projection runs the SwarmNode provider's own code (check, create, read, diff, the join limiter) in the
// order and parallelism `pulumi up` uses (membershipPlan; --parallel engine slots), over a Transport that
// replays the measured latencies on a virtual clock (tests/bench/scaleSim.ts). It is a model: see
// BENCHMARKS.md. It prints figures; it fails (exit 1) only when a step does not do what it should.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execSync } from "child_process";
import type { HostSpec } from "../../components/config/types";
import type { EngineTransport, SshTarget, Transport } from "../../components/hosts/transport";
import { joinRequest, tokensOf } from "../../components/swarm/plan";
import {
  classify,
  classifyRequest,
  installTransportHook,
  LatencyFixture,
  project,
  Projection,
} from "./scaleSim";
import { median } from "./stats";

const FIXTURE = path.join(__dirname, "fixtures", "scale-latencies.json");
/** Pulumi's default --parallel is 4 x the CPUs of the machine running it (`pulumi up --help`: 8 on 2 cores). */
const ENGINE_DEFAULT_PARALLEL = 8;
const UNBOUNDED = 1_000_000_000;

function parseArgs(argv: readonly string[]) {
  const o = { measure: false, runs: 3, fixture: FIXTURE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--measure") o.measure = true;
    else if (a === "--runs") o.runs = Number(argv[++i]);
    else if (a === "--fixture") o.fixture = path.resolve(argv[++i] ?? "");
    else if (a === "-h" || a === "--help") {
      console.log("usage: npm run bench:scale -- [--fixture FILE] | --measure [--runs N] (root)");
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (usage: [--fixture FILE] | --measure [--runs N])`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error("--runs needs a positive integer");
  return o;
}

const medianOr0 = (xs: readonly number[]) => (xs.length === 0 ? 0 : median(xs));
const round = (x: number) => Math.round(x * 10) / 10;
const sec = (ms: number) => (ms / 1000).toFixed(1);

function table(head: string[], rows: string[][]): void {
  const w = head.map((_, c) => Math.max(...[head, ...rows].map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(w[c]) : x.padStart(w[c]))).join("  ");
  console.log(line(head));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------
// Projection

async function simulate(fixtureFile: string): Promise<void> {
  if (!fs.existsSync(fixtureFile))
    throw new Error(
      `no latency fixture at ${fixtureFile}: run \`sudo npm run bench:scale -- --measure\` first`,
    );
  const fx = JSON.parse(fs.readFileSync(fixtureFile, "utf8")) as LatencyFixture;
  console.log(`latencies from ${path.relative(process.cwd(), fixtureFile)}: ${fx.machine}, ${fx.measuredAt}`);
  const cpu0 = process.cpuUsage();
  const wall0 = Date.now();

  console.log(
    `\nProjected membership times (virtual seconds; pulumi --parallel ${ENGINE_DEFAULT_PARALLEL}, ` +
      `maxParallelJoins default)`,
  );
  const rows: string[][] = [];
  for (const [m, w] of [
    [3, 2],
    [7, 30],
    [7, 300],
  ]) {
    const p: Projection = await project(fx, { managers: m, workers: w, parallel: ENGINE_DEFAULT_PARALLEL });
    rows.push([
      `${m}+${w}`,
      sec(p.convergeMs),
      sec(p.noopMs),
      String(p.converge.commands),
      String(p.noop.commands),
      String(p.noop.mutating),
      `${p.converge.byClass.info ?? 0} / ${p.noop.byClass.info ?? 0}`,
    ]);
  }
  table(
    [
      "nodes",
      "converge s",
      "no-op s",
      "requests converge",
      "requests no-op",
      "mutating no-op",
      "GET /info converge / no-op",
    ],
    rows,
  );

  console.log(
    "\nEffect of nodes.swarm.maxParallelJoins at 7+300 (converge, virtual seconds), engine unbounded and default",
  );
  const limits: [string, number][] = [
    ["1", 1],
    ["5", 5],
    ["10 (default)", 10],
    ["20", 20],
    ["50", 50],
    ["unbounded", UNBOUNDED],
  ];
  const sweep: string[][] = [];
  for (const [label, limit] of limits) {
    const unb = await project(fx, {
      managers: 7,
      workers: 300,
      parallel: UNBOUNDED,
      maxParallelJoins: limit,
    });
    const def = await project(fx, {
      managers: 7,
      workers: 300,
      parallel: ENGINE_DEFAULT_PARALLEL,
      maxParallelJoins: limit,
    });
    sweep.push([label, sec(unb.convergeMs), sec(def.convergeMs)]);
  }
  table(["maxParallelJoins", "--parallel unbounded", `--parallel ${ENGINE_DEFAULT_PARALLEL}`], sweep);

  // A refresh reads every node, each read one engine slot: its own host's view (one SSH connection and docker
  // info) waits for a slot, so --parallel bounds how many hosts are asked at once.
  console.log(
    "\nEffect of pulumi --parallel at 7+300 (no-op re-run with refresh: read + diff, virtual seconds)",
  );
  const refresh: string[][] = [];
  for (const [label, parallel] of [
    [`${ENGINE_DEFAULT_PARALLEL} (default here)`, ENGINE_DEFAULT_PARALLEL],
    ["32", 32],
    ["64", 64],
    ["unbounded", UNBOUNDED],
  ] as const) {
    const p = await project(fx, { managers: 7, workers: 300, parallel });
    refresh.push([label, sec(p.noopMs)]);
  }
  table(["--parallel", "no-op s"], refresh);
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `\nsimulation: ${sec(Date.now() - wall0)} s wall, ${sec((cpu.user + cpu.system) / 1000)} s CPU ` +
      `(load average ${os.loadavg()[0].toFixed(1)})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Measurement on the testbed

async function measure(runs: number): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { startTestbed } = require("../testbed/testbed") as typeof import("../testbed/testbed");
  const { closeAllTransports } =
    require("../../components/hosts/transport") as typeof import("../../components/hosts/transport");
  const { managersAskedBy, membershipPlan } =
    require("../../components/swarm/membershipPlan") as typeof import("../../components/swarm/membershipPlan");
  const { swarmNodeProvider } =
    require("../../components/swarm/provider") as typeof import("../../components/swarm/provider");
  const { nodeSshOf } =
    require("../../components/swarm/nodeOps") as typeof import("../../components/swarm/nodeOps");
  /* eslint-enable @typescript-eslint/no-require-imports */
  type Inputs = import("../../components/swarm/provider").SwarmNodeInputs;
  type Outputs = import("../../components/swarm/provider").SwarmNodeOutputs;

  const startMachine = machine();
  // The role of a join is not in its command; the managers join first, then the workers (see below).
  let joiningRole: "manager" | "worker" = "manager";
  const samples: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (samples[k] ??= []).push(ms);
  // The first request to a host on a new connection also pays the SSH connection and the start of its docker
  // channel: set aside, and added to its class once those two are measured (step 4).
  const firsts: { cls: string; ms: number }[] = [];
  const dialed = new Set<string>();
  let recording = true;
  const byRole = (cls: string) =>
    cls !== "join" ? cls : joiningRole === "manager" ? "joinManager" : "joinWorker";
  // Time every command and request the provider sends, by class (join split by role).
  const uninstall = installTransportHook((_t: SshTarget, real: EngineTransport): EngineTransport => ({
    host: real.host,
    close: () => real.close(),
    async exec(command: string, stdin?: string) {
      const t0 = performance.now();
      const r = await real.exec(command, stdin);
      if (recording) add(byRole(classify(command)), performance.now() - t0);
      return r;
    },
    async request(method: string, path: string, body?: unknown) {
      const first = !dialed.has(real.host);
      dialed.add(real.host);
      const t0 = performance.now();
      const r = await real.request(method, path, body);
      const cls = byRole(classifyRequest(method, path));
      if (!recording) return r;
      if (first) firsts.push({ cls, ms: performance.now() - t0 });
      else add(cls, performance.now() - t0);
      return r;
    },
  }));

  const tb = await startTestbed({ hosts: 10, name: "scale" });
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      uninstall();
      await closeAllTransports().catch(() => undefined);
      await tb.down().catch((e) => console.error(`testbed down: ${e}`));
    })());
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping the testbed`);
      void cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }
  console.log(`testbed with ${tb.hosts.length} hosts started`);
  try {
    const MANAGERS = ["h1", "h2", "h3"];
    const WORKERS = ["h4", "h5"];
    const EXTRA = ["h6", "h7", "h8", "h9", "h10"];
    const spec = (name: string): HostSpec => {
      const h = tb.hosts.find((x) => x.name === name)!;
      return {
        name,
        address: h.address,
        port: h.sshPort,
        user: "root",
        hostKeyFingerprint: tb.hostKeyFingerprints[name],
        role: MANAGERS.includes(name) ? "manager" : "worker",
        labels: { zone: `z${name.slice(1)}` },
        availability: "active",
      };
    };
    const sh = async (host: string, cmd: string, stdin?: string) => {
      const r = await tb.exec(host, cmd, stdin);
      if (r.code !== 0) throw new Error(`${host}: \`${cmd}\` exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    };
    const timed = async (fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    const serial: Record<string, number[]> = { join: [], write: [], managerCmd: [] };
    for (let run = 1; run <= runs; run++) {
      await tb.leaveSwarm();
      await closeAllTransports();
      dialed.clear();
      // 1. Converge 3+2 through the provider, managers serial and workers parallel (as bench:membership).
      const hosts = [...MANAGERS, ...WORKERS].map(spec);
      const plan = membershipPlan(hosts);
      const state: Record<string, Outputs> = {};
      const inputs = (h: HostSpec, bootstrap: boolean): Inputs => ({
        name: h.name,
        address: h.address,
        port: h.port,
        user: h.user,
        hostKeyFingerprint: h.hostKeyFingerprint,
        privateKey: tb.privateKey,
        role: h.role,
        availability: h.availability,
        labels: { ...h.labels },
        bootstrap,
        init: bootstrap
          ? { defaultAddrPool: ["10.120.0.0/16"], dataPathPort: 4789, certExpiry: "720h0m0s" }
          : undefined,
        managers: managersAskedBy(plan, h.name).map((x) => nodeSshOf(x)),
        expectedSwarmId: bootstrap ? undefined : state[plan.bootstrap.name]?.swarmId,
        forceQuorumLoss: false,
        timeouts: { readySeconds: 60, connectSeconds: 5 },
      });
      const create = async (h: HostSpec, bootstrap: boolean) => {
        const c = await swarmNodeProvider.check!({}, inputs(h, bootstrap));
        state[h.name] = (await swarmNodeProvider.create!(c.inputs as Inputs)).outs as Outputs;
      };
      joiningRole = "manager";
      await create(plan.bootstrap, true);
      for (const m of plan.managers.slice(1)) await create(m, false);
      joiningRole = "worker";
      await Promise.all(plan.workers.map((w) => create(w, false)));
      const members = (await sh("h1", "docker node ls --format '{{.Hostname}}'")).split("\n").sort();
      if (members.join(",") !== [...MANAGERS, ...WORKERS].sort().join(","))
        throw new Error(`after converge the swarm has [${members.join(", ")}]`);
      // 2. A no-op read of every node (inspect and info latencies on a formed swarm).
      await Promise.all(hosts.map((h) => swarmNodeProvider.read!(h.name, state[h.name])));

      // 3. Serial parts: one request alone, then k at once; the slope is what each extra one adds. Sent as the
      // provider sends them (Engine API requests), but not counted as its samples.
      recording = false;
      const api = async (host: string, method: string, p: string, body?: unknown) => {
        const r = await tb.transport(host).request(method, p, body);
        if (r.status >= 300)
          throw new Error(`${host}: ${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body as Record<string, unknown>;
      };
      const token = tokensOf(await api("h1", "GET", "/swarm"))!.worker;
      const addr = `${tb.hosts[0].address}:2377`;
      const join = (h: string) => api(h, "POST", "/swarm/join", joinRequest(spec(h).address, addr, token));
      const k = EXTRA.length;
      const one = await timed(() => join(EXTRA[0]));
      await sh(EXTRA[0], "docker swarm leave --force");
      await sh("h1", `docker node rm --force ${EXTRA[0]}`).catch(() => undefined);
      const many = await timed(() => Promise.all(EXTRA.map(join)));
      serial.join.push(Math.max(0, (many - one) / (k - 1)));
      // A label update as writeNodeSpec sends it: read the node, write its spec at that version (each node
      // through its own channel to h1 would be fairer to raft; the provider sends them all through one).
      const upd = async (h: string, i: number) => {
        const n = (await api("h1", "GET", `/nodes/${h}`)) as {
          ID: string;
          Version: { Index: number };
          Spec: object;
        };
        const spec = { ...n.Spec, Labels: { bench: `${run}-${i}` } };
        await api("h1", "POST", `/nodes/${n.ID}/update?version=${n.Version.Index}`, spec);
      };
      const u1 = await timed(() => upd(EXTRA[0], 0));
      const uk = await timed(() => Promise.all(EXTRA.map((h, i) => upd(h, i + 1))));
      serial.write.push(Math.max(0, (uk - u1) / (k - 1)));
      const insp = () => api("h1", "GET", "/nodes/h1");
      const i1 = await timed(insp);
      add("inspect", i1); // the provider reads nodes through its host view; this is one inspect alone
      const ik = await timed(() => Promise.all(EXTRA.map(insp)));
      serial.managerCmd.push(Math.max(0, (ik - i1) / (k - 1)));
      recording = true;
      console.log(
        `run ${run}/${runs}: one join ${Math.round(one)} ms, ${k} at once ${Math.round(many)} ms; ` +
          `update ${Math.round(u1)} / ${Math.round(uk)} ms; inspect ${Math.round(i1)} / ${Math.round(ik)} ms`,
      );
    }

    // 4. Connection setup and the provider's CPU per command, on h1 (sequential, nothing else running).
    const t = tb.transport("h1");
    const warm: number[] = [];
    const cold: number[] = [];
    const cpuCmd0 = process.cpuUsage();
    await t.exec("true");
    for (let i = 0; i < 20; i++) warm.push(await timedExec(t));
    const c1 = process.cpuUsage(cpuCmd0);
    const cpuCommand = (c1.user + c1.system) / 1000 / 21;
    const cpuConn0 = process.cpuUsage();
    for (let i = 0; i < 5; i++) {
      await closeAllTransports();
      cold.push(await timedExec(tb.transport("h1")));
    }
    const c2 = process.cpuUsage(cpuConn0);
    const cpuConnect = Math.max(0, (c2.user + c2.system) / 1000 / 5 - cpuCommand);
    // The docker channel: the first request on a connection, against the next ones.
    const firstInfo: number[] = [];
    const nextInfo: number[] = [];
    for (let i = 0; i < 5; i++) {
      await closeAllTransports();
      const h1 = tb.transport("h1");
      await h1.exec("true");
      firstInfo.push(await timedRequest(h1));
      for (let j = 0; j < 3; j++) nextInfo.push(await timedRequest(h1));
    }
    const connect = Math.max(0, medianOr0(cold) - medianOr0(warm));
    const dial = Math.max(0, medianOr0(firstInfo) - medianOr0(nextInfo));
    for (const f of firsts) add(f.cls, Math.max(0, f.ms - connect - dial));

    const L = (k: string) => round(medianOr0(samples[k] ?? []));
    const fx: LatencyFixture = {
      machine: startMachine,
      measuredAt: new Date().toISOString(),
      note:
        "Measured by `npm run bench:scale -- --measure` on the network-namespace testbed: every host shares this " +
        "machine's CPUs, so the serial parts (slopes of k commands at once vs one) include the other hosts' " +
        "CPU and are pessimistic. A first request to a host counts without its connection and dial. " +
        `${runs} runs; medians. Samples: ` +
        Object.entries(samples)
          .map(([k, v]) => `${k} ${v.length}`)
          .join(", "),
      latencyMs: {
        connect: round(connect),
        dial: round(dial),
        info: L("info"),
        nodes: L("nodes"),
        init: L("init"),
        joinManager: L("joinManager"),
        joinWorker: L("joinWorker"),
        joinToken: L("token"),
        inspect: L("inspect"),
        update: L("update"),
        other: round(medianOr0(warm)),
      },
      serialMs: {
        join: round(medianOr0(serial.join)),
        write: round(medianOr0(serial.write)),
        managerCmd: round(medianOr0(serial.managerCmd)),
      },
      cpuMs: { command: round(cpuCommand), connect: round(cpuConnect) },
    };
    fs.mkdirSync(path.dirname(FIXTURE), { recursive: true });
    fs.writeFileSync(FIXTURE, JSON.stringify(fx, null, 2) + "\n");
    console.log(`wrote ${path.relative(process.cwd(), FIXTURE)}:\n${JSON.stringify(fx, null, 2)}`);
  } finally {
    await cleanup();
  }
}

async function timedRequest(t: EngineTransport): Promise<number> {
  const t0 = performance.now();
  const r = await t.request("GET", "/info");
  if (r.status !== 200) throw new Error(`GET /info answered ${r.status}`);
  return performance.now() - t0;
}

async function timedExec(t: Transport): Promise<number> {
  const t0 = performance.now();
  const r = await t.exec("true");
  if (r.code !== 0) throw new Error(`\`true\` exited ${r.code}`);
  return performance.now() - t0;
}

function machine(): string {
  const sh = (c: string) => {
    try {
      return execSync(c, { encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  };
  const mem = sh("free -g | awk '/^Mem:/ {print $2}'");
  return (
    `nproc ${os.cpus().length}, ${mem} GiB RAM, kernel ${os.release()}, ` +
    `load average ${os.loadavg()[0].toFixed(1)} at the start (shared machine: ${sh("hostname")})`
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.measure) await measure(o.runs);
  else await simulate(o.fixture);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exit(1);
  },
);
