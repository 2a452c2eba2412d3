// Node labels and placement checks for the node sources where Swarmform does not run SwarmNode per host:
// - NodeLabels (source `existing`): sets the labels of nodes named in config through the manager that the
//   docker provider talks to (docker.host), and checks at `up` that the platform's placement labels are on
//   some node of the swarm.
// - LocalSwarm (source `local`): the local Docker engine as a one-node swarm. `swarm init` only when the
//   config allows it (nodes.local.initSwarm), labels on the local node, and on destroy the engine is left as
//   it was found: a swarm Swarmform created is left (`swarm leave --force`), an existing one keeps its swarm.
//
// Both run the docker CLI with DOCKER_HOST set to docker.host, over the hosts layer's local Transport.
// Serialization: the providers are object literals of plain functions; node modules are required inside them.

import * as pulumi from "@pulumi/pulumi";
import { localTransport } from "../hosts/transport";
import {
  localTeardown,
  missingPlacements,
  ownedLabelChanges,
  parseNodeInspectAll,
  PlacementRequirement,
} from "./labelPlan";
import {
  initCommand,
  InitOptions,
  NodeObservation,
  nodeUpdateCommand,
  parseSwarmInfo,
  sq,
  SWARM_INFO_COMMAND,
  SwarmInfo,
} from "./plan";

/** Runs a docker command against `dockerHost`; a non-zero exit throws an error naming the host. */
async function docker(dockerHost: string, what: string, command: string): Promise<string> {
  const r = await localTransport({ DOCKER_HOST: dockerHost }).exec(command);
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" ");
    throw new Error(`docker engine ${dockerHost}: ${what} failed (exit ${r.code}): ${detail}`);
  }
  return r.stdout;
}

async function swarmInfoAt(dockerHost: string): Promise<SwarmInfo> {
  return parseSwarmInfo(await docker(dockerHost, "docker info", SWARM_INFO_COMMAND));
}

/** Every node of the swarm, as its manager sees it. */
async function allNodes(dockerHost: string): Promise<NodeObservation[]> {
  const ids = (await docker(dockerHost, "docker node ls", "docker node ls -q")).split(/\s+/).filter(Boolean);
  if (ids.length === 0) return [];
  const json = await docker(
    dockerHost,
    "docker node inspect",
    `docker node inspect ${ids.map(sq).join(" ")}`,
  );
  return parseNodeInspectAll(json);
}

/** The node named `name` (hostname or id); throws naming the nodes the swarm has. */
function findNode(nodes: readonly NodeObservation[], name: string, dockerHost: string): NodeObservation {
  const n = nodes.find((x) => x.hostname === name || x.id === name);
  if (!n) {
    throw new Error(
      `swarm node "${name}" (swarmform:nodes.labels) is not in the swarm at ${dockerHost}; its nodes are: ` +
        nodes.map((x) => x.hostname || x.id).join(", "),
    );
  }
  return n;
}

/** Applies label changes to one node; returns the labels Swarmform now owns there. */
async function labelNode(
  dockerHost: string,
  node: NodeObservation,
  wanted: Readonly<Record<string, string>>,
  owned: Readonly<Record<string, string>>,
): Promise<Record<string, string>> {
  const cmd = nodeUpdateCommand(node.id, ownedLabelChanges(node.labels, wanted, owned));
  if (cmd) await docker(dockerHost, `labelling node ${node.hostname || node.id}`, cmd);
  return { ...wanted };
}

/** Throws when a placement label is on no (manager) node: the service pinned to it would stay pending. */
async function checkPlacement(dockerHost: string, required: readonly PlacementRequirement[], stack: string) {
  const problems = missingPlacements(
    await allNodes(dockerHost),
    required,
    `the swarm at ${dockerHost}`,
    stack,
  );
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// NodeLabels (source existing)

export interface NodeLabelsInputs {
  /** The manager the docker provider talks to (docker.host). */
  readonly dockerHost: string;
  /** Labels by node name (hostname or id). Labels Swarmform did not set are left alone. */
  readonly nodes: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Placement labels that must be on some node after labelling. */
  readonly required: readonly PlacementRequirement[];
  /** Pulumi stack name, for messages. */
  readonly stack: string;
}

async function applyNodeLabels(news: NodeLabelsInputs, olds?: NodeLabelsInputs) {
  const nodes = await allNodes(news.dockerHost);
  const names = new Set([...Object.keys(news.nodes), ...Object.keys(olds?.nodes ?? {})]);
  for (const name of [...names].sort()) {
    const wanted = news.nodes[name] ?? {};
    const owned = olds?.nodes[name] ?? {};
    if (!(name in news.nodes) && !nodes.some((x) => x.hostname === name || x.id === name)) continue; // gone
    await labelNode(news.dockerHost, findNode(nodes, name, news.dockerHost), wanted, owned);
  }
  await checkPlacement(news.dockerHost, news.required, news.stack);
}

export const nodeLabelsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: NodeLabelsInputs, news: NodeLabelsInputs) {
    const changes: string[] = [];
    for (const k of ["dockerHost", "nodes", "required"] as const)
      if (JSON.stringify(olds[k]) !== JSON.stringify(news[k])) changes.push(k);
    return { changes: changes.length > 0, replaces: [] };
  },
  async create(inputs: NodeLabelsInputs) {
    await applyNodeLabels(inputs);
    return { id: "node-labels", outs: inputs };
  },
  async read(id: string, props: NodeLabelsInputs) {
    // Drift: the owned labels as the swarm has them now (a label removed by hand shows as a change).
    const nodes = await allNodes(props.dockerHost);
    const now: Record<string, Record<string, string>> = {};
    for (const [name, labels] of Object.entries(props.nodes)) {
      const n = nodes.find((x) => x.hostname === name || x.id === name);
      if (!n) continue;
      now[name] = Object.fromEntries(
        Object.keys(labels).flatMap((k) => (k in n.labels ? [[k, n.labels[k]]] : [])),
      );
    }
    return { id, props: { ...props, nodes: now } };
  },
  async update(_id: string, olds: NodeLabelsInputs, news: NodeLabelsInputs) {
    await applyNodeLabels(news, olds);
    return { outs: news };
  },
  async delete(_id: string, props: NodeLabelsInputs) {
    const nodes = await allNodes(props.dockerHost);
    for (const [name, owned] of Object.entries(props.nodes)) {
      const n = nodes.find((x) => x.hostname === name || x.id === name);
      if (n) await labelNode(props.dockerHost, n, {}, owned);
    }
  },
};

export type NodeLabelsArgs = { readonly [K in keyof NodeLabelsInputs]: pulumi.Input<NodeLabelsInputs[K]> };

/** Labels on nodes of an existing swarm, and the placement check (`pulumi-nodejs:dynamic/swarm:NodeLabels`). */
export class NodeLabels extends pulumi.dynamic.Resource {
  declare public readonly nodes: pulumi.Output<Record<string, Record<string, string>>>;
  constructor(name: string, args: NodeLabelsArgs, opts?: pulumi.CustomResourceOptions) {
    super(nodeLabelsProvider, name, args, opts, "swarm", "NodeLabels");
  }
}

// ---------------------------------------------------------------------------------------------
// LocalSwarm (source local)

export interface LocalSwarmInputs {
  /** The local engine, e.g. unix:///var/run/docker.sock. */
  readonly dockerHost: string;
  /** Run `docker swarm init` when the engine is not in swarm mode. */
  readonly initSwarm: boolean;
  /** `--advertise-addr` of that init. */
  readonly advertiseAddr: string;
  readonly init: InitOptions;
  /** Labels of the local node (placement labels included). */
  readonly labels: Readonly<Record<string, string>>;
  readonly required: readonly PlacementRequirement[];
  readonly stack: string;
}

export interface LocalSwarmOutputs extends LocalSwarmInputs {
  readonly nodeId: string;
  readonly swarmId: string;
  /** True when this resource ran `swarm init` (destroy then leaves the swarm). */
  readonly initialised: boolean;
}

/** The local engine as a swarm manager: joins nothing, inits only if allowed. */
async function ensureLocalSwarm(p: LocalSwarmInputs): Promise<{ info: SwarmInfo; initialised: boolean }> {
  const info = await swarmInfoAt(p.dockerHost);
  if (info.localNodeState === "active") {
    if (!info.controlAvailable) {
      throw new Error(
        `the Docker engine at ${p.dockerHost} is a worker of a swarm; nodes.source local needs a manager ` +
          `(or an engine outside any swarm, with swarmform:nodes.local.initSwarm: true)`,
      );
    }
    return { info, initialised: false };
  }
  if (info.localNodeState !== "inactive") {
    throw new Error(
      `the Docker engine at ${p.dockerHost} is in swarm state "${info.localNodeState}" ${info.error}; ` +
        `fix it (e.g. docker swarm leave --force) and run again`,
    );
  }
  if (!p.initSwarm) {
    throw new Error(
      `the Docker engine at ${p.dockerHost} is not in swarm mode. Set swarmform:nodes.local.initSwarm: true in ` +
        `Pulumi.${p.stack}.yaml so that Swarmform runs 'docker swarm init' (and leaves the swarm again on ` +
        `pulumi destroy), or run 'docker swarm init' yourself`,
    );
  }
  await docker(p.dockerHost, "docker swarm init", initCommand(p.advertiseAddr, p.init));
  return { info: await swarmInfoAt(p.dockerHost), initialised: true };
}

async function labelLocal(p: LocalSwarmInputs, nodeId: string, owned: Readonly<Record<string, string>>) {
  const self = findNode(await allNodes(p.dockerHost), nodeId, p.dockerHost);
  await labelNode(p.dockerHost, self, p.labels, owned);
  await checkPlacement(p.dockerHost, p.required, p.stack);
}

export const localSwarmProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: LocalSwarmOutputs, news: LocalSwarmInputs) {
    const changes: string[] = [];
    for (const k of ["dockerHost", "initSwarm", "advertiseAddr", "init", "labels", "required"] as const)
      if (JSON.stringify(olds[k]) !== JSON.stringify(news[k])) changes.push(k);
    // Another engine is another swarm: replace (the old one is left as it was found first).
    const replaces = olds.dockerHost !== news.dockerHost ? ["dockerHost"] : [];
    return { changes: changes.length > 0, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: LocalSwarmInputs) {
    const { info, initialised } = await ensureLocalSwarm(inputs);
    const outs: LocalSwarmOutputs = {
      ...inputs,
      nodeId: info.nodeId,
      swarmId: info.clusterId ?? "",
      initialised,
    };
    try {
      await labelLocal(inputs, info.nodeId, {});
    } catch (err) {
      // Pulumi records nothing for a failed create: undo the init, so the engine stays as it was found.
      if (initialised) await docker(inputs.dockerHost, "docker swarm leave", "docker swarm leave --force");
      throw err;
    }
    return { id: info.nodeId, outs };
  },
  async read(id: string, props: LocalSwarmOutputs) {
    const info = await swarmInfoAt(props.dockerHost);
    if (info.localNodeState !== "active" || info.clusterId !== props.swarmId) {
      return { id, props: { ...props, swarmId: info.clusterId ?? "", labels: {} } }; // left the swarm: drift
    }
    const self = findNode(await allNodes(props.dockerHost), props.nodeId, props.dockerHost);
    const labels = Object.fromEntries(
      Object.keys(props.labels).flatMap((k) => (k in self.labels ? [[k, self.labels[k]]] : [])),
    );
    return { id, props: { ...props, labels } };
  },
  async update(_id: string, olds: LocalSwarmOutputs, news: LocalSwarmInputs) {
    const info = await swarmInfoAt(news.dockerHost);
    let outs: LocalSwarmOutputs = { ...olds, ...news };
    if (info.localNodeState !== "active" || info.clusterId !== olds.swarmId) {
      // The engine left the swarm (or is in another one) since: start again as create would.
      const again = await ensureLocalSwarm(news);
      outs = {
        ...outs,
        nodeId: again.info.nodeId,
        swarmId: again.info.clusterId ?? "",
        initialised: again.initialised,
      };
      await labelLocal(news, again.info.nodeId, {});
      return { outs };
    }
    await labelLocal(news, olds.nodeId, olds.labels);
    return { outs };
  },
  async delete(_id: string, props: LocalSwarmOutputs) {
    const info = await swarmInfoAt(props.dockerHost);
    const what = localTeardown({
      initialised: props.initialised,
      swarmId: props.swarmId,
      currentSwarmId: info.clusterId,
      localNodeState: info.localNodeState,
    });
    if (what === "leave") await docker(props.dockerHost, "docker swarm leave", "docker swarm leave --force");
    if (what === "remove-labels") {
      const self = (await allNodes(props.dockerHost)).find((n) => n.id === props.nodeId);
      if (self) await labelNode(props.dockerHost, self, {}, props.labels);
    }
  },
};

export type LocalSwarmArgs = { readonly [K in keyof LocalSwarmInputs]: pulumi.Input<LocalSwarmInputs[K]> };

/** The local Docker engine as a one-node swarm (`pulumi-nodejs:dynamic/swarm:LocalSwarm`). */
export class LocalSwarm extends pulumi.dynamic.Resource {
  declare public readonly nodeId: pulumi.Output<string>;
  declare public readonly swarmId: pulumi.Output<string>;
  declare public readonly initialised: pulumi.Output<boolean>;
  declare public readonly labels: pulumi.Output<Record<string, string>>;
  constructor(name: string, args: LocalSwarmArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      localSwarmProvider,
      name,
      { ...args, nodeId: undefined, swarmId: undefined, initialised: undefined },
      opts,
      "swarm",
      "LocalSwarm",
    );
  }
}
