// From nothing to a service on real VMs (issue 10), under the real Pulumi engine for our own providers.
//
// A Pulumi.<stack>.yaml with nodes.source libvirt (1 manager + 1 worker on this machine's libvirtd, QEMU/TCG
// emulation, a NAT network with a fixed address per host, the base image and direct kernel boot from the image
// tests/support/guest-image.sh builds from Debian packages) is loaded by the product's config layer and run by
// the real `pulumi` CLI (tools/pulumi/build.sh) through tests/vm/fixture: clusterNodes, the machines and
// membership part of SwarmCluster (LibvirtNodes' six dynamic providers, then SwarmMembership). So: our seed
// ISO configures hostname, user and SSH key; each guest takes its fixed address; the membership layer waits for
// SSH and dockerd, forms the swarm and sets the labels.
//
// The docker workloads: the docker (and random) provider plugins cannot run on this machine, so SwarmCluster
// as a whole cannot run under the engine here. The same stack file is planned by the whole program (index.ts,
// SwarmCluster) under mocks, and the docker.Network and docker.Service inputs it registers for the app stack
// are created on the guests' swarm by tests/support/applier.ts, the project's documented stand-in for the
// docker plugin. Only the app stack (one 2-replica service and its overlay) is applied, not Traefik, the
// registry or monitoring: 2 emulated guests of 1 GiB cannot hold the platform. The stand-in image is busybox
// from this machine, imported into each guest's engine over SSH (no registry, no pull).
//
// Then the worker is removed from config: `pulumi up` drains it, takes it out of the swarm, and only then
// destroys its VM (proved by the engine's own step order); a second `pulumi up` changes nothing; `pulumi
// destroy` leaves no domain, volume, pool or network.
//
// Time budget (stated, not asserted): the bounded waits add up to at most 60 minutes (TIMEOUT); a failure
// ends the file (SSH transports closed, every libvirt object of the stack removed in afterAll, each guest's
// console log printed). Measured on a quiet 2-core machine with the image cached: the whole file 448 s,
// domain running to SSH 92-97 s per guest, the first `pulumi up` 219 s. A cold image build adds 35 min
// (debootstrap from the mirror), once per machine. The figures are printed at the end (README, "Tests").
// Needs root, libvirtd, the guest image tools and the Pulumi CLI (.ci/run has them all).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "fs";
import { tmpdir } from "os";
import { join, relative } from "path";
import YAML from "yaml";
import { closeAllTransports, sshTransport, Transport } from "../../components/hosts/transport";
import { consoleLogPath } from "../../components/hosts/libvirt/render";
import { apply, CapturedLike, TYPES } from "../support/applier";
import { dockerOverSsh, DockerOverSsh } from "../support/dockerOverSsh";
import {
  guestImage,
  GuestImage,
  guestRssMiB,
  leftovers,
  purge,
  requireLibvirt,
  run,
  virsh,
} from "../support/guests";
import { runProgram, ROOT_DIR } from "../support/mocks";
import { waitUntil } from "../testbed/swarm";
import { pulumiBin, PulumiProject } from "../engine-cli/cli";
import { parseEvents, summaryOf } from "../engine-cli/output";

const PROJECT = "swarmform-vm"; // tests/vm/fixture/Pulumi.yaml
const STACK = `${process.env.SWARMFORM_TESTBED_PREFIX ?? ""}chain`;
const NAME = `${PROJECT}-${STACK}`; // every libvirt object of the stack starts with it
const FIXTURE = join(__dirname, "fixture");
const BOOT_DIR = `/var/lib/libvirt/images/${NAME}-boot`;
const POOL_DIR = `/var/lib/libvirt/images/${NAME}-pool`;
const USER = "swarmform";
const SUBNET = "192.168.217.0/24";
const HOSTS = [
  {
    name: "sfvm-m1",
    address: "192.168.217.10",
    role: "manager",
    labels: { "swarmform.zone": "a", "swarmform.traefik": "true" },
  },
  { name: "sfvm-w1", address: "192.168.217.11", role: "worker", labels: { "swarmform.zone": "b" } },
] as const;
const [MANAGER, WORKER] = HOSTS;
type Host = (typeof HOSTS)[number];
const MEMORY_MIB = 1024;
const VCPUS = 2;
const TIMEOUT = 60 * 60_000;
const BOOT_TIMEOUT_S = 20 * 60;
const APP = "vmping"; // the app stack (its `name:`), so the service is vmping_ping and the overlay vmping_mesh
const SERVICE = `${APP}_ping`;
const DOMAIN_TYPE = "pulumi-nodejs:dynamic/libvirt:Domain";
const NODE_TYPE = "pulumi-nodejs:dynamic/swarm:SwarmNode";

jest.setTimeout(TIMEOUT);

const measured: Record<string, string> = {};
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const chainT0 = Date.now();
let image: GuestImage;
let pj: PulumiProject | undefined;
let privateKey = "";
let engine: DockerOverSsh | undefined;
const transports = new Map<string, Transport>();
/** The first step that failed: each later step depends on it and ends at once instead of waiting in vain. */
let broken: string | undefined;

/** A step of the chain: runs only if every earlier step passed. */
function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if (broken) throw new Error(`not run: an earlier step failed (${broken})`);
    try {
      await fn();
    } catch (e) {
      broken = name;
      throw e;
    }
  });
}

function transportOf(h: Host): Transport {
  let t = transports.get(h.name);
  if (!t) {
    t = sshTransport({
      host: h.name,
      address: h.address,
      user: USER,
      privateKey,
      connectTimeoutMs: 5_000,
      retries: 1,
    });
    transports.set(h.name, t);
  }
  return t;
}

/** Runs a command over SSH; throws with its output unless it exits 0. */
async function sh(h: Host, command: string, stdin?: string): Promise<string> {
  const r = await transportOf(h).exec(command, stdin);
  if (r.code !== 0) throw new Error(`${h.name}: \`${command}\` exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** The stack's config: what a user writes into Pulumi.<stack>.yaml for this cluster. */
function stackConfig(hosts: readonly Host[]): Record<string, unknown> {
  return {
    "swarmform:environment": "dev",
    "swarmform:domain": "vm.swarmform.test",
    "swarmform:nodes": {
      source: "libvirt",
      libvirt: {
        hypervisors: [{ name: "local", pool: { name: `${NAME}-pool`, path: POOL_DIR } }],
        baseImage: { name: "guest", file: image.disk },
        network: { mode: "nat", subnet: SUBNET },
        domainType: "qemu",
        // Docker is in the image (tests/support/guest-image.sh) and the guests have no internet: no apt at boot.
        docker: { source: "image" },
        defaults: { vcpu: VCPUS, memoryMiB: MEMORY_MIB, diskGiB: 4 },
        bootTimeoutSeconds: BOOT_TIMEOUT_S,
        boot: {
          kernel: join(BOOT_DIR, "vmlinuz"),
          initrd: join(BOOT_DIR, "initrd.img"),
          cmdline: image.cmdline,
        },
        tcgCacheMiB: 256,
      },
      hosts: hosts.map((h) => ({ ...h, user: USER })),
    },
    // Traefik is planned (it is always part of the cluster) but not applied here; no registry, no monitoring.
    "swarmform:traefik": { tls: "default" },
    "swarmform:registry": { enabled: false },
    "swarmform:monitoring": { enabled: false },
    "swarmform:stacks": ["stacks/vmping.yaml"],
  };
}

/** The app stack: a 2-replica service of the stand-in image on its own overlay, its tasks found by DNS. */
const APP_STACK = `name: ${APP}
services:
  ping:
    image: sfvm/busybox:test
    command: ["sleep", "86400"]
    networks: [mesh]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
networks:
  mesh:
    driver: overlay
`;

/** Writes Pulumi.<stack>.yaml (keeping what the CLI wrote there: salt and secrets) and the app stack file. */
function writeConfig(hosts: readonly Host[]): string {
  const file = join(pj!.dir, `Pulumi.${STACK}.yaml`);
  const doc = (existsSync(file) ? YAML.parse(readFileSync(file, "utf8")) : null) ?? {};
  const secure = Object.fromEntries(
    Object.entries((doc.config ?? {}) as Record<string, unknown>).filter(
      ([, v]) => typeof v === "object" && v && "secure" in v,
    ),
  );
  doc.config = { ...stackConfig(hosts), ...secure };
  writeFileSync(file, YAML.stringify(doc));
  mkdirSync(join(pj!.dir, "stacks"), { recursive: true });
  writeFileSync(join(pj!.dir, "stacks", "vmping.yaml"), APP_STACK);
  return file;
}

/** `pulumi up --json`: its events (in the engine's order), and the summary of changes. */
async function up() {
  const r = await pj!.must(["up", "--yes", "--skip-preview", "--json"]);
  const events = parseEvents(r.stdout);
  const summary = summaryOf(events);
  expect(summary.result).toBe("succeeded");
  return { events, changes: summary.resourceChanges, ms: r.ms };
}

/**
 * Watches libvirt and SSH while `pulumi up` runs: for each guest, when its domain is first seen running and
 * when SSH first answers (boot-to-SSH, measured from outside the program).
 */
function watchBoot(hosts: readonly Host[]): { stop(): void } {
  let stopped = false;
  for (const h of hosts) {
    void (async () => {
      const domain = `${NAME}-${h.name}`;
      let runningAt = 0;
      while (!stopped) {
        if (!runningAt) {
          try {
            if (virsh("domstate", domain).trim() === "running") runningAt = Date.now();
          } catch {
            // not defined yet
          }
        } else {
          const ok = await transportOf(h)
            .exec("true")
            .then((r) => r.code === 0)
            .catch(() => false);
          if (ok) {
            measured[`${h.name}: domain running to SSH answering`] = secs(Date.now() - runningAt);
            return;
          }
        }
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })();
  }
  return { stop: () => (stopped = true) };
}

beforeAll(async () => {
  await requireLibvirt();
  const bin = pulumiBin();
  const t0 = Date.now();
  image = guestImage();
  measured["guest image (cached, or built: see stderr)"] = secs(Date.now() - t0);
  const stale = purge(NAME);
  if (stale.length > 0) throw new Error(`cannot remove what an earlier run left:\n${stale.join("\n")}`);
  // The kernel and initrd where libvirt's qemu can read them (~/.cache may not be reachable): on a remote
  // hypervisor the user puts them there the same way.
  // A folder an interrupted run left without its pool would hand its old volumes to the new pool.
  rmSync(POOL_DIR, { recursive: true, force: true });
  rmSync(BOOT_DIR, { recursive: true, force: true });
  mkdirSync(BOOT_DIR, { recursive: true });
  copyFileSync(image.kernel, join(BOOT_DIR, "vmlinuz"));
  copyFileSync(image.initrd, join(BOOT_DIR, "initrd.img"));
  const dir = mkdtempSync(join(tmpdir(), "sfvm-key-"));
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", NAME, "-f", join(dir, "id")]);
  privateKey = readFileSync(join(dir, "id"), "utf8");
  rmSync(dir, { recursive: true, force: true });
  pj = await PulumiProject.create(STACK, bin, FIXTURE);
  writeConfig(HOSTS);
  await pj.must(["config", "set", "--secret", "swarmform:sshPrivateKey"], privateKey);
});

afterAll(async () => {
  await engine?.close();
  await closeAllTransports();
  if (pj) {
    console.log(`vm chain: pulumi runs (ms): ${JSON.stringify(pj.runs)}`);
    pj.remove();
  }
  // A failed run: what each guest printed on its console (the domain's serial log, kept by virtlogd).
  if (broken)
    for (const h of HOSTS) {
      const log = consoleLogPath(`${NAME}-${h.name}`);
      const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-40).join("\n") : "(none)";
      console.error(`vm chain: ${h.name} console (${log}), last lines:\n${tail}`);
    }
  // A failed run: what the engine did not destroy goes here (the VMs first, so no qemu is left running).
  const errors = purge(NAME);
  rmSync(BOOT_DIR, { recursive: true, force: true });
  measured["whole chain"] = secs(Date.now() - chainT0);
  console.log(
    "vm chain measurements:\n" +
      Object.entries(measured)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join("\n"),
  );
  if (errors.length > 0) console.error(`vm chain: clean-up errors:\n${errors.join("\n")}`);
});

step(
  "pulumi up: two VMs from our image, configured by our seed ISO, form a 1+1 swarm with their labels",
  async () => {
    const watch = watchBoot(HOSTS);
    let first;
    try {
      first = await up();
    } finally {
      watch.stop();
    }
    measured["pulumi up (VMs + swarm)"] = secs(first.ms);
    // the stack, LibvirtNodes, SwarmMembership, pool, base, network, 2 x (disk, seed, domain), 2 SwarmNodes
    expect(first.changes).toEqual({ create: 14 });

    for (const h of HOSTS) {
      expect(await sh(h, "hostname")).toBe(h.name);
      expect(await sh(h, "id -un")).toBe(USER);
      expect(await sh(h, "ip -4 -o addr show dev eth0")).toContain(` ${h.address}/24 `);
      expect(await sh(h, "cat /proc/cmdline")).toContain(image.cmdline);
      expect(await sh(h, "systemd-detect-virt")).toBe("qemu");
      measured[`${h.name}: qemu RSS`] =
        `${guestRssMiB(`${NAME}-${h.name}`)} MiB (guest memory ${MEMORY_MIB} MiB)`;
    }
    const nodes = await sh(MANAGER, "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'");
    expect(
      nodes
        .split("\n")
        .map((l) => l.trim())
        .sort(),
    ).toEqual([`${MANAGER.name} Ready Leader`, `${WORKER.name} Ready`]);
    for (const h of HOSTS)
      expect(
        JSON.parse(await sh(MANAGER, `docker node inspect ${h.name} --format '{{json .Spec.Labels}}'`)),
      ).toEqual(expect.objectContaining(h.labels));
    const out = await pj!.outputs();
    expect(out.managerEndpoint).toBe(`ssh://${USER}@${MANAGER.address}`);
  },
);

step(
  "the app stack that SwarmCluster plans runs on the guests: one task per guest, tasks.<service> over the overlay",
  async () => {
    // The whole program (index.ts: SwarmCluster) under mocks with the same stack file and secret.
    const t0 = Date.now();
    // The program reads its stack files from its working directory, as under `pulumi up` in the project.
    const cwd = process.cwd();
    process.chdir(pj!.dir);
    let planned;
    try {
      planned = await runProgram({
        rootDir: pj!.dir,
        stackFile: `Pulumi.${STACK}.yaml`,
        program: relative(pj!.dir, join(ROOT_DIR, "index.ts")),
        secrets: { sshPrivateKey: privateKey },
      });
    } finally {
      process.chdir(cwd);
    }
    const app: CapturedLike[] = planned.resources.filter(
      (r) =>
        (r.type === TYPES.network || r.type === TYPES.service) &&
        String(r.inputs.name ?? "").startsWith(`${APP}_`),
    );
    expect(app.map((r) => `${r.type} ${String(r.inputs.name)}`).sort()).toEqual([
      `${TYPES.network} ${APP}_mesh`,
      `${TYPES.service} ${SERVICE}`,
    ]);
    measured["plan SwarmCluster under mocks"] = secs(Date.now() - t0);

    // The stand-in image: busybox-static from this machine, imported into each guest's engine.
    const root = mkdtempSync(join(tmpdir(), "sfvm-busybox-"));
    try {
      mkdirSync(join(root, "bin"));
      if (!existsSync("/usr/bin/busybox"))
        throw new Error("/usr/bin/busybox is missing: apt-get install busybox-static");
      copyFileSync("/usr/bin/busybox", join(root, "bin", "busybox"));
      for (const applet of ["sh", "sleep", "nslookup", "ping"])
        symlinkSync("busybox", join(root, "bin", applet));
      const tarB64 = run("sh", ["-c", `tar -C ${root} -c . | base64 -w0`]);
      const t1 = Date.now();
      await Promise.all(HOSTS.map((h) => sh(h, "base64 -d | docker import - sfvm/busybox:test", tarB64)));
      measured["stand-in image import (both guests)"] = secs(Date.now() - t1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }

    const t2 = Date.now();
    engine = await dockerOverSsh({ address: MANAGER.address, user: USER, privateKey });
    await apply(engine.docker, app);
    await engine.close();
    engine = undefined;
    const tasks = await waitUntil(
      `2 running tasks of ${SERVICE}, one per guest`,
      15 * 60_000,
      async () => {
        const ps = await sh(
          MANAGER,
          `docker service ps ${SERVICE} --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'`,
        );
        const running = ps.split("\n").filter((l) => / Running /.test(l));
        const hosts = [...new Set(running.map((l) => l.split(" ")[0]))].sort();
        if (running.length !== 2 || hosts.length !== 2) throw new Error(ps);
        return hosts;
      },
      3_000,
    );
    expect(tasks).toEqual(HOSTS.map((h) => h.name).sort());
    measured["applied service 2/2 running"] = secs(Date.now() - t2);

    const containers = await Promise.all(
      HOSTS.map(async (h) => {
        const id = await sh(h, `docker ps -q --filter label=com.docker.swarm.service.name=${SERVICE}`);
        const ip = await sh(
          h,
          `docker inspect ${id} --format '{{(index .NetworkSettings.Networks "${APP}_mesh").IPAddress}}'`,
        );
        return { h, id, ip };
      }),
    );
    for (const { h, id } of containers) {
      const answer = await waitUntil(
        `tasks.${SERVICE} from ${h.name}`,
        2 * 60_000,
        async () => {
          const out = await sh(h, `docker exec ${id} nslookup tasks.${SERVICE}`);
          const ips = [...out.matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)(?!:)/g)]
            .map((m) => m[1])
            .filter((a) => !a.startsWith("127."));
          if (ips.length !== 2) throw new Error(out);
          return ips.sort();
        },
        3_000,
      );
      expect(answer).toEqual(containers.map((c) => c.ip).sort());
    }
    // Traffic flows over the overlay between the two VMs (vxlan).
    await sh(MANAGER, `docker exec ${containers[0].id} ping -c 2 -W 5 ${containers[1].ip}`);
    await sh(WORKER, `docker exec ${containers[1].id} ping -c 2 -W 5 ${containers[0].ip}`);
  },
);

step("the worker removed from config: drained, out of the swarm, then its VM destroyed", async () => {
  writeConfig([MANAGER]);
  const r = await up();
  measured["pulumi up (remove the worker)"] = secs(r.ms);
  // The worker's SwarmNode, then its domain, disk and seed ISO go; the network drops the worker's lease in
  // place (the manager's VM stays on it). The manager's SwarmNode is not touched: a worker leaving changes no
  // other node's inputs that matter (its list of managers to ask holds the other managers: none here).
  expect(r.changes).toEqual({ delete: 4, update: 1, same: 9 });
  const doneAt = (type: string, name: string) =>
    r.events.find(
      (e) => e.kind === "done" && e.op === "delete" && e.type === type && e.urn.endsWith(`::${name}`),
    )?.seq;
  const startAt = (type: string, name: string) =>
    r.events.find(
      (e) => e.kind === "pre" && e.op === "delete" && e.type === type && e.urn.endsWith(`::${name}`),
    )?.seq;
  const leftSwarm = doneAt(NODE_TYPE, `${NAME}-swarm-${WORKER.name}`);
  const vmDestroy = startAt(DOMAIN_TYPE, `${NAME}-vms-${WORKER.name}`);
  expect(leftSwarm).toBeDefined();
  expect(vmDestroy).toBeDefined();
  // The engine began destroying the VM only after the node had been drained and had left the swarm.
  expect(leftSwarm!).toBeLessThan(vmDestroy!);

  expect(await sh(MANAGER, "docker node ls --format '{{.Hostname}}'")).toBe(MANAGER.name);
  // The drained worker's task runs on the manager now.
  const ps = await sh(
    MANAGER,
    `docker service ps ${SERVICE} --filter desired-state=running --format '{{.Node}}'`,
  );
  expect(ps.split("\n")).toEqual([MANAGER.name, MANAGER.name]);
  const leases = virsh("net-dumpxml", NAME);
  expect(leases).toContain(`name='${MANAGER.name}'`);
  expect(leases).not.toContain(`name='${WORKER.name}'`);
  const left = leftovers(NAME);
  expect(left.filter((l) => l.includes(WORKER.name))).toEqual([]);
  expect(left).toContain(`domain ${NAME}-${MANAGER.name}`);
});

step("a second pulumi up changes nothing", async () => {
  const r = await up();
  measured["pulumi up (no change)"] = secs(r.ms);
  expect(r.changes).toEqual({ same: 10 });
});

step("pulumi destroy leaves no domain, volume, pool or network behind", async () => {
  const r = await pj!.must(["destroy", "--yes", "--skip-preview", "--json"]);
  measured["pulumi destroy"] = secs(r.ms);
  expect(summaryOf(parseEvents(r.stdout))).toMatchObject({
    result: "succeeded",
    resourceChanges: { delete: 10 },
  });
  await closeAllTransports();
  transports.clear();
  expect(leftovers(NAME)).toEqual([]);
  expect(guestRssMiB(`${NAME}-${MANAGER.name}`)).toBeUndefined();
});
