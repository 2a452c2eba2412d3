// The multi-host testbed itself. Needs root, docker.io, openssh-server/-client, iproute2, iptables,
// util-linux and busybox-static; startTestbed fails with a message naming what is missing.

import * as fs from "fs";
import * as path from "path";
import { closeAllTransports } from "../../components/hosts/transport";
import { runTestbedCommand } from "../../cli/testbed";
import {
  checkPrerequisites,
  isAlive,
  loadTestbed,
  startTestbed,
  stopTestbed,
  Testbed,
  STATE_ROOT,
} from "../testbed/testbed";
import { run } from "../testbed/swarm";

jest.setTimeout(240000);

const NAME = "e2e-testbed";
let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed({ hosts: 3, name: NAME });
});

afterAll(async () => {
  await closeAllTransports();
  await stopTestbed(NAME);
});

describe("testbed", () => {
  it("starts N hosts whose docker answers over SSH with the host's own name", async () => {
    expect(tb.hosts.map((h) => h.name)).toEqual(["h1", "h2", "h3"]);
    expect(new Set(tb.hosts.map((h) => h.address)).size).toBe(3);
    for (const h of tb.hosts) {
      expect(h.address).toMatch(/^10\.213\.47\.\d+$/);
      const out = await run(tb, h.name, "hostname; docker info --format '{{.Name}}'");
      const [hostname, info] = out.trim().split("\n");
      expect(hostname).toBe(h.name);
      expect(info).toBe(h.name);
    }
    const ids = await Promise.all(
      tb.hosts.map((h) => run(tb, h.name, "docker info --format '{{.DockerRootDir}}'")),
    );
    expect(new Set(ids).size).toBe(3); // three separate daemons
  });

  it("lets hosts reach each other, and only inside the testbed network", async () => {
    expect((await tb.exec("h1", `busybox ping -c 1 -W 3 ${tb.hosts[2].address}`)).code).toBe(0);
    // Traffic leaving the bridge is rejected at once (192.0.2.0/24 is TEST-NET-1).
    const r = await tb.exec("h1", "busybox nc -w 3 192.0.2.123 80 </dev/null");
    expect(r.code).not.toBe(0);
  });

  it("loads images into every host: busybox-static by docker import, and an image copied from one engine", async () => {
    const tag = await tb.importBusybox();
    for (const h of tb.hosts) {
      expect(await run(tb, h.name, `docker run --rm ${tag} sh -c 'echo ok-$(busybox | head -c 7)'`)).toBe(
        "ok-BusyBox\n",
      );
    }
    await run(tb, "h1", `docker tag ${tag} swarmform/copied:1`);
    await tb.loadImage("swarmform/copied:1", `unix://${tb.hosts[0].dockerSocket}`);
    for (const h of tb.hosts)
      expect(await run(tb, h.name, "docker image ls -q swarmform/copied:1")).not.toBe("");
  });

  it("is visible to another process through its state dir, and the CLI prints how to ssh", async () => {
    const again = loadTestbed(NAME);
    expect(again.hosts).toEqual(tb.hosts);
    expect(again.hostKeyFingerprints).toEqual(tb.hostKeyFingerprints);
    const logs: string[] = [];
    const spy = jest
      .spyOn(console, "log")
      .mockImplementation((...a: unknown[]) => void logs.push(a.join(" ")));
    try {
      expect(await runTestbedCommand(["status", "--name", NAME])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const text = logs.join("\n");
    expect(text).toContain(`ssh -i ${tb.privateKeyPath}`);
    for (const h of tb.hosts) expect(text).toContain(`root@${h.address}`);
    const errSpy = jest.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      expect(await runTestbedCommand(["frobnicate"])).toBe(2);
      expect(await runTestbedCommand(["up", "--hosts"])).toBe(2);
    } finally {
      errSpy.mockRestore();
    }
  });

  it("stops and starts one host's dockerd", async () => {
    await tb.stopDocker("h2");
    // `docker version`: with the daemon down, `docker info --format` of the docker CLI 20.10 prints a template
    // error instead of why.
    const down = await tb.exec("h2", "docker version --format '{{.Server.Version}}'");
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/Cannot connect to the Docker daemon/);
    expect(await run(tb, "h1", "docker info --format '{{.Name}}'")).toBe("h1\n");
    await tb.startDocker("h2");
    expect(await run(tb, "h2", "docker info --format '{{.Name}}'")).toBe("h2\n");
  });

  it("cleans up the state of an earlier run when started again", async () => {
    const oldDockerPids = tb.hosts.map((h) =>
      Number(fs.readFileSync(path.join(STATE_ROOT, NAME, h.name, "docker.pid"), "utf8")),
    );
    // Leave a running container behind, as a crashed run would.
    await run(tb, "h3", "docker run -d --name leftover busybox:testbed sleep 1000");
    await closeAllTransports();
    tb = await startTestbed({ hosts: 2, name: NAME });
    for (const pid of oldDockerPids) expect(isAlive(pid)).toBe(false);
    const namespaces = fs.readdirSync("/run/netns").filter((n) => n.startsWith(`sftb-${NAME}-`));
    expect(namespaces.sort()).toEqual([`sftb-${NAME}-h1`, `sftb-${NAME}-h2`]);
    expect(fs.existsSync(path.join(STATE_ROOT, NAME, "h3"))).toBe(false);
    const leftovers = fs
      .readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith("sleep\u00001000");
        } catch {
          return false;
        }
      });
    expect(leftovers).toEqual([]);
    expect(await run(tb, "h2", "hostname")).toBe("h2\n");
  });

  it("refuses to start without root, saying so", async () => {
    const spy = jest.spyOn(process, "getuid").mockReturnValue(1000);
    try {
      await expect(checkPrerequisites()).rejects.toThrow(/needs root/);
    } finally {
      spy.mockRestore();
    }
  });
});
