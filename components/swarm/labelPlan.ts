// Pure parts of node labelling and placement checks: which labels to add or remove, which placement labels no
// node carries, and the messages that say how to fix it. No I/O.

import { NodeObservation, parseNodeInspect } from "./plan";

/** A node label (key=value) that a platform service is pinned to, with the config key that names it. */
export interface PlacementRequirement {
  /** Config key without namespace, e.g. `traefik.placementLabel`. */
  readonly key: string;
  /** `key=value`. */
  readonly label: string;
  /** Traefik needs a manager (it reads the swarm API); the registry any node. */
  readonly managerOnly: boolean;
}

/**
 * Label changes on one node that Swarmform labels without owning all its labels: add or correct every
 * `wanted` label; remove a label it set before (`owned`) that is no longer wanted, unless someone changed its
 * value since (then it is theirs). Labels Swarmform never set are left alone.
 */
export function ownedLabelChanges(
  current: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
  owned: Readonly<Record<string, string>>,
): { add: [string, string][]; rm: string[] } {
  const add: [string, string][] = Object.keys(wanted)
    .sort()
    .filter((k) => current[k] !== wanted[k])
    .map((k) => [k, wanted[k]]);
  const rm = Object.keys(owned)
    .sort()
    .filter((k) => !(k in wanted) && current[k] === owned[k]);
  return { add, rm };
}

/** Whether a node carries `key=value`. */
export function carries(node: Pick<NodeObservation, "labels">, label: string): boolean {
  const eq = label.indexOf("=");
  return node.labels[label.slice(0, eq)] === label.slice(eq + 1);
}

/**
 * The requirements no node satisfies, each with a message that names the label, the config key, what stays
 * pending, and how to set the label. `where` describes the swarm (e.g. `the swarm at unix:///var/run/docker.sock`).
 */
export function missingPlacements(
  nodes: readonly Pick<NodeObservation, "labels" | "role" | "hostname">[],
  required: readonly PlacementRequirement[],
  where: string,
  stack = "<stack>",
): string[] {
  return required
    .filter((r) => !nodes.some((n) => (!r.managerOnly || n.role === "manager") && carries(n, r.label)))
    .map((r) => {
      const eq = r.label.indexOf("=");
      const [k, v] = [r.label.slice(0, eq), r.label.slice(eq + 1)];
      const who = r.managerOnly ? "manager" : "node";
      const service = r.key.startsWith("traefik") ? "Traefik" : "the registry";
      const candidates = nodes.filter((n) => !r.managerOnly || n.role === "manager").map((n) => n.hostname);
      return (
        `no ${who} of ${where} carries the node label ${r.label} (swarmform:${r.key}), so ${service} would stay pending. ` +
        `Label one ${who}${candidates.length ? ` (${candidates.join(", ")})` : ""} in Pulumi.${stack}.yaml: ` +
        `swarmform:nodes: { labels: { <node>: { ${k}: "${v}" } } }, or by hand: docker node update --label-add ${r.label} <node>`
      );
    });
}

/** Parses `docker node inspect A B ...` (a JSON array) into observations. */
export function parseNodeInspectAll(json: string): NodeObservation[] {
  return (JSON.parse(json.trim()) as unknown[]).map((n) => parseNodeInspect(JSON.stringify(n)));
}

/** What `pulumi destroy` does to a local engine: leave the swarm only if Swarmform created it. */
export function localTeardown(state: {
  initialised: boolean;
  swarmId: string;
  currentSwarmId?: string;
  localNodeState: string;
}): "leave" | "remove-labels" | "nothing" {
  if (state.localNodeState !== "active") return "nothing";
  if (state.initialised && state.currentSwarmId === state.swarmId) return "leave";
  return "remove-labels";
}
