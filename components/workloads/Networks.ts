import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { NetworkSpec } from "../config/types";
import { networkArgs } from "./platform";

export interface NetworksArgs {
  readonly networks: readonly NetworkSpec[];
  /** Stack namespace label value (`<project>-<stack>` for the platform, the stack name for an app stack). */
  readonly namespace: string;
  readonly provider: docker.Provider;
}

/** Overlay networks. Child names `${name}-<logical network name>`. */
export class Networks extends pulumi.ComponentResource {
  /** Network id by physical name. */
  public readonly ids: Record<string, pulumi.Output<string>> = {};
  public readonly networks: docker.Network[];

  constructor(name: string, args: NetworksArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:workloads:Networks", name, {}, opts);
    this.networks = args.networks.map((net) => {
      const n = new docker.Network(`${name}-${net.name}`, networkArgs(net, args.namespace), {
        parent: this,
        provider: args.provider,
      });
      this.ids[net.physicalName] = n.id;
      return n;
    });
    this.registerOutputs({ ids: this.ids });
  }
}
