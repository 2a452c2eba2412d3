// Benchmark: planning cost. The program (the config layer, then SwarmCluster, as index.ts runs them) under
// Pulumi mocks in preview mode (what `pulumi preview` does before it asks any provider), for synthetic
// clusters: 3, 30 and 300 nodes (nodes.source ssh, so the membership resources scale with the nodes) and
// 10, 100 and 300 services spread over several Compose stack files, generated into a temp dir at run time.
//
//   npm run bench:planning -- [--runs N] [--big-runs N] [--cases 300x300,30x300] [--ts] [--keep]
//
// By default each child runs the compiled program (the bench runs `npm run build`'s tsc first, and writes
// its own child as dist/tests/bench/planning.js), as `swarmform describe` does. With --ts, each child runs
// the TypeScript sources through ts-node (transpile-only), as `pulumi preview` runs index.ts: then every
// run also pays the transpile, and every stack trace the Pulumi SDK takes goes through source-map-support.
//
// To profile one case (config + register only, not the module load): run with --keep, then
//   node -r ts-node/register/transpile-only tests/bench/planning.ts --child <kept dir>/300x300 /tmp/plan.cpuprofile
//
// Each run is a child process (so peak RSS is per case), and the child reports, in ms: `load` (requiring
// the program's modules and the Pulumi SDK), `config` (loadClusterSpecFromPulumi: schema, stack files,
// rules), `register` (new SwarmCluster until every registration RPC has been answered), their sum `plan`
// (what a user waits for after node has started), the resources registered (custom and component) and
// `process.resourceUsage().maxRSS`. The parent reports the child's wall time too. Rows: median of --runs
// (default 5) with min and max; the 300-node rows use --big-runs (default 5). Then t(300 nodes)/t(30 nodes) at
// equal services, from the medians of this run. It prints figures only; it fails (exit 1) only when a run
// fails or registers a different number of resources than another run of the same case.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { generateSshKeyPair } from "../../components/hosts/transport";
import { median } from "./stats";

// In the compiled child (dist/tests/bench/planning.js), ROOT is dist/: it requires the compiled modules.
const ROOT = path.resolve(__dirname, "..", "..");
const COMPILED_CHILD = path.join(ROOT, "dist", "tests", "bench", "planning.js");

/**
 * Compiles the program (npm run build: tsc, incremental) and this file beside it, for the `js` mode.
 * Fails (exit 1) when the build fails.
 */
function buildCompiled(): void {
  const tsc = spawnSync(
    process.execPath,
    [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  if (tsc.status !== 0) {
    process.stderr.write(`npm run build failed:\n${tsc.stdout}${tsc.stderr}\n`);
    process.exit(1);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require("typescript") as typeof import("typescript");
  // This file and the bench module it imports (the build leaves tests/ out).
  fs.mkdirSync(path.dirname(COMPILED_CHILD), { recursive: true });
  for (const source of [__filename, path.join(__dirname, "stats.ts")]) {
    const js = ts.transpileModule(fs.readFileSync(source, "utf8"), {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    }).outputText;
    const name = path.basename(source).replace(/\.ts$/, ".js");
    fs.writeFileSync(path.join(path.dirname(COMPILED_CHILD), name), js);
  }
}
const PROJECT = "swarmform";
const STACK = "bench";

/** Services per stack file: 10 services are 2 stacks of 5, 100 are 4 of 25, 300 are 10 of 30. */
function stackSizes(services: number): number[] {
  const stacks = services <= 10 ? 2 : services <= 100 ? 4 : 10;
  return Array.from(
    { length: stacks },
    (_, i) => Math.floor(services / stacks) + (i < services % stacks ? 1 : 0),
  );
}

/**
 * One Compose stack file of `count` services: every service on the stack's backend network; every other one
 * routed by Traefik (x-traefik, a host of its own), every fifth one publishing a host port, every third one
 * using the stack's config file, and the stack's db service using a secret taken from stackSecrets.
 */
function stackFile(stack: number, count: number, portBase: number): string {
  const lines = [`name: s${stack}`, "services:"];
  for (let i = 0; i < count; i++) {
    lines.push(
      `  svc${i}:`,
      `    image: registry.bench.example.org:5000/team${stack}/svc${i}:1.${i}.0`,
      "    networks: [backend]",
      "    environment:",
      `      SERVICE: svc${i}`,
      "      LOG_LEVEL: info",
      "    labels:",
      `      org.example.team: team${stack}`,
      "    healthcheck:",
      '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]',
      "      interval: 10s",
      "    deploy:",
      `      replicas: ${1 + (i % 3)}`,
      "      update_config: { parallelism: 1, delay: 5s, order: start-first }",
      "      resources: { limits: { cpus: '0.5', memory: 256M } }",
      "      labels:",
      `        org.example.team: team${stack}`,
    );
    if (i % 2 === 0)
      lines.push("    x-traefik:", `      host: svc${i}.s${stack}.bench.example.org`, "      port: 8080");
    if (i % 5 === 1) lines.push("    ports:", `      - "${portBase + i}:8080"`);
    if (i % 3 === 0) lines.push("    configs:", "      - source: app", "        target: /etc/app.conf");
    if (i === 1) lines.push("    secrets: [db_password]");
  }
  lines.push(
    "networks:",
    "  backend:",
    "    driver: overlay",
    "configs:",
    "  app:",
    `    file: ./s${stack}.conf`,
    "secrets:",
    "  db_password:",
    "    environment: DB_PASSWORD",
  );
  return lines.join("\n") + "\n";
}

/** The hosts of a cluster of `nodes` nodes: 1 manager below 5 nodes, else 3; the first carries the placement labels. */
function hosts(nodes: number): Record<string, unknown>[] {
  const managers = nodes < 5 ? 1 : 3;
  return Array.from({ length: nodes }, (_, i) => ({
    name: `node-${i + 1}`,
    address: `10.${10 + Math.floor(i / 250)}.${i % 250}.${10 + (i % 200)}`,
    role: i < managers ? "manager" : "worker",
    ...(i === 0 ? { labels: { "swarmform.traefik": "true", "swarmform.registry": "true" } } : {}),
  }));
}

/** Writes the stack files of one case into `dir`; returns the swarmform config (keys without namespace). */
function writeCase(dir: string, nodes: number, services: number): Record<string, unknown> {
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  const stacks: string[] = [];
  let portBase = 20000;
  stackSizes(services).forEach((count, s) => {
    fs.writeFileSync(path.join(dir, "stacks", `s${s}.yaml`), stackFile(s, count, portBase));
    fs.writeFileSync(path.join(dir, "stacks", `s${s}.conf`), `stack ${s}\n`);
    stacks.push(`stacks/s${s}.yaml`);
    portBase += 100;
  });
  return {
    environment: "dev",
    domain: "bench.example.org",
    nodes: { source: "ssh", hosts: hosts(nodes) },
    traefik: { tls: "default", dashboard: { enabled: true } },
    stacks,
  };
}

// ---- child: one run of one case ------------------------------------------------------------------------

interface ChildResult {
  readonly loadMs: number;
  readonly configMs: number;
  readonly registerMs: number;
  readonly custom: number;
  readonly components: number;
  readonly maxRssKiB: number;
  /** CPU time (user + system) of the whole child, ms: depends less than wall time on what else runs. */
  readonly cpuMs: number;
  /** CPU time of config + register, ms. */
  readonly planCpuMs: number;
}

/** Runs `fn` under the V8 CPU profiler and writes the profile to `file` (a .cpuprofile for Chrome DevTools). */
async function profiled<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const inspector = require("inspector") as typeof import("inspector");
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))),
    );
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 200 });
  await post("Profiler.start");
  try {
    return await fn();
  } finally {
    const { profile } = (await post("Profiler.stop")) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

async function child(dir: string, profileFile?: string): Promise<void> {
  const t0 = performance.now();
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadClusterSpecFromPulumi } = require(
    path.join(ROOT, "components/config/load"),
  ) as typeof import("../../components/config/load");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SwarmCluster } = require(
    path.join(ROOT, "components/cluster/SwarmCluster"),
  ) as typeof import("../../components/cluster/SwarmCluster");
  let custom = 0;
  let components = 0;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.custom) custom++;
        else components++;
        return { id: undefined, state: { ...args.inputs } }; // a preview: no ids, no computed outputs
      },
      call: (args) => args.inputs,
    },
    PROJECT,
    STACK,
    true,
  );
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(config))
    all[`swarmform:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  all["swarmform:sshPrivateKey"] = generateSshKeyPair().private;
  all["swarmform:stackSecrets"] = JSON.stringify({ DB_PASSWORD: "bench-db-password" });
  pulumi.runtime.setAllConfig(all, ["swarmform:sshPrivateKey", "swarmform:stackSecrets"]);
  process.chdir(dir);
  const c1 = process.cpuUsage();
  const t1 = performance.now();
  let t2 = 0;
  await profiled(profileFile, async () => {
    const spec = loadClusterSpecFromPulumi();
    t2 = performance.now();
    const cluster = new SwarmCluster(`${spec.project}-${spec.stack}`, { spec });
    await new Promise<void>((resolve) => cluster.urn.apply(() => resolve()));
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  });
  const t3 = performance.now();
  const c3 = process.cpuUsage(c1);
  const cpu = process.cpuUsage();
  const result: ChildResult = {
    loadMs: t1 - t0,
    configMs: t2 - t1,
    registerMs: t3 - t2,
    custom,
    components,
    maxRssKiB: process.resourceUsage().maxRSS,
    cpuMs: (cpu.user + cpu.system) / 1000,
    planCpuMs: (c3.user + c3.system) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

// ---- parent ----------------------------------------------------------------------------------------------

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const fmt = (xs: readonly number[], unit = 1000, digits = 2) =>
  `${(median(xs) / unit).toFixed(digits)} (${(Math.min(...xs) / unit).toFixed(digits)}–${(Math.max(...xs) / unit).toFixed(digits)})`;

interface Row {
  readonly nodes: number;
  readonly services: number;
  readonly runs: (ChildResult & { wallMs: number })[];
}

/** How a child runs the program: `ts` through ts-node (as `pulumi preview` runs index.ts), or `js`: compiled. */
type Mode = "ts" | "js";

function runCase(dir: string, nodes: number, services: number, runs: number, mode: Mode): Row {
  const out: Row["runs"] = [];
  const args =
    mode === "ts"
      ? ["-r", "ts-node/register/transpile-only", __filename, "--child", dir]
      : [COMPILED_CHILD, "--child", dir];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const p = spawnSync(process.execPath, args, {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" },
    });
    const wallMs = performance.now() - t0;
    const line = (p.stdout ?? "").split("\n").find((l) => l.startsWith("RESULT "));
    if (p.status !== 0 || !line) {
      process.stderr.write(
        `case ${nodes} nodes x ${services} services failed (exit ${p.status}):\n${p.stderr}\n`,
      );
      process.exit(1);
    }
    const res = JSON.parse(line.slice("RESULT ".length)) as ChildResult;
    if (out.length > 0 && (out[0].custom !== res.custom || out[0].components !== res.components)) {
      process.stderr.write(`case ${nodes}x${services}: runs registered different resource counts\n`);
      process.exit(1);
    }
    out.push({ ...res, wallMs });
  }
  return { nodes, services, runs: out };
}

function main(): void {
  const runs = Number(option("--runs", "5"));
  const bigRuns = Number(option("--big-runs", "5"));
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(bigRuns) || bigRuns < 1)
    throw new Error("--runs and --big-runs must be positive integers");
  const all: [number, number][] = [];
  for (const n of [3, 30, 300]) for (const s of [10, 100, 300]) all.push([n, s]);
  const mode: Mode = process.argv.includes("--ts") ? "ts" : "js";
  if (mode === "js") buildCompiled();
  const only = option("--cases", "");
  const cases = only ? only.split(",").map((c) => c.split("x").map(Number) as [number, number]) : all;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-bench-planning-"));
  const started = performance.now();
  console.log(
    `planning under mocks (preview), ${mode === "ts" ? "TypeScript through ts-node" : "compiled JS (dist/)"}, ${runs} runs per case (${bigRuns} for 300 nodes); node ${process.version}, ` +
      `${os.cpus().length} CPUs; load average ${fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
  );
  console.log(
    "nodes | services | stacks | resources (custom+component) | plan s | register s | config s | plan CPU s | load s | child wall s | child CPU s | peak RSS MiB",
  );
  console.log("---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:");
  const rows: Row[] = [];
  try {
    for (const [nodes, services] of cases) {
      const dir = path.join(base, `${nodes}x${services}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(writeCase(dir, nodes, services)));
      const row = runCase(dir, nodes, services, nodes >= 300 ? bigRuns : runs, mode);
      rows.push(row);
      const r = row.runs;
      const col = (f: (x: Row["runs"][number]) => number, unit = 1000, digits = 2) =>
        fmt(r.map(f), unit, digits);
      console.log(
        [
          nodes,
          services,
          stackSizes(services).length,
          `${r[0].custom + r[0].components} (${r[0].custom}+${r[0].components})`,
          col((x) => x.configMs + x.registerMs),
          col((x) => x.registerMs),
          col((x) => x.configMs),
          col((x) => x.planCpuMs),
          col((x) => x.loadMs),
          col((x) => x.wallMs),
          col((x) => x.cpuMs),
          col((x) => x.maxRssKiB, 1024, 0),
        ].join(" | "),
      );
    }
    const planOf = (n: number, s: number) => {
      const row = rows.find((x) => x.nodes === n && x.services === s);
      return row ? median(row.runs.map((x) => x.configMs + x.registerMs)) : undefined;
    };
    for (const s of [10, 100, 300]) {
      const [a, b] = [planOf(300, s), planOf(30, s)];
      if (a !== undefined && b !== undefined)
        console.log(`t(300 nodes)/t(30 nodes) at ${s} services: ${(a / b).toFixed(2)} (plan time, medians)`);
    }
    console.log(`bench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    if (process.argv.includes("--keep")) console.log(`cases kept in ${base}`);
    else fs.rmSync(base, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") {
  child(process.argv[3], process.argv[4]).catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
} else {
  main();
}
