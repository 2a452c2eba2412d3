// `npm run bench` (tests/bench/all.ts): which benchmarks it runs, and, run for real in a temp project whose
// bench scripts are tiny commands, that it skips a missing script, reports a failing one and exits 1.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BENCHES, planSteps, runnerArgs } from "../bench/all";

const RUNNER = path.resolve(__dirname, "..", "bench", "all.ts");
jest.setTimeout(120_000);

describe("planSteps and runnerArgs", () => {
  it("runs every benchmark in a fixed order; one without a script is marked absent", () => {
    const steps = planSteps({ "bench:cli": "x", "bench:planning": "y", build: "z" });
    expect(steps.map((s) => [s.script, s.present])).toEqual([
      ["bench:planning", true],
      ["bench:membership", false],
      ["bench:scale", false],
      ["bench:service", false],
      ["bench:engine", false],
      ["bench:cli", true],
    ]);
    expect(steps.map((s) => s.name)).toEqual([...BENCHES]);
  });

  it("--only picks benchmarks (in the fixed order) and names an unknown one with the list", () => {
    expect(runnerArgs([])).toEqual({ only: undefined, extended: false });
    expect(runnerArgs(["--only", "cli,planning"]).only).toEqual(["cli", "planning"]);
    expect(runnerArgs(["--only=scale"]).only).toEqual(["scale"]);
    expect(planSteps({}, ["cli", "planning"]).map((s) => s.name)).toEqual(["planning", "cli"]);
    expect(() => planSteps({}, ["cpu"])).toThrow(
      "--only: unknown benchmark cpu; the benchmarks are planning, membership, scale, service, engine, cli",
    );
    expect(() => runnerArgs(["--only"])).toThrow(/--only needs names/);
    expect(() => runnerArgs(["--runs", "3"])).toThrow(/unexpected argument --runs/);
  });

  it("--extended goes to membership and engine only", () => {
    expect(runnerArgs(["--extended", "--only", "engine"])).toEqual({ only: ["engine"], extended: true });
    const args = (extended: boolean) =>
      Object.fromEntries(planSteps({}, undefined, extended).map((s) => [s.name, s.args.join(" ")]));
    expect(args(true)).toEqual({
      planning: "",
      membership: "--extended",
      scale: "",
      service: "",
      engine: "--extended",
      cli: "",
    });
    expect(Object.values(args(false))).toEqual(["", "", "", "", "", ""]);
  });
});

describe("the runner, run", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-bench-"));
    const scripts = {
      "bench:planning": "node -e \"console.log('planning ran')\"",
      "bench:cli": 'node -e "process.exit(3)"',
      "bench:engine": "node -e \"console.log('engine ran', process.argv.slice(1).join(' '))\" --",
    };
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "t", scripts }));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const bench = (args: string[]) => {
    const register = require.resolve("ts-node/register/transpile-only");
    const r = spawnSync(process.execPath, ["-r", register, RUNNER, ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, TS_NODE_PROJECT: path.resolve(__dirname, "..", "..", "tsconfig.json") },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("runs what is there, skips what is not, goes on after a failure and exits 1", () => {
    const r = bench([]);
    expect(r.code).toBe(1);
    const lines = r.stdout.split("\n");
    expect(lines).toContain("planning ran");
    expect(lines).toContain("engine ran ");
    expect(lines).toContain("=== bench:membership: no such script in package.json, skipped");
    expect(r.stdout).toMatch(/=== bench:cli: FAILED \(exit 3\) in \d+\.\d s/);
    const table = lines.slice(lines.indexOf("benchmark wall times:") + 1).filter((l) => l !== "");
    expect(table.map((l) => l.trim().split(/\s+/)[0])).toEqual([...BENCHES, "total"]);
    expect(r.stderr).toContain("bench: failed: cli");
  });

  it("--only runs the named ones; exit 0 when they pass; 2 on a bad name", () => {
    const r = bench(["--only", "engine,planning"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout.indexOf("planning ran")).toBeLessThan(r.stdout.indexOf("engine ran"));
    expect(r.stdout).not.toContain("bench:cli");
    const bad = bench(["--only", "cpu"]);
    expect([bad.code, bad.stdout]).toEqual([2, ""]);
    expect(bad.stderr).toMatch(/^bench: --only: unknown benchmark cpu/);
  });

  it("--extended reaches the scripts that take it", () => {
    const r = bench(["--only", "engine,planning", "--extended"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const lines = r.stdout.split("\n");
    expect(lines).toEqual(expect.arrayContaining(["=== bench:engine --extended", "engine ran --extended"]));
    expect(lines).toEqual(expect.arrayContaining(["=== bench:planning", "planning ran"]));
  });
});
