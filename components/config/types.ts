// The typed model that the config layer produces and every other layer consumes.
// Pure data: no Outputs, no secret values (secrets are read by the program with requireSecret).

import type { Origin } from "./errors";
import type { HostVmSpec, LibvirtSpec } from "./libvirt";
// Where a problem is, and one problem: defined beside ConfigError, which formats them.
export type { ConfigIssue, Origin } from "./errors";

/** One Pulumi stack per environment. */
export type Environment = "local" | "dev" | "staging" | "prod";
export const ENVIRONMENTS: readonly Environment[] = ["local", "dev", "staging", "prod"];

/** A node of the cluster, for the `ssh` node source (issue 3) and for labels/placement checks. */
export interface HostSpec {
  readonly name: string;
  readonly address: string;
  readonly role: "manager" | "worker";
  readonly labels: Readonly<Record<string, string>>;
  /** SSH user. Default `root`. */
  readonly user: string;
  /** SSH port. Default 22. */
  readonly port: number;
  /** Pinned host key, `SHA256:<base64>` as printed by ssh-keygen -lf. Default: none (not pinned). */
  readonly hostKeyFingerprint?: string;
  /** Availability. Default `active`. */
  readonly availability: "active" | "pause" | "drain";
  /** Node source libvirt: this host's VM (hypervisor, size, MAC). Default: nodes.libvirt.defaults, round robin. */
  readonly vm?: HostVmSpec;
}

export interface NodesSpec {
  /**
   * `existing`: a swarm that already exists, reached at docker.host. `ssh`: Swarmform forms the swarm from
   * `hosts`. `libvirt`: Swarmform creates a VM per host (address = its fixed IP), then forms the swarm.
   * `local`: the local Docker engine (one node).
   */
  readonly source: "existing" | "ssh" | "libvirt" | "local";
  readonly managers: number;
  readonly workers: number;
  /** For sources `ssh` and `libvirt`. */
  readonly hosts: readonly HostSpec[];
  /**
   * Source `existing`: labels Swarmform sets on swarm nodes, by node name (`docker node ls` HOSTNAME or ID),
   * through docker.host. Labels it did not set are left alone. Default {}.
   */
  readonly labels: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Source `local`: the local Docker engine. */
  readonly local: {
    /** Run `docker swarm init` when the engine is not in swarm mode (and `swarm leave` on destroy). Default false. */
    readonly initSwarm: boolean;
    /** `--advertise-addr` of that init. Default 127.0.0.1. */
    readonly advertiseAddr?: string;
    /** Labels of the local node, besides the placement labels (always set). Default {}. */
    readonly labels: Readonly<Record<string, string>>;
  };
  /** Only for source `libvirt`: hypervisors, base image, network, VM defaults. */
  readonly libvirt?: LibvirtSpec;
  /** Swarm init options (source `ssh`). */
  readonly swarm: {
    readonly defaultAddrPool: readonly string[];
    readonly dataPathPort: number;
    readonly certExpiry: string;
    /** Allow a change that leaves the managers without quorum. Default false. */
    readonly forceQuorumLoss: boolean;
    /** Most nodes joining the swarm at once (per `pulumi up`). Default 10; unset means the default. */
    readonly maxParallelJoins?: number;
  };
}

export interface NetworkSpec {
  /** Logical name in config; the physical name is `physicalName`. */
  readonly name: string;
  readonly physicalName: string;
  readonly subnet?: string;
  readonly encrypted: boolean;
  readonly attachable: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** Where a stack network is defined (stack files only). */
  readonly origin?: Origin;
  /** Line of its `subnet:` key (stack files only). */
  readonly subnetOrigin?: Origin;
}

export interface TraefikSpec {
  readonly image: string;
  /** Node label (key=value) that pins Traefik (and its ACME storage volume) to one manager. */
  readonly placementLabel: string;
  /**
   * `acme`: certificates from the ACME CA (`acme` must be set). `default`: Traefik's default self-signed
   * certificate, no ACME. Default: `default` for environment local, else `acme`.
   */
  readonly tls: "acme" | "default";
  /** Required when tls is `acme`. */
  readonly acme?: {
    readonly email: string;
    readonly caServer?: string;
    readonly resolverName: string;
    /** ACME challenge: `tls` (TLS-ALPN-01 on websecure) or `http` (HTTP-01 on web). Default `tls`. */
    readonly challenge?: "tls" | "http";
  };
  readonly dashboard: { readonly enabled: boolean; readonly host: string; readonly user: string };
  /** Host ports for web/websecure/registry entrypoints. Defaults 80, 443, 5000. */
  readonly ports: { readonly web: number; readonly websecure: number; readonly registry: number };
}

export interface RegistrySpec {
  readonly enabled: boolean;
  readonly image: string;
  /** Public host name, e.g. `registry.dev.popcube.xyz`; clients use `<host>:<ports.registry>`. */
  readonly host: string;
  readonly user: string;
  /** Node label (key=value) that pins the registry and its storage volume. */
  readonly storageLabel: string;
}

export interface MonitoringSpec {
  readonly enabled: boolean;
  readonly prometheusImage: string;
  readonly nodeExporterImage: string;
  readonly cadvisorImage: string;
  readonly prometheusHost: string;
  readonly retention: string;
}

/** A published port (Compose long syntax, normalised). */
export interface PortSpec {
  readonly target: number;
  readonly published?: number;
  readonly protocol: "tcp" | "udp" | "sctp";
  readonly mode: "ingress" | "host";
}

export interface MountSpec {
  readonly type: "volume" | "bind" | "tmpfs";
  /** For volumes: the physical volume name (`<stack>_<vol>` unless external/named). */
  readonly source?: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** For a stack-defined volume: how swarm creates it on a node (top-level `volumes.<v>`). Default: none. */
  readonly volume?: VolumeOptionsSpec;
}

/** Top-level `volumes.<v>` of a stack (not external): what swarm creates the volume with on each node. */
export interface VolumeOptionsSpec {
  /** `driver`. Default: none (the engine's `local`). */
  readonly driver?: string;
  /** `driver_opts`. */
  readonly driverOpts: Readonly<Record<string, string>>;
  /** `labels` (the program adds the stack namespace, as for every volume). */
  readonly labels: Readonly<Record<string, string>>;
}

/** Compose `logging`: the task log driver. */
export interface LoggingSpec {
  readonly driver: string;
  readonly options: Readonly<Record<string, string>>;
}

/** Compose `dns`, `dns_search`, `dns_opt`. */
export interface DnsSpec {
  readonly nameservers: readonly string[];
  readonly searches: readonly string[];
  readonly options: readonly string[];
}

/** A reference from a service to a swarm config or secret. */
export interface FileRefSpec {
  /** Physical name of the docker config/secret (for stack-defined ones, the content-hashed name). */
  readonly source: string;
  /** Key in the stack's top-level configs/secrets. */
  readonly key: string;
  readonly target: string;
  readonly uid?: string;
  readonly gid?: string;
  readonly mode?: number;
}

/** A top-level config or secret of a stack. */
export interface StackFileSpec {
  readonly key: string;
  /** `<stack>_<key>` (before the content hash is added), or the external name. */
  readonly name: string;
  readonly external: boolean;
  /** Absolute path of `file:`, for stack-defined ones. */
  readonly file?: string;
  /**
   * For secrets, Compose's `environment: NAME`: the value is the secret config `stackSecrets.NAME`, or is
   * generated (32 random characters, kept in Pulumi state) when that is unset. Never read from the shell.
   */
  readonly environment?: string;
  readonly origin: Origin;
}

export interface UpdateConfigSpec {
  readonly parallelism: number;
  readonly delay?: string;
  readonly failureAction?: "pause" | "continue" | "rollback";
  readonly monitor?: string;
  readonly maxFailureRatio?: number;
  readonly order?: "stop-first" | "start-first";
}

export interface HealthcheckSpec {
  readonly test: readonly string[];
  readonly interval?: string;
  readonly timeout?: string;
  readonly retries?: number;
  readonly startPeriod?: string;
}

export interface RestartPolicySpec {
  readonly condition?: "none" | "on-failure" | "any";
  readonly delay?: string;
  readonly maxAttempts?: number;
  readonly window?: string;
}

export interface ResourcesSpec {
  readonly limits?: { readonly cpus?: number; readonly memoryBytes?: number };
  readonly reservations?: {
    readonly cpus?: number;
    readonly memoryBytes?: number;
    /** `generic_resources`: each `discrete_resource_spec` as `KIND=N`. */
    readonly genericResources?: readonly string[];
  };
}

/** The `x-traefik` shorthand of a service. */
export interface TraefikRouteSpec {
  readonly hosts: readonly string[];
  readonly path?: string;
  readonly port: number;
  readonly middlewares: readonly string[];
  readonly tls: boolean;
}

/** One swarm service, as the program registers it. */
export interface ServiceSpec {
  readonly stack: string;
  /** Key under `services:` in the stack file. */
  readonly key: string;
  /** `<stack>_<key>`, as `docker stack deploy` names it. */
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  /** Compose `user` (the container's user). Default: the image's user. */
  readonly user?: string;
  readonly environment: Readonly<Record<string, string>>;
  /** Physical network names. */
  readonly networks: readonly string[];
  readonly mounts: readonly MountSpec[];
  readonly secrets: readonly FileRefSpec[];
  readonly configs: readonly FileRefSpec[];
  readonly healthcheck?: HealthcheckSpec;
  readonly ports: readonly PortSpec[];
  readonly mode: "replicated" | "global";
  /** Only for mode `replicated`. Default 1. */
  readonly replicas?: number;
  /** Service labels (Compose deploy.labels, plus generated Traefik labels and the stack namespace). */
  readonly labels: Readonly<Record<string, string>>;
  /** Container labels (Compose service-level labels, plus the stack namespace). */
  readonly containerLabels: Readonly<Record<string, string>>;
  readonly constraints: readonly string[];
  /** Spread descriptors, e.g. `node.labels.zone`. */
  readonly preferences: readonly string[];
  readonly updateConfig?: UpdateConfigSpec;
  readonly rollbackConfig?: UpdateConfigSpec;
  readonly restartPolicy?: RestartPolicySpec;
  readonly resources?: ResourcesSpec;
  readonly endpointMode?: "vip" | "dnsrr";
  readonly traefik?: TraefikRouteSpec;
  /** `deploy.placement.max_replicas_per_node`. Default: unlimited. */
  readonly maxReplicasPerNode?: number;
  /** Network aliases by physical network name (long network syntax). Default: none. */
  readonly networkAliases?: Readonly<Record<string, readonly string[]>>;
  readonly logging?: LoggingSpec;
  /** Go duration. */
  readonly stopGracePeriod?: string;
  readonly stopSignal?: string;
  /** May hold Go templates (`{{.Node.Hostname}}`), which swarm expands per task. */
  readonly hostname?: string;
  readonly dns?: DnsSpec;
  /** `extra_hosts`, as `{ host, ip }`. */
  readonly extraHosts?: readonly { readonly host: string; readonly ip: string }[];
  readonly workingDir?: string;
  readonly readOnly?: boolean;
  readonly init?: boolean;
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly sysctls?: Readonly<Record<string, string>>;
  readonly isolation?: string;
  /** Where the service is defined. */
  readonly origin: Origin;
  /** Line of each key of the service, by dotted path below the service (`image`, `deploy.labels`). */
  readonly lines?: Readonly<Record<string, number>>;
  /** Line of each service label (deploy.labels or the x-traefik key that generated it). */
  readonly labelLines?: Readonly<Record<string, { readonly line: number; readonly path: string }>>;
}

/** One Compose-format stack file, imported. */
export interface StackSpec {
  /** Stack name (namespace), from the file name unless given in config. */
  readonly name: string;
  readonly file: string;
  readonly services: readonly ServiceSpec[];
  /** Networks the stack defines (physical names `<stack>_<net>`); external ones are not listed. */
  readonly networks: readonly NetworkSpec[];
  readonly configs: readonly StackFileSpec[];
  readonly secrets: readonly StackFileSpec[];
  /** Every `${VAR}` the file uses, with where its value came from. */
  readonly variables?: readonly VariableUse[];
}

/** One variable a stack file uses, and where its value comes from. */
export interface VariableUse {
  readonly name: string;
  /** `stackVariables` (config), `environment` (opted in by stackEnvironment), `default` (the file's `${VAR:-x}`), `unset`. */
  readonly source: "stackVariables" | "environment" | "default" | "unset";
  /** First line that uses it. */
  readonly line: number;
}

/** Names of the secret config keys. The values are never part of the spec. */
export const SECRET_KEYS = [
  "registryPassword",
  "traefikDashboardPassword",
  "sshPrivateKey",
  "stackSecrets",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** The whole validated cluster. */
export interface ClusterSpec {
  readonly project: string;
  readonly stack: string;
  readonly environment: Environment;
  /** Base domain for the platform hosts (traefik., registry., prometheus.). */
  readonly domain: string;
  /** How the docker provider reaches a manager: `ssh://user@host[:port]` or `unix:///...` / `tcp://...`. */
  readonly docker: { readonly host: string };
  readonly nodes: NodesSpec;
  /** Platform networks; `publicNetwork` is the one Traefik routes on. */
  readonly networks: readonly NetworkSpec[];
  readonly publicNetwork: string;
  readonly traefik: TraefikSpec;
  readonly registry: RegistrySpec;
  readonly monitoring: MonitoringSpec;
  readonly stacks: readonly StackSpec[];
  /** Names set under the secret config `stackSecrets` (names only, never values). Default: none. */
  readonly stackSecretNames?: readonly string[];
  /** Which secret keys are set (as secrets) in config; unset ones are generated (passwords) or absent. */
  readonly secretsSet: Readonly<Record<SecretKey, boolean>>;
}
