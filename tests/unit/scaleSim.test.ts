// The pure parts of `npm run bench:scale` (tests/bench/scaleSim.ts): the virtual clock, the FIFO server,
// the request classifier, the replay transport's answers, and the projection's structure.
import {
  initRequest,
  joinRequest,
  nodeObservationOf,
  swarmInfoOf,
  tokensOf,
} from "../../components/swarm/plan";
import {
  classify,
  classifyRequest,
  LatencyFixture,
  project,
  scenarioHosts,
  Server,
  SimSwarm,
  VirtualClock,
} from "../bench/scaleSim";

const FX: LatencyFixture = {
  machine: "test",
  measuredAt: "test",
  note: "",
  latencyMs: {
    connect: 50,
    dial: 60,
    info: 20,
    init: 700,
    joinManager: 900,
    joinWorker: 400,
    joinToken: 20,
    inspect: 20,
    nodes: 40,
    update: 30,
    other: 5,
  },
  serialMs: { join: 100, write: 10, managerCmd: 0 },
  cpuMs: { command: 0, connect: 0 },
};

describe("VirtualClock", () => {
  test("timers fire in time order, and the clock ends at the last one", async () => {
    const c = new VirtualClock();
    const order: string[] = [];
    await c.run(async () => {
      await Promise.all([
        c.sleep(300).then(() => order.push(`a@${c.now}`)),
        c.sleep(100).then(() => order.push(`b@${c.now}`)),
        (async () => {
          await c.sleep(50);
          await c.sleep(200);
          order.push(`c@${c.now}`);
        })(),
      ]);
    });
    expect(order).toEqual(["b@100", "c@250", "a@300"]);
    expect(c.now).toBe(300);
    expect(c.pending).toBe(0);
  });

  test("an error inside the work reaches the caller", async () => {
    const c = new VirtualClock();
    await expect(
      c.run(async () => {
        await c.sleep(10);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
  });
});

describe("Server", () => {
  test("one slot serves in arrival order; two slots in parallel", () => {
    const one = new Server(1);
    expect([one.reserve(0, 100), one.reserve(0, 100), one.reserve(50, 100), one.reserve(500, 100)]).toEqual([
      0, 100, 200, 500,
    ]);
    const two = new Server(2);
    expect([two.reserve(0, 100), two.reserve(0, 100), two.reserve(0, 100)]).toEqual([0, 0, 100]);
  });
});

describe("classify", () => {
  test("every request the provider sends has a class; anything else is unknown", () => {
    expect(classifyRequest("GET", "/info")).toBe("info");
    expect(classifyRequest("POST", "/swarm/init")).toBe("init");
    expect(classifyRequest("POST", "/swarm/join")).toBe("join");
    expect(classifyRequest("GET", "/swarm")).toBe("token");
    expect(classifyRequest("GET", "/nodes")).toBe("nodes");
    expect(classifyRequest("GET", "/nodes/abc")).toBe("inspect");
    expect(classifyRequest("POST", "/nodes/abc/update?version=12")).toBe("update");
    expect(classifyRequest("DELETE", "/nodes/abc")).toBe("unknown");
    expect(classifyRequest("POST", "/swarm/leave")).toBe("unknown");
  });
  test("of the shell commands, only the lock's probe", () => {
    expect(classify("true")).toBe("true");
    expect(classify("docker node rm 'abc'")).toBe("unknown");
  });
});

describe("SimSwarm (the replay transport)", () => {
  const t = (name: string, address: string) => ({ host: name, address, privateKey: "k" });
  const INIT = { defaultAddrPool: [], dataPathPort: 4789, certExpiry: "1h" };

  test("answers in the shapes the provider parses, and charges the measured latencies", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    const h2 = sim.transport(t("h2", "10.0.0.2"));
    await sim.clock.run(async () => {
      const info = async (h: typeof h1) =>
        swarmInfoOf(((await h.request("GET", "/info")).body as { Swarm: unknown }).Swarm);
      expect((await info(h1)).localNodeState).toBe("inactive");
      // The first request to a host: its connection, its docker channel, then the request.
      expect(sim.clock.now).toBe(FX.latencyMs.connect + FX.latencyMs.dial + FX.latencyMs.info);
      const t0 = sim.clock.now;
      expect((await info(h1)).localNodeState).toBe("inactive");
      expect(sim.clock.now - t0).toBe(FX.latencyMs.info);
      expect((await h1.request("POST", "/swarm/init", initRequest("10.0.0.1", INIT))).status).toBe(200);
      expect(await info(h1)).toMatchObject({
        localNodeState: "active",
        controlAvailable: true,
        clusterId: "simcluster",
      });
      const tokens = tokensOf((await h1.request("GET", "/swarm")).body)!;
      expect(tokens.worker).toBe("SWMTKN-1-sim-worker");
      const join = joinRequest("10.0.0.2", "10.0.0.1:2377", tokens.worker);
      expect((await h2.request("POST", "/swarm/join", join)).status).toBe(200);
      // Asked again, the join is refused and changes nothing.
      expect((await h2.request("POST", "/swarm/join", join)).status).toBe(503);
      const joined = await info(h2);
      expect(joined).toMatchObject({ localNodeState: "active", controlAvailable: false });
      const node = (await h1.request("GET", `/nodes/${joined.nodeId}`)).body as {
        Version: { Index: number };
        Spec: object;
      };
      expect(nodeObservationOf(node)).toMatchObject({ role: "worker", hostname: "h2", labels: {} });
      const spec = { ...node.Spec, Labels: { z: "1" } };
      const path = `/nodes/${joined.nodeId}/update?version=${node.Version.Index}`;
      expect((await h1.request("POST", path, spec)).status).toBe(200);
      const all = (await h1.request("GET", "/nodes")).body as unknown[];
      expect(all.map(nodeObservationOf).map((n) => [n.hostname, n.labels])).toEqual([
        ["h1", {}],
        ["h2", { z: "1" }],
      ]);
      expect((await h2.request("GET", "/nodes/x")).status).toBe(503); // not a manager
    });
    expect(sim.members()).toEqual(["h1", "h2"]);
    expect(sim.counts).toMatchObject({ connects: 2, mutating: 4 }); // init, two joins (one refused), the update
  });

  test("requests to one host go one after the other on its channel", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    await sim.clock.run(() => h1.request("GET", "/info"));
    const t0 = sim.clock.now;
    await sim.clock.run(() => Promise.all([1, 2, 3].map(() => h1.request("GET", "/info"))));
    expect(sim.clock.now - t0).toBe(3 * FX.latencyMs.info);
  });

  test("worker joins at once queue on the leader's CA: each adds its serial part", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    await sim.clock.run(() => h1.request("POST", "/swarm/init", initRequest("10.0.0.1", INIT)));
    const start = sim.clock.now;
    const workers = [2, 3, 4, 5].map((i) => sim.transport(t(`h${i}`, `10.0.0.${i}`)));
    const join = joinRequest("x", "10.0.0.1:2377", "SWMTKN-1-sim-worker");
    await sim.clock.run(() => Promise.all(workers.map((w) => w.request("POST", "/swarm/join", join))));
    // The last of 4 starts its serial part after 3 others: 3 x 100 ms, then its own 400 ms (+ connect and dial).
    expect(sim.clock.now - start).toBe(
      FX.latencyMs.connect + FX.latencyMs.dial + 3 * FX.serialMs.join + FX.latencyMs.joinWorker,
    );
  });

  test("an unknown command or request fails loudly instead of being answered", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    await expect(sim.clock.run(() => h1.exec("rm -rf /"))).rejects.toThrow("no model for `rm -rf /`");
    await expect(sim.clock.run(() => h1.request("DELETE", "/nodes/x"))).rejects.toThrow(
      "no model for `DELETE /nodes/x`",
    );
  });
});

describe("project (the provider driven over the replay transport)", () => {
  test("scenario hosts: managers first, unique names and addresses", () => {
    const hosts = scenarioHosts({ managers: 7, workers: 300 });
    expect(hosts).toHaveLength(307);
    expect(hosts.slice(0, 7).every((h) => h.role === "manager")).toBe(true);
    expect(new Set(hosts.map((h) => h.address)).size).toBe(307);
  });

  test("3+2: the swarm forms, the no-op changes nothing, and serial joins cost more", async () => {
    const p = await project(FX, { managers: 3, workers: 2, parallel: 8 });
    expect(p.converge.byClass).toMatchObject({ init: 1, join: 4 });
    expect(p.noop.mutating).toBe(0);
    // At least: init, then two manager joins one after the other.
    expect(p.convergeMs).toBeGreaterThanOrEqual(FX.latencyMs.init + 2 * FX.latencyMs.joinManager);
    const serial = await project(FX, { managers: 1, workers: 4, parallel: 8, maxParallelJoins: 1 });
    const parallel = await project(FX, { managers: 1, workers: 4, parallel: 8, maxParallelJoins: 4 });
    // With one join at a time, each of the 4 worker joins waits for the previous one to finish.
    expect(serial.convergeMs - parallel.convergeMs).toBeGreaterThanOrEqual(
      3 * (FX.latencyMs.joinWorker - FX.serialMs.join),
    );
  }, 60000);
});
