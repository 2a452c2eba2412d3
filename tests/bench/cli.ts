// Benchmark: start-up time of the `swarmform` command, as users run it (bin/swarmform in a child process).
//
//   npm run bench:cli -- [--runs N] [--bin PATH] [--cwd DIR]
//
// --runs: runs per case (default 10). --bin: the command to time (default bin/swarmform of this checkout;
// give the bin/swarmform of another checkout to compare). --cwd: the project to run in (default this one).
// Cases: `node -e 0` (the floor: node's own start-up on this machine now), `--help`, `validate --stack staging`
// and `render stacks/popcube.yaml`. For each it prints the wall time (min / median / max) and the CPU time
// that the child used (user + system, from /proc/self/stat's cutime + cstime, 10 ms ticks), which depends
// less on what else the machine runs. It prints figures only and asserts nothing about them; it fails (exit 1)
// only when a command does not exit 0.

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { median } from "./stats";

const ROOT = path.resolve(__dirname, "..", "..");

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const RUNS = Number(option("--runs", "10"));
const BIN = path.resolve(option("--bin", path.join(ROOT, "bin", "swarmform")));
const CWD = path.resolve(option("--cwd", ROOT));
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer`);

/** CPU time (ms) used so far by the children this process has waited for: cutime + cstime. */
function childCpuMs(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd (state) on
  const ticks = Number(fields[15 - 2]) + Number(fields[16 - 2]); // cutime is field 16, cstime field 17 (1-based)
  return ticks * 10; // USER_HZ is 100 on Linux
}

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number;
}

function time(file: string, args: readonly string[]): Sample {
  const cpu0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, [...args], { cwd: CWD, encoding: "utf8", env: process.env });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(`${file} ${args.join(" ")} exited ${r.status}:\n${r.stderr}\n`);
    process.exit(1);
  }
  return { wallMs, cpuMs: childCpuMs() - cpu0 };
}

const stats = (xs: number[]) =>
  [Math.min(...xs), median(xs), Math.max(...xs)].map((x) => (x / 1000).toFixed(3).padStart(6)).join(" / ");

const cases: [string, string, string[]][] = [
  ["node -e 0 (floor)", process.execPath, ["-e", "0"]],
  ["--help", BIN, ["--help"]],
  ["validate --stack staging", BIN, ["validate", "--stack", "staging"]],
  ["render stacks/popcube.yaml", BIN, ["render", "stacks/popcube.yaml"]],
];

console.log(
  `${BIN}, in ${CWD}, ${RUNS} runs each; load average ${fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
);
console.log(`${"case".padEnd(28)}  wall s (min / median / max)   CPU s (min / median / max)`);
for (const [name, file, args] of cases) {
  time(file, args); // warm the file cache
  const samples = Array.from({ length: RUNS }, () => time(file, args));
  console.log(
    `${name.padEnd(28)}  ${stats(samples.map((s) => s.wallMs))}    ${stats(samples.map((s) => s.cpuMs))}`,
  );
}
