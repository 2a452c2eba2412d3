import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ClusterSpec } from "../config/types";
import { base64, hashedName } from "./content";
import {
  cadvisorService,
  NAMESPACE_LABEL,
  nodeExporterService,
  platformNamespace,
  prometheusConfig,
  prometheusService,
} from "./platform";
import { labelList, serviceArgs } from "./serviceArgs";

export interface MonitoringArgs {
  readonly spec: ClusterSpec;
  readonly provider: docker.Provider;
  readonly networkIds: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * Prometheus (swarm service discovery), node-exporter and cAdvisor. Children `${name}-prometheus-config`,
 * `${name}-prometheus`, `${name}-node-exporter`, `${name}-cadvisor`.
 */
export class Monitoring extends pulumi.ComponentResource {
  public readonly config: docker.ServiceConfig;
  public readonly services: docker.Service[];
  public readonly serviceNames: pulumi.Output<string[]>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:workloads:Monitoring", name, {}, opts);
    const { spec, provider, networkIds } = args;
    const ns = platformNamespace(spec);
    const content = prometheusConfig(spec);
    // Swarm configs are immutable: the content hash in the name makes a change a new config (created
    // before the old one is deleted) and a rolling update of Prometheus.
    this.config = new docker.ServiceConfig(
      `${name}-prometheus-config`,
      {
        name: hashedName(`${ns}_prometheus`, content),
        data: base64(content),
        labels: labelList({ [NAMESPACE_LABEL]: ns }),
      },
      { parent: this, provider, deleteBeforeReplace: false, replaceOnChanges: ["name", "data"] },
    );
    const child = { parent: this, provider };
    this.services = [
      new docker.Service(
        `${name}-prometheus`,
        serviceArgs(prometheusService(spec, `${ns}_prometheus`), {
          networkIds,
          configs: { prometheus: { id: this.config.id, name: this.config.name } },
        }),
        child,
      ),
      new docker.Service(
        `${name}-node-exporter`,
        serviceArgs(nodeExporterService(spec), { networkIds }),
        child,
      ),
      new docker.Service(`${name}-cadvisor`, serviceArgs(cadvisorService(spec), { networkIds }), child),
    ];
    this.serviceNames = pulumi.all(this.services.map((s) => s.name));
    this.registerOutputs({ serviceNames: this.serviceNames });
  }
}
