// SwarmNode: one host's swarm membership as a Pulumi dynamic resource (init or join, labels,
// availability, role, drift on refresh, safe removal).
//
// The provider is an object literal of plain functions. SwarmNode (SwarmNode.ts) stores a bundle of this module
// (components/hosts/bundledProvider.ts) as its `__provider`, which Pulumi's dynamic-provider process runs.

import type * as pulumi from "@pulumi/pulumi";
import {
  Ctx,
  checkQuorumForRemoval,
  demote,
  describeNode,
  drainAndWait,
  findManager,
  hostView,
  initSwarm,
  inspectNode,
  joinSwarm,
  knownManagerToJoin,
  leave,
  Manager,
  NodeSsh,
  NodeTimeouts,
  nodeSshOf,
  onManager,
  probe,
  promote,
  removeNode,
  requireManager,
  setLabelsAndAvailability,
  swarmInfo,
  swarmTokens,
  waitReady,
  withDefaults,
  withSwarmLock,
} from "./nodeOps";
import { joinLimitProblem, withJoinSlot } from "./joinLimiter";
import {
  Availability,
  classifyDiff,
  endpointKey,
  InitOptions,
  NodeObservation,
  NodeRole,
  removalSteps,
  sq,
} from "./plan";

/** Inputs of a SwarmNode, as the provider sees them (plain values). */
export interface SwarmNodeInputs {
  /** Host name (HostSpec.name); the resource id. A change replaces the node. */
  readonly name: string;
  /** Address to SSH to. A change replaces the node. */
  readonly address: string;
  /** SSH port. Default 22. */
  readonly port?: number;
  /** SSH user. Default root. */
  readonly user?: string;
  /** Pinned SSH host key `SHA256:...`. Default: not pinned. */
  readonly hostKeyFingerprint?: string;
  /** SSH private key (secret). */
  readonly privateKey: string;
  /** `--advertise-addr`. Default: `address`. A change replaces the node. */
  readonly advertiseAddress?: string;
  readonly role: NodeRole;
  /** Default active. */
  readonly availability: Availability;
  /** Node labels, authoritative (labels not listed are removed). Default {}. */
  readonly labels: Readonly<Record<string, string>>;
  /** True for the one node that runs `docker swarm init`. Default false. */
  readonly bootstrap: boolean;
  /** Init options (bootstrap node only). */
  readonly init?: InitOptions;
  /**
   * Hosts to ask for a manager, sharing `privateKey`: SwarmMembership passes the configured managers (those that
   * are managers answer; the first in order is used). This node is always asked too. A change is an update only
   * when the stored list holds none of the new one (managersStale).
   */
  readonly managers: readonly NodeSsh[];
  /** Joining nodes: the swarm they must join (refuses managers of another swarm). Default: not checked. */
  readonly expectedSwarmId?: string;
  /** Allow a demotion/removal that leaves the managers without quorum. Default false. */
  readonly forceQuorumLoss: boolean;
  readonly timeouts?: NodeTimeouts;
  /**
   * Most `docker swarm join`s into this swarm at once, across the SwarmNodes of one provider process
   * (nodes.swarm.maxParallelJoins). Not compared by diff: changing it updates no node. Default 10.
   */
  readonly maxParallelJoins?: number;
}

/** State of a SwarmNode: its inputs, as refreshed by read, plus what the swarm assigned. */
export interface SwarmNodeOutputs extends SwarmNodeInputs {
  readonly nodeId: string;
  readonly swarmId: string;
  /** false when read found the node outside the swarm; the next update re-joins it. */
  readonly member: boolean;
  /** Node status as the managers see it: ready | down | unknown. */
  readonly state: string;
  /** Bootstrap node only, else "" (secret). */
  readonly managerToken: string;
  /** Bootstrap node only, else "" (secret). */
  readonly workerToken: string;
}

export const SWARM_NODE_SECRET_OUTPUTS = ["privateKey", "managerToken", "workerToken"];

function ctxOf(p: SwarmNodeInputs): Ctx {
  return {
    privateKey: p.privateKey,
    timeouts: withDefaults(p.timeouts),
    forceQuorumLoss: p.forceQuorumLoss === true,
  };
}

/** Managers to ask: the configured list, plus this node if it is (meant to be) a manager. */
function candidatesOf(p: SwarmNodeInputs): NodeSsh[] {
  const list = [...p.managers];
  if (!list.some((m) => m.name === p.name)) list.push(nodeSshOf(p));
  return list;
}

/**
 * The host every read of a swarm's nodes asks for the whole swarm: the bootstrap node (the first configured
 * manager), which each other node finds first in its `managers` list. One host for all, so that a refresh lists
 * the nodes once; when it cannot answer, read falls back to asking every candidate.
 */
function listerOf(p: SwarmNodeInputs): NodeSsh {
  return p.bootstrap || p.managers.length === 0 ? nodeSshOf(p) : p.managers[0];
}

/** What a node looks like right after it joined (or initialised) with `role`: no labels, active. */
function freshNode(nodeId: string, role: NodeRole): NodeObservation {
  return {
    id: nodeId,
    hostname: "",
    role,
    availability: "active",
    labels: {},
    state: "unknown",
    addr: "",
    reachability: "",
    leader: false,
  };
}

/**
 * Brings the node's role, availability and labels to the desired ones via manager `m`; returns the node
 * as the manager sees it afterwards. `known` is what it looks like now, if the caller knows.
 */
async function converge(
  m: Manager,
  p: SwarmNodeInputs,
  nodeId: string,
  known?: NodeObservation,
): Promise<NodeObservation> {
  const ctx = ctxOf(p);
  const self = nodeSshOf(p);
  let actual = known ?? (await inspectNode(m, ctx, nodeId));
  if (!actual)
    throw new Error(`${describeNode(self)}: node ${nodeId} is not known to manager ${m.node.name}`);
  if (actual.role !== p.role) {
    const swarmId = m.info.clusterId ?? "";
    await withSwarmLock(swarmId, candidatesOf(p), ctx, p.name, async () => {
      const mgr = await requireManager(candidatesOf(p), ctx, self, p.role === "worker" ? p.name : undefined);
      if (p.role === "worker") {
        await checkQuorumForRemoval(mgr, ctx, self, nodeId);
        await demote(mgr, ctx, self, nodeId);
      } else {
        await promote(mgr, ctx, self, nodeId);
      }
    });
    m = await requireManager(candidatesOf(p), ctx, self);
    actual = undefined;
  }
  actual = actual ?? (await inspectNode(m, ctx, nodeId))!;
  const after = await setLabelsAndAvailability(
    m,
    ctx,
    self,
    nodeId,
    actual,
    p.labels ?? {},
    p.availability ?? "active",
  );
  // A node assumed fresh and left unchanged has not been read yet.
  return after.state === "unknown" && after.hostname === "" ? (await inspectNode(m, ctx, nodeId))! : after;
}

interface Membership {
  readonly m: Manager;
  readonly nodeId: string;
  /** How the node looks now, when known without asking (just joined). */
  readonly known?: NodeObservation;
  /** The join tokens, when init just printed them. Secret. */
  readonly tokens?: { manager: string; worker: string };
}

/** Makes the host a member of the swarm (init, join or adopt); returns the manager to use and the node id. */
async function ensureMember(p: SwarmNodeInputs, staleNodeId?: string): Promise<Membership> {
  const ctx = ctxOf(p);
  const self = nodeSshOf(p);
  const advertise = p.advertiseAddress ?? p.address;
  // The init node (or a joining manager) sets its own labels and availability: no trip through another manager.
  const desired = { labels: p.labels ?? {}, availability: p.availability ?? "active" };
  // A joiner whose manager and token this process already knows (e.g. the init just ran) joins at once, asking
  // no one first. A node already in a swarm refuses the join and nothing changes; that, SSH not ready yet or any
  // other failure sends it the careful way below, which waits for the host and asks the managers first.
  const known =
    p.bootstrap || staleNodeId ? undefined : knownManagerToJoin(p.managers, p.role, p.expectedSwarmId);
  if (known) {
    const joined = await withJoinSlot(known.info.clusterId ?? known.node.address, p.maxParallelJoins, () =>
      joinSwarm(self, ctx, known, p.role, advertise, desired),
    ).catch(() => undefined);
    if (joined)
      return { m: known, nodeId: joined.nodeId, known: joined.node ?? freshNode(joined.nodeId, p.role) };
  }
  // The node itself, and a manager of the swarm other than this node (for the bootstrap node: maybe none yet).
  let [info, m] = await Promise.all([waitReady(self, ctx), findManager(candidatesOf(p), ctx, p.name)]);
  if (info.localNodeState === "pending" || info.localNodeState === "error") {
    await leave(self, ctx, true);
    info = await swarmInfo(self, ctx);
  }
  if (!m && !p.bootstrap) m = await requireManager(candidatesOf(p), ctx, self, p.name);
  if (m && p.expectedSwarmId && m.info.clusterId !== p.expectedSwarmId) {
    throw new Error(
      `${describeNode(self)}: manager ${m.node.name} belongs to swarm ${m.info.clusterId}, not the expected ${p.expectedSwarmId}`,
    );
  }
  if (info.localNodeState === "active") {
    // Adopt only if this swarm knows the node; otherwise it belongs to another swarm.
    const known = m ? await inspectNode(m, ctx, info.nodeId) : undefined;
    const isOwnSwarm = m ? known !== undefined : p.bootstrap && info.controlAvailable;
    if (!isOwnSwarm) {
      throw new Error(
        `${describeNode(self)}: already a member of another swarm (node ${info.nodeId}` +
          (info.clusterId ? `, swarm ${info.clusterId}` : "") +
          `); run 'docker swarm leave' on ${p.name} first`,
      );
    }
    return { m: m ?? { node: self, info, candidates: candidatesOf(p) }, nodeId: info.nodeId, known };
  }
  if (m && staleNodeId) {
    // Re-join after drift: forget the old entry first (demoting it if it was a manager).
    const old = await inspectNode(m, ctx, staleNodeId);
    if (old) {
      if (old.role === "manager") {
        await withSwarmLock(m.info.clusterId ?? "", candidatesOf(p), ctx, p.name, async () => {
          const mgr = await requireManager(candidatesOf(p), ctx, self, p.name);
          await checkQuorumForRemoval(mgr, ctx, self, staleNodeId);
          await demote(mgr, ctx, self, staleNodeId);
        });
      }
      await removeNode(m, ctx, self, staleNodeId, true);
    }
  }
  if (!m) {
    const { node, tokens, ...initInfo } = await initSwarm(
      self,
      ctx,
      advertise,
      p.init ?? { defaultAddrPool: [], dataPathPort: 4789, certExpiry: "2160h0m0s" },
      desired,
    );
    return {
      m: { node: self, info: initInfo, candidates: candidatesOf(p) },
      nodeId: initInfo.nodeId,
      known: node ?? freshNode(initInfo.nodeId, "manager"),
      tokens,
    };
  }
  const joined = await withJoinSlot(m.info.clusterId ?? m.node.address, p.maxParallelJoins, () =>
    joinSwarm(self, ctx, m, p.role, advertise, desired),
  );
  return { m, nodeId: joined.nodeId, known: joined.node ?? freshNode(joined.nodeId, p.role) };
}

function outputsOf(
  p: SwarmNodeInputs,
  m: Manager,
  nodeId: string,
  obs: NodeObservation | undefined,
  tokens: { manager: string; worker: string },
): SwarmNodeOutputs {
  return {
    ...p,
    role: obs?.role ?? p.role,
    availability: obs?.availability ?? p.availability,
    labels: obs?.labels ?? {},
    nodeId,
    swarmId: m.info.clusterId ?? "",
    member: obs !== undefined,
    state: obs?.state ?? "unknown",
    managerToken: tokens.manager,
    workerToken: tokens.worker,
  };
}

const NO_TOKENS = { manager: "", worker: "" };

/** Join tokens, for the bootstrap node only. */
function tokensFor(p: SwarmNodeInputs, m: Manager) {
  return p.bootstrap ? swarmTokens(m, ctxOf(p)) : Promise.resolve(NO_TOKENS);
}

async function removeFromSwarm(p: SwarmNodeOutputs): Promise<void> {
  const ctx = ctxOf(p);
  const self = nodeSshOf(p);
  const info = await probe(self, ctx);
  const selfActive = info !== undefined && info.localNodeState === "active" && info.nodeId === p.nodeId;
  const m = await findManager(candidatesOf(p), ctx, p.name);
  if (!m) {
    if (!selfActive) return; // already out of the swarm, and no manager knows better
    if (info!.controlAvailable && (info!.nodes ?? 1) > 1 && !ctx.forceQuorumLoss) {
      throw new Error(
        `${describeNode(self)}: refusing to remove the last reachable manager while ${info!.nodes! - 1} other node(s) ` +
          `remain in the swarm (set nodes.swarm.forceQuorumLoss to force)`,
      );
    }
    for (const step of removalSteps({ role: p.role, hostReachable: true, lastNode: true })) {
      if (step === "leave-force") await leave(self, ctx, true);
    }
    return;
  }
  const obs = await inspectNode(m, ctx, p.nodeId);
  if (!obs) {
    if (selfActive) await leave(self, ctx, true);
    return;
  }
  const steps = removalSteps({ role: obs.role, hostReachable: selfActive, lastNode: false });
  const doSteps = async (mgr: Manager) => {
    for (const step of steps) {
      if (step === "drain") await drainAndWait(mgr, ctx, self, p.nodeId);
      else if (step === "demote") {
        await checkQuorumForRemoval(mgr, ctx, self, p.nodeId);
        await demote(mgr, ctx, self, p.nodeId);
      } else if (step === "leave") await leave(self, ctx);
      else if (step === "node-rm") await removeNode(mgr, ctx, self, p.nodeId, false, true);
      else if (step === "node-rm-force") await removeNode(mgr, ctx, self, p.nodeId, true);
    }
  };
  if (obs.role === "manager") {
    // Manager removals are serialised swarm-wide; quorum is recomputed under the lock.
    await withSwarmLock(p.swarmId || m.info.clusterId || "", candidatesOf(p), ctx, p.name, async () =>
      doSteps(await requireManager(candidatesOf(p), ctx, self, p.name)),
    );
  } else {
    await doSteps(m);
  }
}

/** The SwarmNode dynamic provider. */
export const swarmNodeProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: SwarmNodeInputs, news: SwarmNodeInputs) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (!news.name) failures.push({ property: "name", reason: "name is required" });
    if (!news.address) failures.push({ property: "address", reason: "address is required" });
    if (typeof news.privateKey !== "string" || news.privateKey === "")
      failures.push({ property: "privateKey", reason: "privateKey must be the SSH private key text" });
    if (news.role !== "manager" && news.role !== "worker")
      failures.push({ property: "role", reason: "role must be manager or worker" });
    if (news.bootstrap && news.role !== "manager")
      failures.push({ property: "bootstrap", reason: "the bootstrap node (swarm init) must be a manager" });
    if (!["active", "pause", "drain", undefined].includes(news.availability))
      failures.push({ property: "availability", reason: "availability must be active, pause or drain" });
    for (const k of Object.keys(news.labels ?? {}))
      if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]*$/.test(k))
        failures.push({ property: "labels", reason: `label key "${k}" has characters docker refuses` });
    const limitProblem = joinLimitProblem(news.maxParallelJoins);
    if (limitProblem) failures.push({ property: "maxParallelJoins", reason: limitProblem });
    void olds;
    return {
      inputs: { ...news, labels: news.labels ?? {}, availability: news.availability ?? "active" },
      failures,
    };
  },

  async diff(_id: string, olds: SwarmNodeOutputs, news: SwarmNodeInputs) {
    const plan = classifyDiff(olds, news);
    return {
      changes: plan.changes,
      replaces: plan.replaces,
      deleteBeforeReplace: plan.deleteBeforeReplace,
    };
  },

  async create(inputs: SwarmNodeInputs) {
    const { m, nodeId, known, tokens: initTokens } = await ensureMember(inputs);
    const [obs, tokens] = await Promise.all([
      converge(m, inputs, nodeId, known),
      initTokens ?? tokensFor(inputs, m),
    ]);
    return { id: inputs.name, outs: outputsOf(inputs, m, nodeId, obs, tokens) };
  },

  async read(id: string, props: SwarmNodeOutputs) {
    const ctx = ctxOf(props);
    const self = nodeSshOf(props);
    // One view per host, shared by the reads of one refresh: every node asks its own host for its swarm info,
    // and the lister (the same host for every node of the swarm) for every node and the join tokens.
    const candidates = candidatesOf(props);
    const lister = listerOf(props);
    const selfLists = endpointKey(lister) === endpointKey(self);
    const [own, seen] = await Promise.all([
      hostView(self, ctx, selfLists),
      selfLists ? undefined : hostView(lister, ctx, true),
    ]);
    const v = selfLists ? own : seen;
    const listed =
      v?.info.localNodeState === "active" &&
      v.info.controlAvailable &&
      v.nodes !== undefined &&
      (!props.bootstrap || v.tokens !== undefined);
    let outs: SwarmNodeOutputs;
    let info = own?.info;
    if (listed) {
      const m: Manager = { node: lister, info: v.info, candidates };
      const obs = props.nodeId ? v.nodes!.find((n) => n.id === props.nodeId) : undefined;
      outs = outputsOf(props, m, props.nodeId, obs, props.bootstrap ? v.tokens! : NO_TOKENS);
    } else {
      // The lister could not answer in one go (down, not a manager, no leader right now): ask the candidates,
      // with retries, as create does.
      const [m, probed] = await Promise.all([requireManager(candidates, ctx, self), probe(self, ctx)]);
      const [obs, tokens] = await Promise.all([inspectNode(m, ctx, props.nodeId), tokensFor(props, m)]);
      outs = outputsOf(props, m, props.nodeId, obs, tokens);
      info = probed;
    }
    // The node's own view wins when it answers: one that left (or re-joined elsewhere) is not a member.
    const selfSaysMember =
      info === undefined || (info.localNodeState === "active" && info.nodeId === props.nodeId);
    return { id, props: { ...outs, member: outs.member && selfSaysMember } };
  },

  async update(_id: string, olds: SwarmNodeOutputs, news: SwarmNodeInputs) {
    const ctx = ctxOf(news);
    const self = nodeSshOf(news);
    if (news.bootstrap && olds.init && news.init) {
      const o = olds.init;
      const n = news.init;
      if (o.dataPathPort !== n.dataPathPort || o.defaultAddrPool.join(",") !== n.defaultAddrPool.join(",")) {
        throw new Error(
          `${describeNode(self)}: defaultAddrPool and dataPathPort are fixed at swarm init and cannot change on an existing swarm`,
        );
      }
    }
    const [m0, info] = await Promise.all([requireManager(candidatesOf(news), ctx, self), probe(self, ctx)]);
    let m = m0;
    let nodeId = olds.nodeId;
    let known = await inspectNode(m, ctx, nodeId);
    const isMember = info?.localNodeState === "active" && info.nodeId === nodeId && known !== undefined;
    if (!isMember) {
      ({ m, nodeId, known } = await ensureMember({ ...news, bootstrap: false }, nodeId));
    }
    if (news.bootstrap && news.init && olds.init?.certExpiry !== news.init.certExpiry) {
      await onManager(
        m,
        ctx,
        "docker swarm update",
        `docker swarm update --cert-expiry ${sq(news.init.certExpiry)}`,
      );
    }
    const [obs, tokens] = await Promise.all([converge(m, news, nodeId, known), tokensFor(news, m)]);
    return { outs: outputsOf(news, m, nodeId, obs, tokens) };
  },

  async delete(_id: string, props: SwarmNodeOutputs) {
    await removeFromSwarm(props);
  },
};
