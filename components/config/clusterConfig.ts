// The Pulumi config of the `swarmform` namespace: a zod schema with defaults, the conversion of zod issues
// into ConfigIssues that name the key, and the resolution of defaults that depend on other keys
// (platform host names, docker.host for ssh, network encryption in prod, node counts).
import { z } from "zod";
import { encryptByDefault, IMAGE_PIN } from "./environments";
import { keyOrigin } from "./errors";
import { strict } from "./strictObject";
import { checkLibvirt, hostVmSchema, libvirtSchema } from "./libvirt";
import {
  ClusterSpec,
  ConfigIssue,
  Environment,
  ENVIRONMENTS,
  HostSpec,
  NetworkSpec,
  SECRET_KEYS,
  TraefikSpec,
} from "./types";

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const hostname = (what: string) =>
  z.string({ error: `must be a ${what} (a DNS name in lower case)` }).regex(HOSTNAME, {
    error: `must be a ${what} (a DNS name in lower case, e.g. dev.popcube.xyz)`,
  });
const port = z
  .number({ error: "must be a port number 1-65535" })
  .int({ error: "must be a port number 1-65535" })
  .min(1, { error: "must be a port number 1-65535" })
  .max(65535, { error: "must be a port number 1-65535" });
const count = (min: number) =>
  z
    .number({ error: `must be a whole number >= ${min}` })
    .int({ error: `must be a whole number >= ${min}` })
    .min(min, { error: `must be a whole number >= ${min}` });
/** A label or variable value: any scalar, kept as a string. */
const scalar = z
  .union([z.string(), z.number(), z.boolean()], { error: "must be a string (or a number or boolean)" })
  .transform(String);
const labels = z.record(z.string().min(1, { error: "label keys must not be empty" }), scalar).default({});
const image = z
  .string({ error: "must be an image reference" })
  .min(1, { error: "must be an image reference" });
const NODE_LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]*=[^\s=]+$/;
const nodeLabel = z
  .string({ error: "must be a node label key=value" })
  .regex(NODE_LABEL, { error: "must be a node label key=value, e.g. swarmform.traefik=true" });
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const name = (what: string) =>
  z.string({ error: `must be a ${what}` }).regex(NAME, {
    error: `must be a ${what}: letters, digits, '_', '.', '-', starting with a letter or digit`,
  });
/** Go duration as `docker swarm init --cert-expiry` takes it, e.g. 2160h0m0s. */
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
/** Prometheus duration, e.g. 15d or 1w2d. */
const PROM_DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const DOCKER_HOST = /^(ssh:\/\/[^@\s/]+@[^\s:/]+(:\d{1,5})?|unix:\/\/\/\S+|tcp:\/\/[^\s:/]+:\d{1,5})$/;

const hostSchema = strict({
  name: hostname("node name"),
  address: z
    .string({ error: "must be an IPv4 address or DNS name" })
    .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, { error: "must be an IPv4 address or DNS name" }),
  role: z.enum(["manager", "worker"], { error: "must be manager or worker" }),
  labels,
  user: z
    .string({ error: "must be a user name" })
    .regex(/^[a-z_][a-z0-9_-]*$/, { error: "must be a user name" })
    .default("root"),
  port: port.default(22),
  hostKeyFingerprint: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, {
      error: "must be SHA256:<base64> as printed by ssh-keygen -lf",
    })
    .optional(),
  availability: z
    .enum(["active", "pause", "drain"], { error: "must be active, pause or drain" })
    .default("active"),
  /** The VM of this host (node source libvirt). */
  vm: hostVmSchema.optional(),
});

const networkSchema = strict({
  name: name("network name"),
  subnet: z.string({ error: "must be an IPv4 CIDR a.b.c.d/n" }).optional(),
  encrypted: z.boolean({ error: "must be true or false" }).optional(),
  attachable: z.boolean({ error: "must be true or false" }).default(true),
  labels,
});

const stackEntrySchema = z.union(
  [
    z.string().min(1),
    strict({
      file: z.string({ error: "must be a stack file path" }).min(1),
      // Checked when the stack file is read (load.ts), so that a bad name does not hide the file's problems.
      name: z.string({ error: "must be a stack name" }).optional(),
    }),
  ],
  { error: 'must be a stack file path, e.g. "stacks/popcube.yaml", or { file, name? }' },
);

const secretShape = Object.fromEntries(SECRET_KEYS.map((k) => [k, z.unknown().optional()])) as Record<
  (typeof SECRET_KEYS)[number],
  z.ZodOptional<z.ZodUnknown>
>;

/** Schema of the `swarmform:` config namespace (keys without the prefix). */
export const clusterConfigSchema = strict({
  environment: z.enum(ENVIRONMENTS as [Environment, ...Environment[]], {
    error: `must be one of ${ENVIRONMENTS.join(", ")}`,
  }),
  domain: hostname("base domain"),
  docker: strict({
    host: z
      .string({ error: "must be ssh://user@host[:port], unix:///path or tcp://host:port" })
      .regex(DOCKER_HOST, { error: "must be ssh://user@host[:port], unix:///path or tcp://host:port" })
      .optional(),
  }).prefault({}),
  nodes: strict({
    source: z
      .enum(["existing", "ssh", "libvirt", "local"], { error: "must be existing, ssh, libvirt or local" })
      .default("existing"),
    managers: strict({ count: count(1).optional() }).optional(),
    workers: strict({ count: count(0).optional() }).optional(),
    hosts: z.array(hostSchema, { error: "must be a list of hosts" }).default([]),
    labels: z
      .record(
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "must be a swarm node name" }),
        labels,
        {
          error: "must be a map of node name to { label: value }",
        },
      )
      .default({}),
    local: strict({
      initSwarm: z.boolean({ error: "must be true or false" }).default(false),
      advertiseAddr: z
        .string({ error: "must be an IPv4 address" })
        .regex(/^(\d{1,3}\.){3}\d{1,3}$/, { error: "must be an IPv4 address, e.g. 127.0.0.1" })
        .optional(),
      labels,
    }).prefault({}),
    libvirt: libvirtSchema.optional(),
    swarm: strict({
      defaultAddrPool: z
        .array(z.string(), { error: "must be a list of IPv4 CIDRs" })
        .min(1, { error: "must list at least one IPv4 CIDR" })
        .default(["10.20.0.0/16"]),
      dataPathPort: z
        .number({ error: "must be a port number 1024-49151" })
        .int({ error: "must be a port number 1024-49151" })
        .min(1024, { error: "must be a port number 1024-49151" })
        .max(49151, { error: "must be a port number 1024-49151" })
        .default(4789),
      certExpiry: z
        .string({ error: "must be a Go duration, e.g. 2160h0m0s" })
        .regex(GO_DURATION, { error: "must be a Go duration, e.g. 2160h0m0s" })
        .default("2160h0m0s"),
      forceQuorumLoss: z.boolean({ error: "must be true or false" }).default(false),
      maxParallelJoins: z
        .number({ error: "must be a whole number >= 1 (nodes joining at once)" })
        .int({ error: "must be a whole number >= 1 (nodes joining at once)" })
        .min(1, { error: "must be a whole number >= 1 (nodes joining at once)" })
        .default(10), // = DEFAULT_MAX_PARALLEL_JOINS (components/swarm/joinLimiter.ts; a unit test checks)
    }).prefault({}),
  }).prefault({}),
  networks: z.array(networkSchema, { error: "must be a list of networks" }).default([]),
  // A top-level scalar reaches the running program as a string ("true"), as Pulumi passes config.
  encryptNetworks: z
    .union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")], {
      error: "must be true or false",
    })
    .optional(),
  plaintextNetworks: z
    .array(z.string({ error: "must be a network name" }), { error: "must be a list of network names" })
    .default([]),
  publicNetwork: name("network name").default("public"),
  traefik: strict({
    image: image.default("traefik:v3.7"),
    tls: z
      .enum(["acme", "default"], {
        error:
          "must be acme (certificates from an ACME CA) or default (Traefik's default self-signed certificate)",
      })
      .optional(),
    placementLabel: nodeLabel.default("swarmform.traefik=true"),
    acme: strict({
      email: z.email({ error: "must be an e-mail address (the ACME account, e.g. ops@popcube.xyz)" }),
      caServer: z.url({ error: "must be an https URL of an ACME directory" }).optional(),
      resolverName: name("resolver name").default("letsencrypt"),
      challenge: z
        .enum(["tls", "http"], { error: "must be tls (TLS-ALPN-01 on websecure) or http (HTTP-01 on web)" })
        .default("tls"),
      // Optional here: resolvePlatform requires it when traefik.tls is acme.
    }).optional(),
    dashboard: strict({
      enabled: z.boolean({ error: "must be true or false" }).default(false),
      host: hostname("host name").optional(),
      user: z
        .string({ error: "must be a user name" })
        .regex(/^[^:\s]+$/, { error: "must be a user name without ':'" })
        .default("admin"),
    }).prefault({}),
    ports: strict({
      web: port.default(80),
      websecure: port.default(443),
      registry: port.default(5000),
    }).prefault({}),
  }).prefault({}),
  registry: strict({
    enabled: z.boolean({ error: "must be true or false" }).default(true),
    image: image.default("registry:2.8.3"),
    host: hostname("host name").optional(),
    user: z
      .string({ error: "must be a user name" })
      .regex(/^[^:\s]+$/, { error: "must be a user name without ':'" })
      .default("swarmform"),
    storageLabel: nodeLabel.default("swarmform.registry=true"),
  }).prefault({}),
  monitoring: strict({
    enabled: z.boolean({ error: "must be true or false" }).default(true),
    prometheusImage: image.default("prom/prometheus:v3.5.0"),
    nodeExporterImage: image.default("prom/node-exporter:v1.9.1"),
    cadvisorImage: image.default("gcr.io/cadvisor/cadvisor:v0.52.1"),
    prometheusHost: hostname("host name").optional(),
    retention: z
      .string({ error: "must be a Prometheus duration, e.g. 15d" })
      .regex(PROM_DURATION, { error: "must be a Prometheus duration, e.g. 15d" })
      .default("15d"),
  }).prefault({}),
  stacks: z.array(stackEntrySchema, { error: "must be a list of stack files" }).default([]),
  stackVariables: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "variable names are letters, digits and '_'" }),
      scalar,
    )
    .default({}),
  stackEnvironment: z
    .array(
      z
        .string({ error: "must be a variable name" })
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "must be a variable name (letters, digits and '_')" }),
      { error: "must be a list of variable names, e.g. [ORG, API_TAG]" },
    )
    .default([]),
  strictCompose: z.boolean({ error: "must be true or false" }).default(false),
  images: z
    .record(
      z
        .string()
        .regex(/^[a-z0-9][a-z0-9_-]*$/, { error: "stack names are lower-case letters, digits, '_' and '-'" }),
      z.record(
        z
          .string()
          .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { error: "must be a service key of the stack file" }),
        z.string({ error: "must be a pin: TAG or TAG@sha256:<64 hex digits>" }).regex(IMAGE_PIN, {
          error: "must be a pin: TAG or TAG@sha256:<64 hex digits>",
        }),
        { error: "must be a map of service key to pin" },
      ),
      { error: "must be a map of stack name to { service: pin }" },
    )
    .default({}),
  ...secretShape,
});

/** The parsed config, defaults applied (derived defaults not yet resolved). */
export type ClusterConfig = z.output<typeof clusterConfigSchema>;

/** A stack file entry of `swarmform:stacks`, normalised. */
export interface StackEntry {
  readonly file: string;
  readonly name?: string;
  /** Config key, e.g. `swarmform:stacks[0]`. */
  readonly key: string;
}

/** `nodes.hosts[0].name` from a zod path. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}

/** Converts one zod issue into ConfigIssues (one per unknown key), with `swarmform:<path>` origins. */
export function configIssuesOf(iss: z.core.$ZodIssue): ConfigIssue[] {
  if (iss.code === "unrecognized_keys") {
    return iss.keys.map((k) => ({
      origin: keyOrigin(formatKeyPath([...iss.path, k])),
      message: iss.message,
    }));
  }
  const path = formatKeyPath(iss.path) || "(root)";
  const input: unknown = "input" in iss ? iss.input : undefined;
  if (input === undefined) {
    return [{ origin: keyOrigin(path), message: `is required; ${iss.message}` }];
  }
  const got = input !== null && typeof input === "object" ? "" : `; got ${JSON.stringify(input)}`;
  return [{ origin: keyOrigin(path), message: iss.message + got }];
}

/** Validates the raw config map (keys without the `swarmform:` prefix) against the schema. */
export function parseClusterConfig(raw: Record<string, unknown>): {
  config?: ClusterConfig;
  issues: ConfigIssue[];
} {
  const result = clusterConfigSchema.safeParse(raw, { reportInput: true });
  if (result.success) return { config: result.data, issues: [] };
  return { issues: result.error.issues.flatMap(configIssuesOf) };
}

/** Values that stand in for required keys that are missing or invalid, so that the other checks can run. */
const PLACEHOLDERS: Record<string, unknown> = {
  environment: "dev",
  domain: "domain.invalid",
  traefik: { acme: { email: "acme@domain.invalid" } },
};

/** The top-level key an issue is about (`nodes` for `swarmform:nodes.hosts[0].name`), if it is a key. */
export function topLevelKeyOf(issue: ConfigIssue): string | undefined {
  if (!("key" in issue.origin)) return undefined;
  return /^[^:]*:([^.[]+)/.exec(issue.origin.key)?.[1];
}

/**
 * A config that parses, for running the other checks when `raw` does not: the top-level keys with issues
 * are dropped (back to their defaults), and missing required keys get placeholders. Issues that later
 * checks find under a `dropped` key describe the defaults, not the user's config, and must be ignored.
 */
export function partialClusterConfig(
  raw: Record<string, unknown>,
  issues: readonly ConfigIssue[],
): { config?: ClusterConfig; dropped: string[] } {
  const dropped = [...new Set(issues.flatMap((i) => topLevelKeyOf(i) ?? []))];
  const rest = Object.fromEntries(Object.entries(raw).filter(([k]) => !dropped.includes(k)));
  for (const [k, v] of Object.entries(PLACEHOLDERS)) rest[k] ??= v;
  const result = clusterConfigSchema.safeParse(rest);
  return { ...(result.success ? { config: result.data } : {}), dropped };
}

/** The entries of `swarmform:stacks`, normalised to `{ file, name?, key }`. */
export function stackEntries(config: ClusterConfig): StackEntry[] {
  return config.stacks.map((s, i) => ({
    ...(typeof s === "string" ? { file: s } : s),
    key: `swarmform:stacks[${i}]`,
  }));
}

/** Physical name of a platform network: `<project>-<stack>_<name>`. */
export function physicalNetworkName(project: string, stack: string, network: string): string {
  return `${project}-${stack}_${network}`;
}

/** The platform part of a ClusterSpec: everything except the app stacks and secretsSet. */
export type PlatformSpec = Omit<ClusterSpec, "stacks" | "secretsSet">;

/**
 * Resolves the defaults that depend on other keys: platform hosts from `domain`, `docker.host` for the ssh
 * source, node counts from hosts, network encryption (on by default in prod), and the public network.
 * Reports the keys that are required only in some combinations.
 */
export function resolvePlatform(
  config: ClusterConfig,
  ids: { project: string; stack: string },
): { platform: PlatformSpec; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const { nodes, domain, environment } = config;
  const hosts: HostSpec[] = nodes.hosts;
  const byRole = (role: HostSpec["role"]) => hosts.filter((h) => h.role === role).length;
  const managers = resolveCount(
    nodes.managers?.count,
    "managers",
    byRole("manager"),
    hosts.length > 0,
    issues,
  );
  const workers = resolveCount(nodes.workers?.count, "workers", byRole("worker"), hosts.length > 0, issues);
  if (nodes.source === "libvirt") issues.push(...checkLibvirt(nodes.libvirt, hosts));
  if (nodes.source === "ssh" && hosts.length === 0) {
    issues.push({
      origin: keyOrigin("nodes.hosts"),
      message: "must list at least one manager host when nodes.source is ssh",
    });
  }
  let dockerHost = config.docker.host;
  if (!dockerHost && (nodes.source === "ssh" || nodes.source === "libvirt")) {
    const first = hosts.find((h) => h.role === "manager");
    if (first)
      dockerHost = `ssh://${first.user}@${first.address}` + (first.port === 22 ? "" : `:${first.port}`);
  }
  if (!dockerHost && nodes.source === "local") dockerHost = LOCAL_DOCKER_HOST;
  issues.push(...checkNodeSourceKeys(config));
  const tls = config.traefik.tls ?? (environment === "local" ? "default" : "acme");
  if (tls === "acme" && !config.traefik.acme) {
    issues.push({
      origin: keyOrigin("traefik.acme.email"),
      message:
        "is required when traefik.tls is acme (the default outside local): the ACME account e-mail, e.g. ops@popcube.xyz; " +
        "or set traefik.tls: default for Traefik's default self-signed certificate",
    });
  }
  if (!dockerHost && nodes.source === "existing") {
    issues.push({
      origin: keyOrigin("docker.host"),
      message:
        "is required when nodes.source is existing: ssh://user@host[:port], unix:///path or tcp://host:port of a manager",
    });
  }
  const listed = config.networks.some((n) => n.name === config.publicNetwork);
  const networks: NetworkSpec[] = [
    ...config.networks,
    ...(listed ? [] : [{ name: config.publicNetwork, attachable: true, labels: {} }]),
  ].map((n) => ({
    name: n.name,
    physicalName: physicalNetworkName(ids.project, ids.stack, n.name),
    ...(n.subnet === undefined ? {} : { subnet: n.subnet }),
    encrypted:
      "encrypted" in n && n.encrypted !== undefined
        ? n.encrypted
        : encryptByDefault(config.encryptNetworks, environment) && !config.plaintextNetworks.includes(n.name),
    attachable: n.attachable,
    labels: n.labels,
  }));
  const { traefik, registry, monitoring } = config;
  const platform: PlatformSpec = {
    project: ids.project,
    stack: ids.stack,
    environment,
    domain,
    docker: { host: dockerHost ?? "" },
    nodes: {
      source: nodes.source,
      managers,
      workers,
      hosts,
      labels: nodes.labels,
      local: nodes.local,
      swarm: nodes.swarm,
      ...(nodes.libvirt ? { libvirt: nodes.libvirt } : {}),
    },
    networks,
    publicNetwork: config.publicNetwork,
    traefik: {
      ...traefik,
      tls,
      dashboard: { ...traefik.dashboard, host: traefik.dashboard.host ?? `traefik.${domain}` },
    },
    registry: { ...registry, host: registry.host ?? `registry.${domain}` },
    monitoring: { ...monitoring, prometheusHost: monitoring.prometheusHost ?? `prometheus.${domain}` },
  };
  return { platform, issues };
}

/** The ACME resolver routers use: its name when traefik.tls is acme, else none (Traefik's default certificate). */
export function certResolverOf(traefik: Pick<TraefikSpec, "tls" | "acme">): string | undefined {
  return traefik.tls === "acme" ? traefik.acme?.resolverName : undefined;
}

/** The local Docker engine's socket: docker.host's default for nodes.source local. */
export const LOCAL_DOCKER_HOST = "unix:///var/run/docker.sock";

/**
 * Keys that only one node source uses: nodes.hosts (ssh), nodes.labels (existing; ssh labels its hosts,
 * local its own node), and the one-node shape of local.
 */
export function checkNodeSourceKeys(config: ClusterConfig): ConfigIssue[] {
  const { nodes } = config;
  const issues: ConfigIssue[] = [];
  const named = Object.keys(nodes.labels);
  if (named.length > 0 && nodes.source !== "existing") {
    const instead = nodes.source === "local" ? "nodes.local.labels" : "nodes.hosts[].labels";
    issues.push({
      origin: keyOrigin("nodes.labels"),
      message: `is for nodes.source existing; with ${nodes.source}, set node labels in ${instead}`,
    });
  }
  if (nodes.source === "local") {
    if (nodes.hosts.length > 0)
      issues.push({
        origin: keyOrigin("nodes.hosts"),
        message: "must be empty when nodes.source is local (the local engine is the only node)",
      });
    if ((nodes.managers?.count ?? 1) !== 1)
      issues.push({
        origin: keyOrigin("nodes.managers.count"),
        message: `must be 1 when nodes.source is local (the local engine); got ${nodes.managers?.count}`,
      });
    if ((nodes.workers?.count ?? 0) !== 0)
      issues.push({
        origin: keyOrigin("nodes.workers.count"),
        message: `must be 0 when nodes.source is local (extra Docker-in-Docker nodes are not supported yet); got ${nodes.workers?.count}`,
      });
  }
  return issues;
}

/** A node count: given, or derived from hosts; when both, they must agree. */
function resolveCount(
  given: number | undefined,
  role: "managers" | "workers",
  fromHosts: number,
  haveHosts: boolean,
  issues: ConfigIssue[],
): number {
  if (given !== undefined && haveHosts && given !== fromHosts) {
    issues.push({
      origin: keyOrigin(`nodes.${role}.count`),
      message: `must agree with nodes.hosts, which lists ${fromHosts} ${role.slice(0, -1)} host(s); got ${given} (or leave it unset)`,
    });
  }
  if (haveHosts) return fromHosts;
  return given ?? (role === "managers" ? 1 : 0);
}
