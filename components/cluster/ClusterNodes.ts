// The machines and swarm membership of the `ssh` and `libvirt` node sources, on their own: with `libvirt`, the
// VMs (LibvirtNodes, `${name}-vms`) and then SwarmMembership (`${name}-swarm`), each node's membership after
// its domain; with `ssh`, SwarmMembership alone. SwarmCluster uses it for those sources; the vm chain test runs
// it under the real Pulumi engine (the docker plugin the rest of SwarmCluster needs cannot run there).
//
// A function, not a component: the children are registered under the given parent, so their URNs are the
// same as when SwarmCluster registered them itself (existing stacks see no replacement).
import * as pulumi from "@pulumi/pulumi";
import { ClusterSpec } from "../config/types";
import { LibvirtNodes } from "../hosts/libvirt/LibvirtNodes";
import { SwarmMembership } from "../swarm/SwarmMembership";

export interface ClusterNodesArgs {
  /** The validated cluster; nodes.source must be `ssh` or `libvirt`. */
  readonly spec: ClusterSpec;
  /** SSH private key (secret): reaches the nodes (and SSH hypervisors). */
  readonly privateKey: pulumi.Input<string>;
}

export interface ClusterNodes {
  /** Docker host of the init manager, `ssh://user@host[:port]`. */
  readonly managerEndpoint: pulumi.Output<string>;
  /** Every node's membership resource: what workloads wait for. */
  readonly ready: readonly pulumi.Resource[];
  readonly swarm: SwarmMembership;
  /** Node source libvirt only. */
  readonly vms?: LibvirtNodes;
}

export function clusterNodes(
  name: string,
  args: ClusterNodesArgs,
  opts?: { parent?: pulumi.Resource },
): ClusterNodes {
  const { spec, privateKey } = args;
  if (spec.nodes.source !== "ssh" && spec.nodes.source !== "libvirt")
    throw new Error(`clusterNodes: nodes.source is ${spec.nodes.source}; only ssh and libvirt form a swarm`);
  const libvirt = spec.nodes.source === "libvirt" ? spec.nodes.libvirt : undefined;
  const parent = opts?.parent ? { parent: opts.parent } : {};
  // Node source libvirt: each node's membership depends on its domain, so a node joins once its VM runs
  // (waiting, bounded by bootTimeoutSeconds, until the guest answers on SSH) and, when the node is removed,
  // it is drained and leaves the swarm before its VM is destroyed.
  const vms = libvirt
    ? new LibvirtNodes(
        `${name}-vms`,
        { project: spec.project, stack: spec.stack, hosts: spec.nodes.hosts, libvirt, privateKey },
        parent,
      )
    : undefined;
  const swarm = new SwarmMembership(
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
    parent,
  );
  return {
    managerEndpoint: swarm.managerEndpoint,
    ready: Object.values(swarm.nodeResources),
    swarm,
    ...(vms ? { vms } : {}),
  };
}
