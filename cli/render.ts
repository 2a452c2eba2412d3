// `swarmform render FILE... [--stack NAME] [--no-platform] [--full]`: the service model that the program
// registers for the given stack files, as JSON, with x-traefik expanded by the platform settings of the stack.
import * as path from "path";
import { parseClusterConfig, PlatformSpec, resolvePlatform } from "../components/config/clusterConfig";
import { parseStackFile, STACK_NAME } from "../components/config/compose";
import { parseImageRef } from "../components/config/compose-values";
import { ConfigError, formatIssue } from "../components/config/errors";
import { readPulumiStackFile, sortIssues, stackVarsOf, traefikPlatformOf } from "../components/config/load";
import { checkPorts, checkRoutes, secretsSetOf } from "../components/config/rules";
import { ClusterSpec, ConfigIssue, ServiceSpec, StackSpec } from "../components/config/types";
import {
  CliContext,
  EXIT,
  findProjectRoot,
  parseCommandArgs,
  printIssues,
  reportConfigErrors,
  stackConfigOf,
  UsageError,
} from "./common";

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

/** What `--full` prints in place of a value that looks secret. */
export const MASKED = "<masked>";

/** Environment variable names whose values `--full` masks: passwords, secrets, tokens, keys, credentials. */
export const SECRET_ENV_NAME =
  /PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH/i;

/** The environment of a service with the values of secret-looking names masked. */
export function maskEnvironment(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, SECRET_ENV_NAME.test(k) ? MASKED : v]));
}

/** Optional fields of a service that `--full` always prints, as null when unset. */
const FULL_OPTIONAL = [
  "command",
  "entrypoint",
  "user",
  "healthcheck",
  "restartPolicy",
  "rollbackConfig",
  "resources",
  "endpointMode",
] as const satisfies readonly (keyof ServiceSpec)[];

/** Fields of the spec that are not registered as such: where it came from, and x-traefik (it is in `labels`). */
const NOT_REGISTERED: readonly (keyof ServiceSpec)[] = ["stack", "key", "origin", "traefik"];

/** The platform registry, whose credentials the program gives to every service whose image is on it. */
export interface PlatformRegistry {
  /** `<registry.host>:<traefik.ports.registry>`. */
  readonly serverAddress: string;
  readonly username: string;
}

/**
 * The printed model of a service with `--full`: the default fields, then every other field of the ServiceSpec
 * that the program registers (environment with secret-looking values masked, mounts, secrets, configs,
 * healthcheck, restart, update and rollback policy, resources, placement preferences, ...), and the registry
 * credentials (password masked) when the image is on the platform registry. A field added to ServiceSpec shows
 * up here without a change.
 */
export function renderServiceFull(s: ServiceSpec, registry?: PlatformRegistry): Record<string, unknown> {
  const base = renderService(s);
  const rest: Record<string, unknown> = { ...s };
  for (const k of [...Object.keys(base), ...NOT_REGISTERED]) delete rest[k];
  const ref = parseImageRef(s.image);
  const onRegistry = registry !== undefined && ref.ok && ref.value.registry === registry.serverAddress;
  return {
    ...base,
    environment: maskEnvironment(s.environment),
    ...Object.fromEntries(FULL_OPTIONAL.map((k) => [k, null])),
    ...Object.fromEntries(Object.entries(rest).filter(([k, v]) => k !== "environment" && v !== undefined)),
    registryAuth: onRegistry ? { ...registry, password: MASKED } : null,
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
 * Platform and variables for rendering: from `stack` (its Pulumi.NAME.yaml) when given, else the `local`
 * defaults. Throws a ConfigError when that config is invalid.
 */
function settingsOf(
  stack: { name: string; file: string } | undefined,
  ctx: CliContext,
): { platform: PlatformSpec; vars: Record<string, string | undefined>; strict: boolean } {
  const read = stack !== undefined ? readPulumiStackFile(stack.file) : undefined;
  const parsed = parseClusterConfig(read?.config ?? DEFAULT_RENDER_CONFIG);
  if (!parsed.config) throw new ConfigError(parsed.issues);
  const ids = { project: read?.project ?? "swarmform", stack: stack?.name ?? "local" };
  return {
    platform: resolvePlatform(parsed.config, ids).platform,
    vars: stackVarsOf(ctx.env, parsed.config.stackVariables, parsed.config.stackEnvironment).vars,
    strict: parsed.config.strictCompose,
  };
}

/** Runs `swarmform render`. File arguments are relative to the current directory. */
export function runRender(args: readonly string[], ctx: CliContext): number {
  const opts = parseCommandArgs("render", args, ctx.cwd, {
    flags: ["no-platform", "full", "strict"],
    options: ["name"],
    metavars: { name: "STACK" },
  });
  if (opts.positionals.length === 0) throw new UsageError("render: give at least one stack file");
  if (opts.stacks.length > 1) {
    throw new UsageError("render: --stack is given more than once; render takes the platform of one stack");
  }
  let stack: { name: string; file: string } | undefined;
  if (opts.stacks.length === 1) {
    const name = opts.stacks[0];
    const { file, missing } = stackConfigOf(findProjectRoot(ctx.cwd), name, ctx.cwd);
    if (missing !== undefined) {
      ctx.io.err(missing); // the same line as `validate --stack NAME`
      return EXIT.invalid;
    }
    stack = { name, file };
  }
  if (opts.options.name !== undefined && opts.positionals.length !== 1)
    throw new UsageError("render: --name names the stack of one file; give exactly one");
  return reportConfigErrors(ctx.io, () => {
    const { platform, vars, strict } = settingsOf(stack, ctx);
    const stacks: StackSpec[] = [];
    const issues: ConfigIssue[] = [];
    const warnings: ConfigIssue[] = [];
    if (opts.options.name !== undefined && !STACK_NAME.test(opts.options.name))
      throw new UsageError(`render: --name "${opts.options.name}" must match ${STACK_NAME.source}`);
    for (const file of opts.positionals) {
      const result = parseStackFile(path.resolve(ctx.cwd, file), {
        displayPath: file,
        vars,
        platform: traefikPlatformOf(platform),
        strict: opts.flags.strict || strict,
        ...(opts.options.name !== undefined ? { stackName: opts.options.name } : {}),
      });
      issues.push(...result.issues);
      warnings.push(...result.warnings);
      const stack = result.stack ?? result.partial;
      if (stack) stacks.push(stack);
    }
    for (const w of warnings) ctx.io.err(`warning: ${formatIssue(w)}`);
    // What the program would reject across these files and (unless --no-platform) the platform: a port
    // published twice, a host+path routed by two services.
    const spec: ClusterSpec = { ...platform, stacks, secretsSet: secretsSetOf({}, []) };
    const scope = { platform: !opts.flags["no-platform"] };
    if (issues.length === 0) issues.push(...checkPorts(spec, scope), ...checkRoutes(spec, scope));
    if (issues.length > 0) {
      printIssues(ctx.io, sortIssues(issues));
      return EXIT.invalid;
    }
    const registry: PlatformRegistry | undefined =
      platform.registry.enabled && !opts.flags["no-platform"]
        ? {
            serverAddress: `${platform.registry.host}:${platform.traefik.ports.registry}`,
            username: platform.registry.user,
          }
        : undefined;
    const render = (s: ServiceSpec): object =>
      opts.flags.full ? renderServiceFull(s, registry) : renderService(s);
    const services = stacks.flatMap((s) => s.services.map(render));
    ctx.io.out(JSON.stringify({ services }, null, 2));
    return EXIT.ok;
  });
}
