// Runs the cluster under Pulumi mocks, outside any test runner, and returns the resources it registers:
// what `pulumi up` would create, without an engine, a provider plugin or a connection. `swarmform describe`
// uses it. The mocks give each resource an id (`<name>-id`) and echo its inputs as its state.
import type * as PulumiSdk from "@pulumi/pulumi";
import { CONFIG_NAMESPACE } from "../config/load";
import { ClusterSpec } from "../config/types";
import type { PlannedResource } from "./topology";

/**
 * Registers the SwarmCluster for `spec` under mocks and collects every custom resource. `config` is the
 * stack's config (keys without namespace); `secrets` are values for secret keys (stand-ins are fine: no
 * connection is made). Run it once per process: the Pulumi runtime's settings are process-wide. Rejects when
 * the program fails while it runs (an error in an apply included).
 */
export async function planUnderMocks(
  spec: ClusterSpec,
  config: Readonly<Record<string, unknown>>,
  secrets: Readonly<Record<string, string>>,
): Promise<PlannedResource[]> {
  // An error inside the program, such as one thrown in an apply, rejects nothing that is awaited here: the Pulumi
  // runtime leaves it unhandled (under `pulumi up`, the language host reports those), and what depends on the
  // failed resource waits forever. So the first unhandled rejection while planning fails the plan.
  let fail: (e: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const onRejection = (reason: unknown) =>
    fail(new Error(`the program failed under mocks: ${reasonOf(reason)}`));
  process.on("unhandledRejection", onRejection);
  try {
    return await Promise.race([plan(spec, config, secrets), failed]);
  } finally {
    process.off("unhandledRejection", onRejection);
  }
}

/** The message of a rejection, with the runtime's repeated `error serializing property "x": ` said once. */
function reasonOf(reason: unknown): string {
  const message = reason instanceof Error ? reason.message : String(reason);
  return message.replace(/(error serializing property "[^"]*": )\1+/g, "$1");
}

async function plan(
  spec: ClusterSpec,
  config: Readonly<Record<string, unknown>>,
  secrets: Readonly<Record<string, string>>,
): Promise<PlannedResource[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pulumi: typeof PulumiSdk = require("@pulumi/pulumi");
  const resources: PlannedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const id = `${args.name}-id`;
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type.startsWith("docker:") && state.name === undefined) state.name = args.name;
        if (args.type === "random:index/randomPassword:RandomPassword")
          state.result = "x".repeat(Number(args.inputs.length ?? 32));
        resources.push({ type: args.type, name: args.name, id, inputs: unwrapSecrets(pulumi, args.inputs) });
        return { id, state };
      },
      call: (args) => args.inputs,
    },
    spec.project,
    spec.stack,
    false,
  );
  const all: Record<string, string> = {};
  const put = (k: string, v: unknown) =>
    (all[`${CONFIG_NAMESPACE}:${k}`] = typeof v === "string" ? v : JSON.stringify(v));
  for (const [k, v] of Object.entries(config)) put(k, v);
  for (const [k, v] of Object.entries(secrets)) put(k, v);
  pulumi.runtime.setAllConfig(
    all,
    Object.keys(secrets).map((k) => `${CONFIG_NAMESPACE}:${k}`),
  );
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SwarmCluster } = require("./SwarmCluster") as typeof import("./SwarmCluster");
  const cluster = new SwarmCluster(`${spec.project}-${spec.stack}`, { spec });
  await new Promise<void>((resolve) => cluster.urn.apply(() => resolve()));
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  return resources;
}

/** Inputs with secret wrappers (`{ <sig>: <secret sig>, value }`) replaced by their values. */
function unwrapSecrets<T>(pulumi: typeof PulumiSdk, v: T): T {
  const { specialSigKey, specialSecretSig } = pulumi.runtime;
  const un = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(un);
    if (x === null || typeof x !== "object") return x;
    const o = x as Record<string, unknown>;
    if (o[specialSigKey] === specialSecretSig) return un(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, y]) => [k, un(y)]));
  };
  return un(v) as T;
}
