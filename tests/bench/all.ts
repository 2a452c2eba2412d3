// Runs the benchmarks one after the other, each as its own `npm run bench:<name>`, and prints the wall time
// of each and the total.
//
//   npm run bench [-- --only planning,cli] [--extended]
//
// The benchmarks, in this order: planning, membership, scale, service, engine, cli. --only runs the named ones
// (still in this order). --extended is passed to the benchmarks that have rows beyond what issue #11 asks for
// (membership: the Engine API floor and the safe removal; engine: the no-op `up --refresh`); the whole bench
// then takes about 2.5 minutes more. A benchmark without a `bench:<name>` script in package.json is skipped with a line
// that says so. Each prints its own figures; this runner asserts nothing about times. Exit 1 when a
// benchmark that ran failed (the others still run), 2 on a bad command line.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export const BENCHES = ["planning", "membership", "scale", "service", "engine", "cli"] as const;
/** The benchmarks that take `--extended`. */
const EXTENDABLE: readonly string[] = ["membership", "engine"];

/** What the runner does with one benchmark: run `bench:<name>`, or skip it (no such script). */
export interface Step {
  readonly name: string;
  readonly script: string;
  readonly present: boolean;
  /** Arguments for the script (after `--`). */
  readonly args: readonly string[];
}

/**
 * The steps for the `bench:*` scripts of a package.json, limited to `only` when given, with `--extended` for the
 * benchmarks that take it when `extended`. Throws on a bad name.
 */
export function planSteps(
  scripts: Readonly<Record<string, string>>,
  only?: readonly string[],
  extended = false,
): Step[] {
  const unknown = (only ?? []).filter((n) => !(BENCHES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new Error(
      `--only: unknown benchmark ${unknown.join(", ")}; the benchmarks are ${BENCHES.join(", ")}`,
    );
  return BENCHES.filter((n) => only === undefined || only.includes(n)).map((name) => ({
    name,
    script: `bench:${name}`,
    present: Object.hasOwn(scripts, `bench:${name}`),
    args: extended && EXTENDABLE.includes(name) ? ["--extended"] : [],
  }));
}

/**
 * The command line: the names given with `--only a,b` (or `--only=a,b`), undefined without it, and whether
 * `--extended` was given. Throws on anything else.
 */
export function runnerArgs(argv: readonly string[]): { only?: string[]; extended: boolean } {
  let only: string[] | undefined;
  let extended = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let value: string | undefined;
    if (a === "--extended") {
      extended = true;
      continue;
    }
    if (a === "--only") value = argv[++i];
    else if (a.startsWith("--only=")) value = a.slice("--only=".length);
    else throw new Error(`unexpected argument ${a}; usage: npm run bench [-- --only NAME,NAME] [--extended]`);
    const names = (value ?? "").split(",").filter((n) => n !== "");
    if (names.length === 0) throw new Error(`--only needs names, e.g. --only ${BENCHES[0]},${BENCHES[1]}`);
    only = [...(only ?? []), ...names];
  }
  return { only, extended };
}

/** `12.3 s`. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function main(argv: readonly string[]): number {
  let steps: Step[];
  try {
    const { only, extended } = runnerArgs(argv);
    const pkg = JSON.parse(fs.readFileSync(path.join(process.cwd(), "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
    };
    steps = planSteps(pkg.scripts ?? {}, only, extended);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  const rows: [string, string][] = [];
  const failed: string[] = [];
  const start = Date.now();
  for (const step of steps) {
    if (!step.present) {
      console.log(`=== ${step.script}: no such script in package.json, skipped`);
      rows.push([step.name, "skipped (no script)"]);
      continue;
    }
    console.log(`=== ${[step.script, ...step.args].join(" ")}`);
    const t0 = Date.now();
    const extra = step.args.length > 0 ? ["--", ...step.args] : [];
    const r = spawnSync("npm", ["run", "--silent", step.script, ...extra], { stdio: "inherit" });
    const ms = Date.now() - t0;
    const ok = r.status === 0;
    if (!ok) failed.push(step.name);
    const how = r.error ? r.error.message : r.status === null ? `killed by ${r.signal}` : `exit ${r.status}`;
    console.log(`=== ${step.script}: ${ok ? "done" : `FAILED (${how})`} in ${seconds(ms)}`);
    rows.push([step.name, `${seconds(ms)}${ok ? "" : ` FAILED (${how})`}`]);
  }
  rows.push(["total", seconds(Date.now() - start)]);
  const width = Math.max(...rows.map(([n]) => n.length));
  console.log("\nbenchmark wall times:");
  for (const [n, t] of rows) console.log(`  ${n.padEnd(width)}  ${t}`);
  if (failed.length > 0) {
    console.error(`bench: failed: ${failed.join(", ")}`);
    return 1;
  }
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
