// The real Pulumi CLI for the engine tests: locates the build of tools/pulumi/build.sh and runs `pulumi` in a
// temporary project (the fixture program), with a file backend, a passphrase secrets provider, its own
// PULUMI_HOME and no automatic plugin downloads. Every call is a new `pulumi` process.

import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "../..");
export const FIXTURE = path.join(__dirname, "fixture");

/** The bin folder holding `pulumi`, our language host and the dynamic-provider launcher. */
export function pulumiBin(): string {
  const given = process.env.SWARMFORM_PULUMI_BIN;
  if (given) {
    if (!fs.existsSync(path.join(given, "pulumi")))
      throw new Error(`SWARMFORM_PULUMI_BIN=${given} holds no 'pulumi': run tools/pulumi/build.sh`);
    return given;
  }
  // Takes the CLI from the cache (a hash check, well under a second), or builds it (minutes: .ci/run does
  // this before the tests).
  const r = spawnSync("bash", [path.join(REPO, "tools/pulumi/build.sh")], { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(
      `tools/pulumi/build.sh failed (it builds the Pulumi CLI from Go modules; needs Go at /usr/local/go ` +
        `and the Go module proxy):\n${r.stderr}`,
    );
  return r.stdout.trim();
}

export interface CliResult {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** One step of `pulumi preview --json` (the engine's own display of a planned step). */
export interface PreviewStep {
  readonly op: string;
  readonly urn: string;
  readonly diffReasons?: string[];
  readonly detailedDiff?: Record<string, { kind: string; inputDiff?: boolean }>;
  readonly oldState?: { type: string; outputs?: Record<string, unknown> };
  readonly newState?: { type: string; inputs?: Record<string, unknown> };
}

export interface PreviewJson {
  readonly steps: PreviewStep[];
  readonly changeSummary: Record<string, number>;
  readonly diagnostics?: { message: string; severity: string; urn?: string }[];
}

export class PulumiProject {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Every run, for the report: args and milliseconds. */
  readonly runs: { args: string; ms: number; code: number }[] = [];

  constructor(
    readonly root: string,
    readonly stack: string,
    bin: string,
    /** The program folder (Pulumi.yaml, package.json, index.ts). Default: tests/engine-cli/fixture. */
    fixture = FIXTURE,
  ) {
    this.dir = path.join(root, "project");
    fs.mkdirSync(this.dir, { recursive: true });
    fs.mkdirSync(path.join(root, "home"), { recursive: true });
    fs.mkdirSync(path.join(root, "state"), { recursive: true });
    for (const f of ["Pulumi.yaml", "package.json"])
      fs.copyFileSync(path.join(fixture, f), path.join(this.dir, f));
    // Links: the program keeps its real path (so its relative imports of components/ work), and packages
    // resolve from the repository's node_modules.
    fs.symlinkSync(path.join(fixture, "index.ts"), path.join(this.dir, "index.ts"));
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(this.dir, "node_modules"));
    this.env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      PULUMI_HOME: path.join(root, "home"),
      PULUMI_BACKEND_URL: `file://${path.join(root, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "swarmform engine tests",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      // tsc already type-checks the program (npm run build); ts-node only transpiles here.
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
      NO_COLOR: "1",
    };
    delete this.env.PULUMI_ACCESS_TOKEN;
  }

  /** Runs `pulumi <args>` (plus --stack and --non-interactive where they apply); never throws. */
  run(args: readonly string[], input?: string): Promise<CliResult> {
    const full = [...args, "--non-interactive"];
    if (!["login", "version", "plugin"].includes(args[0])) full.push("--stack", this.stack);
    const t0 = Date.now();
    return new Promise((resolve) => {
      const child = spawn("pulumi", full, { cwd: this.dir, env: this.env, stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => err.push(d));
      child.stdin.on("error", () => undefined);
      child.on("error", (e) => resolve({ args: full, code: 127, stdout: "", stderr: String(e), ms: 0 }));
      child.on("close", (code) => {
        const r = {
          args: full,
          code: code ?? 128,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
          ms: Date.now() - t0,
        };
        this.runs.push({ args: args.join(" "), ms: r.ms, code: r.code });
        resolve(r);
      });
      child.stdin.end(input ?? "");
    });
  }

  /** Runs `pulumi <args>` and throws (with its output) unless it exits 0. */
  async must(args: readonly string[], input?: string): Promise<CliResult> {
    const r = await this.run(args, input);
    if (r.code !== 0)
      throw new Error(`pulumi ${r.args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  /** `pulumi preview --json`, parsed. */
  async preview(): Promise<PreviewJson> {
    const r = await this.must(["preview", "--json"]);
    return JSON.parse(r.stdout) as PreviewJson;
  }

  /** `pulumi stack export` (secrets stay encrypted unless showSecrets), as text. */
  async exportState(showSecrets = false): Promise<string> {
    return (await this.must(["stack", "export", ...(showSecrets ? ["--show-secrets"] : [])])).stdout;
  }

  /** `pulumi stack output --json` (secrets shown as [secret] unless showSecrets). */
  async outputs(showSecrets = false): Promise<Record<string, unknown>> {
    const r = await this.must(["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : [])]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  static async create(stack: string, bin: string, fixture = FIXTURE): Promise<PulumiProject> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-engine-cli-"));
    const p = new PulumiProject(root, stack, bin, fixture);
    try {
      await p.must(["stack", "init"]); // run() adds --stack
    } catch (e) {
      p.remove();
      throw e;
    }
    return p;
  }

  /** Removes the temporary project, its state and PULUMI_HOME. */
  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
