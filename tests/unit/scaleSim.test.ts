// The pure parts of `npm run bench:scale` (tests/bench/scaleSim.ts): the virtual clock, the FIFO server,
// the command classifier, the replay transport's answers, and the projection's structure.
import {
  initScript,
  joinScript,
  parseNodeInspect,
  parseSwarmInfo,
  updateBesideInspect,
} from "../../components/swarm/plan";
import { LIST_VIEW_COMMAND, parseHostView } from "../../components/swarm/nodeOps";
import {
  applyNodeUpdate,
  classify,
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
    info: 20,
    init: 700,
    joinManager: 900,
    joinWorker: 400,
    joinToken: 20,
    inspect: 20,
    view: 40,
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
  test("every command the provider sends has a class; anything else is unknown", () => {
    expect(classify("docker info --format '{{json .Swarm}}'")).toBe("info");
    expect(classify("docker swarm init --advertise-addr '10.0.0.1' --data-path-port 4789")).toBe("init");
    expect(classify(`docker swarm join --advertise-addr '10.0.0.2' --token "$(cat)" '10.0.0.1:2377'`)).toBe(
      "join",
    );
    expect(classify("docker swarm join-token -q manager && docker swarm join-token -q worker")).toBe(
      "tokens",
    );
    expect(classify("docker swarm join-token -q worker")).toBe("token");
    expect(classify("docker node inspect 'abc'")).toBe("inspect");
    expect(classify(updateBesideInspect("docker node update --label-add 'a=b' 'abc'", "abc"))).toBe("update");
    expect(classify(LIST_VIEW_COMMAND)).toBe("view");
    expect(classify("true")).toBe("true");
    expect(classify("docker node rm 'abc'")).toBe("unknown");
  });

  test("node update flags are applied to the simulated node", () => {
    const n = { labels: { old: "1", keep: "x" } as Record<string, string>, availability: "active" };
    applyNodeUpdate(
      n,
      "docker node update --label-rm 'old' --label-add 'zone=a=b' --availability drain 'id'",
    );
    expect(n).toEqual({ labels: { keep: "x", zone: "a=b" }, availability: "drain" });
  });
});

describe("SimSwarm (the replay transport)", () => {
  const t = (name: string, address: string) => ({ host: name, address, privateKey: "k" });

  test("answers in the shapes the provider parses, and charges the measured latencies", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    const h2 = sim.transport(t("h2", "10.0.0.2"));
    await sim.clock.run(async () => {
      const before = parseSwarmInfo((await h1.exec("docker info --format '{{json .Swarm}}'")).stdout);
      expect(before.localNodeState).toBe("inactive");
      expect(sim.clock.now).toBe(FX.latencyMs.connect + FX.latencyMs.info);
      const init = parseSwarmInfo((await h1.exec("docker swarm init --advertise-addr '10.0.0.1'")).stdout);
      expect(init).toMatchObject({
        localNodeState: "active",
        controlAvailable: true,
        clusterId: "simcluster",
      });
      const token = (await h1.exec("docker swarm join-token -q worker")).stdout.trim();
      const joined = parseSwarmInfo(
        (
          await h2.exec(
            `docker swarm join --advertise-addr '10.0.0.2' --token "$(cat)" '10.0.0.1:2377'`,
            token,
          )
        ).stdout,
      );
      expect(joined).toMatchObject({ localNodeState: "active", controlAvailable: false });
      const obs = parseNodeInspect((await h1.exec(`docker node inspect '${joined.nodeId}'`)).stdout);
      expect(obs).toMatchObject({ role: "worker", hostname: "h2", labels: {} });
      const upd = parseNodeInspect(
        (
          await h1.exec(
            updateBesideInspect(`docker node update --label-add 'z=1' '${joined.nodeId}'`, joined.nodeId),
          )
        ).stdout,
      );
      expect(upd.labels).toEqual({ z: "1" });
      expect((await h2.exec("docker node inspect 'x'")).code).not.toBe(0); // not a manager
    });
    expect(sim.members()).toEqual(["h1", "h2"]);
    expect(sim.counts).toMatchObject({ connects: 2, mutating: 3 });
  });

  test("the provider's one-round-trip commands: init and a manager join set their own labels, a view sees all", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    const h2 = sim.transport(t("h2", "10.0.0.2"));
    await sim.clock.run(async () => {
      const init = parseHostView(
        (
          await h1.exec(
            initScript(
              "10.0.0.1",
              { defaultAddrPool: [], dataPathPort: 4789, certExpiry: "1h" },
              { zone: "a" },
              "active",
            ),
          )
        ).stdout,
      );
      expect(init.nodes?.[0].labels).toEqual({ zone: "a" });
      expect(init.tokens).toEqual({ manager: "SWMTKN-1-sim-manager", worker: "SWMTKN-1-sim-worker" });
      const joinH2 = joinScript("10.0.0.2", "10.0.0.1:2377", "manager", { zone: "b" }, "active");
      const joined = parseHostView((await h2.exec(joinH2, init.tokens!.manager)).stdout);
      expect(joined.nodes?.[0]).toMatchObject({ hostname: "h2", labels: { zone: "b" } });
      // Asked again, the join is refused and changes nothing.
      expect((await h2.exec(joinH2, init.tokens!.manager)).stderr).toMatch(/already part of a swarm/);
      const t0 = sim.clock.now;
      const view = parseHostView((await h1.exec(LIST_VIEW_COMMAND)).stdout);
      expect(sim.clock.now - t0).toBe(FX.latencyMs.view);
      expect(view.nodes?.map((n) => n.hostname).sort()).toEqual(["h1", "h2"]);
      expect(view.tokens?.worker).toBe("SWMTKN-1-sim-worker");
    });
  });

  test("worker joins at once queue on the leader's CA: each adds its serial part", async () => {
    const sim = new SimSwarm(FX);
    const h1 = sim.transport(t("h1", "10.0.0.1"));
    await sim.clock.run(() => h1.exec("docker swarm init --advertise-addr '10.0.0.1'"));
    const start = sim.clock.now;
    const workers = [2, 3, 4, 5].map((i) => sim.transport(t(`h${i}`, `10.0.0.${i}`)));
    await sim.clock.run(() =>
      Promise.all(
        workers.map((w) =>
          w.exec(
            `docker swarm join --advertise-addr 'x' --token "$(cat)" '10.0.0.1:2377'`,
            "SWMTKN-1-sim-worker",
          ),
        ),
      ),
    );
    // The last of 4 starts its serial part after 3 others: 3 x 100 ms, then its own 400 ms (+ the connect).
    expect(sim.clock.now - start).toBe(FX.latencyMs.connect + 3 * FX.serialMs.join + FX.latencyMs.joinWorker);
  });

  test("an unknown command fails loudly instead of being answered", async () => {
    const sim = new SimSwarm(FX);
    await expect(sim.clock.run(() => sim.transport(t("h1", "10.0.0.1")).exec("rm -rf /"))).rejects.toThrow(
      "no model for the command",
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
