// Pure mapping from the typed ServiceSpec (config layer) to @pulumi/docker ServiceArgs.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { FileRefSpec, MountSpec, ServiceSpec, UpdateConfigSpec } from "../config/types";

/** Credentials that let every node pull from the platform registry (`docker service create --with-registry-auth`). */
export interface RegistryAuth {
  /** `<registry.host>:<port>`, the prefix of images in the platform registry. */
  readonly serverAddress: string;
  readonly username: string;
  /** Secret. */
  readonly password: pulumi.Input<string>;
}

/** A swarm config or secret created by the program: its id and physical name. */
export interface FileObject {
  readonly id: pulumi.Input<string>;
  readonly name: pulumi.Input<string>;
}

/** What a service refers to, resolved to resources created by the caller. */
export interface ServiceContext {
  /** Network id by physical network name. Networks not listed (external ones) are referenced by name. */
  readonly networkIds: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * Configs created by the program, by FileRefSpec.key (the stack's top-level key) or FileRefSpec.source.
   * A reference to neither (an external config) uses its source name as id. Default: none.
   */
  readonly configs?: Readonly<Record<string, FileObject>>;
  /** Secrets created by the program, looked up like `configs`. Default: none. */
  readonly secrets?: Readonly<Record<string, FileObject>>;
  /** Platform registry credentials; used when the image is `<serverAddress>/...`. Default: none. */
  readonly registryAuth?: RegistryAuth;
  /** Extra service labels that must stay secret (e.g. a basic-auth users label). Default: none. */
  readonly secretLabels?: pulumi.Input<Record<string, string>>;
}

/** The label `docker stack deploy` puts on every object of a stack; we set it the same way. */
export const NAMESPACE_LABEL = "com.docker.stack.namespace";

const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/**
 * A Compose duration (`10s`, `1m30s`, `500ms`) as the docker provider expects it (Go duration syntax).
 * A bare number is taken as seconds, like docker-cli does for plain integers in `--health-interval`.
 */
export function toDuration(value: string | number): string {
  if (typeof value === "number") return `${value}s`;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return `${v}s`;
  if (!DURATION.test(v)) throw new Error(`invalid duration "${value}": expected e.g. 10s, 1m30s, 500ms`);
  return v;
}

function optDuration(value: string | undefined): string | undefined {
  return value === undefined ? undefined : toDuration(value);
}

/** `{a: "b"}` -> `[{label: "a", value: "b"}]`, sorted by key so the input is stable. */
export function labelList(labels: Readonly<Record<string, string>>): { label: string; value: string }[] {
  return Object.keys(labels)
    .sort()
    .map((label) => ({ label, value: labels[label] }));
}

/** CPUs (`0.5`) as nano CPUs, the unit of the swarm API. */
export function nanoCpus(cpus: number | undefined): number | undefined {
  return cpus === undefined ? undefined : Math.round(cpus * 1e9);
}

/** The registry host:port of an image reference, if it names one (`reg.example:5000/app:1` -> `reg.example:5000`). */
export function imageRegistry(image: string): string | undefined {
  const slash = image.indexOf("/");
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : undefined;
}

function updateConfig(u: UpdateConfigSpec | undefined): docker.types.input.ServiceUpdateConfig | undefined {
  if (!u) return undefined;
  return {
    parallelism: u.parallelism,
    delay: optDuration(u.delay),
    failureAction: u.failureAction,
    monitor: optDuration(u.monitor),
    maxFailureRatio: u.maxFailureRatio === undefined ? undefined : String(u.maxFailureRatio),
    order: u.order,
  };
}

function fileRef(ref: FileRefSpec) {
  return { fileName: ref.target, fileUid: ref.uid, fileGid: ref.gid, fileMode: ref.mode };
}

function lookup(objects: Readonly<Record<string, FileObject>> | undefined, ref: FileRefSpec): FileObject {
  return objects?.[ref.key] ?? objects?.[ref.source] ?? { id: ref.source, name: ref.source };
}

/** Drop keys whose value is undefined, so captured inputs stay minimal and comparable. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * How swarm creates a volume on first use. Like `docker stack deploy`, volumes carry the stack namespace;
 * a stack-defined volume also carries its driver, driver options and labels.
 */
function volumeOptions(
  m: MountSpec,
  namespace: string | undefined,
): docker.types.input.ServiceTaskSpecContainerSpecMountVolumeOptions | undefined {
  if (m.type !== "volume") return undefined;
  const labels = {
    ...(m.volume?.labels ?? {}),
    ...(namespace !== undefined ? { [NAMESPACE_LABEL]: namespace } : {}),
  };
  const opts = m.volume?.driverOpts ?? {};
  const options = compact({
    labels: Object.keys(labels).length ? labelList(labels) : undefined,
    driverName: m.volume?.driver,
    driverOptions: Object.keys(opts).length ? { ...opts } : undefined,
  });
  return Object.keys(options).length ? options : undefined;
}

/** The docker.ServiceArgs for one service. Pure: no resource is created here. */
export function serviceArgs(spec: ServiceSpec, ctx: ServiceContext): docker.ServiceArgs {
  const hc = spec.healthcheck;
  const namespace = spec.labels[NAMESPACE_LABEL];
  const containerSpec: docker.types.input.ServiceTaskSpecContainerSpec = compact({
    image: spec.image,
    commands: spec.entrypoint ? [...spec.entrypoint] : undefined,
    args: spec.command ? [...spec.command] : undefined,
    user: spec.user,
    env: Object.keys(spec.environment).length ? { ...spec.environment } : undefined,
    labels: labelList(spec.containerLabels),
    mounts: spec.mounts.map((m) =>
      compact({
        type: m.type,
        source: m.source,
        target: m.target,
        readOnly: m.readOnly,
        volumeOptions: volumeOptions(m, namespace),
      }),
    ),
    healthcheck: hc
      ? compact({
          tests: [...hc.test],
          interval: optDuration(hc.interval),
          timeout: optDuration(hc.timeout),
          retries: hc.retries,
          startPeriod: optDuration(hc.startPeriod),
        })
      : undefined,
    configs: spec.configs.map((c) => {
      const o = lookup(ctx.configs, c);
      return compact({ configId: o.id, configName: o.name, ...fileRef(c) });
    }),
    secrets: spec.secrets.map((s) => {
      const o = lookup(ctx.secrets, s);
      return compact({ secretId: o.id, secretName: o.name, ...fileRef(s) });
    }),
    stopGracePeriod: spec.stopGracePeriod,
    stopSignal: spec.stopSignal,
    hostname: spec.hostname,
    dnsConfig: spec.dns
      ? compact({
          nameservers: [...spec.dns.nameservers],
          searches: spec.dns.searches.length ? [...spec.dns.searches] : undefined,
          options: spec.dns.options.length ? [...spec.dns.options] : undefined,
        })
      : undefined,
    hosts: spec.extraHosts?.map((h) => ({ host: h.host, ip: h.ip })),
    dir: spec.workingDir,
    readOnly: spec.readOnly,
    init: spec.init,
    capAdds: spec.capAdd ? [...spec.capAdd] : undefined,
    capDrops: spec.capDrop ? [...spec.capDrop] : undefined,
    sysctl: spec.sysctls ? { ...spec.sysctls } : undefined,
    isolation: spec.isolation,
  });

  const r = spec.resources;
  const rp = spec.restartPolicy;
  const taskSpec: docker.types.input.ServiceTaskSpec = compact({
    containerSpec,
    networksAdvanceds: spec.networks.map((n) =>
      compact({
        ...(ctx.networkIds[n] !== undefined ? { id: ctx.networkIds[n] } : { name: n }),
        aliases: spec.networkAliases?.[n] ? [...spec.networkAliases[n]] : undefined,
      }),
    ),
    placement: compact({
      constraints: [...spec.constraints],
      prefs: spec.preferences.map((p) => (p.startsWith("spread=") ? p : `spread=${p}`)),
      maxReplicas: spec.maxReplicasPerNode,
    }),
    logDriver: spec.logging ? { name: spec.logging.driver, options: { ...spec.logging.options } } : undefined,
    resources: r
      ? compact({
          limits: r.limits
            ? compact({ nanoCpus: nanoCpus(r.limits.cpus), memoryBytes: r.limits.memoryBytes })
            : undefined,
          reservation: r.reservations
            ? compact({
                nanoCpus: nanoCpus(r.reservations.cpus),
                memoryBytes: r.reservations.memoryBytes,
                genericResources: r.reservations.genericResources?.length
                  ? { discreteResourcesSpecs: [...r.reservations.genericResources] }
                  : undefined,
              })
            : undefined,
        })
      : undefined,
    restartPolicy: rp
      ? compact({
          condition: rp.condition,
          delay: optDuration(rp.delay),
          maxAttempts: rp.maxAttempts,
          window: optDuration(rp.window),
        })
      : undefined,
  });

  const plainLabels = labelList(spec.labels);
  const labels = ctx.secretLabels
    ? pulumi.output(ctx.secretLabels).apply((extra) => labelList({ ...spec.labels, ...extra }))
    : plainLabels;

  const ra = ctx.registryAuth;
  const auth =
    ra && imageRegistry(spec.image) === ra.serverAddress
      ? { serverAddress: ra.serverAddress, username: ra.username, password: pulumi.secret(ra.password) }
      : undefined;

  return compact({
    name: spec.name,
    labels,
    mode: spec.mode === "global" ? { global: true } : { replicated: { replicas: spec.replicas ?? 1 } },
    taskSpec,
    updateConfig: updateConfig(spec.updateConfig),
    rollbackConfig: updateConfig(spec.rollbackConfig),
    endpointSpec: compact({
      mode: spec.endpointMode ?? "vip",
      ports: spec.ports.map((p) =>
        compact({
          targetPort: p.target,
          publishedPort: p.published,
          protocol: p.protocol,
          publishMode: p.mode,
        }),
      ),
    }),
    auth,
  });
}
