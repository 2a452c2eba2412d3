// SwarmMembership under Pulumi mocks: the graph (init, serial managers, parallel workers), secrets,
// outputs; and the pure join plan.
import type { HostSpec } from "../../components/config/types";
import { membershipPlan } from "../../components/swarm/membershipPlan";
import { endpointOf } from "../../components/swarm/SwarmMembership";
import { swarmNodeProvider } from "../../components/swarm/provider";
import { ofType, runMocked } from "../support/mocks";
import { loadSerialized } from "../testbed/serialize";

const host = (name: string, role: "manager" | "worker", over: Partial<HostSpec> = {}): HostSpec => ({
  name,
  address: `10.0.0.${name.slice(1)}`,
  role,
  labels: {},
  user: "root",
  port: 22,
  availability: "active",
  ...over,
});

const HOSTS = [
  host("h1", "manager", { labels: { zone: "a" } }),
  host("h4", "worker"),
  host("h2", "manager"),
  host("h3", "manager", { port: 2222, user: "ops" }),
  host("h5", "worker", { availability: "drain" }),
];
const SWARM = {
  defaultAddrPool: ["10.20.0.0/16"],
  dataPathPort: 4789,
  certExpiry: "2160h0m0s",
  forceQuorumLoss: false,
  maxParallelJoins: 5,
};

describe("membershipPlan", () => {
  test("init on the first manager, every other host after the init", () => {
    const p = membershipPlan(HOSTS);
    expect(p.bootstrap.name).toBe("h1");
    expect(p.steps.map((s) => [s.host.name, s.after])).toEqual([
      ["h2", ["h1"]],
      ["h3", ["h1"]],
      ["h4", ["h1"]],
      ["h5", ["h1"]],
    ]);
  });

  test("refuses no manager, duplicate names and duplicate addresses", () => {
    expect(() => membershipPlan([host("h4", "worker")])).toThrow(/at least one host with role manager/);
    expect(() =>
      membershipPlan([host("h1", "manager"), host("h1", "worker", { address: "10.9.9.9" })]),
    ).toThrow("swarm membership: hosts h1 and h1 have the same name h1");
    expect(() =>
      membershipPlan([host("h1", "manager"), host("h2", "worker", { address: "10.0.0.1" })]),
    ).toThrow("hosts h1 and h2 have the same address 10.0.0.1:22");
  });

  test("endpoint", () => {
    expect(endpointOf({ user: "root", address: "10.0.0.1", port: 22 })).toBe("ssh://root@10.0.0.1");
    expect(endpointOf({ user: "ops", address: "10.0.0.3", port: 2222 })).toBe("ssh://ops@10.0.0.3:2222");
  });
});

describe("SwarmMembership under mocks", () => {
  const TYPE = "pulumi-nodejs:dynamic/swarm:SwarmNode";

  async function run() {
    return runMocked(
      () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { SwarmMembership } = require("../../components/swarm/SwarmMembership");
        const m = new SwarmMembership("swarm", {
          hosts: HOSTS,
          swarm: SWARM,
          privateKey: pulumi.secret("KEY-MATERIAL-0123"),
        });
        return {
          managerEndpoint: m.managerEndpoint,
          swarmId: m.swarmId,
          managerToken: m.managerToken,
          workerToken: m.workerToken,
          nodes: m.nodes,
        };
      },
      { project: "swarmform", stack: "test" },
    );
  }

  let r: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    r = await run();
  }, 120000);

  test("one component, one SwarmNode per host, children named and parented", async () => {
    const [component] = ofType(r, "swarmform:swarm:SwarmMembership");
    expect(component.name).toBe("swarm");
    const nodes = ofType(r, TYPE);
    expect(nodes.map((n) => n.name).sort()).toEqual([
      "swarm-h1",
      "swarm-h2",
      "swarm-h3",
      "swarm-h4",
      "swarm-h5",
    ]);
    for (const n of nodes) expect(n.parent).toBe(component.urn);
  });

  test("init first, then every other node in parallel", async () => {
    const urn = (n: string) => ofType(r, TYPE).find((x) => x.name === `swarm-${n}`)!.urn;
    const deps = (n: string) => ofType(r, TYPE).find((x) => x.name === `swarm-${n}`)!.dependencies;
    expect(deps("h1")).toEqual([]);
    expect(deps("h2")).toEqual([urn("h1")]);
    expect(deps("h3")).toEqual([urn("h1")]);
    expect(deps("h4")).toEqual([urn("h1")]);
    expect(deps("h5")).toEqual([urn("h1")]);
  });

  test("inputs: bootstrap and init only on the first manager; hosts to ask for a manager; ssh details", async () => {
    const get = (n: string) => ofType(r, TYPE).find((x) => x.name === `swarm-${n}`)!.inputs;
    expect(get("h1")).toMatchObject({
      name: "h1",
      role: "manager",
      bootstrap: true,
      labels: { zone: "a" },
      init: { defaultAddrPool: ["10.20.0.0/16"], dataPathPort: 4789, certExpiry: "2160h0m0s" },
      forceQuorumLoss: false,
    });
    expect(get("h2").bootstrap).toBe(false);
    expect(get("h2").init).toBeUndefined();
    expect(get("h3")).toMatchObject({ port: 2222, user: "ops" });
    expect(get("h5")).toMatchObject({ role: "worker", availability: "drain" });
    // The bound on parallel joins reaches every node (the provider process enforces it per swarm).
    for (const n of ["h1", "h2", "h3", "h4", "h5"]) expect(get(n).maxParallelJoins).toBe(5);
    // The configured managers but the node itself, in config order: not every host, which made n² entries; and
    // not the node itself, so that its own promotion or demotion leaves its list as it was.
    const asked = (n: string) => get(n).managers.map((m: { name: string }) => m.name);
    expect(["h1", "h2", "h3", "h4", "h5"].map(asked)).toEqual([
      ["h2", "h3"],
      ["h1", "h3"],
      ["h1", "h2"],
      ["h1", "h2", "h3"],
      ["h1", "h2", "h3"],
    ]);
    expect(get("h4").managers[2]).toMatchObject({ address: "10.0.0.3", port: 2222, user: "ops" });
  });

  test("secrets: the key is a secret input, tokens and key are secret outputs", async () => {
    for (const n of ofType(r, TYPE)) {
      expect(n.secretInputs).toContain("privateKey");
      expect([...n.additionalSecretOutputs].sort()).toEqual(["managerToken", "privateKey", "workerToken"]);
    }
    expect([...r.secretOutputs].sort()).toEqual(["managerToken", "workerToken"]);
    expect(r.outputs.managerEndpoint).toBe("ssh://root@10.0.0.1");
  });

  test("every node stores the one bundled provider, which loads as Pulumi's dynamic-provider process loads it", () => {
    const texts = new Set(ofType(r, TYPE).map((n) => n.inputs.__provider as string));
    expect(texts.size).toBe(1);
    const [text] = texts;
    expect(text).not.toContain("KEY-MATERIAL");
    // The provider process must not load the Pulumi SDK's entry point (about 1 s): the bundle requires only
    // node built-ins and ssh2.
    expect([...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]).sort()).toEqual(
      expect.arrayContaining(["ssh2"]),
    );
    expect(text).not.toMatch(/require\("@pulumi/);
    const provider = (loadSerialized(text).handler as () => Record<string, unknown>)();
    expect(Object.keys(provider).sort()).toEqual(["check", "create", "delete", "diff", "read", "update"]);
  });

  test("the bundled provider's check is the provider's own", async () => {
    const text = ofType(r, TYPE)[0].inputs.__provider as string;
    const copy = (loadSerialized(text).handler as () => typeof swarmNodeProvider)();
    const bad = { name: "h9", address: "10.0.0.9", role: "boss" } as never;
    expect(await copy.check!({}, bad)).toEqual(await swarmNodeProvider.check!({}, bad));
    expect((await copy.check!({}, bad)).failures).toContainEqual({
      property: "role",
      reason: "role must be manager or worker",
    });
  });
});
