// `swarmform validate [--stack NAME]... [FILE...]`: validates Pulumi.NAME.yaml (or every Pulumi.*.yaml) and
// the stack files it references, exactly as the program does before it creates anything.
import * as fs from "fs";
import * as path from "path";
import { formatIssue } from "../components/config/errors";
import { describeVariables, loadCluster, readPulumiStackFile } from "../components/config/load";
import { ClusterSpec } from "../components/config/types";
import {
  CliContext,
  EXIT,
  findProjectRoot,
  listStacks,
  parseCommandArgs,
  reportConfigErrors,
  stackConfigOf,
  UsageError,
} from "./common";

/** `1 manager, 1 worker, 2 networks, 1 stack (4 services)`. */
export function summarizeSpec(spec: ClusterSpec): string {
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
  const services = spec.stacks.reduce((sum, s) => sum + s.services.length, 0);
  return [
    `${spec.environment}`,
    n(spec.nodes.managers, "manager"),
    n(spec.nodes.workers, "worker"),
    n(spec.networks.length, "network"),
    `${n(spec.stacks.length, "stack")} (${n(services, "service")})`,
  ].join(", ");
}

/** One stack config to validate; `missing` is the message when its file does not exist. */
interface Target {
  readonly file: string;
  readonly stack: string;
  readonly rootDir: string;
  readonly missing?: string;
}

/**
 * Validates one stack config file; its stack files are relative to `rootDir`. Prints OK or FAIL on stdout,
 * problems on stderr. Returns the exit code.
 */
export function validateStackFile(t: Target, ctx: CliContext, strict = false): number {
  const shown = path.relative(ctx.cwd, t.file) || t.file;
  if (t.missing !== undefined) {
    ctx.io.err(t.missing);
    ctx.io.out(`FAIL ${t.stack}`);
    return EXIT.invalid;
  }
  const code = reportConfigErrors(ctx.io, () => {
    const read = readPulumiStackFile(t.file);
    const { spec, warnings } = loadCluster({
      project: read.project ?? "swarmform",
      stack: t.stack,
      config: read.config,
      secretKeys: read.secretKeys,
      otherKeys: read.otherKeys,
      rootDir: t.rootDir,
      env: ctx.env,
      ...(strict ? { strict } : {}),
    });
    for (const w of warnings) ctx.io.err(`warning: ${formatIssue(w)}`);
    ctx.io.out(`OK ${t.stack}: ${shown}: ${summarizeSpec(spec)}`);
    for (const line of describeVariables(spec)) ctx.io.out(`  ${line}`);
    return EXIT.ok;
  });
  if (code !== EXIT.ok) ctx.io.out(`FAIL ${t.stack}: ${shown} (problems on stderr)`);
  return code;
}

/** Runs `swarmform validate`: each FILE, then each --stack in the order given (or every stack). */
export function runValidate(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs("validate", args, ctx.cwd, { flags: ["strict"] });
  const files: Target[] = opts.positionals.map((f) => {
    const file = path.resolve(ctx.cwd, f);
    const m = /^Pulumi\.(.+)\.yaml$/.exec(path.basename(file));
    if (!m) throw new UsageError(`validate: ${f} is not named Pulumi.<stack>.yaml`);
    const missing = fs.existsSync(file) ? undefined : `${path.relative(ctx.cwd, file) || file}: no such file`;
    return { file, stack: m[1], rootDir: path.dirname(file), ...(missing !== undefined ? { missing } : {}) };
  });
  // The project is needed for --stack, and for the default (every stack); not for FILE... alone.
  const root = opts.stacks.length > 0 || files.length === 0 ? findProjectRoot(ctx.cwd) : undefined;
  const stacks: Target[] =
    root === undefined
      ? []
      : (opts.stacks.length > 0 ? opts.stacks : listStacks(root)).map((stack) => ({
          stack,
          rootDir: root,
          ...stackConfigOf(root, stack, ctx.cwd),
        }));
  const targets = [...files, ...stacks];
  if (targets.length === 0) {
    ctx.io.err(`no Pulumi.<stack>.yaml in ${root}`);
    return EXIT.invalid;
  }
  return targets
    .map((t) => validateStackFile(t, ctx, opts.flags.strict))
    .reduce((a, b) => Math.max(a, b), EXIT.ok);
}
