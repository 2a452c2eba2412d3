// Runs the benchmarks one after the other, each as its own `npm run bench:<name>`, and prints the wall time
// of each and the total.
//
//   npm run bench [-- --only planning,cli]
//
// The benchmarks, in this order: planning, membership, scale, service, engine, cli. --only runs the named ones
// (still in this order). A benchmark without a `bench:<name>` script in package.json is skipped with a line
// that says so. Each prints its own figures; this runner asserts nothing about times. Exit 1 when a
// benchmark that ran failed (the others still run), 2 on a bad command line.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export const BENCHES = ["planning", "membership", "scale", "service", "engine", "cli"] as const;

/** What the runner does with one benchmark: run `bench:<name>`, or skip it (no such script). */
export interface Step {
  readonly name: string;
  readonly script: string;
  readonly present: boolean;
}

/** The steps for the `bench:*` scripts of a package.json, limited to `only` when given. Throws on a bad name. */
export function planSteps(scripts: Readonly<Record<string, string>>, only?: readonly string[]): Step[] {
  const unknown = (only ?? []).filter((n) => !(BENCHES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new Error(
      `--only: unknown benchmark ${unknown.join(", ")}; the benchmarks are ${BENCHES.join(", ")}`,
    );
  return BENCHES.filter((n) => only === undefined || only.includes(n)).map((name) => ({
    name,
    script: `bench:${name}`,
    present: Object.hasOwn(scripts, `bench:${name}`),
  }));
}

/** The names given with `--only a,b` (or `--only=a,b`), or undefined without it. Throws on anything else. */
export function onlyOf(argv: readonly string[]): string[] | undefined {
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let value: string | undefined;
    if (a === "--only") value = argv[++i];
    else if (a.startsWith("--only=")) value = a.slice("--only=".length);
    else throw new Error(`unexpected argument ${a}; usage: npm run bench [-- --only NAME,NAME]`);
    const names = (value ?? "").split(",").filter((n) => n !== "");
    if (names.length === 0) throw new Error(`--only needs names, e.g. --only ${BENCHES[0]},${BENCHES[1]}`);
    only = [...(only ?? []), ...names];
  }
  return only;
}

/** `12.3 s`. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function main(argv: readonly string[]): number {
  let steps: Step[];
  try {
    const only = onlyOf(argv);
    const pkg = JSON.parse(fs.readFileSync(path.join(process.cwd(), "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
    };
    steps = planSteps(pkg.scripts ?? {}, only);
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
    console.log(`=== ${step.script}`);
    const t0 = Date.now();
    const r = spawnSync("npm", ["run", "--silent", step.script], { stdio: "inherit" });
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
