// `swarmform render FILE... [--stack NAME]`: the service model that the program registers for the given
// stack files, as JSON, with x-traefik expanded by the platform settings of the stack.
import * as path from "path";
import { parseClusterConfig, resolvePlatform } from "../components/config/clusterConfig";
import { parseStackFile, TraefikPlatform } from "../components/config/compose";
import { ConfigError } from "../components/config/errors";
import {
  defaultTraefikPlatform,
  readPulumiStackFile,
  stackVarsOf,
  traefikPlatformOf,
} from "../components/config/load";
import { ConfigIssue, ServiceSpec, StackSpec } from "../components/config/types";
import {
  CliContext,
  EXIT,
  parseCommandArgs,
  printIssues,
  reportConfigErrors,
  stackConfigPath,
  UsageError,
} from "./common";

export const RENDER_USAGE = `Usage: swarmform render FILE... [--stack NAME]

Prints, as JSON on stdout, the services the program registers for the stack files FILE...:
{"services":[{"name","image","mode","replicas","labels","containerLabels","networks","constraints",
"ports","updateConfig"}]}. x-traefik routes are expanded with the Traefik settings of --stack (default:
the defaults, public network swarmform-local_public). \${VAR} comes from the environment, and also from
stackVariables of --stack. Problems go to stderr, one per line.

Options:
  --stack NAME   take the platform settings from Pulumi.NAME.yaml
  -h, --help     show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

/** One service as `render` prints it. Absent replicas (global mode) and update config are null. */
export interface RenderedService {
  readonly name: string;
  readonly image: string;
  readonly mode: ServiceSpec["mode"];
  readonly replicas: number | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly containerLabels: Readonly<Record<string, string>>;
  readonly networks: readonly string[];
  readonly constraints: readonly string[];
  readonly ports: ServiceSpec["ports"];
  readonly updateConfig: NonNullable<ServiceSpec["updateConfig"]> | null;
}

/** The printed model of a service. */
export function renderService(s: ServiceSpec): RenderedService {
  return {
    name: s.name,
    image: s.image,
    mode: s.mode,
    replicas: s.mode === "replicated" ? (s.replicas ?? 1) : null,
    labels: s.labels,
    containerLabels: s.containerLabels,
    networks: s.networks,
    constraints: s.constraints,
    ports: s.ports,
    updateConfig: s.updateConfig ?? null,
  };
}

/** Platform settings and variables from Pulumi.NAME.yaml; throws a ConfigError when its config is invalid. */
function settingsOfStack(
  stack: string,
  ctx: CliContext,
): { platform: TraefikPlatform; vars: Record<string, string | undefined> } {
  const read = readPulumiStackFile(stackConfigPath(ctx.root, stack));
  const parsed = parseClusterConfig(read.config);
  if (!parsed.config) throw new ConfigError(parsed.issues);
  const resolved = resolvePlatform(parsed.config, { project: read.project ?? "swarmform", stack });
  return {
    platform: traefikPlatformOf(resolved.platform),
    vars: stackVarsOf(ctx.env, parsed.config.stackVariables),
  };
}

/** Runs `swarmform render`. File arguments are relative to the current directory. */
export function runRender(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs(args, true);
  if (opts.help) {
    ctx.io.out(RENDER_USAGE);
    return EXIT.ok;
  }
  if (opts.positionals.length === 0) throw new UsageError("render: give at least one stack file");
  return reportConfigErrors(ctx.io, () => {
    const { platform, vars } =
      opts.stack !== undefined
        ? settingsOfStack(opts.stack, ctx)
        : { platform: defaultTraefikPlatform("swarmform", "local"), vars: ctx.env };
    const stacks: StackSpec[] = [];
    const issues: ConfigIssue[] = [];
    for (const file of opts.positionals) {
      const result = parseStackFile(path.resolve(file), { displayPath: file, vars, platform });
      issues.push(...result.issues);
      if (result.stack) stacks.push(result.stack);
    }
    if (issues.length > 0) {
      printIssues(ctx.io, issues);
      return EXIT.invalid;
    }
    const services = stacks.flatMap((s) => s.services.map(renderService));
    ctx.io.out(JSON.stringify({ services }, null, 2));
    return EXIT.ok;
  });
}
