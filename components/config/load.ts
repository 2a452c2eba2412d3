// Loading: Pulumi config (from a Pulumi.<stack>.yaml file or from the running program) plus every stack
// file it references, validated as a whole into one ClusterSpec. Validation runs fully before anything
// else: the result is a complete spec, or a ConfigError carrying every issue.
import * as fs from "fs";
import * as path from "path";
import type * as PulumiSdk from "@pulumi/pulumi";
import { parseDocument } from "yaml";
import {
  certResolverOf,
  parseClusterConfig,
  partialClusterConfig,
  PlatformSpec,
  resolvePlatform,
  StackEntry,
  stackEntries,
  topLevelKeyOf,
} from "./clusterConfig";
import { byPosition, parseStackFile, STACK_NAME, TraefikPlatform } from "./compose";
import {
  applyImagePins,
  checkPlaintextNetworks,
  encryptByDefault,
  encryptStackNetworks,
} from "./environments";
import { ConfigError, formatIssue } from "./errors";
import { checkClusterSpec, checkSecrets, isEncryptedValue, secretsSetOf, stackSecretNamesOf } from "./rules";
import { ClusterSpec, ConfigIssue, StackSpec, VariableUse } from "./types";

/** The config namespace of this project. */
export const CONFIG_NAMESPACE = "swarmform";

/** Traefik entrypoint that app routes use (the program names Traefik's HTTPS entrypoint this way). */
export const ROUTE_ENTRYPOINT = "websecure";

/** The config of one `Pulumi.<stack>.yaml`, in the `swarmform` namespace. */
export interface PulumiStackFile {
  /** Keys without the `swarmform:` prefix; structured values as YAML gave them; secrets as `{ secure }`. */
  readonly config: Record<string, unknown>;
  /** Keys (without prefix) whose value is, or contains, `{ secure: ... }`. */
  readonly secretKeys: string[];
  /** `name` of the Pulumi.yaml beside the file, when there is one. */
  readonly project?: string;
  /** Full keys of the file in other namespaces (`swarmfrom:domain`), checked for likely typos. */
  readonly otherKeys: string[];
}

/** True for a value that is, or contains, a Pulumi secret as stored in a stack file. */
function isSecure(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  return isEncryptedValue(value) || Object.values(value).some(isSecure);
}

/** Parses a YAML file, or throws a ConfigError at file:line. */
function readYaml(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError([{ origin: { file, line: 1 }, message: `cannot read: ${(e as Error).message}` }]);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        origin: { file, line: e.linePos?.[0].line ?? 1 },
        message: `YAML: ${e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, "")}`,
      })),
    );
  }
  return doc.toJS();
}

/** Strips the namespace of a config key; undefined for keys of other namespaces. */
function ownKey(key: string): string | undefined {
  const colon = key.indexOf(":");
  if (colon < 0) return key;
  return key.slice(0, colon) === CONFIG_NAMESPACE ? key.slice(colon + 1) : undefined;
}

/** A `config:` block as a map, or undefined when it is not one. */
function configBlock(doc: unknown): Record<string, unknown> | undefined {
  const block = doc === null || doc === undefined ? {} : ((doc as { config?: unknown }).config ?? {});
  return typeof doc === "object" && typeof block === "object" && block !== null && !Array.isArray(block)
    ? (block as Record<string, unknown>)
    : undefined;
}

/**
 * The defaults that the project file's `config:` block gives (as Pulumi applies them to every stack): a
 * plain value, or the `default` / `value` of a declaration like `{ type, description, default }`.
 */
export function projectConfigDefaults(projectDoc: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(configBlock(projectDoc) ?? {})) {
    const key = ownKey(k);
    if (key === undefined) continue;
    if (v === null || typeof v !== "object" || Array.isArray(v)) out[key] = v;
    else if ("value" in v) out[key] = (v as { value: unknown }).value;
    else if ("default" in v) out[key] = (v as { default: unknown }).default;
  }
  return out;
}

/**
 * Reads the `config:` block of a Pulumi stack file, over the defaults of the Pulumi.yaml beside it. Keys
 * of other namespaces are ignored; a key without a namespace belongs to the project, as Pulumi reads it.
 * Throws a ConfigError if a file cannot be read or is not YAML.
 */
export function readPulumiStackFile(file: string): PulumiStackFile {
  const block = configBlock(readYaml(file));
  if (!block)
    throw new ConfigError([{ origin: { file, line: 1 }, message: "must be a map with a `config:` map" }]);
  const projectFile = path.join(path.dirname(file), "Pulumi.yaml");
  const projectDoc = fs.existsSync(projectFile) ? readYaml(projectFile) : undefined;
  const config: Record<string, unknown> = projectConfigDefaults(projectDoc);
  const secretKeys: string[] = [];
  const otherKeys: string[] = [];
  for (const [k, value] of Object.entries(block)) {
    const key = ownKey(k);
    if (key === undefined) {
      otherKeys.push(k);
      continue;
    }
    config[key] = value;
    if (isSecure(value)) secretKeys.push(key);
  }
  const project = (projectDoc as { name?: unknown } | undefined)?.name;
  return { config, secretKeys, otherKeys, ...(typeof project === "string" ? { project } : {}) };
}

/** Input of {@link loadClusterSpec}. */
export interface LoadInput {
  readonly project: string;
  readonly stack: string;
  /** Config keys without the `swarmform:` prefix. */
  readonly config: Record<string, unknown>;
  /** Keys (without prefix) whose values are secret. */
  readonly secretKeys: readonly string[];
  /** Project root: stack file paths are relative to it. */
  readonly rootDir: string;
  /**
   * The process environment. Only the variables named in `swarmform:stackEnvironment` are read from it.
   * Default: process.env.
   */
  readonly env?: Record<string, string | undefined>;
  /** Full config keys of other namespaces, checked for likely typos of `swarmform`. Default: none. */
  readonly otherKeys?: readonly string[];
  /** Keys that swarm ignores are errors (`--strict`); else `swarmform:strictCompose` decides. */
  readonly strict?: boolean;
}

/** What {@link loadCluster} returns: the spec, and warnings (keys that swarm ignores). */
export interface LoadResult {
  readonly spec: ClusterSpec;
  readonly warnings: readonly ConfigIssue[];
}

/** The Traefik settings that stack files are imported with (x-traefik expansion). */
export function traefikPlatformOf(
  platform: Pick<PlatformSpec, "networks" | "publicNetwork" | "traefik">,
): TraefikPlatform {
  const pub = platform.networks.find((n) => n.name === platform.publicNetwork);
  return {
    publicNetwork: pub?.physicalName ?? platform.publicNetwork,
    entrypoint: ROUTE_ENTRYPOINT,
    certResolver: certResolverOf(platform.traefik),
  };
}

/**
 * Interpolation variables: `stackVariables`, and the variables named in `stackEnvironment` taken from the
 * environment where they are set there (the environment wins for those). Nothing else is read from the
 * environment, so a deploy does not depend on the shell it runs in.
 */
export function stackVarsOf(
  env: Readonly<Record<string, string | undefined>>,
  stackVariables: Readonly<Record<string, string>>,
  stackEnvironment: readonly string[] = [],
): { vars: Record<string, string | undefined>; fromEnvironment: string[] } {
  const fromEnvironment = stackEnvironment.filter((k) => env[k] !== undefined);
  const vars: Record<string, string | undefined> = { ...stackVariables };
  for (const k of fromEnvironment) vars[k] = env[k];
  return { vars, fromEnvironment };
}

/** Edit distance between two short strings (for likely typos). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Keys of other namespaces whose namespace looks like a misspelt `swarmform` (`swarmfrom:domain`). */
export function checkNamespaceTypos(otherKeys: readonly string[]): ConfigIssue[] {
  return otherKeys.flatMap((k) => {
    const ns = k.slice(0, k.indexOf(":"));
    const close =
      ns.toLowerCase() === CONFIG_NAMESPACE || editDistance(ns.toLowerCase(), CONFIG_NAMESPACE) <= 2;
    return close && ns !== CONFIG_NAMESPACE
      ? [
          {
            origin: { key: k },
            message: `namespace "${ns}" is likely a typo of "${CONFIG_NAMESPACE}": Swarmform reads only ${CONFIG_NAMESPACE}:* keys, so this key is not used; rename it to ${CONFIG_NAMESPACE}:${k.slice(ns.length + 1)}`,
          },
        ]
      : [];
  });
}

/**
 * Imports the stack files of `swarmform:stacks`. A missing file is an issue at its config key; a
 * stack-defined config or secret whose `file:` does not exist is an issue at its line in the stack file.
 */
export function loadStacks(
  entries: readonly StackEntry[],
  opts: {
    rootDir: string;
    vars: Record<string, string | undefined>;
    platform: TraefikPlatform;
    strict?: boolean;
    fromEnvironment?: readonly string[];
  },
): { stacks: StackSpec[]; issues: ConfigIssue[]; warnings: ConfigIssue[] } {
  const stacks: StackSpec[] = [];
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  for (const entry of entries) {
    const abs = path.resolve(opts.rootDir, entry.file);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) {
      issues.push({
        origin: { key: entry.key },
        message: `stack file "${entry.file}" does not exist; paths are relative to the project root (${opts.rootDir})`,
      });
      continue;
    }
    const displayPath = path.relative(opts.rootDir, abs);
    let stackName = entry.name;
    if (stackName !== undefined && !STACK_NAME.test(stackName)) {
      issues.push({
        origin: { key: `${entry.key}.name` },
        message: `stack name "${stackName}" of ${entry.file} must be lower-case letters, digits, '_' and '-', starting with a letter or digit (${STACK_NAME.source})`,
      });
      stackName = "invalid-name";
    }
    const result = parseStackFile(abs, {
      displayPath,
      vars: opts.vars,
      platform: opts.platform,
      strict: opts.strict ?? false,
      fromEnvironment: opts.fromEnvironment ?? [],
      ...(stackName !== undefined ? { stackName } : {}),
    });
    issues.push(...result.issues);
    warnings.push(...result.warnings);
    const stack = result.stack ?? result.partial;
    if (stack) stacks.push(stack);
  }
  return { stacks, issues, warnings };
}

/** Removes issues that print the same (two checks may find one problem). */
function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const line = formatIssue(i);
    return seen.has(line) ? false : (seen.add(line), true);
  });
}

/** Config-key issues first (in the order found), then file issues sorted by file and line. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [
    ...issues.filter((i) => "key" in i.origin),
    ...byPosition(issues.filter((i) => !("key" in i.origin))),
  ];
}

/**
 * Validates the config and every stack file it references, and returns the ClusterSpec. Throws a
 * ConfigError with every issue found (schema, cross-cutting rules, stack files) when anything is wrong.
 */
export function loadClusterSpec(input: LoadInput): ClusterSpec {
  return loadCluster(input).spec;
}

/**
 * Like {@link loadClusterSpec}, and also returns the warnings: keys that swarm ignores (errors instead
 * with `strict` or `swarmform:strictCompose`).
 */
export function loadCluster(input: LoadInput): LoadResult {
  const parsed = parseClusterConfig(input.config);
  // When some keys are invalid, the other checks still run on a partial config (those keys back to their
  // defaults), so that one run reports every problem; what they find under a dropped key is ignored.
  const { config, dropped } = parsed.config
    ? { config: parsed.config, dropped: [] }
    : partialClusterConfig(input.config, parsed.issues);
  if (!config) throw new ConfigError(parsed.issues);
  const derived: ConfigIssue[] = [];
  const resolved = resolvePlatform(config, input);
  derived.push(...resolved.issues);
  derived.push(...checkSecrets(input.config, input.secretKeys, config.nodes.source));
  derived.push(...checkNamespaceTypos(input.otherKeys ?? []));
  const { vars, fromEnvironment } = stackVarsOf(
    input.env ?? process.env,
    config.stackVariables,
    config.stackEnvironment,
  );
  const loaded = loadStacks(stackEntries(config), {
    rootDir: input.rootDir,
    vars,
    fromEnvironment,
    platform: traefikPlatformOf(resolved.platform),
    strict: input.strict ?? config.strictCompose,
  });
  derived.push(...loaded.issues);
  const pinned = applyImagePins(loaded.stacks, config.images, config.environment);
  derived.push(...pinned.issues);
  derived.push(
    ...checkPlaintextNetworks(config.plaintextNetworks, resolved.platform.networks, loaded.stacks),
  );
  const encrypt = encryptByDefault(config.encryptNetworks, config.environment);
  const spec: ClusterSpec = {
    ...resolved.platform,
    stacks: encryptStackNetworks(pinned.stacks, encrypt, config.plaintextNetworks),
    secretsSet: secretsSetOf(input.config, input.secretKeys),
    stackSecretNames: stackSecretNamesOf(input.config),
  };
  derived.push(...checkClusterSpec(spec));
  const issues = [...parsed.issues, ...derived.filter((i) => !dropped.includes(topLevelKeyOf(i) ?? ""))];
  if (issues.length === 0) return { spec, warnings: loaded.warnings };
  throw new ConfigError(sortIssues(dedupe(issues)));
}

/** Parses a value of `pulumi.runtime.allConfig()`: structured values arrive as JSON strings. */
export function parseRuntimeConfigValue(value: string): unknown {
  if (!/^\s*[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The Pulumi SDK, loaded on first use: the CLI validates without it, and it takes a second to load. */
function pulumiSdk(): typeof PulumiSdk {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("@pulumi/pulumi");
}

/** Which full config keys the running Pulumi program holds as secrets. */
function runtimeSecretKeys(pulumi: typeof PulumiSdk): (key: string) => boolean {
  const internal = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  if (internal) return internal;
  const list: unknown = JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]");
  return (k) => Array.isArray(list) && list.includes(k);
}

/** The lines `swarmform validate` prints on stderr for these issues, joined: what `pulumi up` shows. */
export function issuesText(issues: readonly ConfigIssue[]): string {
  return issues.map(formatIssue).join("\n");
}

/**
 * Loads the spec of the running Pulumi program: project, stack and config from the runtime, stack files
 * relative to the current directory. Warnings go to `pulumi.log.warn`. An invalid config throws a
 * `pulumi.RunError` whose message is exactly what `swarmform validate` prints (the Node runtime shows a
 * RunError's message alone, without a stack trace).
 */
export function loadClusterSpecFromPulumi(): ClusterSpec {
  const pulumi = pulumiSdk();
  const isSecret = runtimeSecretKeys(pulumi);
  const config: Record<string, unknown> = {};
  const secretKeys: string[] = [];
  const otherKeys: string[] = [];
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [k, v] of Object.entries(pulumi.runtime.allConfig())) {
    if (!k.startsWith(prefix)) {
      otherKeys.push(k);
      continue;
    }
    const key = k.slice(prefix.length);
    config[key] = parseRuntimeConfigValue(v);
    if (isSecret(k)) secretKeys.push(key);
  }
  try {
    const { spec, warnings } = loadCluster({
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
      config,
      secretKeys,
      otherKeys,
      rootDir: process.cwd(),
    });
    for (const w of warnings) pulumi.log.warn(formatIssue(w));
    return spec;
  } catch (e) {
    if (e instanceof ConfigError) throw new pulumi.RunError(issuesText(e.issues));
    throw e;
  }
}

/** For each stack, the variables its file uses and where each value comes from: `stack popcube: ORG (stackVariables), ...`. */
export function describeVariables(spec: Pick<ClusterSpec, "stacks">): string[] {
  return spec.stacks
    .filter((s) => (s.variables ?? []).length > 0)
    .map(
      (s) =>
        `stack ${s.name} variables: ` +
        s.variables!.map((v) => `${v.name} (${SOURCE_TEXT[v.source]}, line ${v.line})`).join(", "),
    );
}

const SOURCE_TEXT: Record<VariableUse["source"], string> = {
  stackVariables: "from stackVariables",
  environment: "from the environment, via stackEnvironment",
  default: "unset: the file's default",
  unset: "unset: empty",
};
