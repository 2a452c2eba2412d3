import {
  blockingTasks,
  classifyDiff,
  countManagers,
  initCommand,
  joinCommand,
  labelChanges,
  managerJoinAddr,
  managersStale,
  NodeDesired,
  nodeUpdateCommand,
  parseNodeInspect,
  parseNodeList,
  parseSwarmInfo,
  parseTasks,
  quorumAfter,
  quorumNeeded,
  removalSteps,
  scrub,
  servicesNotRunningElsewhere,
  sq,
  SshEndpoint,
} from "../../components/swarm/plan";

describe("quorum", () => {
  test("majority of the managers", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumNeeded)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  test("removing a reachable manager from 3 keeps quorum (2 of 2)", () => {
    const v = quorumAfter({ total: 3, reachable: 3 }, { kind: "remove-manager", nodeReachable: true });
    expect(v).toMatchObject({ total: 2, reachable: 2, needed: 2, ok: true });
  });

  test("removing a reachable manager when another is down loses quorum", () => {
    const v = quorumAfter({ total: 3, reachable: 2 }, { kind: "remove-manager", nodeReachable: true });
    expect(v).toMatchObject({ total: 2, reachable: 1, needed: 2, ok: false });
    expect(v.reason).toBe("1 of 2 managers reachable, 2 needed for quorum");
  });

  test("removing an unreachable manager restores quorum", () => {
    const v = quorumAfter({ total: 3, reachable: 2 }, { kind: "remove-manager", nodeReachable: false });
    expect(v).toMatchObject({ total: 2, reachable: 2, ok: true });
  });

  test("2 -> 1 is fine, 1 -> 0 is never fine", () => {
    expect(quorumAfter({ total: 2, reachable: 2 }, { kind: "remove-manager", nodeReachable: true }).ok).toBe(
      true,
    );
    const last = quorumAfter({ total: 1, reachable: 1 }, { kind: "remove-manager", nodeReachable: true });
    expect(last.ok).toBe(false);
    expect(last.reason).toBe("no manager would remain");
  });

  test("adding a manager and no change", () => {
    expect(quorumAfter({ total: 1, reachable: 1 }, { kind: "add-manager" })).toMatchObject({
      total: 2,
      ok: true,
    });
    expect(quorumAfter({ total: 4, reachable: 2 }, { kind: "none" }).ok).toBe(false);
  });

  test("counts managers and reachable ones from node ls", () => {
    const list = parseNodeList(
      "a\th1\tReady\tActive\tLeader\nb\th2\tReady\tActive\tReachable\nc\th3\tDown\tActive\tUnreachable\nd\th4\tReady\tActive\t\n",
    );
    expect(countManagers(list)).toEqual({ total: 3, reachable: 2 });
  });
});

describe("removal steps", () => {
  test("reachable manager: drain, wait, demote, leave, rm", () => {
    expect(removalSteps({ role: "manager", hostReachable: true, lastNode: false })).toEqual([
      "drain",
      "wait-tasks",
      "demote",
      "leave",
      "node-rm",
    ]);
  });
  test("reachable worker: no demote", () => {
    expect(removalSteps({ role: "worker", hostReachable: true, lastNode: false })).toEqual([
      "drain",
      "wait-tasks",
      "leave",
      "node-rm",
    ]);
  });
  test("gone host: demote (if manager) then rm --force", () => {
    expect(removalSteps({ role: "worker", hostReachable: false, lastNode: false })).toEqual([
      "node-rm-force",
    ]);
    expect(removalSteps({ role: "manager", hostReachable: false, lastNode: false })).toEqual([
      "demote",
      "node-rm-force",
    ]);
  });
  test("last node dissolves the swarm", () => {
    expect(removalSteps({ role: "manager", hostReachable: true, lastNode: true })).toEqual(["leave-force"]);
    expect(removalSteps({ role: "manager", hostReachable: false, lastNode: true })).toEqual([]);
  });
});

describe("diff classification", () => {
  const base: NodeDesired = {
    name: "h1",
    address: "10.0.0.1",
    role: "worker",
    availability: "active",
    labels: { zone: "a" },
    port: 22,
    user: "root",
  };

  test("no change", () => {
    expect(classifyDiff(base, { ...base, labels: { zone: "a" } })).toEqual({
      replaces: [],
      updates: [],
      changes: false,
      deleteBeforeReplace: false,
    });
  });

  test("defaults of port and user compare equal to explicit values", () => {
    expect(classifyDiff(base, { ...base, port: undefined, user: undefined }).changes).toBe(false);
  });

  test("labels, availability and role change in place", () => {
    const d = classifyDiff(base, { ...base, role: "manager", availability: "drain", labels: { zone: "b" } });
    expect(d).toEqual({
      replaces: [],
      updates: ["role", "availability", "labels"],
      changes: true,
      deleteBeforeReplace: false,
    });
  });

  test("a removed label is a change", () => {
    expect(classifyDiff(base, { ...base, labels: {} }).updates).toEqual(["labels"]);
    expect(classifyDiff({ ...base, labels: {} }, { ...base, labels: { zone: "a" } }).updates).toEqual([
      "labels",
    ]);
  });

  test("a new address or host replaces, delete before replace", () => {
    const d = classifyDiff(base, { ...base, address: "10.0.0.9" });
    expect(d).toMatchObject({
      replaces: ["address", "advertiseAddress"],
      changes: true,
      deleteBeforeReplace: true,
    });
    expect(classifyDiff(base, { ...base, name: "h9" }).replaces).toEqual(["name"]);
  });

  test("a node found outside the swarm is re-joined by an update", () => {
    expect(classifyDiff({ ...base, member: false }, base)).toMatchObject({
      updates: ["member"],
      changes: true,
    });
    expect(classifyDiff({ ...base, member: true }, base).changes).toBe(false);
  });

  test("the managers list is updated only once it reaches none of the configured managers", () => {
    const h1 = { name: "h1", address: "10.0.0.1", port: 22 };
    const h2 = { name: "h2", address: "10.0.0.2" };
    const h3 = { name: "h3", address: "10.0.0.3", port: 2222, user: "ops" };
    const d = (stored: SshEndpoint[] | undefined, configured: SshEndpoint[]) =>
      classifyDiff({ ...base, managers: stored }, { ...base, managers: configured });
    // A manager promoted or demoted elsewhere, or reordered: the stored list still reaches one.
    expect(d([h1], [h1, h2]).changes).toBe(false);
    expect(d([h1, h2, h3], [h3]).changes).toBe(false);
    expect(d([h2, h1], [h1, h2]).changes).toBe(false);
    // None of the stored hosts is a configured manager any more (or the same address on another port or user).
    expect(d([h1], [h2, h3]).updates).toEqual(["managers"]);
    expect(d([{ ...h3, port: 22 }], [h3]).updates).toEqual(["managers"]);
    expect(d([{ ...h3, user: "root" }], [h3]).updates).toEqual(["managers"]);
    expect(d(undefined, [h1]).updates).toEqual(["managers"]);
    expect(managersStale([h1], [])).toBe(false);
    // The node itself counts while it is a manager: the only manager of a swarm asks itself (an empty list), and
    // two workers promoted beside it leave it as it is.
    const boot = { ...base, role: "manager" as const };
    expect(classifyDiff({ ...boot, managers: [] }, { ...boot, managers: [h2, h3] }).changes).toBe(false);
    expect(
      classifyDiff({ ...boot, managers: [] }, { ...boot, role: "worker", managers: [h2, h3] }).updates,
    ).toEqual(["role", "managers"]);
  });

  test("managers list, key, fingerprint and settings update in place (state must stay current)", () => {
    const m = [{ name: "h1", address: "10.0.0.1", port: 22 }];
    const withM = {
      ...base,
      managers: m,
      privateKey: "k1",
      forceQuorumLoss: false,
      timeouts: { readySeconds: 5 },
    };
    expect(
      classifyDiff(withM, { ...withM, managers: [{ port: 22, address: "10.0.0.1", name: "h1" }] }).changes,
    ).toBe(false);
    expect(
      classifyDiff(withM, { ...withM, timeouts: { readySeconds: 5, drainSeconds: undefined } }).changes,
    ).toBe(false);
    const d = classifyDiff(withM, {
      ...withM,
      managers: [{ name: "h2", address: "10.0.0.2" }],
      privateKey: "k2",
      hostKeyFingerprint: "SHA256:x",
      forceQuorumLoss: true,
      timeouts: { readySeconds: 9 },
    });
    expect(d).toEqual({
      replaces: [],
      updates: ["hostKeyFingerprint", "privateKey", "managers", "forceQuorumLoss", "timeouts"],
      changes: true,
      deleteBeforeReplace: false,
    });
  });

  test("init option changes are in place (certExpiry is applied, the rest refused by update)", () => {
    const init = { defaultAddrPool: ["10.20.0.0/16"], dataPathPort: 4789, certExpiry: "2160h0m0s" };
    const d = classifyDiff({ ...base, init }, { ...base, init: { ...init, certExpiry: "720h0m0s" } });
    expect(d).toMatchObject({ updates: ["init"], replaces: [] });
    expect(classifyDiff({ ...base, init }, { ...base, init: { ...init } }).changes).toBe(false);
  });
});

describe("labels", () => {
  test("authoritative: add changed or new, remove unlisted", () => {
    expect(labelChanges({ a: "1", b: "2", c: "3" }, { a: "1", b: "x", d: "4" })).toEqual({
      add: [
        ["b", "x"],
        ["d", "4"],
      ],
      rm: ["c"],
    });
  });

  test("node update command quotes any value", () => {
    expect(
      nodeUpdateCommand("abc", { add: [["zone", "eu west's"]], rm: ["old"], availability: "drain" }),
    ).toBe(`docker node update --label-rm 'old' --label-add 'zone=eu west'\\''s' --availability drain 'abc'`);
    expect(nodeUpdateCommand("abc", { add: [], rm: [] })).toBeUndefined();
  });
});

describe("commands", () => {
  test("init with all options", () => {
    expect(
      initCommand("10.0.0.1", {
        defaultAddrPool: ["10.20.0.0/16", "10.30.0.0/16"],
        dataPathPort: 7789,
        certExpiry: "720h",
      }),
    ).toBe(
      "docker swarm init --advertise-addr '10.0.0.1' --default-addr-pool '10.20.0.0/16' " +
        "--default-addr-pool '10.30.0.0/16' --data-path-port 7789 --cert-expiry '720h'",
    );
  });

  test("join reads the token from stdin, never from the command line", () => {
    const cmd = joinCommand("10.0.0.2", "10.0.0.1:2377");
    expect(cmd).toBe(`docker swarm join --advertise-addr '10.0.0.2' --token "$(cat)" '10.0.0.1:2377'`);
    expect(cmd).not.toMatch(/SWMTKN/);
  });

  test("manager address gets the swarm port", () => {
    expect(managerJoinAddr("10.0.0.1")).toBe("10.0.0.1:2377");
    expect(managerJoinAddr("10.0.0.1:2377")).toBe("10.0.0.1:2377");
  });

  test("sq quotes single quotes", () => {
    expect(sq("a'b")).toBe(`'a'\\''b'`);
  });
});

describe("parsing", () => {
  test("swarm info of a manager and of an inactive node", () => {
    const m = parseSwarmInfo(
      JSON.stringify({
        NodeID: "n1",
        NodeAddr: "10.0.0.1",
        LocalNodeState: "active",
        ControlAvailable: true,
        Error: "",
        Nodes: 3,
        Managers: 1,
        Cluster: { ID: "c1" },
      }),
    );
    expect(m).toEqual({
      nodeId: "n1",
      nodeAddr: "10.0.0.1",
      localNodeState: "active",
      controlAvailable: true,
      clusterId: "c1",
      error: "",
      nodes: 3,
      managers: 1,
    });
    const i = parseSwarmInfo(
      '{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}\n',
    );
    expect(i).toMatchObject({ localNodeState: "inactive", controlAvailable: false, clusterId: undefined });
  });

  test("node inspect", () => {
    const o = parseNodeInspect(
      JSON.stringify([
        {
          ID: "n2",
          Spec: { Role: "manager", Availability: "active", Labels: { zone: "a" } },
          Description: { Hostname: "h2" },
          Status: { State: "ready", Addr: "10.0.0.2" },
          ManagerStatus: { Reachability: "reachable", Leader: false },
        },
      ]),
    );
    expect(o).toEqual({
      id: "n2",
      hostname: "h2",
      role: "manager",
      availability: "active",
      labels: { zone: "a" },
      state: "ready",
      addr: "10.0.0.2",
      reachability: "reachable",
      leader: false,
    });
    const w = parseNodeInspect(
      JSON.stringify([
        {
          ID: "n3",
          Spec: { Role: "worker", Availability: "drain", Labels: null },
          Status: { State: "down" },
        },
      ]),
    );
    expect(w).toMatchObject({ labels: {}, reachability: "", leader: false, state: "down" });
  });

  test("tasks blocking a drain exclude global-service tasks", () => {
    const tasks = parseTasks(
      "web.1\tRunning 2 minutes ago\nagent.nodeabc\tRunning 3 minutes ago\nweb.3\tRunning\n",
    );
    expect(blockingTasks(tasks, "nodeabc").map((t) => t.name)).toEqual(["web.1", "web.3"]);
  });

  test("after a drain: a replicated service waits until its tasks meant to run do run", () => {
    // service ls still says 4/4 while the drained node's two tasks stop; only two tasks with desired state
    // running are Running (the other two are starting elsewhere).
    const ls = "web\treplicated\t4/4\nagent\tglobal\t2/3\ndb\treplicated\t1/1\nother\treplicated\t0/2\n";
    const tasks =
      "web\tRunning 2 minutes ago\nweb\tRunning 1 second ago\nweb\tStarting 1 second ago\nweb\tPreparing\ndb\tRunning\n";
    const services = new Set(["web", "agent", "db"]);
    expect(servicesNotRunningElsewhere(`${ls}@tasks\n${tasks}`, services)).toEqual(["web"]);
    const done = tasks.replace("Starting", "Running").replace("Preparing", "Running");
    expect(servicesNotRunningElsewhere(`${ls}@tasks\n${done}`, services)).toEqual([]);
    // Services the node did not run are not waited for; a node that ran nothing waits for nothing.
    expect(servicesNotRunningElsewhere(`${ls}@tasks\n`, new Set())).toEqual([]);
  });
});

describe("scrub", () => {
  test("removes join tokens and secrets (and their lines)", () => {
    const key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    const msg = scrub(
      "failed: token SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx invalid; b3BlbnNzaC1rZXktdjEAAAAA; pw hunter2hunter2",
      [key, "hunter2hunter2", undefined],
    );
    expect(msg).toBe("failed: token SWMTKN-[secret] invalid; [secret]; pw [secret]");
  });
});
