// The simulation behind `npm run bench:scale`: the SwarmNode provider's own code, driven as `pulumi up` drives
// it, over a Transport that replays latencies measured on the testbed, on a virtual clock.
//
// What runs for real: the provider's CRUD functions (check, create, read, diff), nodeOps, the join limiter,
// and the order of membershipPlan. What is replayed: every remote command and Engine API request. One costs, in
// virtual time:
//   - provider CPU (one Node.js thread for all resources: a single FIFO server) before it goes out;
//   - an SSH connection the first time a host is reached (pooled per host, as transport.ts does); a command
//     takes one of SSH_SESSIONS channels on that connection; Engine API requests to one host go one after the
//     other on its one `docker system dial-stdio` channel, started by the first of them (`dial`);
//   - its measured latency, of which a "serial part" queues on a shared server: joins on the leader's CA
//     (swarmkit signs certificates and commits them one node at a time), node updates on the leader's raft
//     log, manager-side reads and join tokens on the manager host asked.
// The swarm's answers come from a small in-memory model (node ids, roles, labels), enough for the provider.
// A model, not a measurement: see BENCHMARKS.md for what it leaves out.

import type { HostSpec } from "../../components/config/types";
import type {
  EngineResponse,
  EngineTransport,
  ExecResult,
  SshTarget,
} from "../../components/hosts/transport";
import { nodeSshOf } from "../../components/swarm/nodeOps";

/** Latencies measured on the testbed (`npm run bench:scale -- --measure`), in ms. */
export interface LatencyFixture {
  readonly machine: string;
  readonly measuredAt: string;
  readonly note: string;
  /** Median wall time of one command or request of each class, uncontended. */
  readonly latencyMs: {
    readonly connect: number;
    /** What the first Engine API request to a host adds: starting `docker system dial-stdio` there. */
    readonly dial: number;
    readonly info: number;
    /** `GET /nodes`: every node, on the lister of a refresh. */
    readonly nodes: number;
    readonly init: number;
    readonly joinManager: number;
    readonly joinWorker: number;
    readonly joinToken: number;
    readonly inspect: number;
    readonly update: number;
    readonly other: number;
  };
  /** Extra wall time each additional concurrent command of the class adds (slope of k at once vs one). */
  readonly serialMs: {
    /** Per worker join, on the leader (CA signing + raft commit). */
    readonly join: number;
    /** Per node update, on the leader's raft log. */
    readonly write: number;
    /** Per read / join-token on the manager asked (docker CLI + API on that host). */
    readonly managerCmd: number;
  };
  /** CPU time of the provider process. */
  readonly cpuMs: { readonly command: number; readonly connect: number };
}

/** transport.ts MAX_SESSIONS: channels one pooled SSH connection runs at once. */
export const SSH_SESSIONS = 8;

// ---------------------------------------------------------------------------------------------
// Virtual time

/** A clock that jumps to the next timer once every promise that can progress has progressed. */
export class VirtualClock {
  now = 0;
  private seq = 0;
  /** Binary min-heap on (at, seq). */
  private heap: { at: number; seq: number; fire: () => void }[] = [];

  /** Resolves at virtual time `at` (or now, if that has passed). */
  until(at: number): Promise<void> {
    return new Promise((fire) => this.push({ at: Math.max(at, this.now), seq: this.seq++, fire }));
  }

  sleep(ms: number): Promise<void> {
    return this.until(this.now + ms);
  }

  /** Timers not fired yet. */
  get pending(): number {
    return this.heap.length;
  }

  /** Runs `work` to its end, advancing the clock whenever nothing else can run. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    let done = false;
    let idleRounds = 0;
    const p = work().finally(() => {
      done = true;
    });
    p.catch(() => undefined);
    while (!done) {
      await new Promise<void>((r) => setImmediate(r));
      if (done) break;
      if (this.heap.length === 0) {
        // Waiting on something outside the clock (a real timer in a retry path): let it run, but not forever.
        if (++idleRounds > 2000)
          throw new Error("simulation stalled: nothing scheduled on the virtual clock");
        await new Promise<void>((r) => setTimeout(r, 5));
        continue;
      }
      idleRounds = 0;
      // Fire every timer due at the earliest time, in order; then let their continuations run.
      const at = this.heap[0].at;
      this.now = at;
      while (this.heap.length > 0 && this.heap[0].at === at) this.pop().fire();
    }
    return p;
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i];
    const b = this.heap[j];
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    [this.heap[i], this.heap[j]] = [this.heap[j], this.heap[i]];
  }

  private push(t: { at: number; seq: number; fire: () => void }): void {
    this.heap.push(t);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): { at: number; seq: number; fire: () => void } {
    const top = this.heap[0];
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.heap.length && this.less(l, m)) m = l;
        if (r < this.heap.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** A FIFO server with `slots` parallel slots, in virtual time: reserve returns when service may start. */
export class Server {
  private free: number[];
  constructor(slots = 1) {
    this.free = Array.from({ length: Math.max(1, slots) }, () => 0);
  }
  /** Reserves `serviceMs` starting no earlier than `now`; returns the start time. */
  reserve(now: number, serviceMs: number): number {
    let i = 0;
    for (let j = 1; j < this.free.length; j++) if (this.free[j] < this.free[i]) i = j;
    const start = Math.max(now, this.free[i]);
    this.free[i] = start + serviceMs;
    return start;
  }
}

/** A counting semaphore (no time of its own). */
export class Semaphore {
  private active = 0;
  private waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async use<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

export type CommandClass =
  "info" | "nodes" | "init" | "join" | "token" | "update" | "inspect" | "true" | "unknown";

/** Which of the provider's Engine API requests this is (the replay answers only these). */
export function classifyRequest(method: string, path: string): CommandClass {
  if (method === "GET" && path === "/info") return "info";
  if (method === "POST" && path === "/swarm/init") return "init";
  if (method === "POST" && path === "/swarm/join") return "join";
  if (method === "GET" && path === "/swarm") return "token";
  if (method === "GET" && path === "/nodes") return "nodes";
  if (method === "GET" && /^\/nodes\/[^/?]+$/.test(path)) return "inspect";
  if (method === "POST" && /^\/nodes\/[^/?]+\/update\?version=\d+$/.test(path)) return "update";
  return "unknown";
}

/** Which of the provider's shell commands this is: in a converge or a no-op, only the lock's `true` probe. */
export function classify(command: string): CommandClass {
  return command.trim() === "true" ? "true" : "unknown";
}

// ---------------------------------------------------------------------------------------------
// The swarm, as far as the provider can see it

interface SimNode {
  id: string;
  hostname: string;
  address: string;
  role: "manager" | "worker";
  availability: string;
  labels: Record<string, string>;
  version: number;
}

/** Counters of one simulated step. */
export interface Counts {
  commands: number;
  mutating: number;
  connects: number;
  byClass: Partial<Record<CommandClass, number>>;
}

export const newCounts = (): Counts => ({ commands: 0, mutating: 0, connects: 0, byClass: {} });

const MUTATING: readonly CommandClass[] = ["init", "join", "update"];

/** The simulated swarm, hosts (by address) and the latency model; hands out replay transports. */
export class SimSwarm {
  readonly clock = new VirtualClock();
  readonly counts: Counts = newCounts();
  private readonly cpu = new Server(1);
  private readonly leaderCa = new Server(1);
  private readonly leaderRaft = new Server(1);
  private readonly hostCmd = new Map<string, Server>();
  private readonly sessions = new Map<string, Semaphore>();
  private readonly connected = new Map<string, Promise<void>>();
  /** Per host: its docker channel (one request at a time), and whether it was started on this connection. */
  private readonly channels = new Map<string, { sem: Semaphore; dialed?: Promise<void> }>();
  private readonly nodes = new Map<string, SimNode>(); // by address
  private clusterId = "";
  private leader = "";
  private nextId = 1;

  constructor(readonly fx: LatencyFixture) {}

  /** Every pooled connection is dropped (as a new `pulumi up` process starts with none). */
  dropConnections(): void {
    this.connected.clear();
    this.channels.clear();
  }

  resetCounts(): void {
    Object.assign(this.counts, newCounts());
  }

  members(): string[] {
    return [...this.nodes.values()].map((n) => n.hostname).sort();
  }

  transport(target: SshTarget): EngineTransport {
    return {
      host: target.host,
      exec: (command: string) => this.exec(target, command),
      request: (method: string, path: string, body?: unknown) => this.request(target, method, path, body),
      close: async () => {
        this.connected.delete(target.address);
        this.channels.delete(target.address);
      },
    };
  }

  private serverOf(map: Map<string, Server>, key: string): Server {
    let s = map.get(key);
    if (!s) map.set(key, (s = new Server(1)));
    return s;
  }

  private async cpuWork(ms: number): Promise<void> {
    const start = this.cpu.reserve(this.clock.now, ms);
    await this.clock.until(start + ms);
  }

  private connect(address: string): Promise<void> {
    let c = this.connected.get(address);
    if (!c) {
      this.counts.connects++;
      c = (async () => {
        await this.cpuWork(this.fx.cpuMs.connect);
        await this.clock.sleep(this.fx.latencyMs.connect);
      })();
      this.connected.set(address, c);
    }
    return c;
  }

  /** Latency `ms`, of which `serialMs` queues on `server` (FIFO) before the rest. */
  private async remote(ms: number, server?: Server, serialMs = 0): Promise<void> {
    if (!server) return this.clock.sleep(ms);
    const start = server.reserve(this.clock.now, serialMs);
    await this.clock.until(start + Math.max(ms, serialMs));
  }

  private count(cls: CommandClass, what: string): void {
    if (cls === "unknown") throw new Error(`replay transport: no model for \`${what.slice(0, 80)}\``);
    this.counts.commands++;
    this.counts.byClass[cls] = (this.counts.byClass[cls] ?? 0) + 1;
    if (MUTATING.includes(cls)) this.counts.mutating++;
  }

  private async exec(target: SshTarget, command: string): Promise<ExecResult> {
    const cls = classify(command);
    this.count(cls, command);
    await this.connect(target.address);
    let sem = this.sessions.get(target.address);
    if (!sem) this.sessions.set(target.address, (sem = new Semaphore(SSH_SESSIONS)));
    return sem.use(async () => {
      await this.cpuWork(this.fx.cpuMs.command);
      await this.remote(this.fx.latencyMs.other);
      return { stdout: "", stderr: "", code: 0 };
    });
  }

  private async request(t: SshTarget, method: string, path: string, body?: unknown): Promise<EngineResponse> {
    const cls = classifyRequest(method, path);
    this.count(cls, `${method} ${path}`);
    await this.connect(t.address);
    let ch = this.channels.get(t.address);
    if (!ch) this.channels.set(t.address, (ch = { sem: new Semaphore(1) }));
    const channel = ch;
    return channel.sem.use(async () => {
      channel.dialed ??= this.clock.sleep(this.fx.latencyMs.dial);
      await channel.dialed;
      await this.cpuWork(this.fx.cpuMs.command);
      return this.answer(cls, t, path, body);
    });
  }

  private ok = (body: unknown): EngineResponse => ({ status: 200, body });
  private fail = (status: number, message: string): EngineResponse => ({ status, body: { message } });

  private swarmInfo(address: string): Record<string, unknown> {
    const n = this.nodes.get(address);
    const manager = n?.role === "manager";
    return {
      NodeID: n?.id ?? "",
      NodeAddr: n ? address : "",
      LocalNodeState: n ? "active" : "inactive",
      ControlAvailable: manager,
      Cluster: manager ? { ID: this.clusterId } : null,
      Error: "",
      Nodes: manager ? this.nodes.size : undefined,
      Managers: manager ? [...this.nodes.values()].filter((x) => x.role === "manager").length : undefined,
    };
  }

  private nodeObject(n: SimNode): Record<string, unknown> {
    return {
      ID: n.id,
      Version: { Index: n.version },
      Spec: { Role: n.role, Availability: n.availability, Labels: { ...n.labels } },
      Description: { Hostname: n.hostname },
      Status: { State: "ready", Addr: n.address },
      ManagerStatus:
        n.role === "manager" ? { Reachability: "reachable", Leader: n.address === this.leader } : null,
    };
  }

  private isManager(address: string): boolean {
    return this.nodes.get(address)?.role === "manager";
  }

  private async answer(
    cls: CommandClass,
    t: SshTarget,
    path: string,
    body: unknown,
  ): Promise<EngineResponse> {
    const L = this.fx.latencyMs;
    const S = this.fx.serialMs;
    const a = t.address;
    const notManager = () => this.fail(503, "This node is not a swarm manager.");
    const alreadyMember = () => this.fail(503, "This node is already part of a swarm.");
    switch (cls) {
      case "info":
        await this.remote(L.info);
        return this.ok({ Swarm: this.swarmInfo(a) });
      case "nodes":
        await this.remote(L.nodes, this.serverOf(this.hostCmd, a), S.managerCmd);
        if (!this.isManager(a)) return notManager();
        return this.ok([...this.nodes.values()].map((n) => this.nodeObject(n)));
      case "init": {
        await this.remote(L.init);
        if (this.nodes.has(a)) return alreadyMember();
        this.clusterId = "simcluster";
        this.leader = a;
        const n = this.newNode(t, "manager");
        this.nodes.set(a, n);
        return this.ok(n.id);
      }
      case "join": {
        const token = String((body as { JoinToken?: unknown } | undefined)?.JoinToken ?? "");
        const role = token.includes("manager") ? "manager" : "worker";
        await this.remote(
          role === "manager" ? L.joinManager : L.joinWorker,
          this.leaderCa,
          role === "manager" ? Math.max(S.join, L.joinManager) : S.join,
        );
        if (this.nodes.has(a)) return alreadyMember();
        this.nodes.set(a, this.newNode(t, role));
        return this.ok("");
      }
      case "token":
        await this.remote(L.joinToken, this.serverOf(this.hostCmd, a), S.managerCmd);
        if (!this.isManager(a)) return notManager();
        return this.ok({ JoinTokens: { Manager: "SWMTKN-1-sim-manager", Worker: "SWMTKN-1-sim-worker" } });
      case "inspect":
      case "update": {
        const id = decodeURIComponent(/^\/nodes\/([^/?]+)/.exec(path)![1]);
        if (cls === "update") await this.remote(L.update, this.leaderRaft, S.write);
        else await this.remote(L.inspect, this.serverOf(this.hostCmd, a), S.managerCmd);
        if (!this.isManager(a)) return notManager();
        const n = [...this.nodes.values()].find((x) => x.id === id);
        if (!n) return this.fail(404, `node ${id} not found`);
        if (cls === "inspect") return this.ok(this.nodeObject(n));
        const spec = body as { Availability?: string; Labels?: Record<string, string> };
        n.labels = { ...(spec.Labels ?? {}) };
        n.availability = spec.Availability ?? n.availability;
        n.version++;
        return this.ok("");
      }
      default:
        throw new Error(`replay transport: no model for ${cls}`);
    }
  }

  private newNode(t: SshTarget, role: "manager" | "worker"): SimNode {
    return {
      id: `simnode${this.nextId++}`,
      hostname: t.host,
      address: t.address,
      role,
      availability: "active",
      labels: {},
      version: 1,
    };
  }
}

/** Installs `make` as the transport.ts hook (every sshTransport goes through it); returns the uninstaller. */
export function installTransportHook(
  make: (target: SshTarget, real: EngineTransport) => EngineTransport,
): () => void {
  const key = Symbol.for("swarmform.transport.wrap");
  const g = globalThis as unknown as Record<symbol, unknown>;
  const before = g[key];
  g[key] = make;
  return () => {
    g[key] = before;
  };
}

// ---------------------------------------------------------------------------------------------
// Driving the provider as `pulumi up` does

export interface Scenario {
  readonly managers: number;
  readonly workers: number;
  /** `pulumi up --parallel`: resource operations at once (Infinity: unbounded). */
  readonly parallel: number;
  /** nodes.swarm.maxParallelJoins (undefined: the default). */
  readonly maxParallelJoins?: number;
}

export interface Projection {
  /** Virtual ms: every node created from nothing (check + create, in membershipPlan order). */
  readonly convergeMs: number;
  /** Virtual ms: a no-op re-run, refresh (read) of every node then check + diff, nothing to change. */
  readonly noopMs: number;
  readonly converge: Counts;
  readonly noop: Counts;
}

/** The host list of a scenario: managers m1.., workers w1.., addresses in 10.200.0.0/16. */
export function scenarioHosts(s: Pick<Scenario, "managers" | "workers">): HostSpec[] {
  const host = (name: string, i: number, role: "manager" | "worker"): HostSpec => ({
    name,
    address: `10.200.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    port: 22,
    user: "root",
    role,
    labels: { zone: `z${i % 3}` },
    availability: "active" as const,
  });
  return [
    ...Array.from({ length: s.managers }, (_, i) => host(`m${i + 1}`, i, "manager")),
    ...Array.from({ length: s.workers }, (_, i) => host(`w${i + 1}`, s.managers + i, "worker")),
  ];
}

/**
 * Runs one converge and one no-op of the scenario through the real provider over the replay transport, on a
 * virtual clock; returns the projected times. Deterministic for a given fixture.
 */
export async function project(fx: LatencyFixture, s: Scenario): Promise<Projection> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { managersAskedBy, membershipPlan } =
    require("../../components/swarm/membershipPlan") as typeof import("../../components/swarm/membershipPlan");
  const { swarmNodeProvider } =
    require("../../components/swarm/provider") as typeof import("../../components/swarm/provider");
  /* eslint-enable @typescript-eslint/no-require-imports */
  type Inputs = import("../../components/swarm/provider").SwarmNodeInputs;
  type Outputs = import("../../components/swarm/provider").SwarmNodeOutputs;
  const sim = new SimSwarm(fx);
  const uninstall = installTransportHook((target) => sim.transport(target));
  try {
    const hosts = scenarioHosts(s);
    const plan = membershipPlan(hosts);
    const state: Record<string, Outputs> = {};
    const inputs = (h: HostSpec, bootstrap: boolean): Inputs => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      privateKey: "simulated-key",
      role: h.role,
      availability: h.availability,
      labels: { ...h.labels },
      bootstrap,
      init: bootstrap
        ? { defaultAddrPool: ["10.20.0.0/16"], dataPathPort: 4789, certExpiry: "2160h0m0s" }
        : undefined,
      managers: managersAskedBy(plan, h.name).map((m) => nodeSshOf(m)),
      expectedSwarmId: bootstrap ? undefined : state[plan.bootstrap.name]?.swarmId,
      forceQuorumLoss: false,
      maxParallelJoins: s.maxParallelJoins,
    });
    const engine = new Semaphore(Number.isFinite(s.parallel) ? s.parallel : Number.MAX_SAFE_INTEGER);

    const create = (h: HostSpec, bootstrap: boolean) =>
      engine.use(async () => {
        const c = await swarmNodeProvider.check!({}, inputs(h, bootstrap));
        if (c.failures && c.failures.length > 0) throw new Error(`${h.name}: ${JSON.stringify(c.failures)}`);
        const r = await swarmNodeProvider.create!(c.inputs as Inputs);
        state[h.name] = r.outs as Outputs;
      });

    const t0 = sim.clock.now;
    await sim.clock.run(async () => {
      const done: Record<string, Promise<void>> = {};
      done[plan.bootstrap.name] = create(plan.bootstrap, true);
      for (const step of plan.steps) {
        const deps = [plan.bootstrap.name, ...step.after].map((n) => done[n]);
        done[step.host.name] = Promise.all(deps).then(() => create(step.host, false));
      }
      const results = await Promise.allSettled(Object.values(done));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    });
    const convergeMs = sim.clock.now - t0;
    const converge = { ...sim.counts, byClass: { ...sim.counts.byClass } };
    const want = hosts.map((h) => h.name).sort();
    if (sim.members().join(",") !== want.join(","))
      throw new Error(
        `after converge the swarm has [${sim.members().length} nodes], expected ${want.length}`,
      );

    sim.dropConnections();
    sim.resetCounts();
    const t1 = sim.clock.now;
    await sim.clock.run(async () => {
      await Promise.all(
        hosts.map((h) =>
          engine.use(async () => {
            const r = await swarmNodeProvider.read!(h.name, state[h.name]);
            state[h.name] = r.props as Outputs;
          }),
        ),
      );
      for (const h of hosts) {
        const news = inputs(h, h.name === plan.bootstrap.name);
        const c = await swarmNodeProvider.check!(state[h.name], news);
        const d = await swarmNodeProvider.diff!(h.name, state[h.name], c.inputs as Inputs);
        if (d.changes !== false || (d.replaces ?? []).length > 0 || state[h.name].member !== true)
          throw new Error(`no-op re-run: ${h.name} would change: ${JSON.stringify(d)}`);
      }
    });
    const noopMs = sim.clock.now - t1;
    const noop = { ...sim.counts, byClass: { ...sim.counts.byClass } };
    if (noop.mutating > 0) throw new Error(`no-op re-run ran ${noop.mutating} mutating command(s)`);
    return { convergeMs, noopMs, converge, noop };
  } finally {
    uninstall();
  }
}
