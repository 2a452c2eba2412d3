// The round-trip savers of the SwarmNode provider: command classification (read vs mutating) as the Transport
// counts it, the Engine API requests behind a refresh's host view, the init and the labels a new node sets on
// itself, and a label update that meets a newer version of its node. The requests go to a small in-memory
// stand-in for dockerd, through the transport hook (swarmform.transport.wrap); the bodies are the ones the
// provider builds. (The same requests run against real dockerds in tests/e2e/membership.test.ts.)

import type { EngineResponse, EngineTransport, SshTarget } from "../../components/hosts/transport";
import { commandKind } from "../../components/hosts/transport";
import {
  Ctx,
  forgetViews,
  initSwarm,
  joinSwarm,
  listView,
  Manager,
  NodeSsh,
  setLabelsAndAvailability,
  withDefaults,
} from "../../components/swarm/nodeOps";
import {
  goDurationNs,
  initCommand,
  initRequest,
  joinCommand,
  joinRequest,
  nodeSpecWith,
  nodeUpdateCommand,
  tokensOf,
} from "../../components/swarm/plan";

interface FakeNode {
  ID: string;
  Version: { Index: number };
  Spec: { Role: string; Availability: string; Labels: Record<string, string> };
  Description: { Hostname: string };
  Status: { State: string; Addr: string };
}

/** An in-memory dockerd per host, answering the requests the provider sends; every request is logged. */
class FakeEngines {
  log: string[] = [];
  bodies: Record<string, unknown> = {};
  nodes = new Map<string, FakeNode>();
  managers = new Set<string>();
  /** How many node updates still answer "update out of sequence" (the node changed since it was read). */
  outOfSequence = 0;
  /** The answer of every POST /swarm/join, when set. */
  joinAnswer?: EngineResponse;
  /** Hosts whose requests cannot be made (SSH or docker do not answer). */
  unreachable = new Set<string>();

  node(host: string, role = "manager", labels: Record<string, string> = {}): FakeNode {
    const n: FakeNode = {
      ID: `id-${host}`,
      Version: { Index: 7 },
      Spec: { Role: role, Availability: "active", Labels: labels },
      Description: { Hostname: host },
      Status: { State: "ready", Addr: "10.0.0.9" },
    };
    this.nodes.set(n.ID, n);
    if (role === "manager") this.managers.add(host);
    return n;
  }

  transport(t: SshTarget): EngineTransport {
    return {
      host: t.host,
      exec: async (command: string) => ({ stdout: "", stderr: `unexpected: ${command}`, code: 1 }),
      request: async (method: string, path: string, body?: unknown) =>
        this.answer(t.host, method, path, body),
      close: async () => undefined,
    };
  }

  private answer(host: string, method: string, path: string, body?: unknown): EngineResponse {
    this.log.push(`${host} ${method} ${path}`);
    if (this.unreachable.has(host))
      throw new Error(`ssh root@${host}: docker ${method} ${path}: socket hang up`);
    if (body !== undefined) this.bodies[`${method} ${path}`] = body;
    const ok = (b: unknown): EngineResponse => ({ status: 200, body: b });
    const manager = this.managers.has(host);
    const notManager = { status: 503, body: { message: "This node is not a swarm manager." } };
    if (method === "POST" && path === "/swarm/init") {
      this.node(host);
      return ok(`id-${host}`);
    }
    if (method === "POST" && path === "/swarm/join") return this.joinAnswer ?? ok("");
    if (method === "GET" && path === "/info") {
      const Swarm = { NodeID: `id-${host}`, LocalNodeState: "active", ControlAvailable: manager };
      return ok({ Swarm: manager ? { ...Swarm, Cluster: { ID: "c1" } } : Swarm });
    }
    if (!manager) return notManager;
    if (method === "GET" && path === "/swarm")
      return ok({ JoinTokens: { Manager: "SWMTKN-1-abc-manager", Worker: "SWMTKN-1-abc-worker" } });
    if (method === "GET" && path === "/nodes") return ok([...this.nodes.values()]);
    const m = /^\/nodes\/([^/?]+)(\/update\?version=(\d+))?$/.exec(path);
    const n = m ? this.nodes.get(m[1]) : undefined;
    if (!m || !n) return { status: 404, body: { message: `node ${m?.[1]} not found` } };
    if (method === "GET" && !m[2]) return ok(structuredClone(n));
    if (method === "POST" && m[2]) {
      if (this.outOfSequence > 0 || Number(m[3]) !== n.Version.Index) {
        this.outOfSequence--;
        n.Version.Index++;
        return { status: 500, body: { message: "rpc error: code = Unknown desc = update out of sequence" } };
      }
      n.Spec = body as FakeNode["Spec"];
      n.Version.Index++;
      return ok("");
    }
    return { status: 400, body: { message: `unexpected: ${method} ${path}` } };
  }
}

const WRAP = Symbol.for("swarmform.transport.wrap");
const g = globalThis as unknown as Record<symbol, unknown>;
let engines: FakeEngines;
const ctx: Ctx = { privateKey: "unused", timeouts: withDefaults(undefined), forceQuorumLoss: false };
const h = (name: string): NodeSsh => ({ name, address: `10.0.0.${name.slice(1)}` });
const INIT = { defaultAddrPool: ["10.20.0.0/16"], dataPathPort: 4789, certExpiry: "2160h0m0s" };
/** h1 as the provider holds a manager it found: active, with control, in swarm c1. */
const managerH1 = (): Manager => ({
  node: h("h1"),
  info: {
    nodeId: "id-h1",
    nodeAddr: "10.0.0.1",
    localNodeState: "active",
    controlAvailable: true,
    clusterId: "c1",
    error: "",
  },
});

beforeEach(() => {
  engines = new FakeEngines();
  g[WRAP] = (t: SshTarget) => engines.transport(t);
  g[Symbol.for("swarmform.swarm.knownManagers")] = undefined;
  g[Symbol.for("swarmform.swarm.tokens")] = undefined;
  forgetViews();
});
afterAll(() => {
  delete g[WRAP];
});

describe("commandKind", () => {
  it("counts the queries as reads", () => {
    for (const c of [
      "docker info --format '{{json .Swarm}}'",
      "docker node inspect 'abc'",
      "docker node ls --format '{{.ID}}'",
      "docker node ps 'x' --filter desired-state=running",
      "docker service ls --format '{{.Name}}'",
      "docker swarm join-token -q manager && docker swarm join-token -q worker",
      "docker node ls -q | { i=$(docker info) || exit; wait; printf '%s\\n' \"$i\"; }",
      "true",
    ])
      expect({ c, kind: commandKind(c) }).toEqual({ c, kind: "read" });
  });
  it("counts everything that may change something as mutating", () => {
    for (const c of [
      initCommand("10.0.0.1", { defaultAddrPool: [], dataPathPort: 4789, certExpiry: "1h" }),
      joinCommand("10.0.0.2", "10.0.0.1:2377") + " >/dev/null && docker info --format '{{json .Swarm}}'",
      nodeUpdateCommand("n1", { add: [["zone", "a"]], rm: [] })!,
      "docker node demote 'n1'",
      "docker node rm --force 'n1'",
      "docker swarm leave --force",
      "docker swarm join-token --rotate -q worker",
      'base=/var/lock; d="$base"/x.lock; if mkdir "$d"; then echo me > "$d/owner"; fi',
      "rm -rf /tmp/x",
      "docker info & rm -rf /tmp/x",
      "echo hi > /etc/motd",
      "some-unknown-tool --flag",
    ])
      expect({ c, kind: commandKind(c) }).toEqual({ c, kind: "mutating" });
  });
  it("does not take a quoted > or a redirection to /dev/null for a write", () => {
    expect(commandKind("docker info --format '{{if gt 1 0}}x{{end}}' 2>/dev/null >/dev/null")).toBe("read");
  });
});

describe("Engine API request bodies", () => {
  it("init: what `docker swarm init` sends, the address pool with docker's /24 subnets", () => {
    expect(initRequest("10.0.0.1", INIT)).toEqual({
      ListenAddr: "0.0.0.0:2377",
      AdvertiseAddr: "10.0.0.1",
      DefaultAddrPool: ["10.20.0.0/16"],
      SubnetSize: 24,
      DataPathPort: 4789,
      Spec: { CAConfig: { NodeCertExpiry: 2160 * 3600e9 } },
    });
    expect(initRequest("10.0.0.1", { ...INIT, defaultAddrPool: [] })).not.toHaveProperty("DefaultAddrPool");
  });
  it("Go durations in nanoseconds; anything else is refused", () => {
    expect(goDurationNs("1h30m")).toBe(5400e9);
    expect(goDurationNs("1.5s")).toBe(1.5e9);
    expect(goDurationNs("250ms")).toBe(250e6);
    for (const bad of ["", "90", "1d", "1h 30m"])
      expect(() => goDurationNs(bad)).toThrow(/not a Go duration/);
  });
  it("join: the manager's address and the token", () => {
    expect(joinRequest("10.0.0.2", "10.0.0.1:2377", "SWMTKN-1-x")).toEqual({
      ListenAddr: "0.0.0.0:2377",
      AdvertiseAddr: "10.0.0.2",
      RemoteAddrs: ["10.0.0.1:2377"],
      JoinToken: "SWMTKN-1-x",
    });
  });
  it("node spec: the whole spec read, with exactly the labels and availability wanted; nothing when it has them", () => {
    const node = {
      Spec: { Name: "n", Role: "worker", Availability: "active", Labels: { old: "1", zone: "a" } },
    };
    expect(nodeSpecWith(node, { zone: "b" }, "drain")).toEqual({
      Name: "n",
      Role: "worker",
      Availability: "drain",
      Labels: { zone: "b" },
    });
    expect(nodeSpecWith(node, { zone: "a", old: "1" }, "active")).toBeUndefined();
    expect(nodeSpecWith({ Spec: { Availability: "active" } }, {}, "active")).toBeUndefined();
  });
  it("tokens: both, or none", () => {
    expect(tokensOf({ JoinTokens: { Manager: "SWMTKN-1-m", Worker: "SWMTKN-1-w" } })).toEqual({
      manager: "SWMTKN-1-m",
      worker: "SWMTKN-1-w",
    });
    expect(tokensOf({ JoinTokens: { Manager: "SWMTKN-1-m" } })).toBeUndefined();
    expect(tokensOf(undefined)).toBeUndefined();
  });
});

describe("host view of a refresh", () => {
  it("on the lister: its info, then every node and both join tokens", async () => {
    engines.node("h1", "manager", { zone: "a" });
    engines.node("h2", "worker");
    const v = await listView(h("h1"), ctx);
    expect(v.info).toMatchObject({ nodeId: "id-h1", controlAvailable: true, clusterId: "c1" });
    expect(v.nodes!.map((n) => [n.id, n.labels])).toEqual([
      ["id-h1", { zone: "a" }],
      ["id-h2", {}],
    ]);
    expect(v.tokens).toEqual({ manager: "SWMTKN-1-abc-manager", worker: "SWMTKN-1-abc-worker" });
    expect(engines.log).toEqual(["h1 GET /info", "h1 GET /nodes", "h1 GET /swarm"]);
  });
  it("on a host that is not a manager: its info only", async () => {
    engines.node("h2", "worker");
    expect(await listView(h("h2"), ctx)).toEqual({
      info: expect.objectContaining({ nodeId: "id-h2", controlAvailable: false }),
    });
    expect(engines.log).toEqual(["h2 GET /info"]);
  });
});

describe("init and a new node's own labels", () => {
  it("init, its info, the tokens, then its labels written at the version it read", async () => {
    const joined = await initSwarm(h("h1"), ctx, "10.0.0.1", INIT, {
      labels: { zone: "a" },
      availability: "drain",
    });
    expect(engines.log).toEqual([
      "h1 POST /swarm/init",
      "h1 GET /info",
      "h1 GET /swarm",
      "h1 GET /nodes/id-h1",
      "h1 POST /nodes/id-h1/update?version=7",
    ]);
    expect(engines.bodies["POST /swarm/init"]).toEqual(initRequest("10.0.0.1", INIT));
    expect(joined.tokens).toEqual({ manager: "SWMTKN-1-abc-manager", worker: "SWMTKN-1-abc-worker" });
    expect(joined.node).toMatchObject({ id: "id-h1", labels: { zone: "a" }, availability: "drain" });
    expect(engines.nodes.get("id-h1")!.Spec).toMatchObject({ Labels: { zone: "a" }, Availability: "drain" });
  });
  it("a new node without labels writes nothing", async () => {
    await initSwarm(h("h1"), ctx, "10.0.0.1", INIT);
    expect(engines.log).not.toContain("h1 POST /nodes/id-h1/update?version=7");
  });
  it("a refused join never shows the token, even when the daemon's message does", async () => {
    engines.node("h1");
    engines.joinAnswer = { status: 500, body: { message: "refused SWMTKN-1-abc-worker here" } };
    const err = await joinSwarm(h("h4"), ctx, managerH1(), "worker", "10.0.0.4", {
      labels: {},
      availability: "active",
    }).catch((e: Error) => e.message);
    expect(err).toMatch(
      /^swarm node h4 \(10\.0\.0\.4\): docker swarm join failed \(HTTP 500\): refused SWMTKN-\[secret\] here$/,
    );
    expect(engines.bodies["POST /swarm/join"]).toMatchObject({
      JoinToken: "SWMTKN-1-abc-worker",
      RemoteAddrs: ["10.0.0.1:2377"],
    });
  });
});

describe("a label update through a manager", () => {
  const fresh = (id: string) => ({
    id,
    hostname: "",
    role: "worker" as const,
    availability: "active" as const,
    labels: {},
    state: "unknown",
    addr: "",
    reachability: "",
    leader: false,
  });

  /** Labels a worker that just joined (h4) through `via` (h1), after `outOfSequence` refused updates. */
  const labelNewWorker = (outOfSequence: number, via: Manager = managerH1()) => {
    engines.node("h1");
    engines.node("h4", "worker");
    engines.outOfSequence = outOfSequence;
    return setLabelsAndAvailability(via, ctx, h("h4"), "id-h4", fresh("id-h4"), { zone: "d" }, "active");
  };

  it("that meets a newer version of the node reads it again and writes at the new version", async () => {
    const after = await labelNewWorker(1);
    expect(after).toMatchObject({ id: "id-h4", hostname: "h4", labels: { zone: "d" }, state: "ready" });
    expect(engines.log).toEqual([
      "h1 GET /nodes/id-h4",
      "h1 POST /nodes/id-h4/update?version=7",
      "h1 GET /nodes/id-h4",
      "h1 POST /nodes/id-h4/update?version=8",
    ]);
  });
  it("gives up after 5 such answers, naming the manager", async () => {
    const err = await labelNewWorker(5).catch((e: Error) => e.message);
    expect(err).toMatch(
      /^swarm node h1 \(10\.0\.0\.1\): docker node update failed \(HTTP 500\): .*update out of sequence$/,
    );
    expect(engines.log.filter((l) => l.includes("POST"))).toHaveLength(5);
  });
  it("moves to another manager among the candidates when the one it holds cannot be reached", async () => {
    engines.node("h2");
    engines.unreachable.add("h1");
    const m = { ...managerH1(), candidates: [h("h1"), h("h2")] };
    const after = await labelNewWorker(0, m);
    expect(after.labels).toEqual({ zone: "d" });
    expect(m.node.name).toBe("h2");
    expect(engines.log.filter((l) => l.includes("/nodes/id-h4"))).toEqual([
      "h1 GET /nodes/id-h4",
      "h2 GET /nodes/id-h4",
      "h2 POST /nodes/id-h4/update?version=7",
    ]);
  });
  it("sends nothing when the node already has what is wanted", async () => {
    const have = { ...fresh("id-h4"), labels: { zone: "d" } };
    expect(
      await setLabelsAndAvailability(managerH1(), ctx, h("h4"), "id-h4", have, { zone: "d" }, "active"),
    ).toBe(have);
    expect(engines.log).toEqual([]);
  });
});
