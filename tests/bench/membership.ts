// Benchmark: swarm membership through the SwarmNode provider, on the multi-host testbed (run as root).
//
//   npm run bench:membership -- [--runs N] [--extended [--api-route forward|dial-stdio]]   (default 5 runs)
//
// No Pulumi CLI runs here, so the provider's CRUD functions are called directly. Each run measures, side by side:
//   1. converge 3 managers + 2 workers from nothing, three ways:
//      a. as Swarmform runs it: check + create of every node in the order and with the parallelism that `pulumi up`
//         uses for the SwarmMembership component (membershipPlan: init first, then every other node in parallel),
//         every node's `managers` listing the configured managers, as SwarmMembership passes them;
//      b. the same creates, forced serial;
//      c. the raw floor: the `ssh` client, `docker swarm init`, the join tokens, then the four joins in parallel,
//         a new connection per command, no labels;
//   2. 5 s later, on a swarm that has settled, a no-op re-run of the 5 nodes: refresh (read) of every node, then
//      check + diff, with nothing to change; the commands it sends are counted through the Transport (read vs
//      mutating);
//   3. one join alone: the 6th host as a worker.
// --extended adds what issue #11 does not ask for (about 90 s more in 5 runs):
//   d. a fourth converge, the Engine API floor (engineApiFloor.ts): a's steps and labels as Engine API requests over
//      SSH and nothing else. --api-route says how a request reaches the dockerd: `forward` (default), a channel
//      forwarded to the host's docker.sock per request, no docker process on the hosts (a bound); `dial-stdio`,
//      the provider's own transport (one `docker system dial-stdio` per host);
//   the no-op's reads through that floor (new connections, GET requests), beside the no-op;
//   the safe removal of the 6th host after its join (delete: drain, leave, node rm).
// Between converges every host leaves the swarm (`docker swarm leave --force`); the order of the ways rotates from
// run to run. (Until 2026-11-27 another way joined the managers one at a time in the raw floor, which is how
// Swarmform ordered them then; BENCHMARKS.md keeps its figures.) The SSH connection pool is emptied before every
// step, so each step pays its own connection setups, as a separate `pulumi up` process would.
// It prints figures only; it never asserts timings. It fails (exit 1) when a step does not do what it should
// (wrong members, a no-op that changes something or sends a mutating command or request).

import * as pulumi from "@pulumi/pulumi";
import { spawn } from "child_process";
import type { HostSpec } from "../../components/config/types";
import { membershipPlan } from "../../components/swarm/membershipPlan";
import { NodeSsh } from "../../components/swarm/nodeOps";
import { swarmNodeProvider, SwarmNodeInputs, SwarmNodeOutputs } from "../../components/swarm/provider";
import {
  closeAllTransports,
  CommandRecord,
  resetTransportStats,
  transportStats,
  TransportStats,
} from "../../components/hosts/transport";
import { initCommand, joinCommand } from "../../components/swarm/plan";
import { startTestbed, Testbed } from "../testbed/testbed";
import { convergeOverApi, EngineRoute, FloorCluster, noopReadOverApi } from "./engineApiFloor";
import { median, parseRunsAndExtended, rowsFor } from "./stats";

const provider: pulumi.dynamic.ResourceProvider = swarmNodeProvider;
const INIT = { defaultAddrPool: ["10.120.0.0/16"], dataPathPort: 4789, certExpiry: "720h0m0s" };
const TIMEOUTS = { readySeconds: 60, drainSeconds: 120, connectSeconds: 5 };
const MANAGERS = ["h1", "h2", "h3"];
const WORKERS = ["h4", "h5"];
const HOSTS = [...MANAGERS, ...WORKERS];
const EXTRA = "h6";
/** Pause between the converge and the one join, so that the join meets a settled swarm (see main). */
const SETTLE_MS = 5000;

// The provider logs its steps (init, join-*, drain, leave, node-rm, ...) to this array when it exists, and the
// Transport logs every command it sends to the second one.
const EVENTS = Symbol.for("swarmform.swarm.events");
const COMMANDS = Symbol.for("swarmform.transport.log");
type Ev = { node: string; what: string; at: number };
const g = globalThis as unknown as Record<symbol, unknown[]>;
const take = <T>(slot: symbol): T[] => {
  const ev = (g[slot] ?? []) as T[];
  g[slot] = [];
  return ev;
};

/** The rows; `extended` ones are measured only with --extended (they go beyond what issue #11 asks). */
const STEPS = [
  { key: "swarmform", label: "converge 3+2, as Swarmform runs it" },
  { key: "serial", label: "converge 3+2, forced serial" },
  { key: "raw", label: "converge 3+2, raw floor (ssh, parallel joins)" },
  { key: "api", label: "converge 3+2, Engine API floor (Swarmform's steps, no CLI)", extended: true },
  { key: "noop", label: "no-op re-run (read + diff x5)" },
  { key: "noopApi", label: "no-op reads, Engine API floor", extended: true },
  { key: "join", label: "one join (6th host, worker)" },
  { key: "remove", label: "safe removal of one worker", extended: true },
] as const satisfies readonly { key: string; label: string; extended?: boolean }[];
const WAYS = ["swarmform", "serial", "raw", "api"] as const;
type StepKey = (typeof STEPS)[number]["key"];

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number((process.hrtime.bigint() - t0) / 1_000_000n);
}

/** Runs a program; rejects with its stderr when it exits non-zero. */
function sh(cmd: string, args: readonly string[], stdin = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(Buffer.concat(out).toString())
        : reject(new Error(`${cmd} exited ${code}: ${Buffer.concat(err).toString().trim().slice(0, 300)}`)),
    );
    child.stdin.end(stdin);
  });
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

  /** The inputs SwarmMembership gives a node: bootstrap = the first manager, managers = the configured managers. */
  inputs(h: HostSpec, bootstrap: boolean): SwarmNodeInputs {
    return {
      ...this.ssh(h.name),
      privateKey: this.tb.privateKey,
      role: h.role,
      availability: h.availability,
      labels: { ...h.labels },
      bootstrap,
      init: bootstrap ? INIT : undefined,
      managers: MANAGERS.filter((m) => m !== h.name).map((m) => this.ssh(m)),
      expectedSwarmId: bootstrap ? undefined : this.state.h1?.swarmId,
      forceQuorumLoss: false,
      timeouts: TIMEOUTS,
    };
  }

  desired(): Record<string, SwarmNodeInputs> {
    return Object.fromEntries(HOSTS.map((h) => [h, this.inputs(this.hostSpec(h), h === MANAGERS[0])]));
  }

  async create(host: string, news: SwarmNodeInputs): Promise<void> {
    const c = await provider.check!({}, news);
    if (c.failures && c.failures.length > 0)
      throw new Error(`${host}: check failed: ${JSON.stringify(c.failures)}`);
    const r = await provider.create!(c.inputs as SwarmNodeInputs);
    if (r.id !== host) throw new Error(`${host}: create returned id ${r.id}`);
    this.state[host] = r.outs as SwarmNodeOutputs;
  }

  /** 1a: every node created as soon as the nodes it depends on are (as the Pulumi engine does). */
  async converge(): Promise<void> {
    const plan = membershipPlan(HOSTS.map((h) => this.hostSpec(h)));
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

  /** 1b: the same creates, one at a time, in the plan's order. */
  async convergeSerial(): Promise<void> {
    const plan = membershipPlan(HOSTS.map((h) => this.hostSpec(h)));
    await this.create(plan.bootstrap.name, this.inputs(plan.bootstrap, true));
    for (const step of plan.steps) await this.create(step.host.name, this.inputs(step.host, false));
  }

  /** Arguments of the `ssh` client for a host: the testbed's key and known_hosts, no user config. */
  sshArgs(host: string): string[] {
    const s = this.ssh(host);
    return [
      "-F",
      "/dev/null",
      "-i",
      this.tb.privateKeyPath,
      "-o",
      `UserKnownHostsFile=${this.tb.knownHostsPath}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      "-p",
      String(s.port ?? 22),
      `root@${s.address}`,
    ];
  }

  /** 1c: the raw floor: init, tokens, then the four joins in parallel, each command on a new connection. */
  async convergeRaw(): Promise<void> {
    const boot = this.ssh(MANAGERS[0]);
    await sh("ssh", [...this.sshArgs(boot.name), initCommand(boot.address, INIT)]);
    const [manager, worker] = (
      await sh("ssh", [
        ...this.sshArgs(boot.name),
        "docker swarm join-token -q manager && docker swarm join-token -q worker",
      ])
    )
      .trim()
      .split("\n");
    await Promise.all(
      HOSTS.slice(1).map((h) =>
        sh(
          "ssh",
          [...this.sshArgs(h), joinCommand(this.ssh(h).address, `${boot.address}:2377`)],
          MANAGERS.includes(h) ? manager : worker,
        ),
      ),
    );
  }

  /** Step 2: refresh every node in parallel, then check + diff each against the same desired inputs. */
  async noop(): Promise<void> {
    const desired = this.desired();
    await Promise.all(
      HOSTS.map(async (h) => {
        const r = await provider.read!(h, this.state[h]);
        this.state[h] = r.props as SwarmNodeOutputs;
      }),
    );
    const diffs = await Promise.all(
      HOSTS.map(async (h) => {
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

  async exec(host: string, command: string): Promise<string> {
    const r = await this.tb.exec(host, command);
    if (r.code !== 0) throw new Error(`${host}: \`${command}\` exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Hostnames in the swarm, as the first manager sees them, and the labels it set. */
  async members(): Promise<string[]> {
    return (await this.exec(MANAGERS[0], "docker node ls --format '{{.Hostname}}'"))
      .split("\n")
      .filter((l) => l !== "")
      .sort();
  }

  async labels(): Promise<string[]> {
    return (
      await this.exec(
        MANAGERS[0],
        "docker node inspect $(docker node ls -q) --format '{{.Description.Hostname}}={{.Spec.Labels.zone}}'",
      )
    )
      .split("\n")
      .filter((l) => l !== "")
      .sort();
  }

  /** Every host leaves whatever swarm it is in; all must end inactive. */
  async teardown(): Promise<void> {
    await this.tb.leaveSwarm();
    for (const k of Object.keys(this.state)) delete this.state[k];
  }
}

function expectSame(what: string, got: readonly string[], want: readonly string[]): void {
  if (got.join(",") !== want.join(","))
    throw new Error(`${what}: expected [${want.join(", ")}], got [${got.join(", ")}]`);
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((_, c) => Math.max(...[head, ...rows].map((r) => r[c].length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ")
      .trimEnd();
  console.log(line(head));
  console.log(line(head.map((_, c) => "-".repeat(widths[c]))));
  for (const r of rows) console.log(line(r));
}

const fmt = (xs: readonly number[], digits = 0) =>
  [median(xs), Math.min(...xs), Math.max(...xs)].map((x) => x.toFixed(digits));

function printTables(
  steps: readonly (typeof STEPS)[number][],
  results: Record<StepKey, number[]>,
  counts: TransportStats[],
  runs: number,
): void {
  console.log("");
  console.log(`Swarm membership on the testbed, ${runs} runs (times in ms; median, min, max)`);
  table(
    ["step", "median", "min", "max", ...Array.from({ length: runs }, (_, i) => `run ${i + 1}`)],
    steps.map((s) => [s.label, ...fmt(results[s.key]), ...results[s.key].map(String)]),
  );
  const ratio = (a: StepKey, b: StepKey) => results[a].map((x, i) => x / results[b][i]);
  const ratios: [string, StepKey, StepKey][] = [
    ["Swarmform / raw floor", "swarmform", "raw"],
    ["Swarmform / forced serial", "swarmform", "serial"],
    ["Engine API floor / raw floor", "api", "raw"],
    ["Swarmform / Engine API floor", "swarmform", "api"],
    ["no-op: Swarmform / Engine API floor", "noop", "noopApi"],
  ];
  console.log("");
  console.log("Ratios, each measured within one run (median, min, max)");
  table(
    ["ratio", "median", "min", "max"],
    ratios
      .filter(([, a, b]) => results[a].length > 0 && results[b].length > 0)
      .map(([label, a, b]) => [label, ...fmt(ratio(a, b), 2)]),
  );
  console.log("");
  console.log("No-op re-run: remote requests and commands counted through the Transport (per run)");
  table(
    ["run", "read", "mutating", "per node read", "SSH connects"],
    counts.map((c, i) => [
      String(i + 1),
      String(c.read),
      String(c.mutating),
      (c.read / HOSTS.length).toFixed(1),
      String(c.connects),
    ]),
  );
}

/** The commands of one step, with start and end in ms since the step began. */
function timeline(t0: number, commands: readonly CommandRecord[], events: readonly Ev[]): string {
  const lines = commands.map(
    (c) =>
      `  ${String(c.start - t0).padStart(5)} - ${String((c.end ?? NaN) - t0).padStart(5)}  ${c.host.padEnd(3)} ` +
      `${c.kind === "read" ? "read    " : "mutating"}  ${c.command.replace(/\s+/g, " ").slice(0, 70)}`,
  );
  const steps = events.map((e) => `${e.node}:${e.what}@${e.at - t0}`).join(" ");
  return `  steps: ${steps}\n${lines.join("\n")}`;
}

/** `--api-route forward|dial-stdio` (how the Engine API floor reaches each dockerd; default forward), and the rest. */
function apiRouteOf(argv: readonly string[]): { route: EngineRoute; rest: string[] } {
  const rest: string[] = [];
  let route: EngineRoute = "forward";
  for (let i = 0; i < argv.length; i++) {
    const v =
      argv[i] === "--api-route" ? argv[++i] : argv[i].startsWith("--api-route=") ? argv[i].slice(12) : null;
    if (v === null) rest.push(argv[i]);
    else if (v === "forward" || v === "dial-stdio") route = v;
    else throw new Error(`--api-route needs forward or dial-stdio, not "${v ?? ""}"`);
  }
  return { route, rest };
}

async function main(): Promise<void> {
  const { route, rest } = apiRouteOf(process.argv.slice(2));
  const { runs, extended } = parseRunsAndExtended(rest, "membership");
  const steps = rowsFor(STEPS, extended);
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
    console.log(
      extended
        ? `extended: with the Engine API floor (route ${route}) and the safe removal`
        : "without the Engine API floor and the safe removal (--extended adds them)",
    );
    const b = new Bench(tb);
    const floor: FloorCluster = {
      tb,
      managers: MANAGERS,
      workers: WORKERS,
      init: INIT,
      address: (h) => b.ssh(h).address,
      labels: (h) => ({ ...b.hostSpec(h).labels }),
    };
    const results = Object.fromEntries(STEPS.map((s) => [s.key, [] as number[]])) as Record<
      StepKey,
      number[]
    >;
    const counts: TransportStats[] = [];
    let lastTimeline = "";
    let lastNoopTimeline = "";
    take(EVENTS);
    take(COMMANDS);

    for (let run = 1; run <= runs; run++) {
      const measure = async (key: StepKey, fn: () => Promise<void>) => {
        await closeAllTransports();
        take(EVENTS);
        take<CommandRecord>(COMMANDS);
        resetTransportStats();
        const t0 = Date.now();
        const ms = await timed(fn);
        results[key].push(ms);
        return { t0, ev: take<Ev>(EVENTS), commands: take<CommandRecord>(COMMANDS), stats: transportStats() };
      };
      const wantLabels = HOSTS.map((h) => `${h}=z${h.slice(1)}`);

      const ways: Record<"swarmform" | "serial" | "raw" | "api", () => Promise<void>> = {
        swarmform: async () => {
          const m = await measure("swarmform", () => b.converge());
          expectSame("members after converge", await b.members(), HOSTS);
          expectSame("labels after converge", await b.labels(), wantLabels);
          lastTimeline = `converge as Swarmform runs it, run ${run}:\n${timeline(m.t0, m.commands, m.ev)}`;
          // Right after its formation every dockerd is still busy for some seconds (ingress network, gossip): a
          // re-run or a join meets a swarm that has settled. (Without this pause one join took 1.3-3.8 s instead
          // of 0.8-1.0 s, and the no-op 1.66 s instead of 1.23 s.)
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          // The Engine API floor's reads go first in every other run.
          const noopApi = () => measure("noopApi", () => noopReadOverApi(floor, route));
          if (extended && run % 2 === 0) await noopApi();
          const noop = await measure("noop", () => b.noop());
          if (noop.stats.mutating > 0)
            throw new Error(`no-op re-run sent ${noop.stats.mutating} mutating request(s) or command(s)`);
          counts.push(noop.stats);
          if (extended && run % 2 === 1) await noopApi();
          lastNoopTimeline = `no-op re-run, run ${run}:\n${timeline(noop.t0, noop.commands, noop.ev)}`;
          await measure("join", () => b.join());
          expectSame("members after join", await b.members(), [...HOSTS, EXTRA]);
          if (!extended) return; // the next teardown takes h6 out with the others
          await measure("remove", () => b.remove());
          expectSame("members after removal", await b.members(), HOSTS);
        },
        serial: async () => {
          await measure("serial", () => b.convergeSerial());
          expectSame("members after serial converge", await b.members(), HOSTS);
          expectSame("labels after serial converge", await b.labels(), wantLabels);
        },
        raw: async () => {
          await measure("raw", () => b.convergeRaw());
          expectSame("members after raw converge", await b.members(), HOSTS);
        },
        api: async () => {
          await measure("api", () => convergeOverApi(floor, route));
          expectSame("members after Engine API converge", await b.members(), HOSTS);
          expectSame("labels after Engine API converge", await b.labels(), wantLabels);
        },
      };
      const order = WAYS.filter((w) => extended || w !== "api").map((_, i, a) => a[(i + run - 1) % a.length]);
      for (const way of order) {
        await b.teardown();
        await ways[way]();
      }
      console.log(
        `run ${run}/${runs} (${order.join(", ")}): ` +
          steps.map((s) => `${s.key} ${results[s.key][run - 1]} ms`).join(", "),
      );
    }
    printTables(steps, results, counts, runs);
    console.log(`\nStep timeline (critical path) of one ${lastTimeline}`);
    console.log(`\nRequest timeline of one ${lastNoopTimeline}`);
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
