// Pure planning logic for swarm membership: quorum arithmetic, removal steps, diff classification,
// parsing of docker CLI output and Engine API objects, command and request building, and secret scrubbing. No I/O.
//
// These functions also run in Pulumi's dynamic-provider process, from the bundle SwarmNode stores
// (components/hosts/bundledProvider.ts): they keep no module-level mutable state and use no node modules.

export type NodeRole = "manager" | "worker";
export type Availability = "active" | "pause" | "drain";

/** Swarm init options (first manager only). */
export interface InitOptions {
  /** CIDRs for `--default-addr-pool`. Default: docker's default (10.0.0.0/8). */
  readonly defaultAddrPool: readonly string[];
  /** `--data-path-port`. Default 4789. */
  readonly dataPathPort: number;
  /** `--cert-expiry`, e.g. `2160h0m0s`. Default docker's (90 days). */
  readonly certExpiry: string;
}

// ---------------------------------------------------------------------------------------------
// Quorum

/** Managers needed for quorum among `total` managers (a raft majority). */
export function quorumNeeded(total: number): number {
  return Math.floor(total / 2) + 1;
}

export interface ManagerCount {
  /** Managers in the swarm (any reachability). */
  readonly total: number;
  /** Managers whose raft status is Leader or Reachable. */
  readonly reachable: number;
}

/** A membership change as it affects the manager set. */
export type QuorumChange =
  | { readonly kind: "remove-manager"; readonly nodeReachable: boolean }
  | { readonly kind: "add-manager" }
  | { readonly kind: "none" };

export interface QuorumVerdict extends ManagerCount {
  readonly needed: number;
  /** True if the managers after the change still hold quorum. */
  readonly ok: boolean;
  readonly reason: string;
}

/**
 * The manager set after `change`, and whether it keeps quorum. Removing (or demoting) a manager
 * shrinks the raft group; removing the last manager is never "ok" (the swarm would have no manager).
 */
export function quorumAfter(managers: ManagerCount, change: QuorumChange): QuorumVerdict {
  let { total, reachable } = managers;
  if (change.kind === "remove-manager") {
    total -= 1;
    if (change.nodeReachable) reachable -= 1;
  } else if (change.kind === "add-manager") {
    // A new manager counts in the raft group as soon as it joins, and is reachable once it has.
    total += 1;
    reachable += 1;
  }
  const needed = quorumNeeded(total);
  if (total <= 0) {
    return { total, reachable, needed, ok: false, reason: "no manager would remain" };
  }
  const ok = reachable >= needed;
  const reason = `${reachable} of ${total} managers reachable, ${needed} needed for quorum`;
  return { total, reachable, needed, ok, reason };
}

// ---------------------------------------------------------------------------------------------
// Removal

export type RemovalStep =
  "drain" | "wait-tasks" | "demote" | "leave" | "node-rm" | "node-rm-force" | "leave-force";

export interface RemovalSituation {
  readonly role: NodeRole;
  /** The node's own SSH and docker daemon answer. */
  readonly hostReachable: boolean;
  /** The node is the only node left in the swarm (removing it dissolves the swarm). */
  readonly lastNode: boolean;
}

/**
 * Safe removal, in order: drain; wait until its tasks run elsewhere; demote if manager; `swarm leave`
 * on the node; `node rm` from a remaining manager. A host that is gone is demoted (if manager) and
 * removed with `node rm --force`. The last node of a swarm just leaves with --force (dissolves it).
 */
export function removalSteps(s: RemovalSituation): RemovalStep[] {
  if (s.lastNode) return s.hostReachable ? ["leave-force"] : [];
  if (!s.hostReachable) return s.role === "manager" ? ["demote", "node-rm-force"] : ["node-rm-force"];
  const steps: RemovalStep[] = ["drain", "wait-tasks"];
  if (s.role === "manager") steps.push("demote");
  steps.push("leave", "node-rm");
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Diff

/** The part of a SwarmNode's inputs/state that diff looks at. */
export interface NodeDesired {
  readonly name: string;
  readonly address: string;
  readonly advertiseAddress?: string;
  readonly port?: number;
  readonly user?: string;
  readonly role: NodeRole;
  readonly availability: Availability;
  readonly labels: Readonly<Record<string, string>>;
  readonly init?: InitOptions;
  readonly hostKeyFingerprint?: string;
  /** Compared for equality only, never printed. */
  readonly privateKey?: string;
  /** Where to ask for a manager; state keeps a list that reaches at least one configured manager (see managersStale). */
  readonly managers?: readonly SshEndpoint[];
  readonly forceQuorumLoss?: boolean;
  readonly timeouts?: object;
  /** State only: false when read found the node is not a member of the swarm any more. */
  readonly member?: boolean;
}

export interface DiffPlan {
  /** Properties that force a replacement (the node is removed, then joined again). */
  readonly replaces: string[];
  /** Properties that change in place. */
  readonly updates: string[];
  readonly changes: boolean;
  /** Always true for a replacement: the same host cannot be a member twice. */
  readonly deleteBeforeReplace: boolean;
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function sameInit(a: InitOptions | undefined, b: InitOptions | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.dataPathPort === b.dataPathPort &&
    a.certExpiry === b.certExpiry &&
    a.defaultAddrPool.length === b.defaultAddrPool.length &&
    a.defaultAddrPool.every((p, i) => p === b.defaultAddrPool[i])
  );
}

/** JSON with object keys sorted and undefined members dropped, for equality checks. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x as Record<string, unknown>)
            .sort()
            .map((k) => [k, (x as Record<string, unknown>)[k]]),
        )
      : x,
  );
}

/** How to reach one host over SSH (the private key is passed separately, as a secret). */
export interface SshEndpoint {
  /** Host name (HostSpec.name): used in every message. */
  readonly name: string;
  readonly address: string;
  /** Default 22. */
  readonly port?: number;
  /** Default root. */
  readonly user?: string;
}

/** `user@address:port`, defaults filled in: one host, however its endpoint is spelled. */
export const endpointKey = (e: Omit<SshEndpoint, "name">) =>
  `${e.user ?? "root"}@${e.address}:${e.port ?? 22}`;

/**
 * Whether a node's stored `managers` list must be replaced by the configured one. The list is only where read,
 * update and delete look for a manager (the first that answers is used), so it is current enough while it holds one
 * of the configured managers: a promotion or a demotion elsewhere, or a host added, then changes no other node.
 * It is stale (an update, which runs read-only commands) once none of its hosts is a configured manager any more.
 */
export function managersStale(
  stored: readonly SshEndpoint[] | undefined,
  configured: readonly SshEndpoint[] | undefined,
): boolean {
  const wanted = new Set((configured ?? []).map(endpointKey));
  if (wanted.size === 0) return false;
  return !(stored ?? []).some((e) => wanted.has(endpointKey(e)));
}

/**
 * Classifies a change from `olds` (state, possibly refreshed) to `news` (inputs). A new host or address
 * (or advertise address) replaces the node, delete-before-replace; role, availability, labels, SSH
 * details, init options, the managers list and the other settings change in place (the last ones only
 * refresh the state); a node that read found outside the swarm is re-joined.
 */
export function classifyDiff(olds: NodeDesired, news: NodeDesired): DiffPlan {
  const replaces: string[] = [];
  const updates: string[] = [];
  if (olds.name !== news.name) replaces.push("name");
  if (olds.address !== news.address) replaces.push("address");
  if ((olds.advertiseAddress ?? olds.address) !== (news.advertiseAddress ?? news.address))
    replaces.push("advertiseAddress");
  if (olds.member === false) updates.push("member");
  if (olds.role !== news.role) updates.push("role");
  if (olds.availability !== news.availability) updates.push("availability");
  if (!sameLabels(olds.labels, news.labels)) updates.push("labels");
  if ((olds.port ?? 22) !== (news.port ?? 22)) updates.push("port");
  if ((olds.user ?? "root") !== (news.user ?? "root")) updates.push("user");
  if (!sameInit(olds.init, news.init)) updates.push("init");
  if (olds.hostKeyFingerprint !== news.hostKeyFingerprint) updates.push("hostKeyFingerprint");
  if (olds.privateKey !== news.privateKey) updates.push("privateKey");
  // A node that is and stays a manager can always ask itself (the provider does), whatever its list holds.
  const asksItself = olds.role === "manager" && news.role === "manager";
  if (!asksItself && managersStale(olds.managers, news.managers)) updates.push("managers");
  if ((olds.forceQuorumLoss ?? false) !== (news.forceQuorumLoss ?? false)) updates.push("forceQuorumLoss");
  if (canonical(olds.timeouts ?? {}) !== canonical(news.timeouts ?? {})) updates.push("timeouts");
  const changes = replaces.length + updates.length > 0;
  return { replaces, updates, changes, deleteBeforeReplace: replaces.length > 0 };
}

/** `docker node update` arguments that turn `current` labels into `desired` (authoritative). */
export function labelChanges(
  current: Readonly<Record<string, string>>,
  desired: Readonly<Record<string, string>>,
): { add: [string, string][]; rm: string[] } {
  const add: [string, string][] = Object.keys(desired)
    .sort()
    .filter((k) => current[k] !== desired[k])
    .map((k) => [k, desired[k]]);
  const rm = Object.keys(current)
    .sort()
    .filter((k) => !(k in desired));
  return { add, rm };
}

/** A change `docker node update` makes (nodeUpdateCommand's argument). */
export interface NodeChange {
  readonly add: readonly [string, string][];
  readonly rm: readonly string[];
  readonly availability?: Availability;
}

// ---------------------------------------------------------------------------------------------
// Parsing docker output

/** `docker info --format '{{json .Swarm}}'`, the fields we use. */
export interface SwarmInfo {
  readonly nodeId: string;
  readonly nodeAddr: string;
  /** inactive | pending | active | error | locked */
  readonly localNodeState: string;
  readonly controlAvailable: boolean;
  /** Only on managers. */
  readonly clusterId?: string;
  readonly error: string;
  readonly nodes?: number;
  readonly managers?: number;
}

export function parseSwarmInfo(json: string): SwarmInfo {
  return swarmInfoOf(JSON.parse(json.trim()));
}

/** The `Swarm` object of the Engine API's `GET /info` (what `docker info --format '{{json .Swarm}}'` prints). */
export function swarmInfoOf(swarm: unknown): SwarmInfo {
  const s = (swarm ?? {}) as Record<string, unknown>;
  const cluster = s.Cluster as { ID?: string } | null | undefined;
  return {
    nodeId: String(s.NodeID ?? ""),
    nodeAddr: String(s.NodeAddr ?? ""),
    localNodeState: String(s.LocalNodeState ?? "inactive"),
    controlAvailable: s.ControlAvailable === true,
    clusterId: cluster?.ID || undefined,
    error: String(s.Error ?? ""),
    nodes: typeof s.Nodes === "number" ? s.Nodes : undefined,
    managers: typeof s.Managers === "number" ? s.Managers : undefined,
  };
}

/** One node as a manager sees it (`docker node inspect`). */
export interface NodeObservation {
  readonly id: string;
  readonly hostname: string;
  readonly role: NodeRole;
  readonly availability: Availability;
  readonly labels: Record<string, string>;
  /** ready | down | unknown | disconnected */
  readonly state: string;
  readonly addr: string;
  /** For managers: reachable | unreachable | unknown; "" for workers. */
  readonly reachability: string;
  readonly leader: boolean;
}

export function parseNodeInspect(json: string): NodeObservation {
  const parsed = JSON.parse(json.trim()) as unknown;
  return nodeObservationOf(Array.isArray(parsed) ? parsed[0] : parsed);
}

/** A node object of the Engine API (`GET /nodes/{id}`, an item of `GET /nodes`; what `docker node inspect` prints). */
export function nodeObservationOf(node: unknown): NodeObservation {
  const n = node as {
    ID: string;
    Spec: { Role: NodeRole; Availability: Availability; Labels?: Record<string, string> | null };
    Description?: { Hostname?: string };
    Status?: { State?: string; Addr?: string };
    ManagerStatus?: { Reachability?: string; Leader?: boolean } | null;
  };
  return {
    id: n.ID,
    hostname: n.Description?.Hostname ?? "",
    role: n.Spec.Role,
    availability: n.Spec.Availability,
    labels: { ...(n.Spec.Labels ?? {}) },
    state: n.Status?.State ?? "unknown",
    addr: n.Status?.Addr ?? "",
    reachability: n.ManagerStatus?.Reachability ?? "",
    leader: n.ManagerStatus?.Leader === true,
  };
}

/** `docker node ls --format '{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}'`. */
export interface NodeListEntry {
  readonly id: string;
  readonly hostname: string;
  /** Ready | Down | Unknown */
  readonly status: string;
  readonly availability: string;
  /** Leader | Reachable | Unreachable | "" (worker) */
  readonly managerStatus: string;
}

export const NODE_LS_FORMAT =
  "{{.ID}}\\t{{.Hostname}}\\t{{.Status}}\\t{{.Availability}}\\t{{.ManagerStatus}}";

export function parseNodeList(text: string): NodeListEntry[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => {
      const [id, hostname, status, availability, managerStatus] = l.split("\t");
      return { id, hostname, status, availability, managerStatus: managerStatus ?? "" };
    });
}

/** Managers in a node list, and how many of them raft can reach. */
export function countManagers(nodes: readonly NodeListEntry[]): ManagerCount {
  const managers = nodes.filter((n) => n.managerStatus !== "");
  const reachable = managers.filter((n) => n.managerStatus === "Leader" || n.managerStatus === "Reachable");
  return { total: managers.length, reachable: reachable.length };
}

/** `docker node ps <id> --filter desired-state=running --format '{{.Name}}\t{{.CurrentState}}'`. */
export interface TaskEntry {
  readonly name: string;
  readonly currentState: string;
}

export function parseTasks(text: string): TaskEntry[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => {
      const [name, currentState] = l.split("\t");
      return { name, currentState: currentState ?? "" };
    });
}

/**
 * Tasks still to move off a drained node: any task whose desired state is running there, except
 * tasks of global services (named `<service>.<nodeId>` by docker; replicated ones are `<service>.<slot>`).
 */
export function blockingTasks(tasks: readonly TaskEntry[], nodeId: string): TaskEntry[] {
  return tasks.filter((t) => !t.name.endsWith(`.${nodeId}`));
}

/**
 * Of `services`, the replicated ones with fewer tasks that are meant to run *and* run than they want. Input: the
 * output of `docker service ls --format '{{.Name}}\t{{.Mode}}\t{{.Replicas}}'`, then `@tasks`, then one line
 * `<service>\t<current state>` per task with desired state running. `docker service ls` alone is not enough:
 * right after a drain it still counts the drained node's tasks, which run until they stop, as running.
 */
export function servicesNotRunningElsewhere(text: string, services: ReadonlySet<string>): string[] {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.trim() === "@tasks");
  const serviceLines = at < 0 ? lines : lines.slice(0, at);
  const taskLines = at < 0 ? [] : lines.slice(at + 1);
  const running = new Map<string, number>();
  for (const line of taskLines) {
    const [name, state] = line.trim().split("\t");
    if (name && /^Running\b/.test(state ?? "")) running.set(name, (running.get(name) ?? 0) + 1);
  }
  return serviceLines
    .map((l) => l.trim().split("\t"))
    .filter(([name, mode, replicas]) => {
      if (!services.has(name) || mode !== "replicated") return false;
      const m = /^\d+\/(\d+)/.exec(replicas ?? "");
      return m !== null && (running.get(name) ?? 0) < Number(m[1]);
    })
    .map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Single-quotes a word for /bin/sh. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function initCommand(advertiseAddress: string, init: InitOptions): string {
  const parts = ["docker swarm init", `--advertise-addr ${sq(advertiseAddress)}`];
  for (const pool of init.defaultAddrPool) parts.push(`--default-addr-pool ${sq(pool)}`);
  parts.push(`--data-path-port ${Number(init.dataPathPort)}`, `--cert-expiry ${sq(init.certExpiry)}`);
  return parts.join(" ");
}

/** The join token is read from stdin, so it never appears in a process list or a command line. */
export function joinCommand(advertiseAddress: string, managerAddr: string): string {
  return `docker swarm join --advertise-addr ${sq(advertiseAddress)} --token "$(cat)" ${sq(managerAddr)}`;
}

/** `docker node update` for labels (any value) and availability; undefined when nothing changes. */
export function nodeUpdateCommand(nodeId: string, change: NodeChange): string | undefined {
  const args: string[] = [];
  for (const k of change.rm) args.push(`--label-rm ${sq(k)}`);
  for (const [k, v] of change.add) args.push(`--label-add ${sq(`${k}=${v}`)}`);
  if (change.availability) args.push(`--availability ${change.availability}`);
  if (args.length === 0) return undefined;
  return `docker node update ${args.join(" ")} ${sq(nodeId)}`;
}

/** `docker info --format '{{json .Swarm}}'`: a host's own swarm info, as one JSON line. */
export const SWARM_INFO_COMMAND = "docker info --format '{{json .Swarm}}'";

// ---------------------------------------------------------------------------------------------
// Engine API requests (what the provider sends through EngineTransport.request)

const DURATION_UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration (`2160h0m0s`, `1m30s`, `500ms`) in nanoseconds, as the Engine API wants it; throws on anything else. */
export function goDurationNs(value: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += parseFloat(m[1]) * DURATION_UNIT_NS[m[2]];
    end = re.lastIndex;
  }
  if (value === "" || end !== value.length) throw new Error(`"${value}" is not a Go duration`);
  return Math.round(total);
}

/** The body of `POST /swarm/init`: what `docker swarm init` (initCommand) sends, its defaults included. */
export function initRequest(advertiseAddress: string, init: InitOptions): Record<string, unknown> {
  return {
    ListenAddr: "0.0.0.0:2377",
    AdvertiseAddr: advertiseAddress,
    ...(init.defaultAddrPool.length > 0
      ? { DefaultAddrPool: [...init.defaultAddrPool], SubnetSize: 24 }
      : {}),
    DataPathPort: Number(init.dataPathPort),
    Spec: { CAConfig: { NodeCertExpiry: goDurationNs(init.certExpiry) } },
  };
}

/** The body of `POST /swarm/join` (what `docker swarm join` sends). Holds the token: a secret, never logged. */
export function joinRequest(
  advertiseAddress: string,
  managerAddr: string,
  token: string,
): Record<string, unknown> {
  return {
    ListenAddr: "0.0.0.0:2377",
    AdvertiseAddr: advertiseAddress,
    RemoteAddrs: [managerAddr],
    JoinToken: token,
  };
}

/** The join tokens in the Engine API's `GET /swarm` answer; undefined when it has none. Secret. */
export function tokensOf(swarm: unknown): { manager: string; worker: string } | undefined {
  const t = (swarm as { JoinTokens?: { Manager?: unknown; Worker?: unknown } } | undefined)?.JoinTokens;
  const [manager, worker] = [String(t?.Manager ?? ""), String(t?.Worker ?? "")];
  return /^SWMTKN-/.test(manager) && /^SWMTKN-/.test(worker) ? { manager, worker } : undefined;
}

/**
 * The node spec to send with `POST /nodes/{id}/update` (the whole spec, as `docker node update` does): the one read
 * with the node, with exactly `labels` and `availability`; undefined when that is what it has already.
 */
export function nodeSpecWith(
  node: { Spec?: Record<string, unknown> },
  labels: Readonly<Record<string, string>>,
  availability: Availability,
): Record<string, unknown> | undefined {
  const spec = node.Spec ?? {};
  const had = (spec.Labels ?? {}) as Record<string, string>;
  const change = labelChanges(had, labels);
  if (change.add.length === 0 && change.rm.length === 0 && spec.Availability === availability)
    return undefined;
  return { ...spec, Labels: { ...labels }, Availability: availability };
}

/** `host:2377` from a swarm NodeAddr (which has no port). */
export function managerJoinAddr(nodeAddr: string): string {
  return /:\d+$/.test(nodeAddr) && !nodeAddr.includes("::") ? nodeAddr : `${nodeAddr}:2377`;
}

// ---------------------------------------------------------------------------------------------
// Secrets

/** Removes swarm join tokens and the given secrets (and each of their lines) from a message. */
export function scrub(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text.replace(/SWMTKN-1-[A-Za-z0-9-]+/g, "SWMTKN-[secret]");
  for (const s of secrets) {
    if (!s) continue;
    const pieces = [s.trim(), ...s.split(/\r?\n/).map((l) => l.trim())].filter((p) => p.length >= 8);
    pieces.sort((a, b) => b.length - a.length);
    for (const p of pieces) out = out.split(p).join("[secret]");
  }
  return out;
}
