// `swarmform promote --from ENV --to ENV [--dry-run] [--force]`: copies the image pins of one environment's
// Pulumi.<stack>.yaml into the next one's, editing the target file in place (comments and other keys kept).
import * as fs from "fs";
import * as path from "path";
import {
  ClusterConfig,
  parseClusterConfig,
  partialClusterConfig,
  resolvePlatform,
  stackEntries,
} from "../components/config/clusterConfig";
import { loadStacks, readPulumiStackFile, stackVarsOf, traefikPlatformOf } from "../components/config/load";
import { formatChanges, planPromotion, PromotionFile } from "../components/config/promote";
import {
  CliContext,
  EXIT,
  findProjectRoot,
  parseCommandArgs,
  printIssues,
  PULUMI_STACK_NAME,
  reportConfigErrors,
  stackConfigPath,
  UsageError,
} from "./common";

/** `[stack, service]` of every service that a stack config deploys (even when other keys are invalid). */
export function deployedServices(
  file: string,
  stack: string,
  rootDir: string,
  env: Record<string, string | undefined>,
): [string, string][] {
  const read = readPulumiStackFile(file);
  const parsed = parseClusterConfig(read.config);
  const config: ClusterConfig | undefined =
    parsed.config ?? partialClusterConfig(read.config, parsed.issues).config;
  if (!config) return [];
  const { platform } = resolvePlatform(config, { project: read.project ?? "swarmform", stack });
  const { vars, fromEnvironment } = stackVarsOf(env, config.stackVariables, config.stackEnvironment);
  const { stacks } = loadStacks(stackEntries(config), {
    rootDir,
    vars,
    fromEnvironment,
    platform: traefikPlatformOf(platform),
  });
  return stacks.flatMap((s) => s.services.map((svc): [string, string] => [s.name, svc.key]));
}

function readFile(root: string, stack: string): PromotionFile {
  const file = stackConfigPath(root, stack);
  if (!fs.existsSync(file)) throw new UsageError(`no stack config ${path.basename(file)} in ${root}`);
  return { stack, file: path.basename(file), text: fs.readFileSync(file, "utf8") };
}

/** Runs `swarmform promote`. */
export function runPromote(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs("promote", args, ctx.cwd, {
    flags: ["dry-run", "force"],
    options: ["from", "to"],
    metavars: { from: "STACK", to: "STACK" },
    stack: false,
    positionals: false,
  });
  const { from: fromStack, to: toStack } = opts.options;
  if (fromStack === undefined || toStack === undefined)
    throw new UsageError("promote: --from STACK and --to STACK are both required");
  for (const [option, s] of [
    ["--from", fromStack],
    ["--to", toStack],
  ])
    if (!PULUMI_STACK_NAME.test(s)) throw new UsageError(`promote: ${option} "${s}" is not a stack name`);
  const root = findProjectRoot(ctx.cwd);
  const from = readFile(root, fromStack);
  const to = readFile(root, toStack);
  return reportConfigErrors(ctx.io, () => {
    const deployed = deployedServices(stackConfigPath(root, to.stack), to.stack, root, ctx.env);
    const plan = planPromotion(from, to, { force: opts.flags.force, deployed });
    if (plan.issues.length > 0) {
      printIssues(ctx.io, plan.issues);
      ctx.io.err(`promote ${from.stack} -> ${to.stack}: refused; ${to.file} is unchanged`);
      return EXIT.invalid;
    }
    if (plan.changes.length === 0) {
      ctx.io.out(`${to.file}: already pins what ${from.file} pins; nothing to change`);
      return EXIT.ok;
    }
    for (const line of formatChanges(plan.changes)) ctx.io.out(line);
    if (opts.flags["dry-run"]) {
      ctx.io.out(`dry run: ${to.file} not written`);
      return EXIT.ok;
    }
    fs.writeFileSync(stackConfigPath(root, to.stack), plan.text);
    ctx.io.out(
      `wrote ${to.file}; next: swarmform validate --stack ${to.stack} && pulumi preview --stack ${to.stack}`,
    );
    return EXIT.ok;
  });
}
