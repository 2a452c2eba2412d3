// findManager: a host this process already found to be a manager is probed alone first, so n nodes that each
// list every host as a candidate do not cost n² probes; a stale hint falls back to probing every candidate.
// The SSH transport is replaced through the bench hook (swarmform.transport.wrap) by a fake swarm of hosts.
import type { EngineResponse, EngineTransport, SshTarget } from "../../components/hosts/transport";
import {
  Ctx,
  findManager,
  forgetViews,
  initSwarm,
  knownManagerToJoin,
  NodeSsh,
  requireManager,
  withDefaults,
} from "../../components/swarm/nodeOps";

const WRAP = Symbol.for("swarmform.transport.wrap");
const g = globalThis as unknown as Record<symbol, unknown>;

/** Host name -> is it an active manager with control available? Every `GET /info` is counted per host. */
let managers: Record<string, boolean>;
let probes: string[];
let unreachable: Set<string>;

const ok = (body: unknown): EngineResponse => ({ status: 200, body });

const fakeTransport = (t: SshTarget): EngineTransport => ({
  host: t.host,
  async exec(command: string) {
    return { stdout: "", stderr: `unexpected: ${command}`, code: 1 };
  },
  async request(method: string, path: string) {
    const swarm = () => ({
      NodeID: `id-${t.host}`,
      LocalNodeState: "active",
      ControlAvailable: managers[t.host] ?? false,
      Cluster: { ID: "c1" },
    });
    if (method === "POST" && path === "/swarm/init") {
      managers[t.host] = true;
      return ok(`id-${t.host}`);
    }
    if (method === "GET" && path === "/swarm")
      return ok({ JoinTokens: { Manager: "SWMTKN-1-a", Worker: "SWMTKN-1-b" } });
    if (method === "GET" && path === `/nodes/id-${t.host}`)
      return ok({
        ID: `id-${t.host}`,
        Version: { Index: 1 },
        Spec: { Role: "manager", Availability: "active" },
      });
    if (method !== "GET" || path !== "/info")
      return { status: 400, body: { message: `unexpected: ${path}` } };
    probes.push(t.host);
    // What the transport says when `docker system dial-stdio` cannot reach the daemon.
    if (unreachable.has(t.host))
      throw new Error(
        `ssh root@${t.address}:22 (${t.host}): docker GET /info: socket hang up: Cannot connect to the Docker daemon`,
      );
    return ok({ Swarm: swarm() });
  },
  async close() {},
});

const hosts: NodeSsh[] = Array.from({ length: 10 }, (_, i) => ({
  name: `h${i + 1}`,
  address: `10.9.0.${i + 1}`,
}));
const ctx: Ctx = { privateKey: "unused", timeouts: withDefaults(undefined), forceQuorumLoss: false };

beforeAll(() => {
  g[WRAP] = (t: SshTarget) => fakeTransport(t);
});
afterAll(() => {
  delete g[WRAP];
});
beforeEach(() => {
  managers = { h2: true, h3: true };
  probes = [];
  unreachable = new Set();
  g[Symbol.for("swarmform.swarm.knownManagers")] = undefined;
  forgetViews();
});

test("the first search probes every candidate; later searches probe only the manager found", async () => {
  const first = await findManager(hosts, ctx, "h1");
  expect(first?.node.name).toBe("h2");
  expect(probes).toHaveLength(9);

  probes = [];
  forgetViews();
  for (const self of hosts.slice(3)) expect((await findManager(hosts, ctx, self.name))?.node.name).toBe("h2");
  expect(probes).toEqual(Array(7).fill("h2"));
});

test("a manager that stopped being one is dropped and every candidate is probed again", async () => {
  await findManager(hosts, ctx);
  managers = { h3: true };
  probes = [];
  forgetViews();
  const again = await findManager(hosts, ctx);
  expect(again?.node.name).toBe("h3");
  expect(probes[0]).toBe("h2");
  expect(probes).toHaveLength(1 + hosts.length);
});

test("no manager among the candidates: undefined, and nothing is remembered", async () => {
  managers = {};
  expect(await findManager(hosts, ctx)).toBeUndefined();
  probes = [];
  forgetViews();
  managers = { h5: true };
  expect((await findManager(hosts, ctx))?.node.name).toBe("h5");
  expect(probes).toHaveLength(hosts.length);
});

test("the excluded host is never the answer, even when it is the one remembered", async () => {
  managers = { h2: true, h7: true };
  await findManager(hosts, ctx);
  probes = [];
  forgetViews();
  expect((await findManager(hosts, ctx, "h2"))?.node.name).toBe("h7");
  expect(probes).not.toContain("h2");
});

test("no manager: the error says what each candidate answered, or why it did not", async () => {
  managers = {};
  unreachable = new Set(["h2"]);
  const err = await requireManager(hosts.slice(0, 3), ctx, hosts[0], "h1").catch((e: Error) => e.message);
  expect(err).toMatch(/^swarm node h1 \(10\.9\.0\.1\): no reachable swarm manager among \[h2, h3\]/);
  expect(err).toMatch(/h2: .*docker GET \/info: socket hang up: Cannot connect to the Docker daemon/);
  expect(err).toMatch(/h3 is active, no control/);
});

test("after this process initialised the swarm, the next node's search probes only the new manager", async () => {
  managers = {};
  await initSwarm(hosts[0], ctx, hosts[0].address, {
    defaultAddrPool: [],
    dataPathPort: 4789,
    certExpiry: "2160h0m0s",
  });
  probes = [];
  forgetViews();
  expect((await findManager(hosts, ctx, "h5"))?.node.name).toBe("h1");
  expect(probes).toEqual(["h1"]);
});

test("after the init, a joiner knows its manager (and holds a token) without asking anyone", async () => {
  managers = {};
  const INIT = { defaultAddrPool: [], dataPathPort: 4789, certExpiry: "2160h0m0s" };
  expect(knownManagerToJoin(hosts, "worker")).toBeUndefined();
  await initSwarm(hosts[0], ctx, hosts[0].address, INIT);
  probes = [];
  const known = knownManagerToJoin(hosts.slice(0, 3), "worker", "c1");
  expect(known?.node.name).toBe("h1");
  expect(known?.info.clusterId).toBe("c1");
  expect(probes).toEqual([]);
  // Not when another swarm is expected, nor when the known manager is not among the candidates.
  expect(knownManagerToJoin(hosts, "worker", "c2")).toBeUndefined();
  expect(knownManagerToJoin(hosts.slice(1), "worker")).toBeUndefined();
  // Nor without a token in hand.
  g[Symbol.for("swarmform.swarm.tokens")] = undefined;
  expect(knownManagerToJoin(hosts, "worker")).toBeUndefined();
});
