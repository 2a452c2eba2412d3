// Benchmark: the real Pulumi engine's own overhead, on the multi-host testbed (run as root). The same work,
// side by side in each run: through the real `pulumi` CLI (SWARMFORM_PULUMI_BIN, the build of
// tools/pulumi/build.sh; tests/engine-cli/cli.ts and its fixture program, SwarmMembership of 3 managers +
// 2 workers), and through the SwarmNode provider's CRUD functions called directly in this process (as
// tests/bench/membership.ts does), so the difference and the ratio are the engine's own cost: its process,
// the program run by the language host, the dynamic-provider process, state writes and secrets encryption.
//
//   npm run bench:engine -- [--runs N] [--extended]      (default 5 runs)
//
// Steps, and what the direct side does for each (what the engine asks of the provider):
//  - preview from nothing: `pulumi preview`; direct: `check` of the 5 nodes (a create needs nothing else).
//  - up from nothing: `pulumi up --yes --skip-preview` (a plain `pulumi up --yes` adds a preview first: the row
//    above); direct: check + create of every node, each as soon as the nodes it waits for are created
//    (membershipPlan: init, then every other node in parallel).
//  - no-op up: `pulumi up --yes --skip-preview` again; direct: check + diff of every node (the provider's diff
//    is pure: no remote command).
//  - with --extended only (issue #11 does not ask for it; about 45 s more in 5 runs): no-op up --refresh,
//    `pulumi up --refresh --yes --skip-preview`; direct: read, then check + diff, of every node.
// Each pulumi command is its own process, with its own SSH connections; the direct side empties the SSH
// connection pool before each step so that it pays its connection setups too. Each run uses a fresh Pulumi
// project and stack (tests/engine-cli/cli.ts), and between the engine's and the direct side's turns every host
// leaves the swarm (`docker swarm leave --force`). The two sides take turns going first.
//
// It prints figures only; it never asserts timings. It fails (exit 1) when a step does not do what it should
// (a preview that does not plan 5 creates, an up that does not form the 3+2 swarm, a re-run that changes
// something).

import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import type { HostSpec } from "../../components/config/types";
import { closeAllTransports } from "../../components/hosts/transport";
import { managersAskedBy, membershipPlan } from "../../components/swarm/membershipPlan";
import { nodeSshOf } from "../../components/swarm/nodeOps";
import { swarmNodeProvider, SwarmNodeInputs, SwarmNodeOutputs } from "../../components/swarm/provider";
import { pulumiBin, PulumiProject } from "../engine-cli/cli";
import { parseEvents, summaryOf } from "../engine-cli/output";
import { run as must } from "../testbed/swarm";
import { startTestbed, Testbed } from "../testbed/testbed";
import { median, parseRunsAndExtended, rowsFor } from "./stats";

const provider: pulumi.dynamic.ResourceProvider = swarmNodeProvider;
const STACK = "bench";
const NODE_TYPE = "pulumi-nodejs:dynamic/swarm:SwarmNode";
// As the fixture program (tests/engine-cli/fixture/index.ts) and tests/engine-cli/membership.test.ts set them.
const SWARM = {
  defaultAddrPool: ["10.123.0.0/16"],
  dataPathPort: 4789,
  certExpiry: "2160h0m0s",
  forceQuorumLoss: false,
};
const TIMEOUTS = { readySeconds: 60, drainSeconds: 120, connectSeconds: 10 };
const ROLES: Record<string, "manager" | "worker"> = {
  h1: "manager",
  h2: "manager",
  h3: "manager",
  h4: "worker",
  h5: "worker",
};
const HOSTS = Object.keys(ROLES);

const STEPS = [
  { key: "preview", label: "preview from nothing", engine: "pulumi preview", direct: "check x5" },
  {
    key: "up",
    label: "up from nothing (3+2)",
    engine: "pulumi up --skip-preview",
    direct: "check + create x5",
  },
  { key: "noop", label: "no-op up", engine: "pulumi up --skip-preview", direct: "check + diff x5" },
  {
    key: "refresh",
    label: "no-op up --refresh",
    engine: "pulumi up --refresh --skip-preview",
    direct: "read + check + diff x5",
    extended: true,
  },
] as const;
type Step = (typeof STEPS)[number];
type StepKey = (typeof STEPS)[number]["key"];
type Times = Record<StepKey, number[]>;

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function hostSpecs(tb: Testbed): HostSpec[] {
  return tb.hosts.map((h) => ({
    name: h.name,
    address: h.address,
    role: ROLES[h.name],
    labels: { zone: `z${h.name.slice(1)}` },
    user: "root",
    port: h.sshPort,
    hostKeyFingerprint: tb.hostKeyFingerprints[h.name],
    availability: "active",
  }));
}

/** Hostnames in the swarm, as h1 sees them (fails unless exactly the 5 hosts, 3 of them managers). */
async function requireSwarm(tb: Testbed, who: string): Promise<void> {
  const out = await must(tb, "h1", "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'");
  const rows = out.split("\n").filter((l) => l !== "");
  const names = rows.map((l) => l.split(" ")[0]).sort();
  const managers = rows.filter((l) => l.split(" ")[1]).length;
  if (names.join(",") !== HOSTS.join(",") || managers !== 3)
    throw new Error(`${who}: expected the swarm h1..h5 with 3 managers, got ${JSON.stringify(rows)}`);
}

/** Every host leaves whatever swarm it is in; all must end inactive. */
async function teardown(tb: Testbed): Promise<void> {
  await closeAllTransports();
  await tb.leaveSwarm();
}

/** The engine's turn: a fresh project and stack, then the steps (four with --extended), each a `pulumi` process. */
async function engineTurn(tb: Testbed, bin: string, into: Times, extended: boolean): Promise<void> {
  const pj = await PulumiProject.create(STACK, bin);
  try {
    const file = path.join(pj.dir, `Pulumi.${STACK}.yaml`);
    const doc = (fs.existsSync(file) ? YAML.parse(fs.readFileSync(file, "utf8")) : null) ?? {};
    doc.config = {
      ...(doc.config ?? {}),
      "swarmform-engine:hosts": hostSpecs(tb),
      "swarmform-engine:swarm": SWARM,
    };
    fs.writeFileSync(file, YAML.stringify(doc));
    await pj.must(["config", "set", "--secret", "privateKey"], tb.privateKey);

    const up = async (extra: string[], want: Record<string, number>, what: string) => {
      const r = await pj.must(["up", "--yes", "--skip-preview", "--json", ...extra]);
      const s = summaryOf(parseEvents(r.stdout));
      if (s.result !== "succeeded" || JSON.stringify(s.resourceChanges) !== JSON.stringify(want))
        throw new Error(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(s)}`);
      return r.ms;
    };
    const p = await pj.must(["preview", "--json"]);
    const plan = JSON.parse(p.stdout) as { steps: { op: string; newState?: { type: string } }[] };
    const creates = plan.steps.filter((s) => s.newState?.type === NODE_TYPE && s.op === "create").length;
    if (creates !== 5) throw new Error(`pulumi preview: expected 5 SwarmNode creates, got ${creates}`);
    into.preview.push(p.ms);
    into.up.push(await up([], { create: 7 }, "pulumi up"));
    await requireSwarm(tb, "pulumi up");
    into.noop.push(await up([], { same: 7 }, "no-op pulumi up"));
    if (extended) into.refresh.push(await up(["--refresh"], { same: 7 }, "no-op pulumi up --refresh"));
  } finally {
    pj.remove();
  }
}

/** The inputs SwarmMembership gives a node (the fixture's settings). */
function inputsOf(tb: Testbed, h: HostSpec, bootstrap: boolean, swarmId?: string): SwarmNodeInputs {
  return {
    ...nodeSshOf(h),
    privateKey: tb.privateKey,
    role: h.role,
    availability: h.availability,
    labels: { ...h.labels },
    bootstrap,
    init: bootstrap
      ? {
          defaultAddrPool: SWARM.defaultAddrPool,
          dataPathPort: SWARM.dataPathPort,
          certExpiry: SWARM.certExpiry,
        }
      : undefined,
    managers: managersAskedBy(membershipPlan(hostSpecs(tb)), h.name).map((m) => nodeSshOf(m)),
    expectedSwarmId: bootstrap ? undefined : swarmId,
    forceQuorumLoss: SWARM.forceQuorumLoss,
    timeouts: TIMEOUTS,
  };
}

/** The direct turn: the provider's functions, in this process, in the engine's order. */
async function directTurn(tb: Testbed, into: Times, extended: boolean): Promise<void> {
  const hosts = hostSpecs(tb);
  const plan = membershipPlan(hosts);
  const state: Record<string, SwarmNodeOutputs> = {};
  const desired = () =>
    Object.fromEntries(
      hosts.map((h) => [
        h.name,
        inputsOf(tb, h, h.name === plan.bootstrap.name, state[plan.bootstrap.name]?.swarmId),
      ]),
    );
  const check = async (news: SwarmNodeInputs, olds?: SwarmNodeOutputs) => {
    const c = await provider.check!(olds ?? {}, news);
    if (c.failures && c.failures.length > 0)
      throw new Error(`${news.name}: check failed: ${JSON.stringify(c.failures)}`);
    return c.inputs as SwarmNodeInputs;
  };
  const step = async (key: StepKey, fn: () => Promise<void>) => {
    await closeAllTransports();
    into[key].push(await timed(fn));
  };

  await step("preview", async () => {
    await Promise.all(hosts.map((h) => check(inputsOf(tb, h, h.name === plan.bootstrap.name))));
  });

  await step("up", async () => {
    const create = async (h: HostSpec, bootstrap: boolean) => {
      const r = await provider.create!(
        await check(inputsOf(tb, h, bootstrap, state[plan.bootstrap.name]?.swarmId)),
      );
      state[h.name] = r.outs as SwarmNodeOutputs;
    };
    const done: Record<string, Promise<void>> = {};
    done[plan.bootstrap.name] = create(plan.bootstrap, true);
    for (const s of plan.steps) {
      const deps = [plan.bootstrap.name, ...s.after].map((n) => done[n]);
      done[s.host.name] = Promise.all(deps).then(() => create(s.host, false));
    }
    const results = await Promise.allSettled(Object.values(done));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  });
  await requireSwarm(tb, "direct create");

  const noChanges = async (what: string) => {
    const want = desired();
    const diffs = await Promise.all(
      hosts.map(async (h) => {
        const news = await check(want[h.name], state[h.name]);
        const d = await provider.diff!(h.name, state[h.name], news);
        return { h: h.name, member: state[h.name].member, changes: d.changes, replaces: d.replaces ?? [] };
      }),
    );
    const bad = diffs.filter((d) => !d.member || d.changes !== false || d.replaces.length > 0);
    if (bad.length > 0) throw new Error(`${what} found changes: ${JSON.stringify(bad)}`);
  };
  await step("noop", () => noChanges("direct no-op"));
  if (!extended) return;
  await step("refresh", async () => {
    await Promise.all(
      hosts.map(async (h) => {
        state[h.name] = (await provider.read!(h.name, state[h.name])).props as SwarmNodeOutputs;
      }),
    );
    await noChanges("direct no-op with refresh");
  });
}

function printTable(steps: readonly Step[], engine: Times, direct: Times, runs: number): void {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const mmm = (xs: number[]) => `${s(median(xs))} (${s(Math.min(...xs))}–${s(Math.max(...xs))})`;
  const r = (x: number) => x.toFixed(1);
  console.log("");
  console.log(`The real engine's overhead, SwarmMembership 3+2 (s: median (min–max) of ${runs} runs)`);
  console.log("| step | real engine | provider directly | engine − direct | engine / direct |");
  console.log("|---|---|---|---|---|");
  for (const st of steps) {
    const e = engine[st.key];
    const d = direct[st.key];
    const diff = e.map((x, i) => x - d[i]);
    const ratio = e.map((x, i) => x / Math.max(d[i], 1));
    const ratioCell =
      median(d) < 50
        ? "– (direct < 50 ms)"
        : `${r(median(ratio))}× (${r(Math.min(...ratio))}–${r(Math.max(...ratio))})`;
    console.log(
      `| ${st.label}: \`${st.engine}\` vs ${st.direct} | ${mmm(e)} | ${mmm(d)} | ${mmm(diff)} | ${ratioCell} |`,
    );
  }
  console.log("(difference and ratio are taken run by run, then the median; min–max over runs)");
}

async function main(): Promise<void> {
  const { runs, extended } = parseRunsAndExtended(process.argv.slice(2), "engine");
  const steps = rowsFor(STEPS, extended);
  const bin = pulumiBin();
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
  const tBench = Date.now();
  try {
    const version = execFileSync(path.join(bin, "pulumi"), ["version"], { encoding: "utf8" }).trim();
    tb = await startTestbed({ hosts: 5, name: "engine" });
    console.log(`pulumi ${version}; testbed with 5 hosts started in ${Date.now() - tBench} ms`);
    const engine = Object.fromEntries(STEPS.map((s) => [s.key, [] as number[]])) as Times;
    const direct = Object.fromEntries(STEPS.map((s) => [s.key, [] as number[]])) as Times;
    for (let run = 1; run <= runs; run++) {
      const turns = [
        { name: "engine", go: () => engineTurn(tb!, bin, engine, extended) },
        { name: "direct", go: () => directTurn(tb!, direct, extended) },
      ];
      if (run % 2 === 0) turns.reverse();
      for (const t of turns) {
        await t.go();
        await teardown(tb);
      }
      const fmt = (t: Times) => steps.map((s) => `${s.key} ${Math.round(t[s.key][run - 1])}`).join(", ");
      console.log(
        `run ${run}/${runs} (${turns[0].name} first): engine ${fmt(engine)} | direct ${fmt(direct)} (ms)`,
      );
    }
    printTable(steps, engine, direct, runs);
    console.log(`bench:engine took ${((Date.now() - tBench) / 1000).toFixed(1)} s in all`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:engine failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exit(1);
  },
);
