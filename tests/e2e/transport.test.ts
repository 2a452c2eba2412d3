// The SSH transport against real sshd's on testbed hosts. Needs root (see tests/testbed/testbed.ts).

import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import {
  closeAllTransports,
  generateSshKeyPair,
  localTransport,
  resetTransportStats,
  sshConnectionCount,
  sshTransport,
  SshTarget,
  transportStats,
} from "../../components/hosts/transport";
import { startTestbed, Testbed } from "../testbed/testbed";
import { run, waitUntil } from "../testbed/swarm";
import { loadSerialized } from "../testbed/serialize";
import * as pulumi from "@pulumi/pulumi";

jest.setTimeout(180000);

let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed({ hosts: 2, name: "e2e-transport" });
});

afterAll(async () => {
  await closeAllTransports();
  await tb?.down();
});

const keyLines = (key: string) => key.split("\n").filter((l) => l.trim().length > 8);
const failure = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => new Error("expected a failure"),
    (e: Error) => e,
  );

/** Established TCP connections to the host's sshd, counted on the host's side. */
async function serverConnections(hostName: string): Promise<number> {
  const h = tb.hosts.find((x) => x.name === hostName)!;
  const out = (
    await localTransport().exec(`ip netns exec ${h.netns} ss -Htn state established '( sport = :22 )'`)
  ).stdout;
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

/** Pid and command line of every process in a host's network namespace. */
async function processTable(hostName: string): Promise<{ pid: number; cmd: string }[]> {
  const h = tb.hosts.find((x) => x.name === hostName)!;
  const pids = (await localTransport().exec(`ip netns pids ${h.netns}`)).stdout.split("\n").filter(Boolean);
  const table: { pid: number; cmd: string }[] = [];
  for (const pid of pids) {
    try {
      table.push({
        pid: Number(pid),
        cmd: fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "),
      });
    } catch {
      // gone
    }
  }
  return table;
}

const processesIn = async (hostName: string) => (await processTable(hostName)).map((p) => p.cmd);

/** Kills the sshd processes serving connections (not the listening sshd) inside a host's namespace. */
async function killSshSessions(hostName: string): Promise<number> {
  const sessions = (await processTable(hostName)).filter((p) => /^sshd: root/.test(p.cmd));
  for (const p of sessions) process.kill(p.pid, "SIGKILL");
  return sessions.length;
}

describe("ssh transport on a testbed host", () => {
  it("returns stdout, stderr and the exit code", async () => {
    const r = await tb.transport("h1").exec("echo out; echo err >&2; exit 7");
    expect(r).toEqual({ stdout: "out\n", stderr: "err\n", code: 7 });
    expect((await tb.exec("h2", "hostname")).stdout).toBe("h2\n");
  });

  it("passes stdin, also a large one", async () => {
    expect((await tb.exec("h1", "tr a-z A-Z", "swarm")).stdout).toBe("SWARM");
    const big = crypto.randomBytes(3 * 1024 * 1024).toString("base64");
    const sum = crypto.createHash("sha256").update(big).digest("hex");
    expect((await tb.exec("h1", "sha256sum", big)).stdout.split(" ")[0]).toBe(sum);
    // A command that does not read stdin still completes.
    expect((await tb.exec("h1", "true", big)).code).toBe(0);
  });

  it("reuses one connection per host, also for more parallel commands than one connection's sessions", async () => {
    const target = tb.sshTarget("h2");
    await tb.exec("h2", "true");
    const before = sshConnectionCount(target);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sshTransport(target).exec(`echo ${i}`)),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    expect(sshConnectionCount(target)).toBe(before);
    expect(await serverConnections("h2")).toBe(1);
  });

  it("gets the exit status of every fast command, also when its whole reply comes in one read", async () => {
    // A command that ends at once sends its exec reply, output, exit status and close together; the exit
    // status used to be dropped when the listeners were attached after an await (1 in 5 of such commands).
    const target = tb.sshTarget("h2");
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => sshTransport(target).exec(`exit ${i % 3}`)),
      );
      expect(results.map((r) => (r.status === "fulfilled" ? r.value.code : r.reason.message))).toEqual(
        Array.from({ length: 20 }, (_, i) => i % 3),
      );
    }
  });

  it("closing every transport lets go of a connection whose host vanished", async () => {
    // A VM destroyed under an open connection never answers its close; the socket must not keep this
    // process alive (it kept a test process for minutes).
    const host = tb.hosts.find((h) => h.name === "h2")!;
    await tb.exec("h2", "true");
    const sockets = () =>
      (process as unknown as { _getActiveHandles(): { remoteAddress?: string; remotePort?: number }[] })
        ._getActiveHandles()
        .filter((h) => h.remoteAddress === host.address && h.remotePort === host.sshPort).length;
    expect(sockets()).toBe(1);
    const rule = ["INPUT", "-p", "tcp", "--dport", String(host.sshPort), "-j", "DROP"];
    const iptables = (op: string) =>
      execFileSync("ip", ["netns", "exec", host.netns, "iptables", op, ...rule], { stdio: "pipe" });
    iptables("-I");
    try {
      await closeAllTransports();
      await new Promise((r) => setTimeout(r, 3_000));
      expect(sockets()).toBe(0);
    } finally {
      iptables("-D");
    }
    expect((await tb.exec("h2", "echo back")).stdout).toBe("back\n");
  });

  it("reports a command killed by a signal as 128 + the signal number", async () => {
    expect((await tb.exec("h1", "kill -9 $$")).code).toBe(137);
  });

  it("fails, without retrying, when the connection is lost while a command runs", async () => {
    await tb.exec("h1", "true");
    const pending = failure(tb.exec("h1", "sleep 30; echo done"));
    await waitUntil("sleep running on h1", 10000, async () =>
      (await processesIn("h1")).some((cmd) => cmd.startsWith("sleep 30")) ? true : undefined,
    );
    expect(await killSshSessions("h1")).toBeGreaterThan(0);
    const err = await pending;
    expect(err.message).toMatch(/^ssh root@10\.213\.47\.\d+:22 \(h1\): .*\(the command may have run\)$/);
    expect((await tb.exec("h1", "echo after")).stdout).toBe("after\n");
  });

  it("reconnects when the connection is dropped", async () => {
    const target = tb.sshTarget("h1");
    await tb.exec("h1", "true");
    const before = sshConnectionCount(target);
    const killed = await killSshSessions("h1");
    expect(killed).toBeGreaterThan(0);
    await waitUntil("connection closed on the server", 10000, async () =>
      (await serverConnections("h1")) === 0 ? true : undefined,
    );
    expect((await tb.exec("h1", "echo again")).stdout).toBe("again\n");
    expect(sshConnectionCount(target)).toBe(before + 1);
  });

  it("accepts the pinned host key and refuses a wrong one without retrying", async () => {
    const right: SshTarget = { ...tb.sshTarget("h1"), user: "root" };
    await closeAllTransports();
    expect((await sshTransport(right).exec("hostname")).stdout).toBe("h1\n");
    await closeAllTransports();
    const wrong: SshTarget = { ...right, hostKeyFingerprint: tb.hostKeyFingerprints["h2"], retries: 3 };
    const err = await failure(sshTransport(wrong).exec("hostname"));
    expect(err.message).toBe(
      `ssh root@${tb.hosts[0].address}:22 (h1): host key mismatch: expected ${tb.hostKeyFingerprints["h2"]}, got ${tb.hostKeyFingerprints["h1"]}`,
    );
  });

  it("checks the host key against known_hosts text", async () => {
    await closeAllTransports();
    const base = { ...tb.sshTarget("h2"), hostKeyFingerprint: undefined };
    expect((await sshTransport({ ...base, knownHosts: tb.knownHosts }).exec("hostname")).stdout).toBe("h2\n");
    await closeAllTransports();
    const onlyH1 = tb.knownHosts
      .split("\n")
      .filter((l) => l.startsWith(tb.hosts[0].address + " "))
      .join("\n");
    const err = await failure(sshTransport({ ...base, knownHosts: onlyH1 }).exec("hostname"));
    expect(err.message).toMatch(
      /^ssh root@10\.213\.47\.\d+:22 \(h2\): host key SHA256:\S+ is not in the given known_hosts$/,
    );
  });

  it("fails a wrong client key with the host named and without the key", async () => {
    await closeAllTransports();
    const other = generateSshKeyPair().private;
    const err = await failure(sshTransport({ ...tb.sshTarget("h1"), privateKey: other }).exec("true"));
    expect(err.message).toMatch(/^ssh root@10\.213\.47\.\d+:22 \(h1\): .*authentication/i);
    for (const line of keyLines(other)) expect(err.message).not.toContain(line);
  });

  it("gives up on an unreachable address after bounded attempts, naming the host, without the key", async () => {
    const target: SshTarget = {
      host: "ghost",
      address: "10.213.47.250", // in the testbed's /24, nobody there
      privateKey: tb.privateKey,
      connectTimeoutMs: 1000,
      retries: 2,
    };
    const err = await failure(sshTransport(target).exec("true"));
    expect(err.message).toMatch(/^ssh root@10\.213\.47\.250:22 \(ghost\): .+ after 2 attempts$/);
    for (const line of keyLines(tb.privateKey)) {
      expect(err.message).not.toContain(line);
      expect(String(err.stack)).not.toContain(line);
    }
  });

  it("runs docker against the host's own daemon (SetEnv DOCKER_HOST)", async () => {
    expect(await run(tb, "h2", "docker info --format '{{.Name}}'")).toBe("h2\n");
  });

  it("works inside a serialized function, as in a Pulumi dynamic provider", async () => {
    const target = tb.sshTarget("h2");
    const fn = async () => {
      const t = sshTransport(target);
      const r = await t.exec("hostname; docker info --format '{{.Name}}'");
      const info = await t.request("GET", "/info");
      await closeAllTransports();
      return `${r.stdout}${(info.body as { Name: string }).Name}`;
    };
    const sf = await pulumi.runtime.serializeFunction(fn);
    const handler = loadSerialized(sf.text)[sf.exportName] as () => Promise<string>;
    expect(await handler()).toBe("h2\nh2\nh2");
  });
});

describe("Engine API requests over the ssh transport", () => {
  const dialers = async (host: string) =>
    (await processesIn(host)).filter((c) => /^docker system dial-stdio/.test(c)).length;

  it("reach the host's own daemon through one docker channel, kept between requests", async () => {
    await closeAllTransports();
    const t = sshTransport(tb.sshTarget("h2"));
    const answers = await Promise.all([
      t.request("GET", "/info"),
      t.request("GET", "/version"),
      t.request("GET", "/info"),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect((answers[0].body as { Name: string }).Name).toBe("h2");
    expect(answers[1].body).toHaveProperty("ApiVersion");
    expect(await dialers("h2")).toBe(1);
    expect(sshConnectionCount(tb.sshTarget("h2"))).toBe(1);
  });

  it("resolves a refusal with its status and the daemon's message (the caller decides)", async () => {
    const r = await sshTransport(tb.sshTarget("h2")).request("GET", "/nodes");
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ message: expect.stringMatching(/not a swarm manager/) });
  });

  it("counts a GET as a read and anything else as mutating", async () => {
    resetTransportStats();
    const t = sshTransport(tb.sshTarget("h2"));
    await t.request("GET", "/info");
    await t.request("POST", "/swarm/leave"); // not in a swarm: refused, changes nothing
    expect(transportStats().byHost.h2).toEqual({ read: 1, mutating: 1 });
  });

  it("opens a new docker channel when the kept one went away, and sends the read again", async () => {
    const t = sshTransport(tb.sshTarget("h2"));
    await t.request("GET", "/info");
    const before = (await processTable("h2")).filter((p) => /^docker system dial-stdio/.test(p.cmd));
    expect(before).toHaveLength(1);
    process.kill(before[0].pid, "SIGKILL");
    await waitUntil("the killed docker channel to be gone", 5000, async () =>
      (await dialers("h2")) === 0 ? true : undefined,
    );
    const r = await t.request("GET", "/info");
    expect(r.status).toBe(200);
    expect(await dialers("h2")).toBe(1);
  });

  it("fails a request the daemon does not answer, naming the host and the request, then opens a new channel", async () => {
    await closeAllTransports();
    const t = sshTransport({ ...tb.sshTarget("h2"), requestTimeoutMs: 1500 });
    await t.request("GET", "/info");
    // A hung daemon: stopped, its socket still accepts connections, nothing answers.
    const h2 = tb.hosts.find((h) => h.name === "h2")!;
    const dockerd = Number(fs.readFileSync(path.join(path.dirname(h2.dockerSocket), "docker.pid"), "utf8"));
    process.kill(dockerd, "SIGSTOP");
    try {
      await expect(t.request("GET", "/info")).rejects.toThrow(/h2.*docker GET \/info: no answer in 1\.5 s/);
      await expect(t.request("POST", "/swarm/leave")).rejects.toThrow(
        /no answer in 1\.5 s \(it may have been applied\)/,
      );
    } finally {
      process.kill(dockerd, "SIGCONT");
    }
    const r = await t.request("GET", "/info");
    expect(r.status).toBe(200);
    // The dropped channels' docker processes were killed: only the new one stays.
    await waitUntil("one docker channel on h2", 5000, async () =>
      (await dialers("h2")) === 1 ? true : undefined,
    );
  });
});
