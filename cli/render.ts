// `swarmform render FILE... [--stack NAME]`: the service model that the program registers for the given
// stack files, as JSON, with x-traefik expanded by the platform settings of the stack.
import * as path from "path";
import { parseClusterConfig, PlatformSpec, resolvePlatform } from "../components/config/clusterConfig";
import { parseStackFile } from "../components/config/compose";
import { ConfigError } from "../components/config/errors";
import { readPulumiStackFile, stackVarsOf, traefikPlatformOf } from "../components/config/load";
import { checkPorts, checkRoutes, secretsSetOf } from "../components/config/rules";
import { ClusterSpec, ConfigIssue, ServiceSpec, StackSpec } from "../components/config/types";
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
the defaults of a local stack, public network swarmform-local_public). \${VAR} comes from the environment,
and also from stackVariables of --stack. Also reported: a port published twice and a host+path routed by
two services, across the files and the platform (Traefik's ports and hosts). Problems go to stderr, one per line.

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

/** The platform of `swarmform render` without --stack: the defaults of a `local` stack. */
const DEFAULT_RENDER_CONFIG = {
  environment: "local",
  domain: "localhost",
  docker: { host: "unix:///var/run/docker.sock" },
  traefik: { acme: { email: "ops@example.com" } },
};

/**
 * Platform and variables for rendering: from Pulumi.NAME.yaml with --stack, else the `local` defaults.
 * Throws a ConfigError when that config is invalid.
 */
function settingsOf(
  stack: string | undefined,
  ctx: CliContext,
): { platform: PlatformSpec; vars: Record<string, string | undefined> } {
  const read = stack !== undefined ? readPulumiStackFile(stackConfigPath(ctx.root, stack)) : undefined;
  const parsed = parseClusterConfig(read?.config ?? DEFAULT_RENDER_CONFIG);
  if (!parsed.config) throw new ConfigError(parsed.issues);
  const ids = { project: read?.project ?? "swarmform", stack: stack ?? "local" };
  return {
    platform: resolvePlatform(parsed.config, ids).platform,
    vars: read ? stackVarsOf(ctx.env, parsed.config.stackVariables) : ctx.env,
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
    const { platform, vars } = settingsOf(opts.stack, ctx);
    const stacks: StackSpec[] = [];
    const issues: ConfigIssue[] = [];
    for (const file of opts.positionals) {
      const result = parseStackFile(path.resolve(file), {
        displayPath: file,
        vars,
        platform: traefikPlatformOf(platform),
      });
      issues.push(...result.issues);
      if (result.stack) stacks.push(result.stack);
    }
    // What the program would reject across these files and the platform: a port published twice, a
    // host+path routed by two services.
    const spec: ClusterSpec = { ...platform, stacks, secretsSet: secretsSetOf({}, []) };
    if (issues.length === 0) issues.push(...checkPorts(spec), ...checkRoutes(spec));
    if (issues.length > 0) {
      printIssues(ctx.io, issues);
      return EXIT.invalid;
    }
    const services = stacks.flatMap((s) => s.services.map(renderService));
    ctx.io.out(JSON.stringify({ services }, null, 2));
    return EXIT.ok;
  });
}
