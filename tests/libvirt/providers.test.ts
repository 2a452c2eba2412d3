// The libvirt dynamic providers against the real libvirtd of this machine (root, qemu:///system, QEMU/TCG):
// a dir pool in a temporary directory, a base image (uploaded from a file, and downloaded from a URL with
// its checksum), a NAT network on a private subnet no other test uses, and three domains with empty disks,
// taken through create, read, in-place changes, a disk grow, a no-op second run, drift and delete.
// Every provider used here is the copy that went through pulumi.runtime.serializeFunction, as Pulumi runs it.
//
// Needs: root, libvirtd answering on qemu:///system, qemu-img, cloud-localds (see .ci/run).

import * as child from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  baseImageProvider,
  BaseImageInputs,
  BaseImageOutputs,
  domainProvider,
  DomainInputs,
  DomainOutputs,
  natNetworkProvider,
  NatNetworkInputs,
  NatNetworkOutputs,
  nodeDiskProvider,
  NodeDiskInputs,
  NodeDiskOutputs,
  seedIsoProvider,
  SeedIsoInputs,
  storagePoolProvider,
  StoragePoolInputs,
} from "../../components/hosts/libvirt/provider";
import {
  macFor,
  metaData,
  networkConfig,
  parseDomainXml,
  userData,
  vmNames,
  networkName,
  baseVolumeName,
} from "../../components/hosts/libvirt/render";

jest.setTimeout(10 * 60 * 1000);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => { handler(): unknown };

type P = pulumi.dynamic.ResourceProvider;
const PROJECT = "sftest";
const STACK = "libvirt";
const SUBNET = "10.237.181.0/24";
const hypervisor = { name: "local" };
const POOL = `${PROJECT}-${STACK}-pool`;
const NODES = ["m1", "m2", "w1"];
const addressOf = (i: number) => `10.237.181.${11 + i}`;

let tmp: string;
let server: http.Server;
let url: string;
const prov: Record<string, P> = {};
const started = Date.now();

function sh(cmd: string): string {
  return child.execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
function virsh(args: string): string {
  return sh(`virsh -q -c qemu:///system ${args}`);
}
function shOk(cmd: string): boolean {
  try {
    sh(cmd);
    return true;
  } catch {
    return false;
  }
}

/** Removes every libvirt object this suite may have left behind (a crashed earlier run). */
function cleanup(): void {
  for (const n of NODES) {
    const d = vmNames(PROJECT, STACK, n).domain;
    shOk(`virsh -c qemu:///system destroy ${d}`);
    shOk(`virsh -c qemu:///system undefine ${d}`);
  }
  const net = networkName(PROJECT, STACK);
  shOk(`virsh -c qemu:///system net-destroy ${net}`);
  shOk(`virsh -c qemu:///system net-undefine ${net}`);
  if (shOk(`virsh -c qemu:///system pool-info ${POOL}`)) {
    for (const v of sh(`virsh -q -c qemu:///system vol-list ${POOL} || true`).split("\n")) {
      const name = v.trim().split(/\s+/)[0];
      if (name) shOk(`virsh -c qemu:///system vol-delete --pool ${POOL} ${name}`);
    }
    shOk(`virsh -c qemu:///system pool-destroy ${POOL}`);
    shOk(`virsh -c qemu:///system pool-undefine ${POOL}`);
  }
}

const hv = { hypervisor };
const poolIn = (): StoragePoolInputs => ({ ...hv, name: POOL, path: path.join(tmp, "pool") });
const baseFromFile = (): BaseImageInputs => ({
  ...hv,
  pool: POOL,
  name: baseVolumeName(PROJECT, STACK, "blank"),
  source: { file: path.join(tmp, "blank.qcow2") },
});
const netIn = (nodes = NODES): NatNetworkInputs => ({
  ...hv,
  name: networkName(PROJECT, STACK),
  subnet: SUBNET,
  hosts: nodes.map((n) => ({ name: n, mac: macFor(PROJECT, STACK, n), ip: addressOf(NODES.indexOf(n)) })),
});
const diskIn = (n: string, sizeGiB = 1): NodeDiskInputs => ({
  ...hv,
  pool: POOL,
  name: vmNames(PROJECT, STACK, n).disk,
  base: baseVolumeName(PROJECT, STACK, "blank"),
  sizeGiB,
  domain: vmNames(PROJECT, STACK, n).domain,
});
const seedIn = (n: string): SeedIsoInputs => {
  const mac = macFor(PROJECT, STACK, n);
  return {
    ...hv,
    pool: POOL,
    name: vmNames(PROJECT, STACK, n).seed,
    userData: userData({
      hostname: n,
      user: "swarmform",
      sshAuthorizedKey:
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBhG2ZbLUiJxg0K1P7vP7S0bEXAMPLEKEYONLYxxxxx test",
      docker: { source: "distribution" },
      metricsAddress: "0.0.0.0:9323",
    }),
    metaData: metaData(vmNames(PROJECT, STACK, n).domain, n),
    networkConfig: networkConfig({ mac, address: addressOf(NODES.indexOf(n)), subnet: SUBNET }),
  };
};
const domIn = (n: string, over: Partial<DomainInputs> = {}): DomainInputs => ({
  ...hv,
  name: vmNames(PROJECT, STACK, n).domain,
  type: "qemu",
  vcpu: 1,
  maxVcpu: 2,
  memoryMiB: 64,
  maxMemoryMiB: 128,
  pool: POOL,
  disk: vmNames(PROJECT, STACK, n).disk,
  seed: vmNames(PROJECT, STACK, n).seed,
  nic: { kind: "network", network: networkName(PROJECT, STACK), mac: macFor(PROJECT, STACK, n) },
  autostart: true,
  ...over,
});

/** What Pulumi does on `up` for a resource in the state: check, diff, update when needed. */
async function up<O>(
  p: P,
  olds: O,
  news: object,
): Promise<{ outs: O; changes: boolean; replaces: string[] }> {
  const checked = p.check ? (await p.check(olds, news)).inputs : news;
  const d = await p.diff!("id", olds, checked);
  if (!d.changes) return { outs: olds, changes: false, replaces: [] };
  if ((d.replaces ?? []).length > 0) return { outs: olds, changes: true, replaces: d.replaces! };
  const r = await p.update!("id", olds, checked);
  return { outs: r.outs as O, changes: true, replaces: [] };
}
async function create<O>(p: P, news: object): Promise<O> {
  const checked = p.check ? await p.check({}, news) : { inputs: news, failures: [] };
  expect(checked.failures ?? []).toEqual([]);
  return (await p.create(checked.inputs)).outs as O;
}

const state: {
  base?: BaseImageOutputs;
  net?: NatNetworkOutputs;
  disks: Record<string, NodeDiskOutputs>;
  seeds: Record<string, unknown>;
  doms: Record<string, DomainOutputs>;
  pool?: unknown;
} = { disks: {}, seeds: {}, doms: {} };

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("tests/libvirt needs root (it drives qemu:///system)");
  if (!shOk("virsh -c qemu:///system list"))
    throw new Error(
      "libvirtd does not answer on qemu:///system: apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base cloud-image-utils, then run `virtlogd -d; libvirtd -d` (.ci/run does this)",
    );
  for (const [name, p] of Object.entries({
    storagePoolProvider,
    baseImageProvider,
    natNetworkProvider,
    nodeDiskProvider,
    seedIsoProvider,
    domainProvider,
  })) {
    const sf = await pulumi.runtime.serializeFunction(() => p, { allowSecrets: true });
    prov[name] = requireFromString(sf.text).handler() as P;
    expect(prov[name]).not.toBe(p);
  }
  cleanup();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sf-libvirt-"));
  fs.chmodSync(tmp, 0o755);
  sh(`qemu-img create -q -f qcow2 ${path.join(tmp, "blank.qcow2")} 64M`);
  // The "download" source: this file served over HTTP on the loopback.
  server = http.createServer((req, res) => {
    if (req.url === "/blank.qcow2") fs.createReadStream(path.join(tmp, "blank.qcow2")).pipe(res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blank.qcow2`;
});

afterAll(async () => {
  server?.close();
  cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`libvirt provider suite wall time: ${Math.round((Date.now() - started) / 1000)} s`);
});

test("a dir pool, a base image from a local file, and one from a URL with its checksum (never twice)", async () => {
  state.pool = await create(prov.storagePoolProvider, poolIn());
  expect(virsh(`pool-info ${POOL}`)).toMatch(/State:\s+running/);
  expect(virsh(`pool-dumpxml ${POOL}`)).toContain(`<path>${path.join(tmp, "pool")}</path>`);

  state.base = await create<BaseImageOutputs>(prov.baseImageProvider, baseFromFile());
  expect(state.base).toMatchObject({ owned: true, reused: false, format: "qcow2" });
  expect(state.base.sha256).toBe(sh(`sha256sum ${path.join(tmp, "blank.qcow2")}`).split(" ")[0]);

  const sha256 = state.base.sha256;
  const fromUrl = { ...hv, pool: POOL, name: "sftest-libvirt-base-url", source: { url, sha256 } };
  const downloaded = await create<BaseImageOutputs>(prov.baseImageProvider, fromUrl);
  expect(downloaded).toMatchObject({ reused: false, sha256 });
  // Created again (e.g. a lost state): the volume is there with the right content, so nothing is downloaded.
  server.close();
  const again = await create<BaseImageOutputs>(prov.baseImageProvider, fromUrl);
  expect(again).toMatchObject({ reused: true, sha256, path: downloaded.path });
  // A wrong checksum is refused and leaves nothing behind; a url without one fails the check.
  await expect(
    prov.baseImageProvider.create({
      ...fromUrl,
      name: "sftest-libvirt-base-bad",
      source: { url, sha256: "0".repeat(64) },
    }),
  ).rejects.toThrow(/hypervisor local: download http:\/\/127\.0\.0\.1|expected 0{64}/);
  expect(shOk(`virsh -c qemu:///system vol-info --pool ${POOL} sftest-libvirt-base-bad`)).toBe(false);
  const noSum = await prov.baseImageProvider.check!({}, { ...fromUrl, source: { url } });
  expect(noSum.failures?.[0].reason).toMatch(/needs the sha256/);
  await prov.baseImageProvider.delete!("id", downloaded);
  expect(shOk(`virsh -c qemu:///system vol-info --pool ${POOL} sftest-libvirt-base-url`)).toBe(false);
});

test("a NAT network with static leases and three domains from a dev-like config, read back as configured", async () => {
  state.net = await create<NatNetworkOutputs>(prov.natNetworkProvider, netIn());
  expect(state.net).toMatchObject({ active: true, autostart: true, subnet: SUBNET });
  expect(state.net.bridge).toMatch(/^virbr\d+$/);
  for (const n of NODES) {
    state.disks[n] = await create<NodeDiskOutputs>(prov.nodeDiskProvider, diskIn(n));
    state.seeds[n] = await create(prov.seedIsoProvider, seedIn(n));
    state.doms[n] = await create<DomainOutputs>(prov.domainProvider, domIn(n));
  }
  for (const [i, n] of NODES.entries()) {
    const read = (await prov.domainProvider.read!("id", state.doms[n])).props as DomainOutputs;
    const want = domIn(n);
    expect(read).toMatchObject({
      name: want.name,
      type: "qemu",
      vcpu: 1,
      maxVcpu: 2,
      memoryMiB: 64,
      maxMemoryMiB: 128,
      pool: POOL,
      disk: want.disk,
      seed: want.seed,
      nic: want.nic,
      autostart: true,
      state: "running",
      hasSerialConsole: true,
      hasGuestAgentChannel: true,
    });
    const disk = (await prov.nodeDiskProvider.read!("id", state.disks[n])).props as NodeDiskOutputs;
    expect(disk.capacityBytes).toBe(1024 ** 3);
    expect(disk.backingPath).toBe(state.base!.path);
    expect(sh(`qemu-img info -U --output=json ${disk.path}`)).toContain(
      `"backing-filename": "${state.base!.path}"`,
    );
    // The static lease of this node is in the running network.
    expect(virsh(`net-dumpxml ${networkName(PROJECT, STACK)}`)).toContain(
      `<host mac='${macFor(PROJECT, STACK, n)}' name='${n}' ip='${addressOf(i)}'/>`,
    );
    // The seed is a NoCloud ISO (volume id cidata) in the pool.
    expect(sh(`isoinfo -d -i ${path.join(tmp, "pool", vmNames(PROJECT, STACK, n).seed)}`)).toMatch(
      /Volume id:\s+cidata/i,
    );
  }
});

test("the second run changes nothing", async () => {
  const before = NODES.map((n) => virsh(`dumpxml ${vmNames(PROJECT, STACK, n).domain}`)).join("");
  expect((await up(prov.natNetworkProvider, state.net!, netIn())).changes).toBe(false);
  expect((await up(prov.baseImageProvider, state.base!, baseFromFile())).changes).toBe(false);
  for (const n of NODES) {
    expect((await up(prov.nodeDiskProvider, state.disks[n], diskIn(n))).changes).toBe(false);
    expect((await up(prov.seedIsoProvider, state.seeds[n], seedIn(n))).changes).toBe(false);
    const read = (await prov.domainProvider.read!("id", state.doms[n])).props as DomainOutputs;
    expect((await up(prov.domainProvider, read, domIn(n))).changes).toBe(false);
  }
  const after = NODES.map((n) => virsh(`dumpxml ${vmNames(PROJECT, STACK, n).domain}`)).join("");
  expect(after).toBe(before);
});

test("memory, then vcpu, change in place on the running domain; beyond the maximum is a replace", async () => {
  const name = vmNames(PROJECT, STACK, "m1").domain;
  const uuid = state.doms.m1.uuid;
  const mem = await up<DomainOutputs>(prov.domainProvider, state.doms.m1, domIn("m1", { memoryMiB: 96 }));
  expect(mem).toMatchObject({ changes: true, replaces: [] });
  expect(mem.outs).toMatchObject({ memoryMiB: 96, uuid, state: "running" });
  // libvirt accepted `setmem --live` (update would have thrown otherwise). The live balloon cannot move here:
  // an empty-disk guest has no balloon driver, so the running domain keeps its maximum (see the report).
  expect(parseDomainXml(virsh(`dumpxml --inactive ${name}`)).memoryMiB).toBe(96); // next boot

  const cpu = await up<DomainOutputs>(prov.domainProvider, mem.outs, domIn("m1", { memoryMiB: 96, vcpu: 2 }));
  expect(cpu).toMatchObject({ changes: true, replaces: [] });
  expect(cpu.outs).toMatchObject({ vcpu: 2, uuid });
  expect(virsh(`vcpucount ${name} --live --active`).trim()).toBe("2");
  expect(virsh(`vcpucount ${name} --config --active`).trim()).toBe("2");
  state.doms.m1 = cpu.outs;

  const big = await up(
    prov.domainProvider,
    state.doms.m1,
    domIn("m1", { vcpu: 2, memoryMiB: 256, maxMemoryMiB: 256 }),
  );
  expect(big.replaces).toEqual(expect.arrayContaining(["maxMemoryMiB"]));
  const net = await up(
    prov.domainProvider,
    state.doms.m1,
    domIn("m1", { vcpu: 2, memoryMiB: 96, disk: "other" }),
  );
  expect(net.replaces).toEqual(["disk"]);
});

test("a disk grows in place (the domain runs) and refuses to shrink", async () => {
  const grown = await up<NodeDiskOutputs>(prov.nodeDiskProvider, state.disks.m2, diskIn("m2", 2));
  expect(grown).toMatchObject({ changes: true, replaces: [] });
  expect(grown.outs.capacityBytes).toBe(2 * 1024 ** 3);
  expect(JSON.parse(sh(`qemu-img info -U --output=json ${grown.outs.path}`))["virtual-size"]).toBe(
    2 * 1024 ** 3,
  );
  expect(virsh(`domblkinfo ${vmNames(PROJECT, STACK, "m2").domain} vda`)).toMatch(/Capacity:\s+2147483648/);
  state.disks.m2 = grown.outs;
  const shrink = await prov.nodeDiskProvider.check!(state.disks.m2, diskIn("m2", 1));
  expect(shrink.failures?.[0]).toMatchObject({ property: "sizeGiB" });
  expect(shrink.failures?.[0].reason).toMatch(/cannot shrink to 1 GiB/);
});

test("drift: a domain undefined by hand reads as gone; a lease removed by hand is put back", async () => {
  const name = vmNames(PROJECT, STACK, "w1").domain;
  virsh(`destroy ${name}`);
  virsh(`undefine ${name}`);
  const read = await prov.domainProvider.read!("id", state.doms.w1);
  expect(read.id).toBe("");
  // Pulumi drops it from the state on refresh, and the next up creates it again.
  state.doms.w1 = await create<DomainOutputs>(prov.domainProvider, domIn("w1"));
  expect(state.doms.w1.state).toBe("running");

  const net = networkName(PROJECT, STACK);
  const lease = `<host mac='${macFor(PROJECT, STACK, "w1")}' name='w1' ip='${addressOf(2)}'/>`;
  virsh(`net-update ${net} delete ip-dhcp-host "${lease}" --live --config`);
  const refreshed = (await prov.natNetworkProvider.read!("id", state.net!)).props as NatNetworkOutputs;
  expect(refreshed.hosts.map((h) => h.name)).toEqual(["m1", "m2"]);
  const fixed = await up<NatNetworkOutputs>(prov.natNetworkProvider, refreshed, netIn());
  expect(fixed.changes).toBe(true);
  expect(fixed.outs.hosts.map((h) => h.name).sort()).toEqual(["m1", "m2", "w1"]);
  state.net = fixed.outs;
});

test("delete removes every domain, volume, ISO and the network, and nothing is left", async () => {
  for (const n of NODES) {
    await prov.domainProvider.delete!("id", state.doms[n]);
    // The domain's delete touches nothing else: its disk and seed are still there until their own delete.
    expect(shOk(`virsh -c qemu:///system vol-info --pool ${POOL} ${vmNames(PROJECT, STACK, n).disk}`)).toBe(
      true,
    );
    await prov.seedIsoProvider.delete!("id", state.seeds[n]);
    await prov.nodeDiskProvider.delete!("id", state.disks[n]);
  }
  await prov.baseImageProvider.delete!("id", state.base!);
  await prov.natNetworkProvider.delete!("id", state.net!);
  await prov.storagePoolProvider.delete!("id", state.pool!);

  const prefix = `${PROJECT}-${STACK}`;
  expect(
    virsh("list --all --name")
      .split("\n")
      .filter((l) => l.startsWith(prefix)),
  ).toEqual([]);
  expect(
    virsh("net-list --all --name")
      .split("\n")
      .filter((l) => l.startsWith(prefix)),
  ).toEqual([]);
  expect(
    virsh("pool-list --all --name")
      .split("\n")
      .filter((l) => l.startsWith(prefix)),
  ).toEqual([]);
  // The pool's folder, empty once its volumes went, went with it.
  expect(fs.existsSync(path.join(tmp, "pool"))).toBe(false);
});
