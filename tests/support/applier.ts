// A small, test-only applier: it creates on a real Docker engine what a mock run of the program registered
// as @pulumi/docker Network, ServiceConfig, Secret, Volume and Service resources, through the Engine API
// (dockerode), the way the docker provider would. Fields are mapped from the provider's camelCase input shapes
// (node_modules/@pulumi/docker/types/input.d.ts) to the Engine API Spec shapes. Any field it does not map
// makes it throw: nothing is dropped silently. Provider defaults that the Engine API does not apply by itself
// (config/secret file mode 0444, uid/gid 0) are applied as the provider documents them.
import Docker from "dockerode";
import { goDurationNs } from "../../components/swarm/plan";

/** One resource as a mock run of the program captured it (the shape of tests/support/mocks.ts). */
export interface CapturedLike {
  readonly type: string;
  readonly name: string;
  /** The id the mocks gave it; services refer to configs, secrets and networks by this id. */
  readonly id?: string;
  readonly inputs: Record<string, unknown>;
}

export const TYPES = {
  network: "docker:index/network:Network",
  config: "docker:index/serviceConfig:ServiceConfig",
  secret: "docker:index/secret:Secret",
  volume: "docker:index/volume:Volume",
  service: "docker:index/service:Service",
} as const;

/** Resource types the applier creates nothing for: component resources, providers and non-docker resources. */
function ignored(type: string): boolean {
  return !type.startsWith("docker:");
}

export interface Created {
  /** Captured resource name (the Pulumi name). */
  readonly resource: string;
  /** Physical name on the engine. */
  readonly name: string;
  readonly id: string;
}

export interface Applied {
  readonly networks: Created[];
  readonly configs: Created[];
  readonly secrets: Created[];
  readonly volumes: Created[];
  readonly services: (Created & { spec: Record<string, unknown> })[];
  /** Captured resources the applier created nothing for (not docker:* types), as `type name`. */
  readonly skipped: string[];
}

/** Reads an input object field by field; `done()` throws if a field with a value was not read. */
class Fields {
  private readonly read = new Set<string>();
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly where: string,
  ) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new Error(`${where}: expected an object, got ${JSON.stringify(obj)}`);
    }
  }
  private get(key: string): unknown {
    this.read.add(key);
    return this.obj[key];
  }
  str(key: string): string | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string")
      throw new Error(`${this.where}.${key}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }
  reqStr(key: string): string {
    const v = this.str(key);
    if (v === undefined) throw new Error(`${this.where}.${key} is required`);
    return v;
  }
  num(key: string): number | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number")
      throw new Error(`${this.where}.${key}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  bool(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean")
      throw new Error(`${this.where}.${key}: expected a boolean, got ${JSON.stringify(v)}`);
    return v;
  }
  strs(key: string): string[] | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      throw new Error(`${this.where}.${key}: expected a list of strings, got ${JSON.stringify(v)}`);
    }
    return v as string[];
  }
  map(key: string): Record<string, string> | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string")) {
      throw new Error(`${this.where}.${key}: expected a map of strings, got ${JSON.stringify(v)}`);
    }
    return v as Record<string, string>;
  }
  obj_(key: string): Fields | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    return new Fields(v as Record<string, unknown>, `${this.where}.${key}`);
  }
  list(key: string): Fields[] | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new Error(`${this.where}.${key}: expected a list, got ${JSON.stringify(v)}`);
    return v.map((x, i) => new Fields(x as Record<string, unknown>, `${this.where}.${key}[${i}]`));
  }
  /** A provider-only field that changes how the provider behaves, not what it creates. */
  providerOnly(key: string): void {
    this.read.add(key);
  }
  done(): void {
    const left = Object.keys(this.obj).filter((k) => !this.read.has(k) && this.obj[k] !== undefined);
    if (left.length) {
      throw new Error(`${this.where}: the test applier does not map ${left.map((k) => `"${k}"`).join(", ")}`);
    }
  }
}

/** A Go duration (`1m30s`, `500ms`, `0s`) in nanoseconds, as the Engine API wants it; errors name `where`. */
export function durationNs(value: string, where: string): number {
  try {
    return goDurationNs(value);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

function optNs(f: Fields, key: string, where: string): number | undefined {
  const v = f.str(key);
  return v === undefined ? undefined : durationNs(v, `${where}.${key}`);
}

/** `[{label, value}]` -> `{label: value}`. */
function labelMap(list: Fields[] | undefined): Record<string, string> | undefined {
  if (!list) return undefined;
  const out: Record<string, string> = {};
  for (const l of list) {
    out[l.reqStr("label")] = l.reqStr("value");
    l.done();
  }
  return out;
}

/** Drops undefined values, so the Spec sent holds only what the program set. */
function compact<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Validates base64 (standard or url-safe) and returns it as standard base64, as the Engine API wants. */
function base64Data(value: string, where: string): string {
  const normal = value.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normal)) throw new Error(`${where}: data is not base64`);
  return Buffer.from(normal, "base64").toString("base64");
}

export function networkSpec(r: CapturedLike): Record<string, unknown> {
  const where = `${r.type} ${r.name}`;
  const f = new Fields(r.inputs, where);
  const ipam = f.list("ipamConfigs")?.map((c) => {
    const out = compact({
      Subnet: c.str("subnet"),
      IPRange: c.str("ipRange"),
      Gateway: c.str("gateway"),
      AuxiliaryAddresses: c.map("auxAddress"),
    });
    c.done();
    return out;
  });
  const spec = compact({
    Name: f.reqStr("name"),
    CheckDuplicate: true,
    Driver: f.str("driver"),
    Attachable: f.bool("attachable"),
    Internal: f.bool("internal"),
    Ingress: f.bool("ingress"),
    EnableIPv6: f.bool("ipv6"),
    Options: f.map("options"),
    Labels: labelMap(f.list("labels")),
    IPAM: compact({ Driver: f.str("ipamDriver"), Config: ipam, Options: f.map("ipamOptions") }),
  });
  f.done();
  return spec;
}

export function configSpec(r: CapturedLike): Record<string, unknown> {
  const where = `${r.type} ${r.name}`;
  const f = new Fields(r.inputs, where);
  const data = f.str("data");
  const raw = f.str("dataRaw");
  if ((data === undefined) === (raw === undefined)) throw new Error(`${where}: exactly one of data, dataRaw`);
  const spec = compact({
    Name: f.reqStr("name"),
    Data: data !== undefined ? base64Data(data, where) : Buffer.from(raw as string).toString("base64"),
    Labels: labelMap(f.list("labels")),
  });
  f.done();
  return spec;
}

export function secretSpec(r: CapturedLike): Record<string, unknown> {
  const where = `${r.type} ${r.name}`;
  const f = new Fields(r.inputs, where);
  const spec = compact({
    Name: f.reqStr("name"),
    Data: base64Data(f.reqStr("data"), where),
    Labels: labelMap(f.list("labels")),
  });
  f.done();
  return spec;
}

export function volumeSpec(r: CapturedLike): Record<string, unknown> {
  const where = `${r.type} ${r.name}`;
  const f = new Fields(r.inputs, where);
  const spec = compact({
    Name: f.reqStr("name"),
    Driver: f.str("driver"),
    DriverOpts: f.map("driverOpts"),
    Labels: labelMap(f.list("labels")),
  });
  f.done();
  return spec;
}

/** Resolves the ids the program passed (mock ids of captured resources) to ids on the engine. */
export interface Resolver {
  config(idOrName: string, where: string): string;
  secret(idOrName: string, where: string): string;
  network(idOrName: string, where: string): string;
}

function updateConfig(f: Fields | undefined, where: string): Record<string, unknown> | undefined {
  if (!f) return undefined;
  const ratio = f.str("maxFailureRatio");
  const out = compact({
    Parallelism: f.num("parallelism"),
    Delay: optNs(f, "delay", where),
    FailureAction: f.str("failureAction"),
    Monitor: optNs(f, "monitor", where),
    MaxFailureRatio: ratio === undefined ? undefined : Number(ratio),
    Order: f.str("order"),
  });
  if (out.MaxFailureRatio !== undefined && Number.isNaN(out.MaxFailureRatio)) {
    throw new Error(`${where}.maxFailureRatio: "${ratio}" is not a number`);
  }
  f.done();
  return out;
}

function fileRef(
  f: Fields,
  kind: "config" | "secret",
  res: Resolver,
  where: string,
): Record<string, unknown> {
  const idKey = kind === "config" ? "configId" : "secretId";
  const nameKey = kind === "config" ? "configName" : "secretName";
  const id = kind === "config" ? res.config(f.reqStr(idKey), where) : res.secret(f.reqStr(idKey), where);
  const out = {
    File: {
      Name: f.reqStr("fileName"),
      // Provider defaults (the Engine API would use mode 0 if left out).
      UID: f.str("fileUid") ?? "0",
      GID: f.str("fileGid") ?? "0",
      Mode: f.num("fileMode") ?? 0o444,
    },
    [kind === "config" ? "ConfigID" : "SecretID"]: id,
    [kind === "config" ? "ConfigName" : "SecretName"]: f.str(nameKey),
  };
  f.done();
  return compact(out);
}

function mount(f: Fields, where: string): Record<string, unknown> {
  const bind = f.obj_("bindOptions");
  const vol = f.obj_("volumeOptions");
  const tmpfs = f.obj_("tmpfsOptions");
  const out = compact({
    Type: f.reqStr("type"),
    Source: f.str("source"),
    Target: f.reqStr("target"),
    ReadOnly: f.bool("readOnly"),
    BindOptions: bind ? compact({ Propagation: bind.str("propagation") }) : undefined,
    VolumeOptions: vol
      ? compact({
          NoCopy: vol.bool("noCopy"),
          Labels: labelMap(vol.list("labels")),
          DriverConfig: compact({ Name: vol.str("driverName"), Options: vol.map("driverOptions") }),
        })
      : undefined,
    TmpfsOptions: tmpfs ? compact({ SizeBytes: tmpfs.num("sizeBytes"), Mode: tmpfs.num("mode") }) : undefined,
  });
  bind?.done();
  vol?.done();
  tmpfs?.done();
  f.done();
  void where;
  return out;
}

function containerSpec(f: Fields, res: Resolver, where: string): Record<string, unknown> {
  const hc = f.obj_("healthcheck");
  const dns = f.obj_("dnsConfig");
  const env = f.map("env");
  const out = compact({
    Image: f.reqStr("image"),
    Command: f.strs("commands"),
    Args: f.strs("args"),
    Env: env ? Object.entries(env).map(([k, v]) => `${k}=${v}`) : undefined,
    Labels: labelMap(f.list("labels")),
    Mounts: f.list("mounts")?.map((m) => mount(m, `${where}.mounts`)),
    Configs: f.list("configs")?.map((c) => fileRef(c, "config", res, where)),
    Secrets: f.list("secrets")?.map((s) => fileRef(s, "secret", res, where)),
    Healthcheck: hc
      ? compact({
          Test: hc.strs("tests"),
          Interval: optNs(hc, "interval", `${where}.healthcheck`),
          Timeout: optNs(hc, "timeout", `${where}.healthcheck`),
          Retries: hc.num("retries"),
          StartPeriod: optNs(hc, "startPeriod", `${where}.healthcheck`),
        })
      : undefined,
    Hostname: f.str("hostname"),
    Dir: f.str("dir"),
    User: f.str("user"),
    Groups: f.strs("groups"),
    StopSignal: f.str("stopSignal"),
    StopGracePeriod: optNs(f, "stopGracePeriod", where),
    ReadOnly: f.bool("readOnly"),
    Init: f.bool("init"),
    Isolation: f.str("isolation"),
    CapabilityAdd: f.strs("capAdds"),
    CapabilityDrop: f.strs("capDrops"),
    Sysctls: f.map("sysctl"),
    Hosts: f.list("hosts")?.map((h) => {
      const line = `${h.reqStr("ip")} ${h.reqStr("host")}`;
      h.done();
      return line;
    }),
    DNSConfig: dns
      ? compact({
          Nameservers: dns.strs("nameservers"),
          Search: dns.strs("searches"),
          Options: dns.strs("options"),
        })
      : undefined,
  });
  hc?.done();
  dns?.done();
  f.done();
  return out;
}

/** `KIND=N` / `KIND=VALUE` strings (as the docker provider takes them) as Engine API GenericResources. */
function genericResources(g: Fields | undefined, where: string): Record<string, unknown>[] | undefined {
  if (!g) return undefined;
  const split = (s: string) => {
    const i = s.indexOf("=");
    if (i < 1) throw new Error(`${where}.genericResources: "${s}" is not KIND=VALUE`);
    return { Kind: s.slice(0, i), Value: s.slice(i + 1) };
  };
  const out = [
    ...(g.strs("discreteResourcesSpecs") ?? []).map((s) => {
      const { Kind, Value } = split(s);
      return { DiscreteResourceSpec: { Kind, Value: Number(Value) } };
    }),
    ...(g.strs("namedResourcesSpecs") ?? []).map((s) => ({ NamedResourceSpec: split(s) })),
  ];
  g.done();
  return out;
}

/** The Engine API ServiceSpec and X-Registry-Auth for a captured docker Service. */
export function serviceSpec(
  r: CapturedLike,
  res: Resolver,
): { spec: Record<string, unknown>; auth?: Record<string, string> } {
  const where = `${r.type} ${r.name}`;
  const f = new Fields(r.inputs, where);
  const ts = f.obj_("taskSpec");
  if (!ts) throw new Error(`${where}.taskSpec is required`);
  const tw = `${where}.taskSpec`;
  const cs = ts.obj_("containerSpec");
  if (!cs) throw new Error(`${tw}.containerSpec is required`);
  const placement = ts.obj_("placement");
  const resources = ts.obj_("resources");
  const limits = resources?.obj_("limits");
  const reservation = resources?.obj_("reservation");
  const rp = ts.obj_("restartPolicy");
  const log = ts.obj_("logDriver");
  const taskTemplate = compact({
    ContainerSpec: containerSpec(cs, res, `${tw}.containerSpec`),
    Networks: ts.list("networksAdvanceds")?.map((n) => {
      const id = n.str("id");
      const name = n.str("name");
      const ref = id ?? name;
      if (ref === undefined) throw new Error(`${tw}.networksAdvanceds: a network without id or name`);
      const out = compact({
        Target: res.network(ref, `${tw}.networksAdvanceds`),
        Aliases: n.strs("aliases"),
        DriverOpts: n.strs("driverOpts")?.reduce<Record<string, string>>((acc, kv) => {
          const i = kv.indexOf("=");
          acc[kv.slice(0, i)] = kv.slice(i + 1);
          return acc;
        }, {}),
      });
      n.done();
      return out;
    }),
    Placement: placement
      ? compact({
          Constraints: placement.strs("constraints"),
          Preferences: placement.strs("prefs")?.map((p) => {
            const m = /^spread=(.+)$/.exec(p);
            if (!m) throw new Error(`${tw}.placement.prefs: "${p}" is not spread=<descriptor>`);
            return { Spread: { SpreadDescriptor: m[1] } };
          }),
          MaxReplicas: placement.num("maxReplicas"),
          Platforms: placement.list("platforms")?.map((p) => {
            const out = { Architecture: p.reqStr("architecture"), OS: p.reqStr("os") };
            p.done();
            return out;
          }),
        })
      : undefined,
    Resources: resources
      ? compact({
          Limits: limits
            ? compact({ NanoCPUs: limits.num("nanoCpus"), MemoryBytes: limits.num("memoryBytes") })
            : undefined,
          Reservations: reservation
            ? compact({
                NanoCPUs: reservation.num("nanoCpus"),
                MemoryBytes: reservation.num("memoryBytes"),
                GenericResources: genericResources(reservation.obj_("genericResources"), `${tw}.resources`),
              })
            : undefined,
        })
      : undefined,
    RestartPolicy: rp
      ? compact({
          Condition: rp.str("condition"),
          Delay: optNs(rp, "delay", `${tw}.restartPolicy`),
          MaxAttempts: rp.num("maxAttempts"),
          Window: optNs(rp, "window", `${tw}.restartPolicy`),
        })
      : undefined,
    LogDriver: log ? compact({ Name: log.reqStr("name"), Options: log.map("options") }) : undefined,
    ForceUpdate: ts.num("forceUpdate"),
    Runtime: ts.str("runtime"),
  });
  placement?.done();
  limits?.done();
  reservation?.done();
  resources?.done();
  rp?.done();
  log?.done();
  ts.done();

  const mode = f.obj_("mode");
  let Mode: Record<string, unknown> = { Replicated: { Replicas: 1 } };
  if (mode) {
    const global = mode.bool("global");
    const repl = mode.obj_("replicated");
    if (global && repl) throw new Error(`${where}.mode: both global and replicated`);
    if (global) Mode = { Global: {} };
    else if (repl) Mode = { Replicated: { Replicas: repl.num("replicas") ?? 1 } };
    repl?.done();
    mode.done();
  }

  const ep = f.obj_("endpointSpec");
  const endpoint = ep
    ? compact({
        Mode: ep.str("mode"),
        Ports: ep.list("ports")?.map((p) => {
          const out = compact({
            Name: p.str("name"),
            Protocol: p.str("protocol") ?? "tcp",
            TargetPort: p.num("targetPort"),
            PublishedPort: p.num("publishedPort"),
            PublishMode: p.str("publishMode") ?? "ingress",
          });
          p.done();
          return out;
        }),
      })
    : undefined;
  ep?.done();

  const a = f.obj_("auth");
  const auth = a
    ? compact({
        serveraddress: a.reqStr("serverAddress"),
        username: a.str("username"),
        password: a.str("password"),
      })
    : undefined;
  a?.done();

  // convergeConfig only tells the provider how long to wait for tasks; the tests wait themselves.
  f.providerOnly("convergeConfig");
  const spec = compact({
    Name: f.reqStr("name"),
    Labels: labelMap(f.list("labels")),
    TaskTemplate: taskTemplate,
    Mode,
    UpdateConfig: updateConfig(f.obj_("updateConfig"), `${where}.updateConfig`),
    RollbackConfig: updateConfig(f.obj_("rollbackConfig"), `${where}.rollbackConfig`),
    EndpointSpec: endpoint,
  });
  f.done();
  return { spec, auth: auth as Record<string, string> | undefined };
}

function byType(resources: readonly CapturedLike[], type: string): CapturedLike[] {
  return resources.filter((r) => r.type === type);
}

/** Fails on docker:* resource types this applier does not create. */
function checkTypes(resources: readonly CapturedLike[]): string[] {
  const known = new Set<string>(Object.values(TYPES));
  const skipped: string[] = [];
  for (const r of resources) {
    if (known.has(r.type)) continue;
    if (ignored(r.type)) skipped.push(`${r.type} ${r.name}`);
    else throw new Error(`the test applier does not create ${r.type} (resource ${r.name})`);
  }
  return skipped;
}

function physicalName(r: CapturedLike): string {
  const n = r.inputs.name;
  if (typeof n !== "string") throw new Error(`${r.type} ${r.name} has no physical name (inputs.name)`);
  return n;
}

/** Creates networks, volumes, configs and secrets, then services (they refer to the others), on `docker`. */
export async function apply(docker: Docker, resources: readonly CapturedLike[]): Promise<Applied> {
  const skipped = checkTypes(resources);
  const created: Applied = { networks: [], configs: [], secrets: [], volumes: [], services: [], skipped };
  // Mock id (or physical name) -> engine id, per kind.
  const ids = {
    network: new Map<string, string>(),
    config: new Map<string, string>(),
    secret: new Map<string, string>(),
  };
  const note = (kind: keyof typeof ids, r: CapturedLike, id: string) => {
    if (r.id !== undefined) ids[kind].set(r.id, id);
    ids[kind].set(physicalName(r), id);
  };

  for (const r of byType(resources, TYPES.network)) {
    const net = await docker.createNetwork(networkSpec(r) as unknown as Docker.NetworkCreateOptions);
    note("network", r, net.id);
    created.networks.push({ resource: r.name, name: physicalName(r), id: net.id });
  }
  for (const r of byType(resources, TYPES.volume)) {
    const spec = volumeSpec(r);
    await docker.createVolume(spec as unknown as Docker.VolumeCreateOptions);
    created.volumes.push({ resource: r.name, name: spec.Name as string, id: spec.Name as string });
  }
  for (const r of byType(resources, TYPES.config)) {
    const c = (await docker.createConfig(configSpec(r))) as unknown as { id: string };
    note("config", r, c.id);
    created.configs.push({ resource: r.name, name: physicalName(r), id: c.id });
  }
  for (const r of byType(resources, TYPES.secret)) {
    const s = (await docker.createSecret(secretSpec(r))) as unknown as { id: string };
    note("secret", r, s.id);
    created.secrets.push({ resource: r.name, name: physicalName(r), id: s.id });
  }

  // Networks not created here (external ones) are looked up by name on the engine.
  const existingNetworks = new Map(
    (await docker.listNetworks()).map((n) => [n.Name, n.Id] as [string, string]),
  );
  const resolver: Resolver = {
    config: (ref, where) => lookup(ids.config, ref, where, "config"),
    secret: (ref, where) => lookup(ids.secret, ref, where, "secret"),
    network: (ref, where) => ids.network.get(ref) ?? lookup(existingNetworks, ref, where, "network"),
  };
  for (const r of byType(resources, TYPES.service)) {
    const { spec, auth } = serviceSpec(r, resolver);
    // Passing auth (or undefined) as the first argument: dockerode would otherwise send the spec as auth.
    const svc = await docker.createService(
      auth as unknown as Docker.AuthConfig,
      spec as Docker.CreateServiceOptions,
    );
    created.services.push({ resource: r.name, name: spec.Name as string, id: svc.id, spec });
  }
  return created;
}

function lookup(map: Map<string, string>, ref: string, where: string, kind: string): string {
  const id = map.get(ref);
  if (id === undefined) {
    throw new Error(
      `${where}: ${kind} "${ref}" is neither a captured ${kind} (by id or name) nor on the engine`,
    );
  }
  return id;
}

function status(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

/**
 * Removes what `apply` would create for `resources`, by physical name: services first, then (once their
 * containers are gone) configs, secrets, networks and volumes (also those the services' mounts created). Missing objects are fine, so it runs before
 * and after a test.
 */
export async function removeAll(
  docker: Docker,
  resources: readonly CapturedLike[],
  timeoutMs = 60_000,
): Promise<void> {
  const names = (type: string) => byType(resources, type).map(physicalName);
  for (const n of names(TYPES.service)) {
    await docker
      .getService(n)
      .remove()
      .catch((e) => {
        if (status(e) !== 404) throw e;
      });
  }
  const deadline = Date.now() + timeoutMs;
  const removeWithRetry = async (what: string, remove: () => Promise<unknown>) => {
    for (;;) {
      try {
        await remove();
        return;
      } catch (e) {
        if (status(e) === 404) return;
        // 409/500 "in use" while task containers are still shutting down.
        if (Date.now() > deadline) throw new Error(`could not remove ${what}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  for (const n of names(TYPES.config))
    await removeWithRetry(`config ${n}`, () => docker.getConfig(n).remove());
  for (const n of names(TYPES.secret))
    await removeWithRetry(`secret ${n}`, () => docker.getSecret(n).remove());
  for (const n of names(TYPES.network))
    await removeWithRetry(`network ${n}`, () => docker.getNetwork(n).remove());
  // Named volumes: those registered as resources, and those the services' volume mounts create on first use.
  const mountVolumes = byType(resources, TYPES.service).flatMap((s) => {
    const mounts = (
      s.inputs.taskSpec as { containerSpec?: { mounts?: { type?: string; source?: string }[] } }
    )?.containerSpec?.mounts;
    return (mounts ?? []).filter((m) => m.type === "volume" && m.source).map((m) => m.source as string);
  });
  for (const n of new Set([...names(TYPES.volume), ...mountVolumes])) {
    await removeWithRetry(`volume ${n}`, () => docker.getVolume(n).remove());
  }
}

/** Nodes that can run tasks: ready and active. */
export async function activeNodes(docker: Docker): Promise<{ ID: string }[]> {
  const nodes = (await docker.listNodes()) as {
    ID: string;
    Status?: { State?: string };
    Spec?: { Availability?: string };
  }[];
  return nodes.filter((n) => n.Status?.State === "ready" && n.Spec?.Availability === "active");
}

/** Running tasks of a service, and the number it should have (replicas, or one per active node if global). */
export async function taskCounts(
  docker: Docker,
  service: string,
): Promise<{ running: number; desired: number; problems: string[] }> {
  const svc = (await docker.getService(service).inspect()) as {
    Spec: { Mode: { Global?: object; Replicated?: { Replicas?: number } } };
  };
  const desired = svc.Spec.Mode.Global
    ? (await activeNodes(docker)).length
    : (svc.Spec.Mode.Replicated?.Replicas ?? 1);
  const tasks = (await docker.listTasks({ filters: { service: [service] } })) as {
    DesiredState: string;
    Status: { State: string; Err?: string; Message?: string };
  }[];
  const live = tasks.filter((t) => t.DesiredState === "running");
  const problems = tasks
    .filter((t) => t.Status.Err || (t.DesiredState === "running" && t.Status.State !== "running"))
    .map((t) => `${t.Status.State}${t.Status.Err ? `: ${t.Status.Err}` : ` (${t.Status.Message ?? ""})`}`);
  return { running: live.filter((t) => t.Status.State === "running").length, desired, problems };
}

/**
 * Waits until every service has exactly its desired number of running tasks, and they stayed so for
 * `stableMs` (a task that crashes right after start is caught). Throws with each service's task states.
 */
export async function waitConverged(
  docker: Docker,
  services: readonly string[],
  timeoutMs: number,
  stableMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let convergedSince: number | undefined;
  for (;;) {
    const counts = await Promise.all(services.map(async (s) => [s, await taskCounts(docker, s)] as const));
    const ok = counts.every(([, c]) => c.running === c.desired && c.desired > 0);
    if (ok) {
      convergedSince ??= Date.now();
      if (Date.now() - convergedSince >= stableMs) return;
    } else {
      convergedSince = undefined;
    }
    if (Date.now() > deadline) {
      const lines = counts.map(
        ([s, c]) =>
          `${s}: ${c.running}/${c.desired} running${c.problems.length ? `; ${[...new Set(c.problems)].join("; ")}` : ""}`,
      );
      throw new Error(`services did not converge within ${timeoutMs} ms:\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---- reading a capture: what the engine must provide before `apply` -------------------------------

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj => (v && typeof v === "object" ? (v as Obj) : {});
const asList = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

export function services(resources: readonly CapturedLike[]): CapturedLike[] {
  return byType(resources, TYPES.service);
}

export function containerSpecOf(r: CapturedLike): Obj {
  return asObj(asObj(r.inputs.taskSpec).containerSpec);
}

/** `[{label, value}]` of a captured input as a map (empty if absent). */
export function labelsOf(list: unknown): Record<string, string> {
  return Object.fromEntries(asList(list).map((l) => [String(l.label), String(l.value)]));
}

/** Image references of every captured service. */
export function imagesOf(resources: readonly CapturedLike[]): string[] {
  return [...new Set(services(resources).map((s) => String(containerSpecOf(s).image)))];
}

/** Placement constraints of every captured service. */
export function constraintsOf(resources: readonly CapturedLike[]): string[] {
  const all = services(resources).flatMap((s) => asObj(asObj(s.inputs.taskSpec).placement).constraints ?? []);
  return [...new Set(all as string[])];
}

/** Bind mount sources of every captured service (host paths). */
export function bindSourcesOf(resources: readonly CapturedLike[]): string[] {
  const mounts = services(resources).flatMap((s) => asList(containerSpecOf(s).mounts));
  return [...new Set(mounts.filter((m) => m.type === "bind").map((m) => String(m.source)))];
}

/** Host-mode published ports of every captured service. */
export function hostPortsOf(resources: readonly CapturedLike[]): { service: string; port: number }[] {
  return services(resources).flatMap((s) =>
    asList(asObj(s.inputs.endpointSpec).ports)
      .filter((p) => p.publishMode === "host" && typeof p.publishedPort === "number")
      .map((p) => ({ service: String(s.inputs.name), port: p.publishedPort as number })),
  );
}

/**
 * What the stand-in image must do for the captured services that run it: the commands their entrypoint and
 * healthchecks name, and the HTTP ports/paths their healthchecks, published ports and Traefik labels use.
 */
export function standinNeeds(services_: readonly CapturedLike[]): {
  commands: string[];
  httpPorts: number[];
  httpPaths: string[];
} {
  const commands = new Set<string>();
  const ports = new Set<number>();
  const paths = new Set<string>();
  for (const s of services_) {
    const cs = containerSpecOf(s);
    const entry = cs.commands as string[] | undefined;
    if (entry?.length) commands.add(entry[0]);
    const test = (asObj(cs.healthcheck).tests as string[] | undefined) ?? [];
    if (test[0] === "CMD" && test[1]) commands.add(test[1]);
    if (test[0] === "CMD-SHELL" && test[1]) commands.add(test[1].trim().split(/\s+/)[0]);
    for (const m of test
      .join(" ")
      .matchAll(/https?:\/\/(?:localhost|127\.0\.0\.1)(?::(\d+))?(\/[^\s"']*)?/g)) {
      ports.add(Number(m[1] ?? 80));
      if (m[2]) paths.add(m[2]);
    }
    for (const p of asList(asObj(s.inputs.endpointSpec).ports)) ports.add(Number(p.targetPort));
    for (const [k, v] of Object.entries(labelsOf(s.inputs.labels))) {
      if (/^traefik\.http\.services\.[^.]+\.loadbalancer\.server\.port$/.test(k)) ports.add(Number(v));
    }
  }
  return { commands: [...commands], httpPorts: [...ports].sort((a, b) => a - b), httpPaths: [...paths] };
}
