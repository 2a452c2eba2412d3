import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ConfigError } from "../config/errors";
import { checkExternalFileRefs, labelMap, placementLabelsOf } from "../config/rules";
import { ClusterSpec, SecretKey } from "../config/types";
import { AppStack } from "../workloads/AppStack";
import { Monitoring } from "../workloads/Monitoring";
import { Networks } from "../workloads/Networks";
import { platformNamespace, registryAddress } from "../workloads/platform";
import { dockerProviderArgs } from "../workloads/provider";
import { Registry } from "../workloads/Registry";
import { Traefik } from "../workloads/Traefik";
import { LocalSwarm, NodeLabels } from "../swarm/nodeLabels";
import { clusterNodes } from "./ClusterNodes";

/**
 * The seam for swarm membership (components/swarm): once the swarm is formed, its manager endpoint feeds
 * the docker provider and every workload waits for it.
 */
export interface SwarmMembership {
  /** Docker host of a manager, `ssh://user@host[:port]` or a socket. */
  readonly managerHost: pulumi.Input<string>;
  /** Resources that must exist before any workload (swarm init, joins, node labels). */
  readonly ready: readonly pulumi.Resource[];
}

export interface SwarmClusterArgs {
  /** The validated cluster (config layer). */
  readonly spec: ClusterSpec;
  /**
   * Swarm membership formed elsewhere. Default: with node source `ssh`, a SwarmMembership child
   * (`${name}-swarm`) formed from spec.nodes.hosts; with `libvirt`, the VMs (`${name}-vms`, LibvirtNodes) and
   * then that SwarmMembership, each node's membership after its VM; with `existing`, none (the swarm is
   * reached at spec.docker.host).
   */
  readonly membership?: SwarmMembership;
  /** Extra ssh(1) options for an `ssh://` docker host, e.g. `["-o", "StrictHostKeyChecking=accept-new"]`. Default: none. */
  readonly dockerSshOpts?: readonly string[];
}

/** Labels of the local node (source local): the placement labels of Traefik and the registry, then nodes.local.labels. */
export function localNodeLabels(spec: ClusterSpec): Record<string, string> {
  return {
    ...Object.assign({}, ...placementLabelsOf(spec).map((r) => labelMap(r.label))),
    ...spec.nodes.local.labels,
  };
}

/** Public URLs of the platform, from the spec. */
export function clusterUrls(spec: ClusterSpec): {
  traefikUrl: string;
  registryUrl?: string;
  dashboardUrl?: string;
  prometheusUrl?: string;
} {
  const websecure = spec.traefik.ports.websecure;
  const https = (host: string, port = websecure) => `https://${host}${port === 443 ? "" : `:${port}`}`;
  return {
    traefikUrl: https(spec.domain),
    registryUrl: spec.registry.enabled
      ? https(registryAddress(spec).split(":")[0], spec.traefik.ports.registry)
      : undefined,
    dashboardUrl: spec.traefik.dashboard.enabled ? https(spec.traefik.dashboard.host) : undefined,
    prometheusUrl: spec.monitoring.enabled ? https(spec.monitoring.prometheusHost) : undefined,
  };
}

/** What `pulumi up` prints last: where Traefik, the registry and the dashboards are, and how to log in. */
export function clusterSummary(spec: ClusterSpec): string {
  const urls = clusterUrls(spec);
  const lines = [
    `Swarmform ${spec.project}-${spec.stack} (${spec.environment}), swarm manager at ${spec.docker.host}`,
    `  Traefik:    ${urls.traefikUrl} (entrypoints web :${spec.traefik.ports.web}, websecure :${spec.traefik.ports.websecure})`,
  ];
  if (urls.dashboardUrl)
    lines.push(
      `  dashboard:  ${urls.dashboardUrl}/dashboard/ (user ${spec.traefik.dashboard.user}; pulumi stack output --show-secrets dashboardPassword)`,
    );
  if (urls.registryUrl)
    lines.push(
      `  registry:   ${registryAddress(spec)} (docker login ${registryAddress(spec)} -u ${spec.registry.user}; pulumi stack output --show-secrets registryPassword)`,
    );
  if (urls.prometheusUrl)
    lines.push(
      `  Prometheus: ${urls.prometheusUrl} (user ${spec.traefik.dashboard.user}, the dashboard password)`,
    );
  lines.push(
    spec.traefik.tls === "acme"
      ? `  TLS: certificates from ACME (${spec.traefik.acme?.caServer ?? "Let's Encrypt"})`
      : "  TLS: Traefik's default self-signed certificate (curl -k, or accept it in the browser)",
  );
  if (spec.domain.endsWith(".localhost"))
    lines.push(
      `  *.localhost names resolve to 127.0.0.1 (browsers, systemd-resolved); else add them to /etc/hosts`,
    );
  lines.push(`  services: docker stack ps ${platformNamespace(spec)}`);
  return lines.join("\n");
}

/**
 * A whole Swarmform cluster: docker provider, platform networks, Traefik, registry, monitoring and the app
 * stacks. Children are named `${name}-<part>`.
 */
export class SwarmCluster extends pulumi.ComponentResource {
  public readonly traefikUrl: pulumi.Output<string>;
  public readonly registryUrl: pulumi.Output<string | undefined>;
  /** Undefined when the dashboard is disabled. */
  public readonly dashboardUrl: pulumi.Output<string | undefined>;
  public readonly prometheusUrl: pulumi.Output<string | undefined>;
  /** Physical names of every swarm service. */
  public readonly services: pulumi.Output<string[]>;
  /** Where Traefik, the registry and the dashboards are (see clusterSummary). */
  public readonly summary: pulumi.Output<string>;
  /** Secret. */
  public readonly registryPassword: pulumi.Output<string>;
  /** Secret. */
  public readonly dashboardPassword: pulumi.Output<string>;
  public readonly provider: docker.Provider;

  constructor(name: string, args: SwarmClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    // Problems the config layer cannot see: reported before any resource is registered.
    const issues = checkExternalFileRefs(args.spec.stacks);
    if (issues.length > 0) throw new ConfigError(issues);
    super("swarmform:index:SwarmCluster", name, {}, opts);
    const { spec } = args;
    const config = new pulumi.Config("swarmform");
    const password = (key: SecretKey, suffix: string): pulumi.Output<string> => {
      if (spec.secretsSet[key]) return config.requireSecret(key);
      const generated = new random.RandomPassword(
        `${name}-${suffix}`,
        { length: 32, special: false },
        { parent: this, additionalSecretOutputs: ["result"] },
      );
      return pulumi.secret(generated.result);
    };
    this.registryPassword = password("registryPassword", "registry-password");
    this.dashboardPassword = password("traefikDashboardPassword", "dashboard-password");

    // Node sources `ssh` and `libvirt` (VMs first): this program forms the swarm, and the workloads go to its init
    // manager. `local`: the local engine (swarm init only if the config allows it). `existing`: the labels named
    // in config, and the placement check, through docker.host.
    const membership =
      args.membership ??
      (spec.nodes.source === "ssh" || spec.nodes.source === "libvirt"
        ? this.formSwarm(name, spec, config)
        : spec.nodes.source === "local"
          ? this.localSwarm(name, spec)
          : this.labelExisting(name, spec));
    const ready = membership ? [...membership.ready] : [];
    this.provider = new docker.Provider(
      `${name}-docker`,
      dockerProviderArgs(membership?.managerHost ?? spec.docker.host, args.dockerSshOpts),
      { parent: this, dependsOn: ready },
    );
    const provider = this.provider;
    const child = { parent: this, dependsOn: ready };

    const platform = new Networks(
      `${name}-networks`,
      { networks: spec.networks, namespace: platformNamespace(spec), provider },
      child,
    );
    const networkIds = platform.ids;
    const authNeeded = spec.traefik.dashboard.enabled || spec.monitoring.enabled;
    const traefik = new Traefik(
      `${name}-traefik`,
      { spec, provider, networkIds, authPassword: authNeeded ? this.dashboardPassword : undefined },
      child,
    );
    const names: pulumi.Output<string>[] = [traefik.serviceName];
    const lists: pulumi.Output<string[]>[] = [];

    if (spec.registry.enabled) {
      const registry = new Registry(
        `${name}-registry`,
        { spec, provider, networkIds, password: this.registryPassword },
        child,
      );
      names.push(registry.serviceName);
    }
    if (spec.monitoring.enabled) {
      lists.push(new Monitoring(`${name}-monitoring`, { spec, provider, networkIds }, child).serviceNames);
    }
    const registryAuth = spec.registry.enabled
      ? {
          serverAddress: registryAddress(spec),
          username: spec.registry.user,
          password: this.registryPassword,
        }
      : undefined;
    for (const stack of spec.stacks) {
      const app = new AppStack(
        `${name}-stack-${stack.name}`,
        {
          stack,
          provider,
          platformNetworkIds: networkIds,
          registryAuth,
          stackSecrets: spec.secretsSet.stackSecrets
            ? config.requireSecretObject<Record<string, string>>("stackSecrets")
            : undefined,
          stackSecretNames: spec.stackSecretNames,
        },
        child,
      );
      lists.push(app.serviceNames);
    }

    const urls = clusterUrls(spec);
    this.traefikUrl = pulumi.output(urls.traefikUrl);
    this.registryUrl = pulumi.output(urls.registryUrl);
    this.dashboardUrl = pulumi.output(urls.dashboardUrl);
    this.prometheusUrl = pulumi.output(urls.prometheusUrl);
    this.summary = pulumi.output(clusterSummary(spec));
    this.services = pulumi.all([pulumi.all(names), pulumi.all(lists)]).apply(([a, b]) => [...a, ...b.flat()]);
    this.registerOutputs({
      traefikUrl: this.traefikUrl,
      registryUrl: this.registryUrl,
      dashboardUrl: this.dashboardUrl,
      prometheusUrl: this.prometheusUrl,
      services: this.services,
      summary: this.summary,
      registryPassword: this.registryPassword,
      dashboardPassword: this.dashboardPassword,
    });
  }

  private localSwarm(name: string, spec: ClusterSpec): SwarmMembership {
    const local = new LocalSwarm(
      `${name}-local-swarm`,
      {
        dockerHost: spec.docker.host,
        initSwarm: spec.nodes.local.initSwarm,
        advertiseAddr: spec.nodes.local.advertiseAddr ?? "127.0.0.1",
        init: {
          defaultAddrPool: [...spec.nodes.swarm.defaultAddrPool],
          dataPathPort: spec.nodes.swarm.dataPathPort,
          certExpiry: spec.nodes.swarm.certExpiry,
        },
        labels: localNodeLabels(spec),
        required: placementLabelsOf(spec),
        stack: spec.stack,
      },
      { parent: this },
    );
    return { managerHost: spec.docker.host, ready: [local] };
  }

  private labelExisting(name: string, spec: ClusterSpec): SwarmMembership {
    const labels = new NodeLabels(
      `${name}-node-labels`,
      {
        dockerHost: spec.docker.host,
        nodes: spec.nodes.labels,
        required: placementLabelsOf(spec),
        stack: spec.stack,
      },
      { parent: this },
    );
    return { managerHost: spec.docker.host, ready: [labels] };
  }

  private formSwarm(name: string, spec: ClusterSpec, config: pulumi.Config): SwarmMembership {
    const nodes = clusterNodes(
      name,
      { spec, privateKey: config.requireSecret("sshPrivateKey") },
      { parent: this },
    );
    return { managerHost: nodes.managerEndpoint, ready: nodes.ready };
  }
}
