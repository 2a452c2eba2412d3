// Pure: the order in which hosts become swarm members.

import type { HostSpec } from "../config/types";

/** One host joining, after the nodes named in `after` (host names). */
export interface JoinStep {
  readonly host: HostSpec;
  readonly after: readonly string[];
}

export interface MembershipPlan {
  /** The first manager of `hosts`: runs `docker swarm init`. */
  readonly bootstrap: HostSpec;
  readonly managers: readonly HostSpec[];
  readonly workers: readonly HostSpec[];
  /** Every host but the bootstrap one, managers first; each joins after the bootstrap node alone. */
  readonly steps: readonly JoinStep[];
}

/**
 * The hosts a node asks for a manager (SwarmNode's `managers`): the configured managers other than itself, in
 * config order. Not every host (n² entries in a plan), and not the node itself (the provider always asks it too),
 * so that its own promotion or demotion leaves its list as it was.
 */
export function managersAskedBy(plan: MembershipPlan, hostName: string): HostSpec[] {
  return plan.managers.filter((m) => m.name !== hostName);
}

/**
 * Every host but the first manager joins right after the init, managers and workers alike, in parallel (at most
 * nodes.swarm.maxParallelJoins at once). Raft membership still changes one member at a time: swarmkit's leader
 * holds one lock across each manager join, checks that the new member's raft server answers before it proposes the
 * change, and returns only once the change is applied (manager/state/raft/raft.go, `Join`), so concurrent manager
 * joins queue there instead of racing; joining them one after the other from here only added each one's SSH and
 * CLI time to the critical path (1.80 × the raw ssh floor instead of 1.24 on the testbed, BENCHMARKS.md).
 * Removals are serialised by the provider instead: a manager leaves only under the swarm-wide lock, after a quorum
 * check (withSwarmLock).
 */
export function membershipPlan(hosts: readonly HostSpec[]): MembershipPlan {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const h of hosts) {
    for (const [what, key] of [
      ["name", h.name],
      ["address", `${h.address}:${h.port}`],
    ]) {
      const k = `${what}=${key}`;
      if (seen.has(k)) problems.push(`hosts ${seen.get(k)} and ${h.name} have the same ${what} ${key}`);
      else seen.set(k, h.name);
    }
  }
  const managers = hosts.filter((h) => h.role === "manager");
  const workers = hosts.filter((h) => h.role === "worker");
  if (managers.length === 0) problems.push("the swarm needs at least one host with role manager");
  if (problems.length > 0) throw new Error(`swarm membership: ${problems.join("; ")}`);
  const steps: JoinStep[] = [];
  for (const h of [...managers.slice(1), ...workers]) steps.push({ host: h, after: [managers[0].name] });
  return { bootstrap: managers[0], managers, workers, steps };
}
