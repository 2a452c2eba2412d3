// Cross-cutting validation rules over a whole ClusterSpec (platform and every app stack). Each rule is a
// pure function that returns every problem it finds; none throws. Origins name the config key or the
// stack file position, and messages state what is allowed.
import { parseImageRef } from "./compose";
import { isPort } from "./compose-values";
import { keyOrigin } from "./errors";
import { routesOf } from "./routes";
import {
  ClusterSpec,
  ConfigIssue,
  Environment,
  HostSpec,
  NodesSpec,
  Origin,
  SECRET_KEYS,
  SecretKey,
  ServiceSpec,
  StackSpec,
} from "./types";

/** Origin of a field of a service: the service's position, with `services.<key>.<field>` as path. */
export function serviceFieldOrigin(service: ServiceSpec, field: string): Origin {
  const o = service.origin;
  const line = service.lines?.[field] ?? ("line" in o ? o.line : 0);
  return "key" in o ? o : { file: o.file, line, path: `services.${service.key}.${field}` };
}

/** Short description of where a thing is, for messages that name a second place. */
function where(origin: Origin): string {
  return "key" in origin ? origin.key : `${origin.file}:${origin.line}`;
}

/** Raft needs an odd number of managers, 1-7; prod needs at least 3 to survive the loss of one. */
export function checkManagerCount(
  environment: Environment,
  managers: number,
  origin: Origin,
  subject = "",
): ConfigIssue[] {
  if (managers < 1 || managers > 7 || managers % 2 === 0) {
    return [
      { origin, message: `${subject}must be odd (1, 3, 5 or 7) so raft keeps a quorum; got ${managers}` },
    ];
  }
  if (environment === "prod" && managers < 3) {
    const message = `${subject}must be 3, 5 or 7 in prod so the swarm survives the loss of a manager; got ${managers}`;
    return [{ origin, message }];
  }
  return [];
}

/** Node names and addresses must each be unique. */
export function checkUniqueHosts(hosts: readonly HostSpec[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const field of ["name", "address"] as const) {
    const first = new Map<string, number>();
    hosts.forEach((h, i) => {
      const value = h[field].toLowerCase();
      const j = first.get(value);
      if (j === undefined) first.set(value, i);
      else
        issues.push({
          origin: keyOrigin(`nodes.hosts[${i}].${field}`),
          message: `must be unique; "${h[field]}" is already the ${field} of nodes.hosts[${j}]`,
        });
    });
  }
  return issues;
}

/** The node labels (key=value) that the platform services are pinned to, with the config key of each. */
export function placementLabelsOf(spec: Pick<ClusterSpec, "traefik" | "registry">): {
  key: string;
  label: string;
  managerOnly: boolean;
}[] {
  return [
    { key: "traefik.placementLabel", label: spec.traefik.placementLabel, managerOnly: true },
    ...(spec.registry.enabled
      ? [{ key: "registry.storageLabel", label: spec.registry.storageLabel, managerOnly: false }]
      : []),
  ];
}

/** `{ k: v }` of a node label `k=v`. */
export function labelMap(label: string): Record<string, string> {
  const eq = label.indexOf("=");
  return { [label.slice(0, eq)]: label.slice(eq + 1) };
}

/**
 * Placement labels must be on some node whenever the config says which nodes exist and how they are
 * labelled: sources ssh and libvirt (a manager in nodes.hosts, for Traefik), and source existing with nodes.labels listed.
 * Source local labels its one node itself; existing without nodes.labels is checked at `up` (only the
 * swarm knows its nodes' labels then).
 */
export function checkPlacementLabels(spec: ClusterSpec): ConfigIssue[] {
  const { nodes } = spec;
  const has = (labels: Readonly<Record<string, string>>, label: string) =>
    Object.entries(labelMap(label)).every(([k, v]) => labels[k] === v);
  if ((nodes.source === "ssh" || nodes.source === "libvirt") && nodes.hosts.length > 0) {
    return placementLabelsOf(spec)
      .filter(
        ({ label, managerOnly }) =>
          !nodes.hosts.some((h) => (!managerOnly || h.role === "manager") && has(h.labels, label)),
      )
      .map(({ key, label, managerOnly }) => ({
        origin: keyOrigin(key),
        message: `no ${managerOnly ? "manager" : "host"} in nodes.hosts carries the node label ${label}; add it to the labels of one ${managerOnly ? "manager" : "host"}`,
      }));
  }
  if (nodes.source === "existing" && Object.keys(nodes.labels).length > 0) {
    return placementLabelsOf(spec)
      .filter(({ label }) => !Object.values(nodes.labels).some((l) => has(l, label)))
      .map(({ key, label, managerOnly }) => {
        const [k, v] = label.split("=");
        return {
          origin: keyOrigin(key),
          message:
            `no node in nodes.labels carries the node label ${label}; add it to one ${managerOnly ? "manager" : "node"}, ` +
            `e.g. nodes.labels: { <node>: { ${k}: "${v}" } }`,
        };
      });
  }
  return [];
}

/** An IPv4 network: base address as an unsigned 32-bit number, and prefix length. */
export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

/** Parses `a.b.c.d/n` (host bits zero); returns an error message when it is not one. */
export function parseCidr(text: string): Cidr | string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  const expected = `must be an IPv4 CIDR a.b.c.d/n (n 0-32, host bits zero); got "${text}"`;
  if (!m) return expected;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return expected;
  const base = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) {
    const net = Math.floor(base / size) * size;
    return `${expected}: host bits are set, the network is ${formatIPv4(net)}/${prefix}`;
  }
  return { base, prefix };
}

function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** True when two networks share an address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefix);
  const bEnd = b.base + 2 ** (32 - b.prefix);
  return a.base < bEnd && b.base < aEnd;
}

/**
 * Network subnets (platform and stack networks) and the swarm's default address pools must be valid and
 * must not overlap. Swarm carves /24 networks from the pools, so a pool must be /24 or larger.
 */
export function checkSubnets(spec: ClusterSpec): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ranges: { cidr: Cidr; text: string; origin: Origin }[] = [];
  const add = (text: string, origin: Origin, isPool: boolean) => {
    const cidr = parseCidr(text);
    if (typeof cidr === "string") {
      issues.push({ origin, message: cidr });
      return;
    }
    if (isPool && cidr.prefix > 24) {
      issues.push({
        origin,
        message: `must be /24 or larger (swarm allocates /24 networks from it); got ${text}`,
      });
    }
    const clash = ranges.find((r) => cidrsOverlap(r.cidr, cidr));
    if (clash)
      issues.push({
        origin,
        message: `${text} overlaps ${clash.text} (${where(clash.origin)}); subnets must not overlap`,
      });
    ranges.push({ cidr, text, origin });
  };
  spec.nodes.swarm.defaultAddrPool.forEach((p, i) =>
    add(p, keyOrigin(`nodes.swarm.defaultAddrPool[${i}]`), true),
  );
  spec.networks.forEach(
    (n, i) => n.subnet !== undefined && add(n.subnet, keyOrigin(`networks[${i}].subnet`), false),
  );
  for (const stack of spec.stacks) {
    for (const n of stack.networks) {
      if (n.subnet !== undefined) add(n.subnet, n.subnetOrigin ?? stackNetworkOrigin(stack, n.name), false);
    }
  }
  return issues;
}

/**
 * Where a stack network is defined. NetworkSpec carries no position, so this names the stack file (as its
 * services' origins show it) at line 1, with the key path of the subnet.
 */
function stackNetworkOrigin(stack: StackSpec, network: string): Origin {
  const first = stack.services[0]?.origin;
  const file = first && "file" in first ? first.file : stack.file;
  return { file, line: 1, path: `networks.${network}.ipam.config[0].subnet` };
}

/** Network names must be unique (the public network is added once when not listed). */
export function checkNetworkNames(spec: ClusterSpec): ConfigIssue[] {
  const seen = new Set<string>();
  return spec.networks.flatMap((n, i) => {
    if (!seen.has(n.name)) return (seen.add(n.name), []);
    return [
      { origin: keyOrigin(`networks[${i}].name`), message: `must be unique; "${n.name}" is listed twice` },
    ];
  });
}

/**
 * Why an image reference is not allowed, or undefined when it is. Every environment needs a well-formed
 * reference; prod also needs a pinned one (a tag other than `latest`, or a digest).
 */
export function imageProblem(ref: string, environment: Environment): string | undefined {
  const parsed = parseImageRef(ref);
  if (!parsed.ok) return `${parsed.error}; expected [registry/]repository[:tag][@digest]`;
  if (environment !== "prod" || parsed.value.digest) return undefined;
  if (parsed.value.tag === undefined)
    return `"${ref}" has no tag; prod images must be pinned to a version tag or digest`;
  if (parsed.value.tag === "latest")
    return `"${ref}" uses latest; prod images must be pinned to a version tag or digest`;
  return undefined;
}

/** Platform images (config keys) and every stack service image. */
export function checkImages(spec: ClusterSpec): ConfigIssue[] {
  const images: [Origin, string][] = [
    [keyOrigin("traefik.image"), spec.traefik.image],
    [keyOrigin("registry.image"), spec.registry.image],
    [keyOrigin("monitoring.prometheusImage"), spec.monitoring.prometheusImage],
    [keyOrigin("monitoring.nodeExporterImage"), spec.monitoring.nodeExporterImage],
    [keyOrigin("monitoring.cadvisorImage"), spec.monitoring.cadvisorImage],
    ...allServices(spec).map((s): [Origin, string] => [serviceFieldOrigin(s, "image"), s.image]),
  ];
  return images.flatMap(([origin, ref]) => {
    const message = imageProblem(ref, spec.environment);
    return message ? [{ origin, message }] : [];
  });
}

function allServices(spec: ClusterSpec): ServiceSpec[] {
  return spec.stacks.flatMap((s) => s.services);
}

/** A published port and who publishes it. */
interface Publisher {
  readonly port: number;
  readonly protocol: string;
  readonly owner: string;
  readonly origin: Origin;
}

/** The host ports the platform publishes: Traefik's entrypoints (registry only when it is enabled). */
export function platformPorts(spec: ClusterSpec): Publisher[] {
  const p = spec.traefik.ports;
  const entries: [keyof typeof p, boolean][] = [
    ["web", true],
    ["websecure", true],
    ["registry", spec.registry.enabled],
  ];
  return entries
    .filter(([, used]) => used)
    .map(([name]) => ({
      port: p[name],
      protocol: "tcp",
      owner: `Traefik's ${name} entrypoint`,
      origin: keyOrigin(`traefik.ports.${name}`),
    }));
}

/** Which owners a collision check counts besides the stacks. */
export interface CollisionScope {
  /** Count the platform's ports and routes (Traefik, registry, monitoring). Default true. */
  readonly platform?: boolean;
}

/** Ports must be 1-65535, and each published port+protocol is published once across all stacks and the platform. */
export function checkPorts(spec: ClusterSpec, scope: CollisionScope = {}): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const taken = new Map<string, Publisher>();
  const claim = (p: Publisher) => {
    const id = `${p.port}/${p.protocol}`;
    const first = taken.get(id);
    if (!first) {
      taken.set(id, p);
      return;
    }
    issues.push({
      origin: p.origin,
      message: `port ${id} is published by both ${first.owner} (${where(first.origin)}) and ${p.owner}; each published port must have one owner`,
    });
  };
  if (scope.platform !== false) platformPorts(spec).forEach(claim);
  for (const s of allServices(spec)) {
    const origin = serviceFieldOrigin(s, "ports");
    for (const p of s.ports) {
      for (const n of p.published === undefined ? [p.target] : [p.target, p.published]) {
        if (!isPort(n)) issues.push({ origin, message: `port must be 1-65535; got ${n}` });
      }
      if (p.published !== undefined && isPort(p.published)) {
        claim({ port: p.published, protocol: p.protocol, owner: `service ${s.name}`, origin });
      }
    }
  }
  return issues;
}

/** A Traefik route: a host and a path prefix, and who serves it. */
interface RouteOwner {
  readonly owner: string;
  readonly origin: Origin;
}

/** The hosts the platform routes through Traefik: dashboard, registry and Prometheus, when enabled. */
export function platformRoutes(
  spec: ClusterSpec,
): { host: string; path: string; owner: string; origin: Origin }[] {
  const routes: [boolean, string, string, string][] = [
    [
      spec.traefik.dashboard.enabled,
      spec.traefik.dashboard.host,
      "the Traefik dashboard",
      "traefik.dashboard.host",
    ],
    [spec.registry.enabled, spec.registry.host, "the registry", "registry.host"],
    [spec.monitoring.enabled, spec.monitoring.prometheusHost, "Prometheus", "monitoring.prometheusHost"],
  ];
  return routes
    .filter(([used]) => used)
    .map(([, host, owner, path]) => ({ host, path: "/", owner, origin: keyOrigin(path) }));
}

/** Each Traefik host+path is routed by exactly one service across all stacks and the platform. */
export function checkRoutes(spec: ClusterSpec, scope: CollisionScope = {}): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const taken = new Map<string, RouteOwner>();
  const claim = (host: string, path: string | undefined, route: RouteOwner) => {
    const id = `${host.toLowerCase()}${path || "/"}`;
    const first = taken.get(id);
    if (!first) {
      taken.set(id, route);
      return;
    }
    if (first.owner === route.owner) return;
    issues.push({
      origin: route.origin,
      message: `Traefik route ${id} is routed by both ${first.owner} (${where(first.origin)}) and ${route.owner}; each host+path must be routed by exactly one service`,
    });
  };
  if (scope.platform !== false) platformRoutes(spec).forEach((r) => claim(r.host, r.path, r));
  for (const s of allServices(spec)) {
    for (const r of routesOf(s))
      claim(r.host, r.path, { owner: `service ${s.name}`, origin: routeOrigin(s, r.router) });
  }
  return issues;
}

/** Where a route of a service comes from: the line of its rule label (deploy.labels) or of x-traefik. */
function routeOrigin(s: ServiceSpec, router: string): Origin {
  const at = s.labelLines?.[`traefik.http.routers.${router}.rule`];
  const o = s.origin;
  if (!at || "key" in o) return serviceFieldOrigin(s, "x-traefik");
  return { file: o.file, line: at.line, path: at.path };
}

/** Stack names (namespaces) must be unique, or their services and networks would collide. */
export function checkStackNames(spec: ClusterSpec): ConfigIssue[] {
  const first = new Map<string, number>();
  return spec.stacks.flatMap((s, i) => {
    const j = first.get(s.name);
    if (j === undefined) return (first.set(s.name, i), []);
    return [
      {
        origin: keyOrigin(`stacks[${i}]`),
        message: `stack name "${s.name}" is already used by swarmform:stacks[${j}]; give one of them another name with { file, name }`,
      },
    ];
  });
}

/**
 * Secret keys are optional, but when set they must be secrets; sshPrivateKey is required for the ssh node
 * source. `config` holds the raw values, `secretKeys` the keys (without prefix) whose values are secret.
 */
export function checkSecrets(
  config: Readonly<Record<string, unknown>>,
  secretKeys: readonly string[],
  nodesSource: NodesSpec["source"] | undefined,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const key of SECRET_KEYS) {
    if (config[key] !== undefined && !secretKeys.includes(key)) {
      const how =
        key === "stackSecrets"
          ? `pulumi config set --secret --path 'stackSecrets.NAME' <value>`
          : `pulumi config set --secret ${key} <value>`;
      issues.push({ origin: keyOrigin(key), message: `must be a secret; set it with: ${how}` });
    }
  }
  const stackSecrets = config.stackSecrets;
  if (stackSecrets !== undefined && !isStringMap(stackSecrets)) {
    issues.push({
      origin: keyOrigin("stackSecrets"),
      message:
        "must be a map of NAME: value (strings), read by stack secrets declared with `environment: NAME`",
    });
  }
  if ((nodesSource === "ssh" || nodesSource === "libvirt") && config.sshPrivateKey === undefined) {
    issues.push({
      origin: keyOrigin("sshPrivateKey"),
      message: `is required when nodes.source is ${nodesSource}; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`,
    });
  }
  return issues;
}

/** A Pulumi secret as a stack file stores it: `{ secure: "v1:..." }`. */
export function isEncryptedValue(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { secure?: unknown }).secure === "string"
  );
}

/** A map of strings; in a stack file each value may still be encrypted (`{ secure: ... }`). */
function isStringMap(v: unknown): v is Record<string, unknown> {
  const isValue = (x: unknown) => typeof x === "string" || isEncryptedValue(x);
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every(isValue);
}

/** Names set under the secret config `stackSecrets` (never the values). */
export function stackSecretNamesOf(config: Readonly<Record<string, unknown>>): string[] {
  return isStringMap(config.stackSecrets) ? Object.keys(config.stackSecrets).sort() : [];
}

/** Which secret keys are set as secrets. */
export function secretsSetOf(
  config: Readonly<Record<string, unknown>>,
  secretKeys: readonly string[],
): Record<SecretKey, boolean> {
  return Object.fromEntries(
    SECRET_KEYS.map((k) => [k, config[k] !== undefined && secretKeys.includes(k)]),
  ) as Record<SecretKey, boolean>;
}

/**
 * External configs/secrets that a service uses: the swarm API needs their ids, and the docker provider
 * cannot look a config or secret up by name, so such a service would be rejected at `pulumi up`.
 */
export function checkExternalFileRefs(stacks: readonly StackSpec[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const stack of stacks) {
    for (const kind of ["configs", "secrets"] as const) {
      const used = new Set(stack.services.flatMap((s) => s[kind].map((r) => r.key)));
      for (const f of stack[kind].filter((f) => f.external && used.has(f.key))) {
        const how = kind === "secrets" ? "`file:` or `environment:`" : "`file:`";
        issues.push({
          origin: f.origin,
          message:
            `external ${kind.slice(0, -1)} "${f.name}" is not supported: Swarmform needs to create it to know its id; ` +
            `define it in the stack file with ${how} instead`,
        });
      }
    }
  }
  return issues;
}

/** Every cross-cutting rule over a resolved spec. */
export function checkClusterSpec(spec: ClusterSpec): ConfigIssue[] {
  const derived = spec.nodes.hosts.length > 0;
  return [
    ...(derived
      ? checkManagerCount(
          spec.environment,
          spec.nodes.managers,
          keyOrigin("nodes.hosts"),
          "the number of manager hosts ",
        )
      : checkManagerCount(spec.environment, spec.nodes.managers, keyOrigin("nodes.managers.count"))),
    ...checkUniqueHosts(spec.nodes.hosts),
    ...checkPlacementLabels(spec),
    ...checkNetworkNames(spec),
    ...checkSubnets(spec),
    ...checkImages(spec),
    ...checkPorts(spec),
    ...checkRoutes(spec),
    ...checkStackNames(spec),
    ...checkExternalFileRefs(spec.stacks),
  ];
}
