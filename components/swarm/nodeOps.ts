// Swarm membership operations over a Transport: the I/O half of the SwarmNode provider.
//
// These functions run in Pulumi's dynamic-provider process, from the bundle SwarmNode stores
// (components/hosts/bundledProvider.ts). State shared across resources lives on globalThis (so every copy of the
// code one process runs shares it; the test event log too), and node modules are required inside function bodies.

import { commandKind, EngineResponse, EngineTransport, sshTransport } from "../hosts/transport";
import {
  Availability,
  blockingTasks,
  countManagers,
  endpointKey,
  InitOptions,
  initRequest,
  joinRequest,
  labelChanges,
  managerJoinAddr,
  NODE_LS_FORMAT,
  NodeObservation,
  nodeObservationOf,
  NodeRole,
  nodeSpecWith,
  parseNodeList,
  parseTasks,
  quorumAfter,
  scrub,
  servicesNotRunningElsewhere,
  sq,
  SshEndpoint,
  SwarmInfo,
  swarmInfoOf,
  tokensOf,
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

export function transportFor(n: NodeSsh, ctx: Ctx, connectMs?: number): EngineTransport {
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

/** Whether an Engine API answer is a success (2xx); status 0 stands for a request that could not be made. */
const answered = (r: EngineResponse) => r.status >= 200 && r.status < 300;

/** The daemon's message in an Engine API answer (`{"message": ...}`), else the body as text. */
function messageOf(r: EngineResponse): string {
  const b = r.body as { message?: unknown } | string | undefined;
  return (
    typeof b === "object" && b !== null ? String(b.message ?? JSON.stringify(b)) : String(b ?? "")
  ).trim();
}

/**
 * Sends one Engine API request to the node's own dockerd; any status resolves. Fails (naming the node, secrets
 * scrubbed) only when the request could not be made. A request that is not a GET drops the cached host views.
 */
export async function engineOn(
  n: NodeSsh,
  ctx: Ctx,
  method: string,
  path: string,
  body?: unknown,
  secrets: readonly (string | undefined)[] = [],
): Promise<EngineResponse> {
  const t0 = Date.now();
  const mutating = method !== "GET";
  if (mutating) forgetViews();
  try {
    const r = await transportFor(n, ctx).request(method, path, body);
    trace(n.name, `${method} ${path}`, t0, r.status);
    return r;
  } catch (err) {
    trace(n.name, `${method} ${path}`, t0, -1);
    throw new Error(scrub(`${describeNode(n)}: ${(err as Error).message}`, [ctx.privateKey, ...secrets]));
  } finally {
    if (mutating) forgetViews();
  }
}

/** Like engineOn, but an answer that is not a success throws an error naming the node and `what`; returns the body. */
export async function engineCall<T>(
  n: NodeSsh,
  ctx: Ctx,
  what: string,
  method: string,
  path: string,
  body?: unknown,
  secrets: readonly (string | undefined)[] = [],
): Promise<T> {
  const r = await engineOn(n, ctx, method, path, body, secrets);
  if (!answered(r)) throw engineFailure(n, ctx, what, r, secrets);
  return r.body as T;
}

/** An error for a failed Engine API answer of node `n`: what failed, the status and the daemon's message. */
function engineFailure(
  n: NodeSsh,
  ctx: Ctx,
  what: string,
  r: EngineResponse,
  secrets: readonly (string | undefined)[] = [],
): Error {
  const status = r.status === 0 ? "" : ` (HTTP ${r.status})`;
  return new Error(
    scrub(`${describeNode(n)}: ${what} failed${status}: ${messageOf(r)}`, [ctx.privateKey, ...secrets]),
  );
}

/** `GET /info` of the node, now (no shared or cached answer): its swarm part. Throws if it does not answer. */
async function infoNow(n: NodeSsh, ctx: Ctx): Promise<SwarmInfo> {
  return swarmInfoOf((await engineCall<{ Swarm?: unknown }>(n, ctx, "docker info", "GET", "/info")).Swarm);
}

/** The join tokens as `GET /swarm` on the node shows them, or undefined when it could not (not a manager). */
async function tokensOn(n: NodeSsh, ctx: Ctx): Promise<{ manager: string; worker: string } | undefined> {
  const swarm = await engineOn(n, ctx, "GET", "/swarm");
  return swarm.status === 200 ? tokensOf(swarm.body) : undefined;
}

/** The node's own view of its swarm membership (throws if SSH or docker do not answer). */
export async function swarmInfo(n: NodeSsh, ctx: Ctx): Promise<SwarmInfo> {
  // Concurrent asks for the same host (parallel creates probing the same managers) share one request while it
  // runs; one that starts after a mutating command or request sends its own (forgetViews clears the map).
  const key = `info:${endpointKey(n)}`;
  const cache = views();
  const hit = cache.get(key);
  if (hit && hit.at === undefined) return (await hit.view)!.info;
  const entry: ViewEntry = {
    view: infoNow(n, ctx).then((info) => ({ info })),
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
}

/**
 * What a refresh asks of the host it lists the swarm on (the lister, see listerOf): its swarm info (`GET /info`)
 * and, when it is a manager, every node (`GET /nodes`) and the join tokens (`GET /swarm`); the parts it could
 * not read are left out. Three requests, one after the other on the host's one docker channel. Every other host
 * is asked only for its own swarm info.
 */
export async function listView(n: NodeSsh, ctx: Ctx): Promise<HostView> {
  const info = await infoNow(n, ctx);
  if (!info.controlAvailable) return { info };
  const [nodes, tokens] = await Promise.all([engineOn(n, ctx, "GET", "/nodes"), tokensOn(n, ctx)]);
  return {
    info,
    nodes: nodes.status === 200 && Array.isArray(nodes.body) ? nodes.body.map(nodeObservationOf) : undefined,
    tokens,
  };
}

/** How long a host view is reused after it arrived (reads of one refresh run within this window). */
const VIEW_TTL_MS = 1000;

interface ViewEntry {
  view: Promise<HostView | undefined>;
  /** When the view arrived; unset while in flight. */
  at?: number;
  /** Whether the view lists the nodes and tokens (listView). */
  listed?: boolean;
}

function views(): Map<string, ViewEntry> {
  const slot = Symbol.for("swarmform.swarm.views");
  const g = globalThis as unknown as Record<symbol, Map<string, ViewEntry> | undefined>;
  if (!g[slot]) g[slot] = new Map();
  return g[slot]!;
}

/** Drops every cached host view: called around each mutating command or request this process sends. */
export function forgetViews(): void {
  views().clear();
}

/**
 * The host's view, or undefined if SSH or docker do not answer: with `list`, the lister's whole view (listView),
 * else its own swarm info (one request). Shared by every resource of this process while in flight and for
 * VIEW_TTL_MS after (a listed view also answers an unlisted ask): the reads of one refresh ask each host once.
 * Any mutating command or request sent through run/managerExec/engineOn drops the cache. Only `read` uses it.
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
      ? listView(n, ctx).then((v) => {
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

/** What a failure a manager answered (`message`: stderr or the daemon's message) calls for. */
export function afterManagerFailure(message: string, canMove: boolean): "give up" | "move" | "wait" {
  // A failed precondition (e.g. "node ... is not down and can't be removed") will not pass by waiting:
  // the caller decides what to do (removeNode then uses --force after a confirmed leave).
  if (/FailedPrecondition/.test(message)) return "give up";
  if (
    /not a swarm manager|not part of a swarm|not a manager|connect|timed out|hang up/i.test(message) &&
    canMove
  )
    return "move";
  return /leader|rpc error|context deadline|temporarily unavailable/i.test(message) ? "wait" : "give up";
}

/**
 * Sends `attempt` to manager `m`, again (bounded, 30 s) while the swarm has no leader (e.g. right after a
 * demotion), moving to another manager if `m` stopped being one. `failure` says why an answer failed (undefined:
 * it did not). Returns the last answer.
 */
async function onAnyManager<R>(
  m: Manager,
  ctx: Ctx,
  attempt: () => Promise<R>,
  failure: (r: R) => string | undefined,
): Promise<R> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const r = await attempt();
    const message = failure(r);
    if (message === undefined || Date.now() >= deadline) return r;
    const next = afterManagerFailure(message, m.candidates !== undefined);
    if (next === "give up") return r;
    if (next === "move") {
      const other = await findManager(m.candidates!, ctx);
      if (other) Object.assign(m, other);
    }
    await sleep(1000);
  }
}

/** Runs a command on manager `m` (see onAnyManager). Returns the last result. */
export async function managerExec(m: Manager, ctx: Ctx, command: string, stdin?: string) {
  const mutating = commandKind(command) === "mutating";
  return onAnyManager(
    m,
    ctx,
    async () => {
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
      return r;
    },
    (r) => (r.code === 0 ? undefined : r.stderr),
  );
}

/**
 * An Engine API request on manager `m` (see onAnyManager). A request that could not be made answers status 0. An
 * update that met a newer version of its object ("update out of sequence") is returned at once: sent again, it
 * would meet the same; the caller reads the object again (writeNodeSpec).
 */
export async function managerRequest(
  m: Manager,
  ctx: Ctx,
  method: string,
  path: string,
  body?: unknown,
): Promise<EngineResponse> {
  return onAnyManager(
    m,
    ctx,
    () =>
      engineOn(m.node, ctx, method, path, body).catch((err: Error): EngineResponse => ({
        status: 0,
        body: { message: err.message },
      })),
    (r) => (answered(r) || /out of sequence/.test(messageOf(r)) ? undefined : messageOf(r)),
  );
}

/** Like managerRequest, but an answer that is not a success throws an error naming the manager; returns the body. */
async function managerCall<T>(m: Manager, ctx: Ctx, what: string, method: string, path: string): Promise<T> {
  const r = await managerRequest(m, ctx, method, path);
  if (!answered(r)) throw engineFailure(m.node, ctx, what, r);
  return r.body as T;
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

/** The node `nodeId` as manager `m` sees it (`GET /nodes/{id}`); undefined if the swarm does not know it. */
export async function inspectNode(
  m: Manager,
  ctx: Ctx,
  nodeId: string,
): Promise<NodeObservation | undefined> {
  if (!nodeId) return undefined;
  const r = await managerRequest(m, ctx, "GET", `/nodes/${encodeURIComponent(nodeId)}`);
  if (r.status === 404) return undefined;
  if (!answered(r)) throw engineFailure(m.node, ctx, "docker node inspect", r);
  return nodeObservationOf(r.body);
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

/** The join tokens, read on manager `m` (`GET /swarm`) and kept for the joins this process sends. Secret. */
export async function swarmTokens(m: Manager, ctx: Ctx): Promise<{ manager: string; worker: string }> {
  const tokens = tokensOf(await managerCall(m, ctx, "join-token", "GET", "/swarm"));
  if (!tokens) throw new Error(`${describeNode(m.node)}: join-token: the swarm shows no join tokens`);
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
 * Writes `labels` (exactly) and `availability` on node `nodeId`, with `send` (a request to the node's own dockerd,
 * or to a manager): reads the node, then updates its whole spec at that version, as `docker node update` does.
 * A node that just joined still changes (its status, its certificate), so the update can meet a newer version
 * ("update out of sequence"): then it reads and updates again, at most 5 times. Returns the node as it is after.
 */
async function writeNodeSpec(
  send: (method: string, path: string, body?: unknown) => Promise<EngineResponse>,
  fail: (what: string, r: EngineResponse) => Error,
  nodeId: string,
  labels: Readonly<Record<string, string>>,
  availability: Availability,
): Promise<NodeObservation> {
  const path = `/nodes/${encodeURIComponent(nodeId)}`;
  for (let attempt = 1; ; attempt++) {
    const r = await send("GET", path);
    if (!answered(r)) throw fail("docker node inspect", r);
    const node = r.body as { Version?: { Index?: number }; Spec?: Record<string, unknown> };
    const spec = nodeSpecWith(node, labels, availability);
    if (!spec) return nodeObservationOf(node);
    const u = await send("POST", `${path}/update?version=${Number(node.Version?.Index ?? 0)}`, spec);
    if (answered(u)) return nodeObservationOf({ ...node, Spec: spec });
    if (attempt >= 5 || !/out of sequence/.test(messageOf(u))) throw fail("docker node update", u);
  }
}

/**
 * A new manager sets its own labels and availability (a manager can write nodes): no round trip through another
 * manager. Undefined when that failed: the caller then does it through a manager (setLabelsAndAvailability).
 */
async function selfConverge(
  n: NodeSsh,
  ctx: Ctx,
  nodeId: string,
  desired: SelfDesired,
): Promise<NodeObservation | undefined> {
  const send = (method: string, path: string, body?: unknown) => engineOn(n, ctx, method, path, body);
  const fail = (what: string, r: EngineResponse) => engineFailure(n, ctx, what, r);
  return writeNodeSpec(send, fail, nodeId, desired.labels, desired.availability).catch(() => undefined);
}

/**
 * `POST /swarm/init`, then the node's swarm info, the join tokens (kept for the joins that follow, in this process
 * only) and its own labels and availability: requests one after the other on the host's docker channel.
 */
export async function initSwarm(
  n: NodeSsh,
  ctx: Ctx,
  advertise: string,
  init: InitOptions,
  desired: SelfDesired = { labels: {}, availability: "active" },
): Promise<JoinedInfo & { readonly tokens?: { manager: string; worker: string } }> {
  event(n.name, "init");
  await engineCall(n, ctx, "docker swarm init", "POST", "/swarm/init", initRequest(advertise, init));
  const info = await infoNow(n, ctx);
  const tokens = await tokensOn(n, ctx);
  rememberTokens(info.clusterId, tokens);
  // The nodes that join next in this process join through this host without asking anyone first
  // (knownManagerToJoin), and those that probe ask this host first (findManager).
  if (isActiveManager(info)) knownManagers().set(endpointKey(n), { node: n, info });
  return { ...info, node: await selfConverge(n, ctx, info.nodeId, desired), tokens };
}

/**
 * Joins `n` to the swarm of manager `m` with a token for `role` (the one this process already holds for that
 * swarm, else a fresh one), then reads its swarm info. A manager then sets its own labels and availability
 * (`desired`); a worker cannot, its caller does that through `m`.
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
  const cached = swarmId ? tokenCache().get(swarmId)?.[role] : undefined;
  const managerAddr = managerJoinAddr(m.info.nodeAddr);
  const join = (token: string) =>
    engineCall(
      n,
      ctx,
      "docker swarm join",
      "POST",
      "/swarm/join",
      joinRequest(advertise, managerAddr, token),
      [token],
    );
  try {
    await join(cached ?? (await swarmTokens(m, ctx))[role]);
  } catch (err) {
    // A token rotated since it was cached: the join was refused, so it is safe to try once more.
    if (!cached || !/token/i.test((err as Error).message)) throw err;
    tokenCache().delete(swarmId);
    await join((await swarmTokens(m, ctx))[role]);
  }
  // Logged once it went through: a join the node refused (already in a swarm) changed nothing.
  event(n.name, `join-${role}`);
  const info = await infoNow(n, ctx);
  return { ...info, node: role === "manager" ? await selfConverge(n, ctx, info.nodeId, desired) : undefined };
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
  const change = labelChanges(actual.labels, labels);
  if (change.add.length === 0 && change.rm.length === 0 && actual.availability === availability)
    return actual;
  event(node.name, "node-update");
  const send = (method: string, path: string, body?: unknown) => managerRequest(m, ctx, method, path, body);
  const fail = (what: string, r: EngineResponse) => engineFailure(m.node, ctx, what, r);
  return writeNodeSpec(send, fail, nodeId, labels, availability);
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
