// The bound on parallel swarm joins (components/swarm/joinLimiter.ts), its config key, and how the
// SwarmNode provider validates and diffs it.
import { parseClusterConfig, resolvePlatform } from "../../components/config/clusterConfig";
import { formatIssue } from "../../components/config/errors";
import {
  activeJoins,
  DEFAULT_MAX_PARALLEL_JOINS,
  joinLimitOf,
  joinLimitProblem,
  withJoinSlot,
} from "../../components/swarm/joinLimiter";
import { swarmNodeProvider, SwarmNodeInputs, SwarmNodeOutputs } from "../../components/swarm/provider";

/** A join that runs until released by the test; records the most joins that ran at once. */
function harness(swarm: string, limit: unknown) {
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const release: (() => void)[] = [];
  const start = (i: number) =>
    withJoinSlot(swarm, limit, async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise<void>((r) => release.push(r));
      running--;
      return i;
    });
  return { start, release, order, peak: () => peak, running: () => running };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

describe("withJoinSlot", () => {
  test("runs at most `limit` joins at once, the others in arrival order", async () => {
    const h = harness("swarm-a", 3);
    const all = Array.from({ length: 8 }, (_, i) => h.start(i));
    await settle();
    expect(h.running()).toBe(3);
    expect(activeJoins("swarm-a")).toBe(3);
    while (h.release.length > 0) {
      h.release.shift()!();
      await settle();
    }
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(h.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(h.peak()).toBe(3);
    expect(activeJoins("swarm-a")).toBe(0);
  });

  test("each swarm has its own slots", async () => {
    const a = harness("swarm-b", 1);
    const b = harness("swarm-c", 1);
    const runs = [a.start(0), a.start(1), b.start(0)];
    await settle();
    expect([a.running(), b.running()]).toEqual([1, 1]);
    for (let i = 0; i < 3; i++) {
      [...a.release.splice(0), ...b.release.splice(0)].forEach((r) => r());
      await settle();
    }
    await Promise.all(runs);
    expect([a.peak(), b.peak()]).toEqual([1, 1]);
  });

  test("a failed join frees its slot, and the error reaches the caller", async () => {
    const failing = withJoinSlot("swarm-d", 1, async () => {
      throw new Error("join refused");
    });
    const next = withJoinSlot("swarm-d", 1, async () => "joined");
    await expect(failing).rejects.toThrow("join refused");
    await expect(next).resolves.toBe("joined");
    expect(activeJoins("swarm-d")).toBe(0);
  });

  test("unset (state written before the input existed) means the default", async () => {
    const h = harness("swarm-e", undefined);
    const all = Array.from({ length: DEFAULT_MAX_PARALLEL_JOINS + 5 }, (_, i) => h.start(i));
    await settle();
    expect(h.running()).toBe(DEFAULT_MAX_PARALLEL_JOINS);
    while (h.release.length > 0) {
      h.release.splice(0).forEach((r) => r());
      await settle();
    }
    await Promise.all(all);
    expect(h.peak()).toBe(DEFAULT_MAX_PARALLEL_JOINS);
  });

  test("limits: integers >= 1 are valid; anything else is a problem (and read as the default)", () => {
    expect(joinLimitOf(1)).toBe(1);
    expect(joinLimitOf(50)).toBe(50);
    expect(joinLimitOf(undefined)).toBe(DEFAULT_MAX_PARALLEL_JOINS);
    expect(joinLimitOf(0)).toBe(DEFAULT_MAX_PARALLEL_JOINS);
    expect(joinLimitProblem(undefined)).toBeUndefined();
    expect(joinLimitProblem(20)).toBeUndefined();
    for (const bad of [0, -1, 2.5, "10"])
      expect(joinLimitProblem(bad)).toBe(
        `maxParallelJoins must be an integer >= 1, got ${JSON.stringify(bad)}`,
      );
  });
});

describe("nodes.swarm.maxParallelJoins", () => {
  const raw = (swarm: Record<string, unknown>) => ({
    environment: "dev",
    domain: "dev.popcube.xyz",
    docker: { host: "ssh://deploy@dev-manager-1.popcube.xyz" },
    traefik: { acme: { email: "ops@popcube.xyz" } },
    nodes: { swarm },
  });

  test("defaults to the limiter's default", () => {
    const parsed = parseClusterConfig(raw({}));
    const { platform } = resolvePlatform(parsed.config!, { project: "swarmform", stack: "dev" });
    expect(platform.nodes.swarm.maxParallelJoins).toBe(DEFAULT_MAX_PARALLEL_JOINS);
  });

  test("a bad value is an error naming the key and what is allowed", () => {
    for (const bad of [0, 2.5, "ten"]) {
      const issues = parseClusterConfig(raw({ maxParallelJoins: bad })).issues.map(formatIssue);
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(
        /^swarmform:nodes\.swarm\.maxParallelJoins: must be a whole number >= 1 \(nodes joining at once\)(; got .*)?$/,
      );
    }
  });
});

describe("SwarmNode provider and maxParallelJoins", () => {
  const inputs: SwarmNodeInputs = {
    name: "h4",
    address: "10.0.0.4",
    port: 22,
    user: "root",
    privateKey: "key",
    role: "worker",
    availability: "active",
    labels: {},
    bootstrap: false,
    managers: [{ name: "h1", address: "10.0.0.1", port: 22, user: "root" }],
    forceQuorumLoss: false,
  };
  // State as an older version wrote it: no maxParallelJoins.
  const oldState: SwarmNodeOutputs = {
    ...inputs,
    nodeId: "n4",
    swarmId: "s1",
    member: true,
    state: "ready",
    managerToken: "",
    workerToken: "",
  };

  test("check refuses a bad value, naming the property", async () => {
    const r = await swarmNodeProvider.check!(oldState, { ...inputs, maxParallelJoins: 0 });
    expect(r.failures).toEqual([
      { property: "maxParallelJoins", reason: "maxParallelJoins must be an integer >= 1, got 0" },
    ]);
    expect((await swarmNodeProvider.check!(oldState, { ...inputs, maxParallelJoins: 20 })).failures).toEqual(
      [],
    );
  });

  test("adding or changing it neither replaces nor updates an existing node", async () => {
    for (const [olds, limit] of [
      [oldState, 10],
      [{ ...oldState, maxParallelJoins: 10 }, 50],
      [{ ...oldState, maxParallelJoins: 10 }, undefined],
    ] as const) {
      const d = await swarmNodeProvider.diff!("h4", olds, { ...inputs, maxParallelJoins: limit });
      expect(d).toMatchObject({ changes: false, replaces: [] });
    }
  });
});
