// `swarmform promote --from ENV --to ENV [--dry-run] [--force]`: copies the image pins of one environment's
// Pulumi.<stack>.yaml into the next one's, editing the target file in place (comments and other keys kept).
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
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
  printIssues,
  reportConfigErrors,
  stackConfigPath,
  UsageError,
} from "./common";
import { PROMOTE_USAGE } from "./usage";

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
  let values: { from?: string; to?: string; "dry-run"?: boolean; force?: boolean; help?: boolean };
  try {
    values = parseArgs({
      args: [...args],
      options: {
        from: { type: "string" },
        to: { type: "string" },
        "dry-run": { type: "boolean" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    ctx.io.out(PROMOTE_USAGE);
    return EXIT.ok;
  }
  if (!values.from || !values.to) throw new UsageError("promote: --from and --to are required");
  for (const s of [values.from, values.to])
    if (!/^[A-Za-z0-9_.-]+$/.test(s)) throw new UsageError(`promote: "${s}" is not a stack name`);
  const root = findProjectRoot(ctx.cwd);
  const from = readFile(root, values.from);
  const to = readFile(root, values.to);
  return reportConfigErrors(ctx.io, () => {
    const deployed = deployedServices(stackConfigPath(root, to.stack), to.stack, root, ctx.env);
    const plan = planPromotion(from, to, { force: !!values.force, deployed });
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
    if (values["dry-run"]) {
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
