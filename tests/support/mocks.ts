/* eslint-disable @typescript-eslint/no-explicit-any -- the mock monitor and its protobuf requests are untyped internals, and captured inputs are arbitrary JSON */
// Runs the Swarmform program (index.ts) under `pulumi.runtime.setMocks` and captures every resource
// registration with plain (resolved) inputs, so tests can assert on the graph or replay the docker
// resources against a real engine.
//
// Pattern (and why): the Pulumi runtime keeps its settings, config and monitor in a process-global store
// (`global.globalStore`), while a program's resources are created when its module is first required. So
// each run (1) sets mocks + config on the global store, (2) requires index.ts inside
// `jest.isolateModules` so the program (and every module it loads) runs afresh, then (3) waits for the
// exported outputs and for outstanding RPCs. Runs must therefore be SEQUENTIAL (await one before
// starting the next; jest runs the tests of one file one after another, and each test file has its own
// global, so files may run in parallel workers).
//
// API: runProgram({ stackFile, secrets?, config?, env?, preview?, allowError? }) runs index.ts for one
// Pulumi.<stack>.yaml; runMocked(fn, { project, stack, config?, secretKeys? }) runs any code the same way
// (e.g. one component from a hand-built spec). Both resolve to { resources: CapturedResource[], outputs,
// secretOutputs, error? }. Helpers: ofType, getResource, byUrn, decodeData, stackFiles, DOCKER_TYPES,
// sampleClusterSpec, sampleServiceSpec.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { readPulumiStackFile } from "../../components/config/load";
import { generateSshKeyPair } from "../../components/hosts/transport";
import type { ClusterSpec, ServiceSpec } from "../../components/config/types";

/** One registered resource, as the engine would have seen it. */
export interface CapturedResource {
  /** Pulumi type token, e.g. `docker:index/service:Service`, `swarmform:index:SwarmCluster`, `pulumi:providers:docker`. */
  readonly type: string;
  /** Logical (Pulumi) name. */
  readonly name: string;
  readonly urn: string;
  /** false for component resources. */
  readonly custom: boolean;
  /** The id the mock gave it (custom resources only). */
  readonly id?: string;
  /** Inputs with every Output resolved and secrets unwrapped: plain JSON-like values. */
  readonly inputs: Record<string, any>;
  /** Top-level input names whose value was secret (a secret nested anywhere inside marks the whole input). */
  readonly secretInputs: readonly string[];
  /** Parent URN (undefined only for top-level resources). */
  readonly parent?: string;
  /** Provider reference `<provider urn>::<provider id>`, when one was given or inherited. */
  readonly provider?: string;
  /** URNs of every resource this one depends on (dependsOn plus those behind its input Outputs). */
  readonly dependencies: readonly string[];
  /** Per input: URNs of the resources its value came from. */
  readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
  readonly additionalSecretOutputs: readonly string[];
  readonly replaceOnChanges: readonly string[];
  readonly deleteBeforeReplace: boolean;
}

export interface RunProgramOptions {
  /** Stack file in the project root, e.g. `Pulumi.dev.yaml` (or an absolute path). */
  readonly stackFile: string;
  /**
   * Secret config values, by key without namespace (`registryPassword`): the values of the file's `secure:`
   * keys, and any other key to set as a secret. A secure key with no value here is left out of the config
   * (so the program generates the password).
   */
  readonly secrets?: Readonly<Record<string, string>>;
  /**
   * Extra config, by key without namespace. Each key REPLACES the file's value for that key (no deep merge);
   * non-string values are passed as JSON, like the CLI does.
   */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Environment variables set during the run (restored afterwards). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Project root. Default: the repository root. */
  readonly rootDir?: string;
  /** Program module to require, relative to rootDir. Default `index.ts`. */
  readonly program?: string;
  /** Run as `pulumi preview` (unknown ids). Default false (an `up`). */
  readonly preview?: boolean;
  /** Resolve with `error` set instead of rejecting when the program throws. Default false. */
  readonly allowError?: boolean;
}

export interface ProgramRun {
  readonly project: string;
  readonly stack: string;
  /** In registration order. */
  readonly resources: readonly CapturedResource[];
  /** The program's exports, resolved (undefined when an Output resolved to undefined). */
  readonly outputs: Record<string, unknown>;
  /** Names of exported outputs that were secret. */
  readonly secretOutputs: readonly string[];
  /** The program's error, with `allowError`. */
  readonly error?: unknown;
}

export const ROOT_DIR = path.resolve(__dirname, "..", "..");
export const NAMESPACE = "swarmform";

/** What the config layer's readPulumiStackFile returns: keys without namespace, `secure:` keys listed. */
type StackFile = { config: Record<string, unknown>; secretKeys: readonly string[]; project?: string };

const bare = (k: string) => (k.includes(":") ? k.slice(k.indexOf(":") + 1) : k);
const qualified = (k: string) => (k.includes(":") ? k : `${NAMESPACE}:${k}`);

/** The config map the CLI would hand the program: namespaced keys, string values (objects as JSON). */
export function stackConfig(
  stack: StackFile,
  secrets: Readonly<Record<string, string>> = {},
  overrides: Readonly<Record<string, unknown>> = {},
): { config: Record<string, string>; secretKeys: string[] } {
  const secureKeys = new Set(stack.secretKeys.map(bare));
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const put = (key: string, value: unknown) => {
    config[qualified(key)] = typeof value === "string" ? value : JSON.stringify(value);
  };
  for (const [k, v] of Object.entries(stack.config)) {
    if (secureKeys.has(bare(k))) continue;
    put(k, v);
  }
  for (const key of new Set([...secureKeys, ...Object.keys(secrets).map(bare)])) {
    if (secrets[key] === undefined) continue;
    put(key, secrets[key]);
    secretKeys.push(qualified(key));
  }
  for (const [k, v] of Object.entries(overrides)) put(k, v);
  return { config, secretKeys };
}

/** Plausible provider state for a mocked resource: its inputs, an id, and a few computed outputs. */
function mockState(
  args: pulumi.runtime.MockResourceArgs,
  preview: boolean,
): { id: string | undefined; state: Record<string, unknown> } {
  // In a preview, new resources have no id yet (unknown), and no computed outputs.
  if (preview) return { id: undefined, state: { ...args.inputs } };
  const id = `${args.name}-id`;
  const state: Record<string, unknown> = { ...args.inputs };
  if (args.type === "random:index/randomPassword:RandomPassword") {
    // Deterministic stand-in for a generated password (the real one is random and stored in state).
    state.result = `generated-${args.name}-0123456789abcdef`.slice(0, args.inputs.length ?? 32);
  }
  if (args.type.startsWith("docker:") && state.name === undefined) state.name = args.name;
  return { id, state };
}

function isRpcSecret(v: any): boolean {
  return (
    v !== null && typeof v === "object" && v[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
  );
}

function unwrapDeep(v: any): any {
  if (isRpcSecret(v)) return unwrapDeep(v.value);
  if (Array.isArray(v)) return v.map(unwrapDeep);
  if (v !== null && typeof v === "object" && v.constructor === Object) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapDeep(x)]));
  }
  return v;
}

function urnOf(parent: string, type: string, name: string, project: string, stack: string): string {
  let t = type;
  if (parent) t = parent.split("::")[2].split("$").pop() + "$" + type;
  return `urn:pulumi:${stack}::${project}::${t}::${name}`;
}

async function resolveOutputs(mod: Record<string, unknown>) {
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [k, v] of Object.entries(mod)) {
    if (pulumi.Output.isInstance(v)) {
      if (await pulumi.isSecret(v)) secretOutputs.push(k);
      outputs[k] = await (v as any).promise();
    } else {
      outputs[k] = v;
    }
  }
  return { outputs, secretOutputs };
}

/**
 * A real private key (OpenSSH format), made once per process, for the `sshPrivateKey` secret of shipped
 * stacks whose nodes are reached over SSH (dev: libvirt). Under mocks no connection is made, but the libvirt
 * source derives from it the public key that cloud-init authorizes, so it must parse.
 */
export const TEST_SSH_PRIVATE_KEY: string = generateSshKeyPair().private;

/**
 * Runs the program once under mocks for one stack file and returns every registered resource and the
 * resolved exports. Await it before starting another run (see the note at the top of this file).
 */
export async function runProgram(opts: RunProgramOptions): Promise<ProgramRun> {
  const rootDir = opts.rootDir ?? ROOT_DIR;
  const stackPath = path.isAbsolute(opts.stackFile) ? opts.stackFile : path.join(rootDir, opts.stackFile);
  const m = /^Pulumi\.(.+)\.ya?ml$/.exec(path.basename(stackPath));
  if (!m) throw new Error(`${stackPath}: expected a file named Pulumi.<stack>.yaml`);
  const stack = m[1];
  const file = readPulumiStackFile(stackPath);
  const project = file.project ?? NAMESPACE;
  const { config, secretKeys } = stackConfig(file, opts.secrets, opts.config);

  const programPath = path.join(rootDir, opts.program ?? "index.ts");
  return runMocked(
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    () => require(programPath),
    { project, stack, config, secretKeys, env: opts.env, preview: opts.preview, allowError: opts.allowError },
  );
}

export interface RunMockedOptions {
  readonly project: string;
  readonly stack: string;
  /** Full config map: namespaced keys (`swarmform:domain`), string values. Default: empty. */
  readonly config?: Readonly<Record<string, string>>;
  /** Namespaced keys of `config` that are secret. Default: none. */
  readonly secretKeys?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly preview?: boolean;
  readonly allowError?: boolean;
}

/**
 * Runs `program` under mocks and captures its resources, like {@link runProgram} but for any code (e.g. one
 * component built from a hand-made spec). `program` runs inside `jest.isolateModules`, so modules it
 * `require`s are loaded afresh; it returns the "exports" (Outputs are resolved).
 */
export async function runMocked(
  program: () => Record<string, unknown>,
  opts: RunMockedOptions,
): Promise<ProgramRun> {
  const { project, stack } = opts;
  // Each run loads a fresh copy of the Pulumi SDK, and each copy adds a process exit listener.
  process.setMaxListeners(Math.max(process.getMaxListeners(), 100));
  const resources: CapturedResource[] = [];
  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    savedEnv[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let error: unknown;
  let mod: Record<string, unknown> = {};
  try {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => mockState(args, opts.preview ?? false),
        call: (args) => args.inputs,
      },
      project,
      stack,
      opts.preview ?? false,
    );
    pulumi.runtime.setAllConfig({ ...(opts.config ?? {}) }, [...(opts.secretKeys ?? [])]);
    captureRegistrations(resources, project, stack);
    try {
      jest.isolateModules(() => {
        mod = program();
      });
      const resolved = await resolveOutputs(mod);
      await (pulumi.runtime as any).waitForRPCs();
      return finish(resolved.outputs, resolved.secretOutputs);
    } catch (e) {
      error = e;
      await (pulumi.runtime as any).waitForRPCs().catch(() => undefined);
      if (!opts.allowError) throw e;
      return finish({}, []);
    }
  } finally {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }

  function finish(outputs: Record<string, unknown>, secretOutputs: string[]): ProgramRun {
    return { project, stack, resources, outputs, secretOutputs, error };
  }
}

/** Wraps the mock monitor's registerResource to record what only the request carries (parent, deps...). */
function captureRegistrations(into: CapturedResource[], project: string, stack: string): void {
  const monitor = pulumi.runtime.getMonitor() as any;
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
    const type: string = req.getType();
    const raw = pulumi.runtime.deserializeProperties(req.getObject());
    const inputs: Record<string, any> = {};
    const secretInputs: string[] = [];
    for (const [k, v] of Object.entries(raw)) {
      if (isRpcSecret(v) || JSON.stringify(v ?? null).includes(pulumi.runtime.specialSecretSig)) {
        secretInputs.push(k);
      }
      inputs[k] = unwrapDeep(v);
      // Provider config travels as strings (JSON for lists/maps), as the CLI passes it; parse it back.
      if (type.startsWith("pulumi:providers:") && typeof inputs[k] === "string" && /^[[{]/.test(inputs[k])) {
        try {
          inputs[k] = JSON.parse(inputs[k]);
        } catch {
          // not JSON: keep the string
        }
      }
    }
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps: any, key: string) => {
      propertyDependencies[key] = deps.getUrnsList();
    });
    const parent: string = req.getParent();
    const name: string = req.getName();
    const entry: any = {
      type,
      name,
      urn: urnOf(parent, type, name, project, stack),
      custom: req.getCustom(),
      inputs,
      secretInputs,
      parent: parent || undefined,
      provider: req.getProvider() || undefined,
      dependencies: req.getDependenciesList(),
      propertyDependencies,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      replaceOnChanges: req.getReplaceonchangesList(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
    };
    into.push(entry);
    original(req, (err: any, resp: any) => {
      if (resp && typeof resp.getId === "function") entry.id = resp.getId() || undefined;
      if (resp && typeof resp.getUrn === "function") entry.urn = resp.getUrn() || entry.urn;
      callback(err, resp);
    });
  };
}

// ---- helpers for tests -----------------------------------------------------------------------------

/** Resources of one type token. */
export function ofType(run: Pick<ProgramRun, "resources">, type: string): CapturedResource[] {
  return run.resources.filter((r) => r.type === type);
}

/** The one resource with this type and logical name (throws if absent). */
export function getResource(
  run: Pick<ProgramRun, "resources">,
  type: string,
  name: string,
): CapturedResource {
  const r = run.resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`no ${type} named ${name}; have: ${run.resources.map((x) => x.name).join(", ")}`);
  return r;
}

/** The resource with this URN (throws if absent). */
export function byUrn(run: Pick<ProgramRun, "resources">, urn: string): CapturedResource {
  const r = run.resources.find((x) => x.urn === urn);
  if (!r) throw new Error(`no resource ${urn}`);
  return r;
}

/** Docker type tokens, for consumers that replay the docker resources on a real engine. */
export const DOCKER_TYPES = {
  provider: "pulumi:providers:docker",
  network: "docker:index/network:Network",
  service: "docker:index/service:Service",
  config: "docker:index/serviceConfig:ServiceConfig",
  secret: "docker:index/secret:Secret",
  volume: "docker:index/volume:Volume",
} as const;

/** Decodes the base64 `data` of a captured docker Secret or ServiceConfig. */
export function decodeData(r: CapturedResource): string {
  return Buffer.from(String(r.inputs.data ?? ""), "base64").toString("utf8");
}

/** The `Pulumi.<stack>.yaml` files of the project root, sorted. */
export function stackFiles(rootDir = ROOT_DIR): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("fs") as typeof import("fs");
  return fs
    .readdirSync(rootDir)
    .filter((f) => /^Pulumi\.[^.]+\.ya?ml$/.test(f))
    .sort();
}

// ---- hand-built specs for unit tests that do not go through the config loader --------------------------

/** A minimal valid ServiceSpec of stack `app`; `over` replaces fields. */
export function sampleServiceSpec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    stack: "app",
    key: "web",
    name: "app_web",
    image: "nginx:1.27",
    environment: {},
    networks: [],
    mounts: [],
    secrets: [],
    configs: [],
    ports: [],
    mode: "replicated",
    replicas: 1,
    labels: { "com.docker.stack.namespace": "app" },
    containerLabels: { "com.docker.stack.namespace": "app" },
    constraints: [],
    preferences: [],
    origin: { file: "stacks/app.yaml", line: 3 },
    ...over,
  };
}

/** A valid ClusterSpec (project `swarmform`, stack `test`) with every platform part enabled; `over` replaces fields. */
export function sampleClusterSpec(over: Partial<ClusterSpec> = {}): ClusterSpec {
  const base: ClusterSpec = {
    project: "swarmform",
    stack: "test",
    environment: "dev",
    domain: "test.example.org",
    docker: { host: "ssh://deploy@manager-1.test.example.org" },
    nodes: {
      source: "existing",
      managers: 1,
      workers: 0,
      hosts: [],
      labels: {},
      local: { initSwarm: false, labels: {} },
      swarm: {
        defaultAddrPool: ["10.20.0.0/16"],
        dataPathPort: 4789,
        certExpiry: "2160h0m0s",
        forceQuorumLoss: false,
      },
    },
    networks: [
      {
        name: "public",
        physicalName: "swarmform-test_public",
        subnet: "10.30.0.0/24",
        encrypted: true,
        attachable: true,
        labels: { tier: "edge" },
      },
    ],
    publicNetwork: "public",
    traefik: {
      image: "traefik:v3.7",
      placementLabel: "swarmform.traefik=true",
      tls: "acme",
      acme: { email: "ops@example.org", resolverName: "letsencrypt" },
      dashboard: { enabled: true, host: "traefik.test.example.org", user: "admin" },
      ports: { web: 80, websecure: 443, registry: 5000 },
    },
    registry: {
      enabled: true,
      image: "registry:2.8.3",
      host: "registry.test.example.org",
      user: "swarmform",
      storageLabel: "swarmform.registry=true",
    },
    monitoring: {
      enabled: true,
      prometheusImage: "prom/prometheus:v3.5.0",
      nodeExporterImage: "prom/node-exporter:v1.9.1",
      cadvisorImage: "gcr.io/cadvisor/cadvisor:v0.52.1",
      prometheusHost: "prometheus.test.example.org",
      retention: "15d",
    },
    stacks: [],
    secretsSet: {
      registryPassword: false,
      traefikDashboardPassword: false,
      sshPrivateKey: false,
      stackSecrets: false,
    },
  };
  return { ...base, ...over };
}
