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
  /** Every host but the bootstrap one, managers first. */
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
 * Managers join one at a time, each after the previous manager: every join is a raft membership change,
 * and raft (and swarmkit) apply those one by one; a manager that joins while another is still being added
 * can time out, and a two-member raft group without its second member has no quorum. Chaining them also
 * makes `pulumi destroy` remove managers one at a time, in reverse order. Workers only need one manager,
 * so they all join in parallel right after the init.
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
  for (let i = 1; i < managers.length; i++) steps.push({ host: managers[i], after: [managers[i - 1].name] });
  for (const w of workers) steps.push({ host: w, after: [managers[0].name] });
  return { bootstrap: managers[0], managers, workers, steps };
}
