import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ClusterSpec } from "../config/types";
import { htpasswdLine } from "./content";
import { authLabels, traefikService } from "./platform";
import { serviceArgs } from "./serviceArgs";

export interface TraefikArgs {
  readonly spec: ClusterSpec;
  readonly provider: docker.Provider;
  /** Network id by physical name (the public network must be there). */
  readonly networkIds: Readonly<Record<string, pulumi.Input<string>>>;
  /** Password of the basic-auth middleware (dashboard, Prometheus); secret. Default: no middleware. */
  readonly authPassword?: pulumi.Input<string>;
}

/** Traefik v3 as a swarm service, pinned to one labelled manager. Child `${name}-service`. */
export class Traefik extends pulumi.ComponentResource {
  public readonly service: docker.Service;
  public readonly serviceName: pulumi.Output<string>;

  constructor(name: string, args: TraefikArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:workloads:Traefik", name, {}, opts);
    const { spec } = args;
    const user = spec.traefik.dashboard.user;
    // The htpasswd line is computed from the secret, so the labels that carry it stay secret.
    const secretLabels =
      args.authPassword === undefined
        ? undefined
        : pulumi.secret(args.authPassword).apply((pw) => authLabels(spec, htpasswdLine(user, pw)));
    this.service = new docker.Service(
      `${name}-service`,
      serviceArgs(traefikService(spec), { networkIds: args.networkIds, secretLabels }),
      { parent: this, provider: args.provider },
    );
    this.serviceName = this.service.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
