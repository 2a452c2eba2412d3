// The round-trip savers of the SwarmNode provider: command classification (read vs mutating) as the Transport
// counts it, the one-command host view of a refresh, and the labels set in the same round trip as init/join.
// The shell scripts run for real, under /bin/sh, against a stand-in `docker` that logs its arguments.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { commandKind, localTransport } from "../../components/hosts/transport";
import { LIST_VIEW_COMMAND, parseHostView } from "../../components/swarm/nodeOps";
import {
  initCommand,
  joinCommand,
  nodeAfterUpdate,
  nodeUpdateCommand,
  parseNodeInspectAll,
  selfChange,
  selfConvergeScript,
  TOKEN_LINES_IN_BACKGROUND,
  updateBesideInspect,
} from "../../components/swarm/plan";

const INFO_MANAGER = JSON.stringify({
  NodeID: "n1",
  NodeAddr: "10.0.0.1",
  LocalNodeState: "active",
  ControlAvailable: true,
  Cluster: { ID: "c1" },
  Error: "",
});
const INFO_WORKER = JSON.stringify({
  NodeID: "n2",
  NodeAddr: "10.0.0.2",
  LocalNodeState: "active",
  Error: "",
});
const node = (id: string, labels: Record<string, string>) => ({
  ID: id,
  Spec: { Role: id === "n1" ? "manager" : "worker", Availability: "active", Labels: labels },
  Description: { Hostname: `h-${id}` },
  Status: { State: "ready", Addr: "10.0.0.9" },
});

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sf-docker-"));
  // A stand-in docker: logs its arguments, answers the queries the scripts make.
  fs.writeFileSync(
    path.join(dir, "docker"),
    `#!/bin/sh
echo "$*" >> "$SF_LOG"
case "$*" in
  "info --format {{json .Swarm}}") echo "$SF_INFO"; exit "\${SF_INFO_EXIT:-0}" ;;
  "node ls -q") [ -z "$SF_WORKER" ] || exit 1; printf 'n1\\nn2\\n' ;;
  "node inspect n1 n2") echo "$SF_NODES" ;;
  "node inspect n1") echo "$SF_SELF" ;;
  "swarm join-token -q manager") [ -z "$SF_WORKER" ] || exit 1; echo SWMTKN-1-abc-manager ;;
  "swarm join-token -q worker") [ -z "$SF_WORKER" ] || exit 1; echo SWMTKN-1-abc-worker ;;
  "node update"*) exit "\${SF_UPDATE_EXIT:-0}" ;;
  "swarm init"*|"swarm join"*) exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
`,
    { mode: 0o755 },
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function runScript(script: string, env: Record<string, string>) {
  const log = path.join(dir, `log-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(log, "");
  const r = await localTransport({
    PATH: `${dir}:${process.env.PATH}`,
    SF_LOG: log,
    SF_INFO: INFO_MANAGER,
    SF_NODES: JSON.stringify([node("n1", { zone: "a" }), node("n2", {})]),
    SF_SELF: JSON.stringify([node("n1", { zone: "a", "storage.tier": "fast ssd" })]),
    ...env,
  }).exec(script, "SWMTKN-1-from-stdin");
  return { ...r, calls: fs.readFileSync(log, "utf8").trim().split("\n") };
}

describe("commandKind", () => {
  it("counts the queries as reads", () => {
    for (const c of [
      "docker info --format '{{json .Swarm}}'",
      LIST_VIEW_COMMAND,
      "docker node inspect 'abc'",
      "docker node ls --format '{{.ID}}'",
      "docker node ps 'x' --filter desired-state=running",
      "docker service ls --format '{{.Name}}'",
      "docker swarm join-token -q manager && docker swarm join-token -q worker",
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

describe("host view (one command per host on refresh)", () => {
  it("on the lister: its info, every node and both join tokens, in one command of five docker calls", async () => {
    const r = await runScript(LIST_VIEW_COMMAND, {});
    expect(r.code).toBe(0);
    const v = parseHostView(r.stdout);
    expect(v.info).toMatchObject({ nodeId: "n1", controlAvailable: true, clusterId: "c1" });
    expect(v.nodes!.map((n) => [n.id, n.labels])).toEqual([
      ["n1", { zone: "a" }],
      ["n2", {}],
    ]);
    expect(v.tokens).toEqual({ manager: "SWMTKN-1-abc-manager", worker: "SWMTKN-1-abc-worker" });
    // The tokens are fetched beside the rest (their order varies).
    expect([...r.calls].sort()).toEqual([
      "info --format {{json .Swarm}}",
      "node inspect n1 n2",
      "node ls -q",
      "swarm join-token -q manager",
      "swarm join-token -q worker",
    ]);
  });
  it("on a host that is not a manager: its info only", async () => {
    const r = await runScript(LIST_VIEW_COMMAND, { SF_INFO: INFO_WORKER, SF_WORKER: "1" });
    expect(r.code).toBe(0);
    expect(parseHostView(r.stdout)).toEqual({
      info: expect.objectContaining({ nodeId: "n2", controlAvailable: false }),
    });
  });
  it("fails as docker info fails, once the background calls are done", async () => {
    const r = await runScript(LIST_VIEW_COMMAND, { SF_INFO_EXIT: "3" });
    expect(r.code).toBe(3);
  });
  it("leaves out the nodes when the manager cannot list them", async () => {
    const v = parseHostView(`@manager-token \n${INFO_MANAGER}\n@nodes\n`);
    expect(v.nodes).toBeUndefined();
    expect(v.tokens).toBeUndefined();
    expect(v.info.nodeId).toBe("n1");
  });
  it("parses a node inspect of several nodes, and refuses a non-array", () => {
    expect(
      parseNodeInspectAll(JSON.stringify([node("n1", {}), node("n2", { a: "b" })])).map((n) => n.id),
    ).toEqual(["n1", "n2"]);
    expect(() => parseNodeInspectAll(JSON.stringify(node("n1", {})))).toThrow(/JSON array/);
  });
});

describe("labels in the same round trip as init or join", () => {
  it("sets the labels and availability on the node itself, then reports it", async () => {
    const script = `docker swarm init --advertise-addr x >/dev/null && { ${selfConvergeScript(
      { zone: "a", "storage.tier": "fast ssd" },
      "drain",
    )}true; }`;
    const r = await runScript(script, {});
    expect(r.code).toBe(0);
    // The update and the inspect run beside each other, after the info (which gives the node id).
    expect(r.calls.slice(0, 2)).toEqual(["swarm init --advertise-addr x", "info --format {{json .Swarm}}"]);
    expect(r.calls.slice(2).sort()).toEqual([
      "node inspect n1",
      "node update --label-add storage.tier=fast ssd --label-add zone=a --availability drain n1",
    ]);
    const v = parseHostView(r.stdout);
    expect(v.info.nodeId).toBe("n1");
    expect(v.selfUpdated).toBe(true);
    expect(v.nodes![0].labels).toEqual({ zone: "a", "storage.tier": "fast ssd" });
  });
  it("the change applies alike to an inspect taken before or after the update went through", () => {
    const fresh = parseNodeInspectAll(JSON.stringify([node("n1", {})]))[0];
    const change = selfChange({ zone: "a" }, "drain");
    const before = nodeAfterUpdate(fresh, change);
    const after = nodeAfterUpdate({ ...fresh, labels: { zone: "a" }, availability: "drain" }, change);
    expect(before).toEqual(after);
    expect(before).toMatchObject({ labels: { zone: "a" }, availability: "drain", hostname: "h-n1" });
    expect(
      nodeAfterUpdate({ ...fresh, labels: { old: "1", keep: "k" } }, { add: [["zone", "b"]], rm: ["old"] }),
    ).toMatchObject({ labels: { keep: "k", zone: "b" }, availability: "active" });
  });
  it("an update beside an inspect prints the inspect, and fails as the update fails", async () => {
    const cmd = updateBesideInspect("docker node update --label-add zone=a n1", "n1");
    const ok = await runScript(cmd, {});
    expect(ok.code).toBe(0);
    expect(parseNodeInspectAll(ok.stdout)[0].id).toBe("n1");
    expect([...ok.calls].sort()).toEqual(["node inspect n1", "node update --label-add zone=a n1"]);
    const failed = await runScript(cmd, { SF_UPDATE_EXIT: "5" });
    expect(failed.code).toBe(5);
    expect(failed.stdout).toBe("");
  });
  it("after init, also prints both join tokens, fetched beside the labels", async () => {
    const r = await runScript(
      `docker swarm init --advertise-addr x >/dev/null && { ${TOKEN_LINES_IN_BACKGROUND}${selfConvergeScript(
        { zone: "a" },
        "active",
      )}true; }`,
      {},
    );
    expect(r.code).toBe(0);
    const v = parseHostView(r.stdout);
    expect(v.tokens).toEqual({ manager: "SWMTKN-1-abc-manager", worker: "SWMTKN-1-abc-worker" });
    expect(v.nodes![0].id).toBe("n1");
    expect(r.calls).toHaveLength(6);
  });
  it("sends no update when there is nothing to set", async () => {
    const r = await runScript(`{ ${selfConvergeScript({}, "active")}true; }`, {});
    expect(r.calls.some((c) => c.startsWith("node update"))).toBe(false);
    expect(parseHostView(r.stdout).selfUpdated).toBeUndefined();
  });
  it("a failed update still reports the node (the caller converges the rest)", async () => {
    const r = await runScript(`{ ${selfConvergeScript({ zone: "a" }, "active")}true; }`, {
      SF_UPDATE_EXIT: "1",
    });
    expect(r.code).toBe(0);
    expect(parseHostView(r.stdout).nodes).toHaveLength(1);
    expect(parseHostView(r.stdout).selfUpdated).toBe(false);
  });
});
