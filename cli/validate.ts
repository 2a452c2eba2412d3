// `swarmform validate [--stack NAME]`: validates Pulumi.NAME.yaml (or every Pulumi.*.yaml) and the stack
// files it references, exactly as the program does before it creates anything.
import * as fs from "fs";
import * as path from "path";
import { formatIssue } from "../components/config/errors";
import { describeVariables, loadCluster, readPulumiStackFile } from "../components/config/load";
import { ClusterSpec } from "../components/config/types";
import {
  CliContext,
  EXIT,
  listStacks,
  parseCommandArgs,
  reportConfigErrors,
  stackConfigPath,
  UsageError,
} from "./common";

export const VALIDATE_USAGE = `Usage: swarmform validate [--stack NAME] [--strict] [FILE...]

Validates Pulumi.NAME.yaml and every stack file it references (without --stack: every Pulumi.*.yaml in
the project root). FILE... are other Pulumi.<stack>.yaml files; their stack files are relative to the
directory of each. Prints one line per stack on stdout (OK or FAIL), and under OK each \${VAR} the
stack files use with where its value comes from; problems go to stderr, one per line, as
<origin>: <message>. Keys that swarm ignores are warnings on stderr ("warning: <origin>: <message>").

Options:
  --stack NAME   the Pulumi stack to validate (local, dev, staging, prod, ...)
  --strict       keys that swarm ignores are errors (like swarmform:strictCompose: true)
  -h, --help     show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

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

/**
 * Validates one stack config file; its stack files are relative to `rootDir`. Prints OK or FAIL on stdout,
 * problems on stderr. Returns the exit code.
 */
export function validateStackFile(
  file: string,
  stack: string,
  rootDir: string,
  ctx: CliContext,
  strict = false,
): number {
  const shown = path.relative(process.cwd(), file) || file;
  if (!fs.existsSync(file)) {
    const known = listStacks(rootDir);
    ctx.io.err(`${shown}: no such file; stacks in ${rootDir}: ${known.join(", ") || "(none)"}`);
    ctx.io.out(`FAIL ${stack}`);
    return EXIT.invalid;
  }
  const code = reportConfigErrors(ctx.io, () => {
    const read = readPulumiStackFile(file);
    const { spec, warnings } = loadCluster({
      project: read.project ?? "swarmform",
      stack,
      config: read.config,
      secretKeys: read.secretKeys,
      otherKeys: read.otherKeys,
      rootDir,
      env: ctx.env,
      ...(strict ? { strict } : {}),
    });
    for (const w of warnings) ctx.io.err(`warning: ${formatIssue(w)}`);
    ctx.io.out(`OK ${stack}: ${shown}: ${summarizeSpec(spec)}`);
    for (const line of describeVariables(spec)) ctx.io.out(`  ${line}`);
    return EXIT.ok;
  });
  if (code !== EXIT.ok) ctx.io.out(`FAIL ${stack}: ${shown} (problems on stderr)`);
  return code;
}

/** Runs `swarmform validate`. */
export function runValidate(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs(args, true);
  if (opts.help) {
    ctx.io.out(VALIDATE_USAGE);
    return EXIT.ok;
  }
  const targets: { file: string; stack: string; rootDir: string }[] = opts.positionals.map((f) => {
    const file = path.resolve(f);
    const m = /^Pulumi\.(.+)\.yaml$/.exec(path.basename(file));
    if (!m) throw new UsageError(`validate: ${f} is not named Pulumi.<stack>.yaml`);
    return { file, stack: m[1], rootDir: path.dirname(file) };
  });
  const stacks =
    opts.stack !== undefined ? [opts.stack] : opts.positionals.length > 0 ? [] : listStacks(ctx.root);
  targets.push(
    ...stacks.map((stack) => ({ file: stackConfigPath(ctx.root, stack), stack, rootDir: ctx.root })),
  );
  if (targets.length === 0) {
    ctx.io.err(`no Pulumi.<stack>.yaml in ${ctx.root}`);
    return EXIT.invalid;
  }
  return targets
    .map((t) => validateStackFile(t.file, t.stack, t.rootDir, ctx, opts.strict))
    .reduce((a, b) => Math.max(a, b), EXIT.ok);
}
