// `swarmform render FILE... [--stack NAME]`: the service model that the program registers for the given
// stack files, as JSON, with x-traefik expanded by the platform settings of the stack.
import * as path from "path";
import { parseClusterConfig, PlatformSpec, resolvePlatform } from "../components/config/clusterConfig";
import { parseStackFile, STACK_NAME } from "../components/config/compose";
import { ConfigError, formatIssue } from "../components/config/errors";
import { readPulumiStackFile, sortIssues, stackVarsOf, traefikPlatformOf } from "../components/config/load";
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

export const RENDER_USAGE = `Usage: swarmform render FILE... [--stack NAME] [--name STACK] [--strict]

Prints, as JSON on stdout, the services the program registers for the stack files FILE...:
{"services":[{"name","image","mode","replicas","labels","containerLabels","networks","constraints",
"ports","updateConfig"}]}. x-traefik routes are expanded with the Traefik settings of --stack (default:
the defaults of a local stack, public network swarmform-local_public). \${VAR} comes from stackVariables
of --stack and the file's defaults; from the environment only for the names in its stackEnvironment.
Keys that swarm ignores (depends_on, restart, ...) are warnings on stderr. Also reported: a port published twice and a host+path routed by
two services, across the files and the platform (Traefik's ports and hosts). Problems go to stderr, one per line.

Options:
  --stack NAME   take the platform settings from Pulumi.NAME.yaml
  --name STACK   the stack name of the one FILE (default: its top-level name:, else the file name)
  --strict       keys that swarm ignores are errors (like swarmform:strictCompose: true)
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

/** Service fields printed only when the file sets them (the Compose keys of issue 7). */
const OPTIONAL_FIELDS = [
  "logging",
  "stopGracePeriod",
  "stopSignal",
  "hostname",
  "dns",
  "extraHosts",
  "workingDir",
  "readOnly",
  "init",
  "capAdd",
  "capDrop",
  "sysctls",
  "isolation",
  "networkAliases",
  "maxReplicasPerNode",
] as const;

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
    ...Object.fromEntries(OPTIONAL_FIELDS.filter((k) => s[k] !== undefined).map((k) => [k, s[k]])),
    ...(s.resources?.reservations?.genericResources
      ? { genericResources: s.resources.reservations.genericResources }
      : {}),
    ...(s.mounts.some((m) => m.volume) ? { mounts: s.mounts } : {}),
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
): { platform: PlatformSpec; vars: Record<string, string | undefined>; strict: boolean } {
  const read = stack !== undefined ? readPulumiStackFile(stackConfigPath(ctx.root, stack)) : undefined;
  const parsed = parseClusterConfig(read?.config ?? DEFAULT_RENDER_CONFIG);
  if (!parsed.config) throw new ConfigError(parsed.issues);
  const ids = { project: read?.project ?? "swarmform", stack: stack ?? "local" };
  return {
    platform: resolvePlatform(parsed.config, ids).platform,
    vars: stackVarsOf(ctx.env, parsed.config.stackVariables, parsed.config.stackEnvironment).vars,
    strict: parsed.config.strictCompose,
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
  if (opts.name !== undefined && opts.positionals.length !== 1)
    throw new UsageError("render: --name names the stack of one file; give exactly one");
  return reportConfigErrors(ctx.io, () => {
    const { platform, vars, strict } = settingsOf(opts.stack, ctx);
    const stacks: StackSpec[] = [];
    const issues: ConfigIssue[] = [];
    const warnings: ConfigIssue[] = [];
    if (opts.name !== undefined && !STACK_NAME.test(opts.name))
      throw new UsageError(`render: --name "${opts.name}" must match ${STACK_NAME.source}`);
    for (const file of opts.positionals) {
      const result = parseStackFile(path.resolve(file), {
        displayPath: file,
        vars,
        platform: traefikPlatformOf(platform),
        strict: opts.strict || strict,
        ...(opts.name !== undefined ? { stackName: opts.name } : {}),
      });
      issues.push(...result.issues);
      warnings.push(...result.warnings);
      const stack = result.stack ?? result.partial;
      if (stack) stacks.push(stack);
    }
    for (const w of warnings) ctx.io.err(`warning: ${formatIssue(w)}`);
    // What the program would reject across these files and the platform: a port published twice, a
    // host+path routed by two services.
    const spec: ClusterSpec = { ...platform, stacks, secretsSet: secretsSetOf({}, []) };
    issues.push(...checkPorts(spec), ...checkRoutes(spec));
    if (issues.length > 0) {
      printIssues(ctx.io, sortIssues(issues));
      return EXIT.invalid;
    }
    const services = stacks.flatMap((s) => s.services.map(renderService));
    ctx.io.out(JSON.stringify({ services }, null, 2));
    return EXIT.ok;
  });
}
