// `swarmform validate [--stack NAME]`: validates Pulumi.NAME.yaml (or every Pulumi.*.yaml) and the stack
// files it references, exactly as the program does before it creates anything.
import * as fs from "fs";
import * as path from "path";
import { loadClusterSpec, readPulumiStackFile } from "../components/config/load";
import { ClusterSpec } from "../components/config/types";
import {
  CliContext,
  EXIT,
  listStacks,
  parseCommandArgs,
  reportConfigErrors,
  stackConfigPath,
} from "./common";

export const VALIDATE_USAGE = `Usage: swarmform validate [--stack NAME]

Validates Pulumi.NAME.yaml and every stack file it references (without --stack: every Pulumi.*.yaml in
the project root). Prints one line per stack on stdout (OK or FAIL); problems go to stderr, one per
line, as <origin>: <message>.

Options:
  --stack NAME   the Pulumi stack to validate (local, dev, staging, prod, ...)
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

/** Validates one stack; prints OK or FAIL on stdout, problems on stderr. Returns the exit code. */
export function validateStack(stack: string, ctx: CliContext): number {
  const file = stackConfigPath(ctx.root, stack);
  const shown = path.basename(file);
  if (!fs.existsSync(file)) {
    const known = listStacks(ctx.root);
    ctx.io.err(`${shown}: no such file in ${ctx.root}; stacks here: ${known.join(", ") || "(none)"}`);
    ctx.io.out(`FAIL ${stack}`);
    return EXIT.invalid;
  }
  const code = reportConfigErrors(ctx.io, () => {
    const read = readPulumiStackFile(file);
    const spec = loadClusterSpec({
      project: read.project ?? "swarmform",
      stack,
      config: read.config,
      secretKeys: read.secretKeys,
      rootDir: ctx.root,
      env: ctx.env,
    });
    ctx.io.out(`OK ${stack}: ${shown}: ${summarizeSpec(spec)}`);
    return EXIT.ok;
  });
  if (code !== EXIT.ok) ctx.io.out(`FAIL ${stack}: ${shown} (problems on stderr)`);
  return code;
}

/** Runs `swarmform validate`. */
export function runValidate(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs(args, false);
  if (opts.help) {
    ctx.io.out(VALIDATE_USAGE);
    return EXIT.ok;
  }
  const stacks = opts.stack !== undefined ? [opts.stack] : listStacks(ctx.root);
  if (stacks.length === 0) {
    ctx.io.err(`no Pulumi.<stack>.yaml in ${ctx.root}`);
    return EXIT.invalid;
  }
  return stacks.map((s) => validateStack(s, ctx)).reduce((a, b) => Math.max(a, b), EXIT.ok);
}
