// Benchmark: swarm membership through the SwarmNode provider, on the multi-host testbed (run as root).
//
//   npm run bench:membership -- [--runs N]      (default 3 runs)
//
// No Pulumi CLI runs here, so the provider's CRUD functions are called directly, in the order and with the
// parallelism that `pulumi up` would use for the SwarmMembership component (membershipPlan: init first, then
// the managers one at a time, the workers in parallel right after the init). Each run measures:
//   1. converge 3 managers + 2 workers from nothing (check + create of every node);
//   2. a no-op re-run: refresh (read) of every node, then check + diff, with nothing to change;
//   3. one join alone: the 6th host as a worker;
//   4. safe removal of that worker (delete: drain, leave, node rm).
// Between runs every host leaves the swarm (`docker swarm leave --force`). The SSH connection pool is emptied
// before every step, so each step pays its own connection setups, as a separate `pulumi up` process would.
// It prints figures only; it never asserts timings. It fails (exit 1) when a step does not do what it should.

import * as pulumi from "@pulumi/pulumi";
import type { HostSpec } from "../../components/config/types";
import { membershipPlan } from "../../components/swarm/membershipPlan";
import { NodeSsh } from "../../components/swarm/nodeOps";
import { swarmNodeProvider, SwarmNodeInputs, SwarmNodeOutputs } from "../../components/swarm/provider";
import { closeAllTransports } from "../../components/hosts/transport";
import { startTestbed, Testbed } from "../testbed/testbed";

const provider: pulumi.dynamic.ResourceProvider = swarmNodeProvider;
const INIT = { defaultAddrPool: ["10.120.0.0/16"], dataPathPort: 4789, certExpiry: "720h0m0s" };
const TIMEOUTS = { readySeconds: 60, drainSeconds: 120, connectSeconds: 5 };
const MANAGERS = ["h1", "h2", "h3"];
const WORKERS = ["h4", "h5"];
const EXTRA = "h6";

// The provider logs its steps (init, join-*, drain, leave, node-rm, ...) to this array when it exists.
const EVENTS = Symbol.for("swarmform.swarm.events");
type Ev = { node: string; what: string; at: number };
const g = globalThis as unknown as Record<symbol, Ev[]>;
const takeEvents = (): Ev[] => {
  const ev = g[EVENTS] ?? [];
  g[EVENTS] = [];
  return ev;
};

const STEPS = [
  {
    key: "converge",
    label: "converge 3+2 from nothing",
    baseline: "plain ssh 8.6 s (parallel joins), 9.8 s (serial); Ansible role 159 s",
  },
  {
    key: "noop",
    label: "no-op re-run (read + diff x5)",
    baseline: "Ansible role re-run 130 s",
  },
  { key: "join", label: "one join (6th host, worker)", baseline: "plain ssh 1.3 s" },
  { key: "remove", label: "safe removal of one worker", baseline: "(none measured)" },
] as const;
type StepKey = (typeof STEPS)[number]["key"];

function parseRuns(argv: readonly string[]): number {
  let runs = 3;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if (a === "--runs") v = argv[++i];
    else if (a.startsWith("--runs=")) v = a.slice("--runs=".length);
    else if (a === "-h" || a === "--help") {
      console.log("usage: npm run bench:membership -- [--runs N]   (run as root; default 3 runs)");
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (usage: --runs N)`);
    if (v === undefined || !/^[1-9][0-9]*$/.test(v)) throw new Error(`--runs needs a positive integer`);
    runs = Number(v);
  }
  return runs;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number((process.hrtime.bigint() - t0) / 1_000_000n);
}

class Bench {
  readonly state: Record<string, SwarmNodeOutputs> = {};

  constructor(readonly tb: Testbed) {}

  ssh(host: string): NodeSsh {
    const h = this.tb.hosts.find((x) => x.name === host);
    if (!h) throw new Error(`testbed has no host ${host}`);
    return {
      name: h.name,
      address: h.address,
      port: h.sshPort,
      user: "root",
      hostKeyFingerprint: this.tb.hostKeyFingerprints[h.name],
    };
  }

  hostSpec(host: string): HostSpec {
    const s = this.ssh(host);
    return {
      name: s.name,
      address: s.address,
      port: s.port ?? 22,
      user: s.user ?? "root",
      hostKeyFingerprint: s.hostKeyFingerprint,
      role: MANAGERS.includes(host) ? "manager" : "worker",
      labels: { zone: `z${host.slice(1)}` },
      availability: "active",
    };
  }

  /** The inputs SwarmMembership gives a node (bootstrap = the first manager). */
  inputs(h: HostSpec, bootstrap: boolean): SwarmNodeInputs {
    return {
      ...this.ssh(h.name),
      privateKey: this.tb.privateKey,
      role: h.role,
      availability: h.availability,
      labels: { ...h.labels },
      bootstrap,
      init: bootstrap ? INIT : undefined,
      managers: MANAGERS.map((m) => this.ssh(m)),
      expectedSwarmId: bootstrap ? undefined : this.state.h1?.swarmId,
      forceQuorumLoss: false,
      timeouts: TIMEOUTS,
    };
  }

  desired(): Record<string, SwarmNodeInputs> {
    return Object.fromEntries(
      [...MANAGERS, ...WORKERS].map((h) => [h, this.inputs(this.hostSpec(h), h === MANAGERS[0])]),
    );
  }

  async create(host: string, news: SwarmNodeInputs): Promise<void> {
    const c = await provider.check!({}, news);
    if (c.failures && c.failures.length > 0)
      throw new Error(`${host}: check failed: ${JSON.stringify(c.failures)}`);
    const r = await provider.create!(c.inputs as SwarmNodeInputs);
    if (r.id !== host) throw new Error(`${host}: create returned id ${r.id}`);
    this.state[host] = r.outs as SwarmNodeOutputs;
  }

  /** Step 1: every node created, each as soon as the nodes it depends on are (as the Pulumi engine does). */
  async converge(): Promise<void> {
    const plan = membershipPlan([...MANAGERS, ...WORKERS].map((h) => this.hostSpec(h)));
    const done: Record<string, Promise<void>> = {};
    done[plan.bootstrap.name] = this.create(plan.bootstrap.name, this.inputs(plan.bootstrap, true));
    for (const step of plan.steps) {
      // Every other node also waits for the bootstrap node: expectedSwarmId is its output.
      const deps = [plan.bootstrap.name, ...step.after].map((n) => done[n]);
      done[step.host.name] = Promise.all(deps).then(() =>
        this.create(step.host.name, this.inputs(step.host, false)),
      );
    }
    // Wait for all (so none is still running when an error is reported), then report the first error.
    const results = await Promise.allSettled(Object.values(done));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Step 2: refresh every node in parallel, then check + diff each against the same desired inputs. */
  async noop(): Promise<void> {
    const desired = this.desired();
    const hosts = Object.keys(desired);
    await Promise.all(
      hosts.map(async (h) => {
        const r = await provider.read!(h, this.state[h]);
        this.state[h] = r.props as SwarmNodeOutputs;
      }),
    );
    const diffs = await Promise.all(
      hosts.map(async (h) => {
        const c = await provider.check!(this.state[h], desired[h]);
        const d = await provider.diff!(h, this.state[h], c.inputs as SwarmNodeInputs);
        return { h, member: this.state[h].member, changes: d.changes, replaces: d.replaces ?? [] };
      }),
    );
    const bad = diffs.filter((d) => !d.member || d.changes !== false || d.replaces.length > 0);
    if (bad.length > 0) throw new Error(`no-op re-run found changes: ${JSON.stringify(bad)}`);
  }

  async join(): Promise<void> {
    await this.create(EXTRA, this.inputs(this.hostSpec(EXTRA), false));
  }

  async remove(): Promise<void> {
    await provider.delete!(EXTRA, this.state[EXTRA]);
    delete this.state[EXTRA];
  }

  async sh(host: string, command: string): Promise<string> {
    const r = await this.tb.exec(host, command);
    if (r.code !== 0) throw new Error(`${host}: \`${command}\` exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Hostnames in the swarm, as the first manager sees them. */
  async members(): Promise<string[]> {
    return (await this.sh(MANAGERS[0], "docker node ls --format '{{.Hostname}}'"))
      .split("\n")
      .filter((l) => l !== "")
      .sort();
  }

  /** Every host leaves whatever swarm it is in; all must end inactive. */
  async teardown(): Promise<void> {
    await Promise.all(this.tb.hosts.map((h) => this.tb.exec(h.name, "docker swarm leave --force")));
    for (const h of this.tb.hosts) {
      const st = (await this.sh(h.name, "docker info --format '{{.Swarm.LocalNodeState}}'")).trim();
      if (st !== "inactive") throw new Error(`teardown: ${h.name} is still "${st}" after leave --force`);
    }
    for (const k of Object.keys(this.state)) delete this.state[k];
  }
}

function expectSame(what: string, got: readonly string[], want: readonly string[]): void {
  if (got.join(",") !== want.join(","))
    throw new Error(`${what}: expected [${want.join(", ")}], got [${got.join(", ")}]`);
}

function printTable(results: Record<StepKey, number[]>, runs: number): void {
  const head = ["step", ...Array.from({ length: runs }, (_, i) => `run ${i + 1}`), "median", "baseline"];
  const rows = STEPS.map((s) => [
    s.label,
    ...results[s.key].map((ms) => String(ms)),
    String(Math.round(median(results[s.key]))),
    s.baseline,
  ]);
  const widths = head.map((_, c) => Math.max(...[head, ...rows].map((r) => r[c].length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ")
      .trimEnd();
  console.log("");
  console.log("Swarm membership through the SwarmNode provider (times in ms; baselines from DESIGN.md)");
  console.log(line(head));
  console.log(line(head.map((_, c) => "-".repeat(widths[c]))));
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2));
  let tb: Testbed | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await closeAllTransports().catch((e) => console.error(`closing SSH connections: ${e}`));
      if (tb) await tb.down().catch((e) => console.error(`testbed down: ${e}`));
    })());
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping the testbed`);
      void cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }

  try {
    const tStart = Date.now();
    tb = await startTestbed({ hosts: 6, name: "bench" });
    console.log(`testbed "bench" with ${tb.hosts.length} hosts started in ${Date.now() - tStart} ms`);
    const b = new Bench(tb);
    const results = Object.fromEntries(STEPS.map((s) => [s.key, [] as number[]])) as Record<
      StepKey,
      number[]
    >;
    g[EVENTS] = [];

    for (let run = 1; run <= runs; run++) {
      if (run > 1) {
        await b.teardown();
      }
      const measure = async (key: StepKey, fn: () => Promise<void>) => {
        await closeAllTransports();
        takeEvents();
        const t0 = Date.now();
        const ms = await timed(fn);
        results[key].push(ms);
        return { t0, ev: takeEvents() };
      };

      const converge = await measure("converge", () => b.converge());
      expectSame("members after converge", await b.members(), [...MANAGERS, ...WORKERS]);
      const noop = await measure("noop", () => b.noop());
      const changing = noop.ev.filter((e) =>
        /init|join|promote|demote|node-update|drain|leave|rm/.test(e.what),
      );
      if (changing.length > 0)
        throw new Error(`no-op re-run changed something: ${changing.map((e) => `${e.node}:${e.what}`)}`);
      await measure("join", () => b.join());
      expectSame("members after join", await b.members(), [...MANAGERS, ...WORKERS, EXTRA]);
      const removal = await measure("remove", () => b.remove());
      expectSame("members after removal", await b.members(), [...MANAGERS, ...WORKERS]);

      // Provider steps, each with its start in ms since the step began.
      const seq = (m: { t0: number; ev: Ev[] }) =>
        m.ev.map((e) => `${e.node}:${e.what}@${e.at - m.t0}`).join(" ");
      console.log(
        `run ${run}/${runs}: ` +
          STEPS.map((s) => `${s.key} ${results[s.key][run - 1]} ms`).join(", ") +
          `\n  converge steps: ${seq(converge)}\n  removal steps:  ${seq(removal)}`,
      );
    }
    printTable(results, runs);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:membership failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exit(1);
  },
);
