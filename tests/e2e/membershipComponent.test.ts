// SwarmMembership end to end: the component runs under Pulumi mocks whose newResource calls the real
// SwarmNode provider (check + create), so the graph the component builds (init first, managers one at a
// time, workers in parallel, secrets, outputs) forms a real swarm on the testbed.
import * as pulumi from "@pulumi/pulumi";
import type { HostSpec } from "../../components/config/types";
import { SwarmMembership } from "../../components/swarm/SwarmMembership";
import { swarmNodeProvider } from "../../components/swarm/provider";
import { closeAllTransports } from "../../components/hosts/transport";
import { NODE_LS_FORMAT, parseNodeList } from "../../components/swarm/plan";
import { startTestbed, Testbed } from "../testbed/testbed";

jest.setTimeout(10 * 60 * 1000);

let tb: Testbed;

function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) return unwrapSecrets(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}
const created: { name: string; at: number; done: number }[] = [];

beforeAll(async () => {
  tb = await startTestbed({ hosts: 4, name: "membcomp" });
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        if (args.type !== "pulumi-nodejs:dynamic/swarm:SwarmNode")
          return { id: `${args.name}-id`, state: args.inputs };
        const at = Date.now();
        // The engine hands dynamic providers plain values (they do not accept secrets): unwrap, as it does.
        const { __provider, ...inputs } = unwrapSecrets(args.inputs) as Record<string, unknown>;
        const checked = await swarmNodeProvider.check!({}, inputs);
        expect(checked.failures).toEqual([]);
        const r = await swarmNodeProvider.create!(checked.inputs);
        created.push({ name: args.name, at, done: Date.now() });
        return { id: r.id, state: { ...r.outs, __provider } };
      },
      call: (args) => args.inputs,
    },
    "swarmform",
    "e2e",
  );
});

afterAll(async () => {
  await closeAllTransports();
  if (tb) await tb.down();
});

const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply((v) => resolve(v)));

test("SwarmMembership forms a 2+2 swarm with labels, and reports it", async () => {
  const hosts: HostSpec[] = tb.hosts.map((h, i) => ({
    name: h.name,
    address: h.address,
    role: i < 2 ? "manager" : "worker",
    labels: { zone: i % 2 === 0 ? "a" : "b" },
    user: "root",
    port: h.sshPort,
    hostKeyFingerprint: tb.hostKeyFingerprints[h.name],
    availability: "active",
  }));
  const m = new SwarmMembership("swarm", {
    hosts,
    swarm: {
      defaultAddrPool: ["10.121.0.0/16"],
      dataPathPort: 4789,
      certExpiry: "2160h0m0s",
      forceQuorumLoss: false,
    },
    privateKey: tb.privateKey,
    timeouts: { readySeconds: 60, connectSeconds: 5 },
  });
  const nodes = await value(m.nodes);
  expect(nodes.map((n) => [n.name, n.role, n.labels, n.member, n.state])).toEqual([
    ["h1", "manager", { zone: "a" }, true, "ready"],
    ["h2", "manager", { zone: "b" }, true, "ready"],
    ["h3", "worker", { zone: "a" }, true, "ready"],
    ["h4", "worker", { zone: "b" }, true, "ready"],
  ]);
  expect(await value(m.managerEndpoint)).toBe(`ssh://root@${tb.hosts[0].address}`);
  const swarmId = await value(m.swarmId);
  expect(swarmId).toMatch(/^[a-z0-9]{25}$/);
  expect(await value(m.managerToken)).toMatch(/^SWMTKN-1-/);
  expect(await pulumi.isSecret(m.managerToken)).toBe(true);
  expect(await pulumi.isSecret(m.workerToken)).toBe(true);

  // Order: the init node finished before any other started; h2 (manager) started after h1 finished.
  const t = Object.fromEntries(created.map((c) => [c.name, c]));
  for (const n of ["swarm-h2", "swarm-h3", "swarm-h4"])
    expect(t[n].at).toBeGreaterThanOrEqual(t["swarm-h1"].done);

  const ls = parseNodeList((await tb.exec("h1", `docker node ls --format '${NODE_LS_FORMAT}'`)).stdout);
  expect(ls.map((n) => [n.hostname, n.managerStatus !== ""]).sort()).toEqual([
    ["h1", true],
    ["h2", true],
    ["h3", false],
    ["h4", false],
  ]);
});
