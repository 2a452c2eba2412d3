import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ConfigError } from "../config/errors";
import { checkExternalFileRefs } from "../config/rules";
import { ClusterSpec, SecretKey } from "../config/types";
import { AppStack } from "../workloads/AppStack";
import { Monitoring } from "../workloads/Monitoring";
import { Networks } from "../workloads/Networks";
import { platformNamespace, registryAddress } from "../workloads/platform";
import { dockerProviderArgs } from "../workloads/provider";
import { Registry } from "../workloads/Registry";
import { Traefik } from "../workloads/Traefik";
import { SwarmMembership as SwarmMembershipComponent } from "../swarm/SwarmMembership";
import { LibvirtNodes } from "../hosts/libvirt/LibvirtNodes";

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

    // Node source `ssh`: this program forms the swarm, and the workloads go to its init manager.
    const membership =
      args.membership ??
      (spec.nodes.source === "ssh" || spec.nodes.source === "libvirt"
        ? this.formSwarm(name, spec, config)
        : undefined);
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
    this.services = pulumi.all([pulumi.all(names), pulumi.all(lists)]).apply(([a, b]) => [...a, ...b.flat()]);
    this.registerOutputs({
      traefikUrl: this.traefikUrl,
      registryUrl: this.registryUrl,
      dashboardUrl: this.dashboardUrl,
      prometheusUrl: this.prometheusUrl,
      services: this.services,
      registryPassword: this.registryPassword,
      dashboardPassword: this.dashboardPassword,
    });
  }

  private formSwarm(name: string, spec: ClusterSpec, config: pulumi.Config): SwarmMembership {
    const privateKey = config.requireSecret("sshPrivateKey");
    const libvirt = spec.nodes.source === "libvirt" ? spec.nodes.libvirt : undefined;
    // Node source libvirt: each node's membership depends on its domain, so a node joins once its VM runs
    // (waiting, bounded by bootTimeoutSeconds, until the guest answers on SSH) and, when the node is removed,
    // it is drained and leaves the swarm before its VM is destroyed.
    const vms = libvirt
      ? new LibvirtNodes(
          `${name}-vms`,
          { project: spec.project, stack: spec.stack, hosts: spec.nodes.hosts, libvirt, privateKey },
          { parent: this },
        )
      : undefined;
    const swarm = new SwarmMembershipComponent(
      `${name}-swarm`,
      {
        hosts: spec.nodes.hosts,
        swarm: spec.nodes.swarm,
        privateKey,
        ...(vms
          ? {
              hostDependsOn: Object.fromEntries(Object.entries(vms.domains).map(([h, d]) => [h, [d]])),
              timeouts: { readySeconds: libvirt!.bootTimeoutSeconds },
            }
          : {}),
      },
      { parent: this },
    );
    return { managerHost: swarm.managerEndpoint, ready: Object.values(swarm.nodeResources) };
  }
}
