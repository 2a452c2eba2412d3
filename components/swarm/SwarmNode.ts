// SwarmNode: the Pulumi resource of one host's swarm membership; its provider is in provider.ts.

import * as pulumi from "@pulumi/pulumi";
import { BundledDynamicResource, providerModuleText } from "../hosts/bundledProvider";
import { Availability, NodeRole } from "./plan";
import { SWARM_NODE_SECRET_OUTPUTS, SwarmNodeInputs } from "./provider";

let providerText: string | undefined;

/**
 * The `__provider` of every SwarmNode of this program: provider.ts's swarmNodeProvider, bundled once (see
 * components/hosts/bundledProvider.ts).
 */
export function swarmNodeProviderText(): string {
  return (providerText ??= providerModuleText(require.resolve("./provider"), "swarmNodeProvider"));
}

/** Args of a SwarmNode resource. */
export type SwarmNodeArgs = { readonly [K in keyof SwarmNodeInputs]: pulumi.Input<SwarmNodeInputs[K]> };

/**
 * One host's membership of the swarm. A dynamic resource: its type token is `pulumi-nodejs:dynamic/swarm:SwarmNode`
 * (Pulumi fixes the `pulumi-nodejs:dynamic` prefix).
 */
export class SwarmNode extends BundledDynamicResource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly address: pulumi.Output<string>;
  declare public readonly role: pulumi.Output<NodeRole>;
  declare public readonly availability: pulumi.Output<Availability>;
  declare public readonly labels: pulumi.Output<Record<string, string>>;
  declare public readonly nodeId: pulumi.Output<string>;
  declare public readonly swarmId: pulumi.Output<string>;
  declare public readonly member: pulumi.Output<boolean>;
  declare public readonly state: pulumi.Output<string>;
  /** Secret. Bootstrap node only. */
  declare public readonly managerToken: pulumi.Output<string>;
  /** Secret. Bootstrap node only. */
  declare public readonly workerToken: pulumi.Output<string>;

  constructor(name: string, args: SwarmNodeArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      swarmNodeProviderText(),
      "swarm",
      "SwarmNode",
      name,
      {
        ...args,
        privateKey: pulumi.secret(args.privateKey),
        nodeId: undefined,
        swarmId: undefined,
        member: undefined,
        state: undefined,
        managerToken: undefined,
        workerToken: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...SWARM_NODE_SECRET_OUTPUTS],
      },
    );
  }
}
