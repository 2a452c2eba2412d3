// Loading: Pulumi config (from a Pulumi.<stack>.yaml file or from the running program) plus every stack
// file it references, validated as a whole into one ClusterSpec. Validation runs fully before anything
// else: the result is a complete spec, or a ConfigError carrying every issue.
import * as fs from "fs";
import * as path from "path";
import type * as PulumiSdk from "@pulumi/pulumi";
import { parseDocument } from "yaml";
import {
  parseClusterConfig,
  partialClusterConfig,
  PlatformSpec,
  resolvePlatform,
  StackEntry,
  stackEntries,
  topLevelKeyOf,
} from "./clusterConfig";
import { parseStackFile, TraefikPlatform } from "./compose";
import {
  applyImagePins,
  checkPlaintextNetworks,
  encryptByDefault,
  encryptStackNetworks,
} from "./environments";
import { ConfigError, formatIssue } from "./errors";
import { checkClusterSpec, checkSecrets, isEncryptedValue, secretsSetOf, stackSecretNamesOf } from "./rules";
import { ClusterSpec, ConfigIssue, StackSpec } from "./types";

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
  for (const [k, value] of Object.entries(block)) {
    const key = ownKey(k);
    if (key === undefined) continue;
    config[key] = value;
    if (isSecure(value)) secretKeys.push(key);
  }
  const project = (projectDoc as { name?: unknown } | undefined)?.name;
  return { config, secretKeys, ...(typeof project === "string" ? { project } : {}) };
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
  /** Base of the `${VAR}` interpolation; `stackVariables` win. Default: process.env. */
  readonly env?: Record<string, string | undefined>;
}

/** The Traefik settings that stack files are imported with (x-traefik expansion). */
export function traefikPlatformOf(
  platform: Pick<PlatformSpec, "networks" | "publicNetwork" | "traefik">,
): TraefikPlatform {
  const pub = platform.networks.find((n) => n.name === platform.publicNetwork);
  return {
    publicNetwork: pub?.physicalName ?? platform.publicNetwork,
    entrypoint: ROUTE_ENTRYPOINT,
    certResolver: platform.traefik.acme.resolverName,
  };
}

/** Interpolation variables: the environment, overlaid by `stackVariables`. */
export function stackVarsOf(
  env: Record<string, string | undefined>,
  stackVariables: Readonly<Record<string, string>>,
): Record<string, string | undefined> {
  return { ...env, ...stackVariables };
}

/**
 * Imports the stack files of `swarmform:stacks`. A missing file is an issue at its config key; a
 * stack-defined config or secret whose `file:` does not exist is an issue at its line in the stack file.
 */
export function loadStacks(
  entries: readonly StackEntry[],
  opts: { rootDir: string; vars: Record<string, string | undefined>; platform: TraefikPlatform },
): { stacks: StackSpec[]; issues: ConfigIssue[] } {
  const stacks: StackSpec[] = [];
  const issues: ConfigIssue[] = [];
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
    const result = parseStackFile(abs, {
      displayPath,
      vars: opts.vars,
      platform: opts.platform,
      ...(entry.name ? { stackName: entry.name } : {}),
    });
    issues.push(...result.issues);
    if (!result.stack) continue;
    stacks.push(result.stack);
    for (const f of [...result.stack.configs, ...result.stack.secrets]) {
      if (f.file !== undefined && !fs.existsSync(f.file)) {
        issues.push({
          origin: f.origin,
          message: `file "${path.relative(path.dirname(abs), f.file)}" of ${f.key} does not exist (paths are relative to the stack file)`,
        });
      }
    }
  }
  return { stacks, issues };
}

/** Removes issues that print the same (two checks may find one problem). */
function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const line = formatIssue(i);
    return seen.has(line) ? false : (seen.add(line), true);
  });
}

/**
 * Validates the config and every stack file it references, and returns the ClusterSpec. Throws a
 * ConfigError with every issue found (schema, cross-cutting rules, stack files) when anything is wrong.
 */
export function loadClusterSpec(input: LoadInput): ClusterSpec {
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
  const loaded = loadStacks(stackEntries(config), {
    rootDir: input.rootDir,
    vars: stackVarsOf(input.env ?? process.env, config.stackVariables),
    platform: traefikPlatformOf(resolved.platform),
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
  if (issues.length === 0) return spec;
  throw new ConfigError(dedupe(issues));
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

/**
 * Loads the spec of the running Pulumi program: project, stack and config from the runtime, stack files
 * relative to the current directory. Throws a ConfigError.
 */
export function loadClusterSpecFromPulumi(): ClusterSpec {
  const pulumi = pulumiSdk();
  const isSecret = runtimeSecretKeys(pulumi);
  const config: Record<string, unknown> = {};
  const secretKeys: string[] = [];
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [k, v] of Object.entries(pulumi.runtime.allConfig())) {
    if (!k.startsWith(prefix)) continue;
    const key = k.slice(prefix.length);
    config[key] = parseRuntimeConfigValue(v);
    if (isSecret(k)) secretKeys.push(key);
  }
  return loadClusterSpec({
    project: pulumi.getProject(),
    stack: pulumi.getStack(),
    config,
    secretKeys,
    rootDir: process.cwd(),
  });
}
