// Swarm membership operations over a Transport: the I/O half of the SwarmNode provider.
//
// Serialization: the dynamic provider captures these functions. They use no module-level mutable
// state (the test event log lives on globalThis) and require node modules inside function bodies.

import { commandKind, sshTransport, Transport } from "../hosts/transport";
import {
  Availability,
  blockingTasks,
  countManagers,
  endpointKey,
  InitOptions,
  initScript,
  joinScript,
  labelChanges,
  managerJoinAddr,
  nodeAfterUpdate,
  NodeChange,
  NODE_LS_FORMAT,
  NodeObservation,
  NodeRole,
  nodeUpdateCommand,
  parseNodeInspect,
  parseNodeInspectAll,
  parseNodeList,
  parseSwarmInfo,
  parseTasks,
  quorumAfter,
  scrub,
  selfChange,
  servicesNotRunningElsewhere,
  sq,
  SshEndpoint,
  updateBesideInspect,
  SWARM_INFO_COMMAND,
  SwarmInfo,
  TOKEN_LINES_IN_BACKGROUND,
} from "./plan";

/** How to reach one host over SSH, with its host key when pinned. */
export interface NodeSsh extends SshEndpoint {
  /** `SHA256:<base64>`; default not pinned. */
  readonly hostKeyFingerprint?: string;
}

/** The SSH part of a host or node description (a HostSpec, SwarmNodeInputs, ...); an unset fingerprint is left out. */
export function nodeSshOf(p: NodeSsh): NodeSsh {
  return {
    name: p.name,
    address: p.address,
    port: p.port,
    user: p.user,
    ...(p.hostKeyFingerprint ? { hostKeyFingerprint: p.hostKeyFingerprint } : {}),
  };
}

/** Bounds on every wait, in seconds. */
export interface NodeTimeouts {
  /** Wait for SSH and the docker daemon on create/update. Default 120. */
  readonly readySeconds?: number;
  /** Wait for a drained node's tasks to run elsewhere. Default 300. */
  readonly drainSeconds?: number;
  /** One SSH connection attempt when probing (read/delete/finding a manager). Default 10. */
  readonly connectSeconds?: number;
  /** Wait for the swarm-wide membership lock (longer than a lock may be held, 10 min). Default 900. */
  readonly lockSeconds?: number;
}

export interface Ctx {
  readonly privateKey: string;
  readonly timeouts: Required<NodeTimeouts>;
  readonly forceQuorumLoss: boolean;
}

export function withDefaults(t: NodeTimeouts | undefined): Required<NodeTimeouts> {
  return {
    readySeconds: t?.readySeconds ?? 120,
    drainSeconds: t?.drainSeconds ?? 300,
    connectSeconds: t?.connectSeconds ?? 10,
    lockSeconds: t?.lockSeconds ?? 900,
  };
}

export function describeNode(n: NodeSsh): string {
  return `swarm node ${n.name} (${n.address})`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** With SWARMFORM_TRACE=1, each command's host, duration and exit code go to stderr (never stdin or output). */
export function trace(host: string, command: string, started: number, code: number): void {
  if (process.env.SWARMFORM_TRACE !== "1") return;
  process.stderr.write(
    `[swarmform] ${host} ${Date.now() - started}ms exit ${code}: ${command.slice(0, 100)}\n`,
  );
}

/** Test hook: when `globalThis[Symbol.for("swarmform.swarm.events")]` is an array, steps are logged to it. */
export function event(node: string, what: string): void {
  const log = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for("swarmform.swarm.events")];
  if (Array.isArray(log)) log.push({ node, what, at: Date.now() });
}

export function transportFor(n: NodeSsh, ctx: Ctx, connectMs?: number): Transport {
  return sshTransport({
    host: n.name,
    address: n.address,
    port: n.port,
    user: n.user,
    privateKey: ctx.privateKey,
    hostKeyFingerprint: n.hostKeyFingerprint,
    connectTimeoutMs: connectMs ?? ctx.timeouts.connectSeconds * 1000,
    retries: 1,
  });
}

/** Runs a command; a non-zero exit throws an error naming the host, with secrets scrubbed. */
export async function run(
  n: NodeSsh,
  ctx: Ctx,
  what: string,
  command: string,
  stdin?: string,
): Promise<string> {
  let r;
  const t0 = Date.now();
  const mutating = commandKind(command) === "mutating";
  if (mutating) forgetViews();
  try {
    r = await transportFor(n, ctx).exec(command, stdin);
    if (mutating) forgetViews();
    trace(n.name, command, t0, r.code);
  } catch (err) {
    trace(n.name, command, t0, -1);
    throw new Error(scrub(`${describeNode(n)}: ${what}: ${(err as Error).message}`, [ctx.privateKey, stdin]));
  }
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" ");
    throw new Error(
      scrub(`${describeNode(n)}: ${what} failed (exit ${r.code}): ${detail}`, [ctx.privateKey, stdin]),
    );
  }
  return r.stdout;
}

/** The node's own view of its swarm membership (throws if SSH or docker do not answer). */
export async function swarmInfo(n: NodeSsh, ctx: Ctx): Promise<SwarmInfo> {
  // Concurrent asks for the same host (parallel creates probing the same managers) share one command while it
  // runs; one that starts after a mutating command sends its own (forgetViews clears the map).
  const key = `info:${endpointKey(n)}`;
  const cache = views();
  const hit = cache.get(key);
  if (hit && hit.at === undefined) return (await hit.view)!.info;
  const entry: ViewEntry = {
    view: run(n, ctx, "docker info", SWARM_INFO_COMMAND).then((out) => ({
      info: parseSwarmInfo(out),
    })),
  };
  cache.set(key, entry);
  const done = () => {
    if (cache.get(key) === entry) cache.delete(key);
  };
  entry.view.then(done, done);
  return (await entry.view)!.info;
}

/** One attempt: the node's swarm info, or undefined if SSH or the docker daemon do not answer. */
export async function probe(n: NodeSsh, ctx: Ctx): Promise<SwarmInfo | undefined> {
  try {
    return await swarmInfo(n, ctx);
  } catch {
    return undefined;
  }
}

/** What one read of a host shows: its own swarm info and, on the lister (a manager), every node and the join tokens. */
export interface HostView {
  readonly info: SwarmInfo;
  /** Every node of the swarm, as this host sees them: only when listed, on a manager that could list them. */
  readonly nodes?: readonly NodeObservation[];
  /** Only when listed, on a manager that could read them. Secret. */
  readonly tokens?: { readonly manager: string; readonly worker: string };
  /** After init or join (selfConvergeScript): whether the node's update of itself went through, if it made one. */
  readonly selfUpdated?: boolean;
}

/**
 * One command on the host a refresh asks for the whole swarm (the lister, see listerOf): its swarm info, every
 * node (`@nodes`: `docker node ls -q`, then one `docker node inspect`) and the two join tokens. The node list is
 * piped into the rest, so it runs beside the info, and the tokens are fetched beside both: two docker calls one
 * after the other instead of five. Every other host is asked only for its own swarm info (SWARM_INFO_COMMAND). On
 * a host that is not a manager the listing parts print nothing.
 */
export const LIST_VIEW_COMMAND =
  `docker node ls -q 2>/dev/null | { ${TOKEN_LINES_IN_BACKGROUND}` +
  `i=$(${SWARM_INFO_COMMAND}) || { r=$?; wait; exit $r; }; ids=$(cat); n=; ` +
  `if [ -n "$ids" ]; then n=$(docker node inspect $ids 2>/dev/null); fi; wait; printf '%s\\n' "$i"; ` +
  `if [ -n "$n" ]; then printf '@nodes\\n%s\\n' "$n"; fi; }`;

/**
 * Parses a host's answer: the swarm info (its first line that is not a marker), the `@manager-token`,
 * `@worker-token` and `@updated` lines, and the node inspect after `@nodes` (to the end); the parts a host could not
 * read are left out.
 */
export function parseHostView(out: string): HostView {
  const lines = out.split("\n");
  const iNodes = lines.indexOf("@nodes");
  const head = iNodes >= 0 ? lines.slice(0, iNodes) : lines;
  const info = parseSwarmInfo(head.find((l) => l.trim() !== "" && !l.startsWith("@")) ?? "");
  const token = (role: string) =>
    head
      .find((l) => l.startsWith(`@${role}-token `))
      ?.slice(`@${role}-token `.length)
      .trim() ?? "";
  let nodes: NodeObservation[] | undefined;
  if (iNodes >= 0) {
    try {
      nodes = parseNodeInspectAll(lines.slice(iNodes + 1).join("\n"));
    } catch {
      nodes = undefined;
    }
  }
  const [manager, worker] = [token("manager"), token("worker")];
  const tokens = /^SWMTKN-/.test(manager) && /^SWMTKN-/.test(worker) ? { manager, worker } : undefined;
  const updated = head.find((l) => l.startsWith("@updated "));
  const selfUpdated = updated === undefined ? undefined : updated.slice("@updated ".length).trim() === "0";
  return { info, nodes, tokens, ...(selfUpdated === undefined ? {} : { selfUpdated }) };
}

/** The node as it is after init or join, with its own update applied when that went through (see HostView). */
function selfAfterJoin(v: HostView, desired: SelfDesired): NodeObservation | undefined {
  const node = v.nodes?.find((x) => x.id === v.info.nodeId);
  return node && v.selfUpdated
    ? nodeAfterUpdate(node, selfChange(desired.labels, desired.availability))
    : node;
}

/** How long a host view is reused after it arrived (reads of one refresh run within this window). */
const VIEW_TTL_MS = 1000;

interface ViewEntry {
  view: Promise<HostView | undefined>;
  /** When the view arrived; unset while in flight. */
  at?: number;
  /** Whether the view lists the nodes and tokens (LIST_VIEW_COMMAND). */
  listed?: boolean;
}

function views(): Map<string, ViewEntry> {
  const slot = Symbol.for("swarmform.swarm.views");
  const g = globalThis as unknown as Record<symbol, Map<string, ViewEntry> | undefined>;
  if (!g[slot]) g[slot] = new Map();
  return g[slot]!;
}

/** Drops every cached host view: called around each mutating command this process sends. */
export function forgetViews(): void {
  views().clear();
}

/**
 * The host's view (one command), or undefined if SSH or docker do not answer: with `list`, the lister's whole
 * view (LIST_VIEW_COMMAND), else its own swarm info. Shared by every resource of this process while in flight and
 * for VIEW_TTL_MS after (a listed view also answers an unlisted ask): the reads of one refresh send one command per
 * host. Any mutating command sent through run/managerExec drops the cache. Only `read` uses it.
 */
export function hostView(n: NodeSsh, ctx: Ctx, list: boolean): Promise<HostView | undefined> {
  const key = endpointKey(n);
  const cache = views();
  const hit = cache.get(key);
  if (hit && (hit.listed || !list) && (hit.at === undefined || Date.now() - hit.at < VIEW_TTL_MS))
    return hit.view;
  const entry: ViewEntry = {
    listed: list,
    // Unlisted, the view is the host's swarm info: swarmInfo's command, shared with probes in flight.
    view: (list
      ? run(n, ctx, "docker info", LIST_VIEW_COMMAND).then((out) => {
          const v = parseHostView(out);
          rememberTokens(v.info.clusterId, v.tokens);
          return v;
        })
      : swarmInfo(n, ctx).then((info) => ({ info }))
    ).catch(() => undefined),
  };
  void entry.view.then(() => (entry.at = Date.now()));
  cache.set(key, entry);
  return entry.view;
}

/** Waits (bounded by readySeconds) until SSH and the docker daemon answer. */
export async function waitReady(n: NodeSsh, ctx: Ctx): Promise<SwarmInfo> {
  const deadline = Date.now() + ctx.timeouts.readySeconds * 1000;
  for (;;) {
    let last: string;
    try {
      return await swarmInfo(n, {
        ...ctx,
        timeouts: {
          ...ctx.timeouts,
          connectSeconds: Math.min(ctx.timeouts.connectSeconds, ctx.timeouts.readySeconds),
        },
      });
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${describeNode(n)}: not ready after ${ctx.timeouts.readySeconds}s (SSH and docker must answer): ${last}`,
      );
    }
    await sleep(1000);
  }
}

export interface Manager {
  node: NodeSsh;
  info: SwarmInfo;
  /** Where to look for another manager if this one stops being one (e.g. demoted by a parallel delete). */
  candidates?: readonly NodeSsh[];
}

/**
 * Managers this process last found active with control available, by `user@address:port`, with the swarm info they
 * answered then (their swarm id and address, what a join needs).
 */
function knownManagers(): Map<string, Manager> {
  const slot = Symbol.for("swarmform.swarm.knownManagers");
  const g = globalThis as unknown as Record<symbol, Map<string, Manager> | undefined>;
  if (!g[slot]) g[slot] = new Map();
  return g[slot]!;
}

const isActiveManager = (info: SwarmInfo | undefined): info is SwarmInfo =>
  !!info && info.localNodeState === "active" && info.controlAvailable;

/**
 * An active manager with control available among `candidates`; `exclude` (a host name) is skipped. A candidate
 * this process already found to be a manager is probed alone first (every node lists every host as a
 * candidate, so probing them all on every create and read would cost n² commands at n nodes); otherwise, or if
 * it no longer is one, all candidates are probed in parallel and the first (in order) that is one is taken.
 */
export async function findManager(
  candidates: readonly NodeSsh[],
  ctx: Ctx,
  exclude?: string,
): Promise<Manager | undefined> {
  const list = candidates.filter((c) => c.name !== exclude);
  const known = knownManagers();
  const hinted = list.find((c) => known.has(endpointKey(c)));
  if (hinted) {
    const info = await probe(hinted, ctx);
    if (isActiveManager(info)) {
      known.set(endpointKey(hinted), { node: hinted, info });
      return { node: hinted, info, candidates: list };
    }
    known.delete(endpointKey(hinted));
  }
  const infos = await Promise.all(list.map((c) => probe(c, ctx)));
  for (let i = 0; i < list.length; i++) {
    const info = infos[i];
    if (isActiveManager(info)) {
      known.set(endpointKey(list[i]), { node: list[i], info });
      return { node: list[i], info, candidates: list };
    } else known.delete(endpointKey(list[i]));
  }
  return undefined;
}

/**
 * A manager among `candidates` that this process already found active (at the init, or by an earlier probe), of
 * the expected swarm when one is given, and the join token for `role` this process holds for that swarm: enough
 * to join without asking anyone first (joinSwarm uses that token). Nothing is probed: if it stopped being a
 * manager, the join itself fails, as it does on a node already in a swarm, without changing anything (and a
 * token only opens the swarm whose CA it names).
 */
export function knownManagerToJoin(
  candidates: readonly NodeSsh[],
  role: NodeRole,
  expectedSwarmId?: string,
): Manager | undefined {
  const known = knownManagers();
  for (const c of candidates) {
    const m = known.get(endpointKey(c));
    const swarmId = m?.info.clusterId;
    const token = swarmId ? tokenCache().get(swarmId)?.[role] : undefined;
    if (m && token && (!expectedSwarmId || swarmId === expectedSwarmId))
      return { node: c, info: m.info, candidates };
  }
  return undefined;
}

export async function requireManager(
  candidates: readonly NodeSsh[],
  ctx: Ctx,
  forNode: NodeSsh,
  exclude?: string,
): Promise<Manager> {
  const m = await findManager(candidates, ctx, exclude);
  if (!m) {
    const list = candidates.filter((c) => c.name !== exclude);
    // Only on this failure path: ask each candidate once more, to say what it answered.
    const why = await Promise.all(list.map((c) => whyNotManager(c, ctx)));
    throw new Error(
      `${describeNode(forNode)}: no reachable swarm manager among [${list.map((c) => c.name).join(", ")}] ` +
        `(SSH and docker must answer on one of them): ${why.join("; ")}`,
    );
  }
  return m;
}

/** What a candidate that is not an active manager answers: its swarm state, or why it did not answer. */
async function whyNotManager(c: NodeSsh, ctx: Ctx): Promise<string> {
  try {
    const info = await swarmInfo(c, ctx);
    const state = `${info.localNodeState}${info.controlAvailable ? "" : ", no control"}`;
    const detail = info.error ? `: ${info.error}` : "";
    if (isActiveManager(info)) return `${c.name} answers as a manager now (it did not a moment before)`;
    return `${c.name} is ${state}${detail}`;
  } catch (e) {
    return `${c.name}: ${(e as Error).message}`;
  }
}

/**
 * Runs a command on manager `m`, retrying (bounded) while the swarm has no leader (e.g. right after a
 * demotion), and moving to another manager if `m` stopped being one. Returns the last result.
 */
export async function managerExec(m: Manager, ctx: Ctx, command: string, stdin?: string) {
  const deadline = Date.now() + 30000;
  const mutating = commandKind(command) === "mutating";
  for (;;) {
    let r;
    const t0 = Date.now();
    if (mutating) forgetViews();
    try {
      r = await transportFor(m.node, ctx).exec(command, stdin);
    } catch (err) {
      r = { stdout: "", stderr: (err as Error).message, code: 255 };
    }
    if (mutating) forgetViews();
    trace(m.node.name, command, t0, r.code);
    if (r.code === 0 || Date.now() >= deadline) return r;
    // A failed precondition (e.g. "node ... is not down and can't be removed") will not pass by waiting:
    // the caller decides what to do (removeNode then uses --force after a confirmed leave).
    if (/FailedPrecondition/.test(r.stderr)) return r;
    if (
      /not a swarm manager|not part of a swarm|not a manager|connect|timed out/i.test(r.stderr) &&
      m.candidates
    ) {
      const other = await findManager(m.candidates, ctx);
      if (other) Object.assign(m, other);
    } else if (!/leader|rpc error|context deadline|temporarily unavailable/i.test(r.stderr)) {
      return r;
    }
    await sleep(1000);
  }
}

/** Like managerExec, but a failure throws an error naming the manager, secrets scrubbed. */
export async function onManager(
  m: Manager,
  ctx: Ctx,
  what: string,
  command: string,
  stdin?: string,
): Promise<string> {
  const r = await managerExec(m, ctx, command, stdin);
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" ");
    throw new Error(
      scrub(`${describeNode(m.node)}: ${what} failed (exit ${r.code}): ${detail}`, [ctx.privateKey, stdin]),
    );
  }
  return r.stdout;
}

/** `docker node inspect` of `nodeId` on a manager; undefined if the swarm does not know it. */
export async function inspectNode(
  m: Manager,
  ctx: Ctx,
  nodeId: string,
): Promise<NodeObservation | undefined> {
  if (!nodeId) return undefined;
  const r = await managerExec(m, ctx, `docker node inspect ${sq(nodeId)}`);
  if (r.code !== 0) {
    if (/no such node|not found/i.test(r.stderr)) return undefined;
    throw new Error(
      scrub(`${describeNode(m.node)}: docker node inspect failed: ${r.stderr.trim()}`, [ctx.privateKey]),
    );
  }
  return parseNodeInspect(r.stdout);
}

/** Join tokens by swarm id, shared by the resources of this process (memory only, never logged). */
function tokenCache(): Map<string, { manager: string; worker: string }> {
  const slot = Symbol.for("swarmform.swarm.tokens");
  const g = globalThis as unknown as Record<
    symbol,
    Map<string, { manager: string; worker: string }> | undefined
  >;
  if (!g[slot]) g[slot] = new Map();
  return g[slot]!;
}

function rememberTokens(
  swarmId: string | undefined,
  tokens: { manager: string; worker: string } | undefined,
) {
  if (swarmId && tokens) tokenCache().set(swarmId, tokens);
}

export async function swarmTokens(m: Manager, ctx: Ctx): Promise<{ manager: string; worker: string }> {
  const out = await onManager(
    m,
    ctx,
    "join-token",
    "docker swarm join-token -q manager && docker swarm join-token -q worker",
  );
  const [manager, worker] = out.trim().split("\n");
  const tokens = { manager: manager.trim(), worker: (worker ?? "").trim() };
  rememberTokens(m.info.clusterId, tokens);
  return tokens;
}

/** What a node wants right after it became a member (labels and availability). */
export interface SelfDesired {
  readonly labels: Readonly<Record<string, string>>;
  readonly availability: Availability;
}

/** The swarm info after init or join, plus (when it could label itself) the node as it is now. */
export type JoinedInfo = SwarmInfo & { readonly node?: NodeObservation };

/**
 * `docker swarm init`, then, in the same round trip, the node's labels and availability, its swarm info, its
 * node and the join tokens (kept for the joins that follow, in this process only).
 */
export async function initSwarm(
  n: NodeSsh,
  ctx: Ctx,
  advertise: string,
  init: InitOptions,
  desired: SelfDesired = { labels: {}, availability: "active" },
): Promise<JoinedInfo & { readonly tokens?: { manager: string; worker: string } }> {
  event(n.name, "init");
  const out = await run(
    n,
    ctx,
    "docker swarm init",
    initScript(advertise, init, desired.labels, desired.availability),
  );
  const v = parseHostView(out);
  rememberTokens(v.info.clusterId, v.tokens);
  // The nodes that join next in this process join through this host without asking anyone first
  // (knownManagerToJoin), and those that probe ask this host first (findManager).
  if (isActiveManager(v.info)) knownManagers().set(endpointKey(n), { node: n, info: v.info });
  return { ...v.info, node: selfAfterJoin(v, desired), tokens: v.tokens };
}

/**
 * Joins `n` to the swarm of manager `m` with a token for `role` (over stdin; the one this process already
 * holds for that swarm, else a fresh one). A manager then sets its own labels and availability in the same
 * round trip (`desired`); a worker cannot, its caller does that through `m`.
 */
export async function joinSwarm(
  n: NodeSsh,
  ctx: Ctx,
  m: Manager,
  role: NodeRole,
  advertise: string,
  desired: SelfDesired,
): Promise<JoinedInfo> {
  const swarmId = m.info.clusterId ?? "";
  const fresh = async () =>
    (await onManager(m, ctx, "join-token", `docker swarm join-token -q ${role}`)).trim();
  const cached = swarmId ? tokenCache().get(swarmId)?.[role] : undefined;
  const command = joinScript(
    advertise,
    managerJoinAddr(m.info.nodeAddr),
    role,
    desired.labels,
    desired.availability,
  );
  let out: string;
  try {
    out = await run(n, ctx, "docker swarm join", command, cached ?? (await fresh()));
  } catch (err) {
    // A token rotated since it was cached: the join was refused, so it is safe to try once more.
    if (!cached || !/token/i.test((err as Error).message)) throw err;
    tokenCache().delete(swarmId);
    out = await run(n, ctx, "docker swarm join", command, await fresh());
  }
  // Logged once it went through: a join the node refused (already in a swarm) changed nothing.
  event(n.name, `join-${role}`);
  const v = parseHostView(out);
  return { ...v.info, node: selfAfterJoin(v, desired) };
}

/**
 * A swarm-wide lock for changes to the manager set (demote, promote, manager removal): a directory
 * created atomically with mkdir on the first lock host (by name) whose SSH answers. Pulumi runs deletes
 * in parallel, and the provider may run in more than one process, so the lock lives on a host.
 * A lock older than 10 minutes is taken to be stale (its holder died) and broken; a waiter waits longer.
 */
export async function withSwarmLock<T>(
  swarmId: string,
  lockHosts: readonly NodeSsh[],
  ctx: Ctx,
  owner: string,
  fn: () => Promise<T>,
): Promise<T> {
  const hosts = [...lockHosts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let host: NodeSsh | undefined;
  for (const h of hosts) {
    const r = await transportFor(h, ctx)
      .exec("true")
      .catch(() => undefined);
    if (r && r.code === 0) {
      host = h;
      break;
    }
  }
  if (!host)
    throw new Error(`swarm ${swarmId}: no lock host answers among [${hosts.map((h) => h.name).join(", ")}]`);
  const id = `${owner}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const dir = `"$base"/swarmform-${swarmId.replace(/[^A-Za-z0-9]/g, "")}.lock`;
  const acquire =
    `base=/var/lock; [ -d "$base" ] || base=/tmp; d=${dir}; ` +
    `if mkdir "$d" 2>/dev/null; then echo ${sq(id)} > "$d/owner"; echo acquired; ` +
    `elif [ $(( $(date +%s) - $(stat -c %Y "$d" 2>/dev/null || date +%s) )) -gt 600 ]; then rm -rf "$d"; echo stale; ` +
    `else echo busy; cat "$d/owner" 2>/dev/null; fi`;
  const release =
    `base=/var/lock; [ -d "$base" ] || base=/tmp; d=${dir}; ` +
    `if [ "$(cat "$d/owner" 2>/dev/null)" = ${sq(id)} ]; then rm -rf "$d"; fi`;
  const deadline = Date.now() + ctx.timeouts.lockSeconds * 1000;
  for (;;) {
    const out = await run(host, ctx, "membership lock", acquire);
    if (out.startsWith("acquired")) break;
    if (Date.now() >= deadline) {
      throw new Error(
        `swarm ${swarmId}: membership lock on ${host.name} still held after ${ctx.timeouts.lockSeconds}s by ${out.split("\n")[1] ?? "?"}`,
      );
    }
    await sleep(500);
  }
  event(owner, "lock");
  try {
    return await fn();
  } finally {
    event(owner, "unlock");
    await run(host, ctx, "membership unlock", release).catch(() => undefined);
  }
}

/** Live manager list via `m`, and the quorum verdict for removing `nodeId` from the managers. */
export async function checkQuorumForRemoval(m: Manager, ctx: Ctx, node: NodeSsh, nodeId: string) {
  const list = parseNodeList(
    await onManager(m, ctx, "docker node ls", `docker node ls --format '${NODE_LS_FORMAT}'`),
  );
  const entry = list.find((e) => e.id === nodeId);
  if (!entry || entry.managerStatus === "") return undefined; // not a manager (any more)
  const nodeReachable = entry.managerStatus === "Leader" || entry.managerStatus === "Reachable";
  const verdict = quorumAfter(countManagers(list), { kind: "remove-manager", nodeReachable });
  if (!verdict.ok && !ctx.forceQuorumLoss) {
    throw new Error(
      `${describeNode(node)}: refusing to remove it from the managers: afterwards ${verdict.reason} ` +
        `(set nodes.swarm.forceQuorumLoss to force)`,
    );
  }
  return verdict;
}

/** Demotes `nodeId` via manager `m` (caller holds the lock and checked quorum), then waits until it is a worker. */
export async function demote(m: Manager, ctx: Ctx, node: NodeSsh, nodeId: string): Promise<void> {
  event(node.name, "demote");
  await onManager(m, ctx, "docker node demote", `docker node demote ${sq(nodeId)}`);
  const deadline = Date.now() + 60000;
  for (;;) {
    const obs = await inspectNode(m, ctx, nodeId).catch(() => undefined);
    const self = await probe(node, ctx);
    if (obs?.role === "worker" && (!self || self.nodeId !== nodeId || !self.controlAvailable)) return;
    if (Date.now() >= deadline)
      throw new Error(`${describeNode(node)}: still a manager 60s after docker node demote`);
    await sleep(500);
  }
}

export async function promote(m: Manager, ctx: Ctx, node: NodeSsh, nodeId: string): Promise<void> {
  event(node.name, "promote");
  await onManager(m, ctx, "docker node promote", `docker node promote ${sq(nodeId)}`);
  const deadline = Date.now() + 60000;
  for (;;) {
    const self = await probe(node, ctx);
    if (self?.controlAvailable) return;
    if (Date.now() >= deadline)
      throw new Error(`${describeNode(node)}: not a working manager 60s after docker node promote`);
    await sleep(500);
  }
}

/** Sets labels (authoritative: others are removed) and availability to the desired ones, via `m`. */
export async function setLabelsAndAvailability(
  m: Manager,
  ctx: Ctx,
  node: NodeSsh,
  nodeId: string,
  actual: NodeObservation,
  labels: Readonly<Record<string, string>>,
  availability: Availability,
): Promise<NodeObservation> {
  const change: NodeChange = {
    ...labelChanges(actual.labels, labels),
    availability: actual.availability !== availability ? availability : undefined,
  };
  const cmd = nodeUpdateCommand(nodeId, change);
  if (!cmd) return actual;
  event(node.name, "node-update");
  // The update and an inspect beside it, in one round trip; a failed update fails the command with its stderr.
  const out = await onManager(m, ctx, "docker node update", updateBesideInspect(cmd, nodeId));
  return nodeAfterUpdate(parseNodeInspect(out), change);
}

/** Drains `nodeId` and waits (bounded) until none of its non-global tasks run there and its services converged. */
export async function drainAndWait(m: Manager, ctx: Ctx, node: NodeSsh, nodeId: string): Promise<void> {
  const tasksCmd = `docker node ps ${sq(nodeId)} --filter desired-state=running --format '{{.Name}}\\t{{.CurrentState}}'`;
  const before = blockingTasks(parseTasks(await onManager(m, ctx, "docker node ps", tasksCmd)), nodeId);
  const services = new Set(before.map((t) => t.name.replace(/\.[^.]*$/, "")));
  event(node.name, "drain");
  await onManager(m, ctx, "docker node update", `docker node update --availability drain ${sq(nodeId)}`);
  const deadline = Date.now() + ctx.timeouts.drainSeconds * 1000;
  for (;;) {
    const left = blockingTasks(parseTasks(await onManager(m, ctx, "docker node ps", tasksCmd)), nodeId);
    // The replacements must run elsewhere before the node goes (nothing is lost): count the tasks meant to run.
    const svcOut = await onManager(
      m,
      ctx,
      "docker service ps",
      "docker service ls --format '{{.Name}}\\t{{.Mode}}\\t{{.Replicas}}'; echo @tasks; " +
        [...services]
          .map(
            (s) =>
              `docker service ps ${sq(s)} --filter desired-state=running --format ${sq(`${s}\t{{.CurrentState}}`)}`,
          )
          .join("; "),
    );
    const pending = servicesNotRunningElsewhere(svcOut, services);
    if (left.length === 0 && pending.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `${describeNode(node)}: drained, but after ${ctx.timeouts.drainSeconds}s tasks still run there ` +
          `[${left.map((t) => t.name).join(", ")}] or services have not converged elsewhere [${pending.join(", ")}]`,
      );
    }
    await sleep(1000);
  }
}

/** `docker swarm leave` on the node, retried (bounded) while the node still acts as a manager. */
export async function leave(node: NodeSsh, ctx: Ctx, force = false): Promise<void> {
  event(node.name, force ? "leave-force" : "leave");
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      await run(node, ctx, "docker swarm leave", `docker swarm leave${force ? " --force" : ""}`);
      return;
    } catch (err) {
      const msg = (err as Error).message;
      if (/not part of a swarm/i.test(msg)) return;
      if (Date.now() >= deadline) throw err;
      await sleep(1000);
    }
  }
}

/**
 * `docker node rm` via `m`. After a confirmed `swarm leave` (`left`), a node the managers still show as
 * up (they notice only at the next missed heartbeat) is removed with --force at once: it has already
 * left, so there is nothing left to protect. Without `left`, --force is used only if `force` is set.
 */
export async function removeNode(
  m: Manager,
  ctx: Ctx,
  node: NodeSsh,
  nodeId: string,
  force: boolean,
  left = false,
): Promise<void> {
  event(node.name, force ? "node-rm-force" : "node-rm");
  let r = await managerExec(m, ctx, `docker node rm${force ? " --force" : ""} ${sq(nodeId)}`);
  if (r.code !== 0 && !force && left && /is not down|not down/i.test(r.stderr)) {
    r = await managerExec(m, ctx, `docker node rm --force ${sq(nodeId)}`);
  }
  if (r.code === 0 || /no such node|not found/i.test(r.stderr)) return;
  throw new Error(
    scrub(`${describeNode(node)}: docker node rm${force ? " --force" : ""} failed: ${r.stderr.trim()}`, [
      ctx.privateKey,
    ]),
  );
}
