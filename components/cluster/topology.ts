// The planned topology of one stack, for `swarmform describe`: nodes from the spec, and networks,
// services and every other resource as the program registers them (captured under Pulumi mocks).
// Pure: the spec and the captured registrations in, a Topology and its text / mermaid renderings out.
import { placeNodes } from "../config/libvirt";
import { ClusterSpec } from "../config/types";

/** One registered custom resource: type token, logical name, and resolved inputs. */
export interface PlannedResource {
  readonly type: string;
  readonly name: string;
  readonly id?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- provider inputs are arbitrary JSON
  readonly inputs: Record<string, any>;
}

export interface TopologyNode {
  readonly name: string;
  readonly role: "manager" | "worker";
  readonly labels: Readonly<Record<string, string>>;
  /** Where the node runs: a hypervisor for VM sources; for `ssh`, the address it is reached at. */
  readonly host: string;
}

export interface TopologyNetwork {
  readonly name: string;
  readonly encrypted: boolean;
  readonly subnet?: string;
}

export interface TopologyService {
  readonly name: string;
  readonly image: string;
  /** A number, or `global`. */
  readonly replicas: number | "global";
  readonly constraints: readonly string[];
  /** Physical names of the networks it joins. */
  readonly networks: readonly string[];
  /** Traefik router rules, e.g. Host(`api.dev.popcube.xyz`). */
  readonly routes: readonly string[];
}

export interface Topology {
  readonly stack: string;
  readonly environment: string;
  readonly source: string;
  /** Node counts (for the `existing` source the nodes themselves are not known to config). */
  readonly managers: number;
  readonly workers: number;
  readonly nodes: readonly TopologyNode[];
  readonly networks: readonly TopologyNetwork[];
  readonly services: readonly TopologyService[];
  /** Every custom resource the program registers: `type name`. */
  readonly resources: readonly { readonly type: string; readonly name: string }[];
}

const SERVICE = "docker:index/service:Service";
const NETWORK = "docker:index/network:Network";

type Label = { label: string; value: string };

/** Builds the topology from the validated spec and the resources registered under mocks. */
export function topologyOf(spec: ClusterSpec, registered: readonly PlannedResource[]): Topology {
  // Registration order depends on when Outputs resolve: sort, so that the same config prints the same.
  const resources = [...registered].sort(
    (a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name),
  );
  const networks = resources.filter((r) => r.type === NETWORK);
  const networkById = new Map(networks.map((n) => [n.id, String(n.inputs.name)]));
  const libvirt = spec.nodes.libvirt;
  const hypervisorOf: Record<string, string> = libvirt
    ? placeNodes(
        spec.nodes.hosts,
        libvirt.hypervisors.map((h) => h.name),
      )
    : {};
  return {
    stack: spec.stack,
    environment: spec.environment,
    source: spec.nodes.source,
    managers: spec.nodes.managers,
    workers: spec.nodes.workers,
    nodes: spec.nodes.hosts.map((h) => ({
      name: h.name,
      role: h.role,
      labels: h.labels,
      host: hypervisorOf[h.name]
        ? `VM on ${hypervisorOf[h.name]}, ${h.user}@${h.address}:${h.port}`
        : `${h.user}@${h.address}:${h.port}`,
    })),
    networks: networks.map((n) => ({
      name: String(n.inputs.name),
      encrypted: n.inputs.options?.encrypted === "true",
      ...(n.inputs.ipamConfigs?.[0]?.subnet ? { subnet: String(n.inputs.ipamConfigs[0].subnet) } : {}),
    })),
    services: resources
      .filter((r) => r.type === SERVICE)
      .map((s) => {
        const labels = (s.inputs.labels ?? []) as Label[];
        const task = s.inputs.taskSpec ?? {};
        return {
          name: String(s.inputs.name),
          image: String(task.containerSpec?.image ?? ""),
          replicas: s.inputs.mode?.global ? "global" : Number(s.inputs.mode?.replicated?.replicas ?? 1),
          constraints: task.placement?.constraints ?? [],
          networks: ((task.networksAdvanceds ?? []) as { id?: string; name?: string }[]).map(
            (n) => (n.id !== undefined ? networkById.get(n.id) : undefined) ?? String(n.name ?? n.id),
          ),
          routes: labels
            .filter((l) => /^traefik\.http\.routers\.[^.]+\.rule$/.test(l.label))
            .map((l) => l.value),
        };
      }),
    resources: resources.map((r) => ({ type: r.type, name: r.name })),
  };
}

const kv = (m: Readonly<Record<string, string>>) =>
  Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ") || "(none)";

/** Plain text, one section per kind. */
export function renderText(t: Topology): string[] {
  const out = [`stack ${t.stack} (environment ${t.environment}, node source ${t.source})`, ""];
  out.push(`nodes: ${t.managers} manager(s), ${t.workers} worker(s)`);
  if (t.nodes.length === 0)
    out.push("  (not listed in config: the swarm at docker.host; labels are set there)");
  for (const n of t.nodes) out.push(`  ${n.name}  ${n.role}  ${n.host}  labels: ${kv(n.labels)}`);
  out.push("", "networks:");
  for (const n of t.networks)
    out.push(`  ${n.name}  ${n.encrypted ? "encrypted" : "plain"}${n.subnet ? `  ${n.subnet}` : ""}`);
  out.push("", "services:");
  for (const s of t.services) {
    out.push(`  ${s.name}  replicas: ${s.replicas}  image: ${s.image}`);
    if (s.constraints.length > 0) out.push(`    placement: ${s.constraints.join(", ")}`);
    out.push(`    networks: ${s.networks.join(", ") || "(none)"}`);
    for (const r of s.routes) out.push(`    route: ${r}`);
  }
  const counts = new Map<string, number>();
  for (const r of t.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  out.push("", `resources (${t.resources.length}, as registered under mocks):`);
  for (const [type, n] of [...counts].sort()) out.push(`  ${String(n).padStart(3)}  ${type}`);
  return out;
}

/** A mermaid id from any name. */
const mid = (prefix: string, name: string) => `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
/** Mermaid label text: no quotes or brackets. */
const mtext = (s: string) => s.replace(/["[\]{}()<>`]/g, "");

/** A mermaid flowchart: nodes, networks, services on networks, routes from the internet through Traefik. */
export function renderMermaid(t: Topology): string[] {
  const out = ["flowchart LR"];
  out.push(`  subgraph nodes["${t.stack}: ${t.managers} manager(s), ${t.workers} worker(s) (${t.source})"]`);
  for (const n of t.nodes)
    out.push(`    ${mid("node", n.name)}["${mtext(n.name)} (${n.role})<br/>${mtext(kv(n.labels))}"]`);
  if (t.nodes.length === 0) out.push(`    node_swarm["swarm at docker.host"]`);
  out.push("  end");
  for (const n of t.networks)
    out.push(`  ${mid("net", n.name)}{{"${mtext(n.name)}${n.encrypted ? " (encrypted)" : ""}"}}`);
  // Routes enter through Traefik when the platform runs it.
  const traefik = t.services.find((s) => /_traefik$/.test(s.name));
  const entry = traefik ? mid("svc", traefik.name) : "internet";
  if (t.services.some((s) => s.routes.length > 0)) out.push(`  internet(("internet"))`);
  if (traefik) out.push(`  internet --> ${entry}`);
  for (const s of t.services) {
    const replicas = s.replicas === "global" ? "global" : `x${s.replicas}`;
    out.push(`  ${mid("svc", s.name)}["${mtext(s.name)} ${replicas}"]`);
    for (const n of s.networks) out.push(`  ${mid("svc", s.name)} --- ${mid("net", n)}`);
    for (const r of s.routes)
      out.push(`  ${entry} -- "${mtext(r.replace(/Host\(`([^`]*)`\)/g, "$1"))}" --> ${mid("svc", s.name)}`);
    // Placement on a node label: an edge to each node that carries it.
    for (const c of s.constraints) {
      const m = /^node\.labels\.(.+)==(.+)$/.exec(c);
      for (const n of m ? t.nodes.filter((x) => x.labels[m[1]] === m[2]) : [])
        out.push(`  ${mid("svc", s.name)} -. "${mtext(c)}" .-> ${mid("node", n.name)}`);
    }
  }
  return out;
}
