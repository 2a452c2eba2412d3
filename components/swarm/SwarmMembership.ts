// SwarmMembership: the swarm formed from a list of hosts (node source `ssh`): the first manager runs
// `docker swarm init`, then every other host joins, in parallel (see membershipPlan).

import * as pulumi from "@pulumi/pulumi";
import type { HostSpec, NodesSpec } from "../config/types";
import { nodeSshOf, NodeTimeouts } from "./nodeOps";
import { SwarmNode } from "./SwarmNode";
import { managersAskedBy, membershipPlan } from "./membershipPlan";

export interface SwarmMembershipArgs {
  /** Hosts of the swarm. The first manager in the list runs `swarm init`. At least one manager. */
  readonly hosts: readonly HostSpec[];
  /** Init options and `forceQuorumLoss` (NodesSpec["swarm"]). */
  readonly swarm: NodesSpec["swarm"];
  /** SSH private key for every host. Made secret here if it is not already. */
  readonly privateKey: pulumi.Input<string>;
  /** Bounds on waits. Default: readySeconds 120, drainSeconds 300, connectSeconds 10, lockSeconds 900. */
  readonly timeouts?: NodeTimeouts;
  /**
   * Resources each host's membership waits for, by host name (e.g. its VM): created before the node joins,
   * and deleted only after it has left the swarm. Default: none.
   */
  readonly hostDependsOn?: Readonly<Record<string, readonly pulumi.Resource[]>>;
}

/** One node of the swarm, as the outputs report it. */
export interface MembershipNode {
  readonly name: string;
  readonly address: string;
  readonly role: "manager" | "worker";
  readonly availability: string;
  readonly labels: Record<string, string>;
  readonly nodeId: string;
  /** false if a refresh found it outside the swarm (the next `up` re-joins it). */
  readonly member: boolean;
  /** ready | down | unknown, as the managers see it. */
  readonly state: string;
}

export class SwarmMembership extends pulumi.ComponentResource {
  /** `ssh://user@address[:port]` of the init manager: the docker host for @pulumi/docker. */
  public readonly managerEndpoint: pulumi.Output<string>;
  /** Every node, in the order of `hosts`. */
  public readonly nodes: pulumi.Output<MembershipNode[]>;
  public readonly swarmId: pulumi.Output<string>;
  /** Secret. */
  public readonly managerToken: pulumi.Output<string>;
  /** Secret. */
  public readonly workerToken: pulumi.Output<string>;
  /** The SwarmNode resources, by host name (e.g. for dependsOn). */
  public readonly nodeResources: Readonly<Record<string, SwarmNode>>;

  constructor(name: string, args: SwarmMembershipArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:swarm:SwarmMembership", name, {}, opts);
    const plan = membershipPlan(args.hosts);
    const privateKey = pulumi.secret(args.privateKey);
    // Where a node asks for a manager: managersAskedBy. The diff updates a node's stored list only once it holds
    // none of the configured managers (managersStale), so a promotion or a demotion previews as an update of that
    // one node, naming only `role`. Not every host: that list made each plan n² entries (at 300 nodes, 90,000
    // objects to serialize: 10 s of planning and 1 GiB, against 3.7 s and 0.4 GiB with the managers only).
    const init = {
      defaultAddrPool: [...args.swarm.defaultAddrPool],
      dataPathPort: args.swarm.dataPathPort,
      certExpiry: args.swarm.certExpiry,
    };

    const resources: Record<string, SwarmNode> = {};
    const nodeOf = (h: HostSpec, bootstrap: boolean, dependsOn: SwarmNode[]) =>
      new SwarmNode(
        `${name}-${h.name}`,
        {
          ...nodeSshOf(h),
          privateKey,
          role: h.role,
          availability: h.availability,
          labels: { ...h.labels },
          bootstrap,
          init: bootstrap ? init : undefined,
          managers: managersAskedBy(plan, h.name).map((m) => nodeSshOf(m)),
          expectedSwarmId: bootstrap ? undefined : resources[plan.bootstrap.name].swarmId,
          forceQuorumLoss: args.swarm.forceQuorumLoss,
          maxParallelJoins: args.swarm.maxParallelJoins,
          timeouts: args.timeouts,
        },
        { parent: this, dependsOn: [...dependsOn, ...(args.hostDependsOn?.[h.name] ?? [])] },
      );

    // Ordering (see membershipPlan): init first, then every other node in parallel; the swarm's leader applies
    // manager joins one at a time, and the provider removes managers one at a time under a swarm-wide lock.
    resources[plan.bootstrap.name] = nodeOf(plan.bootstrap, true, []);
    for (const step of plan.steps) {
      resources[step.host.name] = nodeOf(
        step.host,
        false,
        step.after.map((n) => resources[n]),
      );
    }
    this.nodeResources = resources;

    const boot = resources[plan.bootstrap.name];
    this.swarmId = boot.swarmId;
    this.managerToken = pulumi.secret(boot.managerToken);
    this.workerToken = pulumi.secret(boot.workerToken);
    this.managerEndpoint = pulumi.output(endpointOf(plan.bootstrap));
    this.nodes = pulumi.all(
      args.hosts.map((h) => {
        const r = resources[h.name];
        return pulumi
          .all([r.role, r.availability, r.labels, r.nodeId, r.member, r.state])
          .apply(([role, availability, labels, nodeId, member, state]) => ({
            name: h.name,
            address: h.address,
            role,
            availability,
            labels,
            nodeId,
            member,
            state,
          }));
      }),
    );

    this.registerOutputs({
      managerEndpoint: this.managerEndpoint,
      nodes: this.nodes,
      swarmId: this.swarmId,
      managerToken: this.managerToken,
      workerToken: this.workerToken,
    });
  }
}

/** `ssh://user@address`, with `:port` unless 22. */
export function endpointOf(h: Pick<HostSpec, "user" | "address" | "port">): string {
  return `ssh://${h.user}@${h.address}${h.port && h.port !== 22 ? `:${h.port}` : ""}`;
}
