// The libvirt providers reaching a hypervisor over SSH (the way a remote hypervisor is driven): the hypervisor
// is a host of the multi-host testbed (its own network namespace and sshd, host key pinned); its `virsh`
// talks to this machine's libvirtd through the shared /run/libvirt socket. A pool, a base image copied from a
// local file through the SSH transport, a disk and a domain are created, read and deleted over SSH.
//
// Needs: root, libvirtd answering on qemu:///system, and the testbed's packages (see .ci/run).
import * as child from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { closeAllTransports, generateSshKeyPair } from "../../components/hosts/transport";
import {
  baseImageProvider,
  BaseImageOutputs,
  domainProvider,
  DomainOutputs,
  nodeDiskProvider,
  NodeDiskOutputs,
  storagePoolProvider,
  StoragePoolOutputs,
} from "../../components/hosts/libvirt/provider";
import { HypervisorConn } from "../../components/hosts/libvirt/virsh";
import { BRIDGE, startTestbed, Testbed } from "../testbed/testbed";

jest.setTimeout(15 * 60 * 1000);

const POOL = "sftest-libvirt-ssh-pool";
const DOMAIN = "sftest-libvirt-ssh-d1";
let tb: Testbed;
let tmp: string;
let hypervisor: HypervisorConn;

const sh = (cmd: string) => child.execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const ok = (cmd: string) => {
  try {
    sh(cmd);
    return true;
  } catch {
    return false;
  }
};
function cleanup(): void {
  ok(`virsh -c qemu:///system destroy ${DOMAIN}`);
  ok(`virsh -c qemu:///system undefine ${DOMAIN}`);
  for (const v of ["sftest-libvirt-ssh-d1.qcow2", "sftest-libvirt-ssh-base"])
    ok(`virsh -c qemu:///system vol-delete --pool ${POOL} ${v}`);
  ok(`virsh -c qemu:///system pool-destroy ${POOL}`);
  ok(`virsh -c qemu:///system pool-undefine ${POOL}`);
}

beforeAll(async () => {
  if (!ok("virsh -c qemu:///system list"))
    throw new Error(
      "libvirtd does not answer on qemu:///system (run `virtlogd -d; libvirtd -d` as root; .ci/run does)",
    );
  cleanup();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sf-libvirt-ssh-"));
  fs.chmodSync(tmp, 0o755);
  sh(`qemu-img create -q -f qcow2 ${path.join(tmp, "blank.qcow2")} 32M`);
  tb = await startTestbed({ hosts: 1, name: "libvirt-ssh" });
  const h = tb.hosts[0];
  hypervisor = {
    name: "tb-hv",
    ssh: {
      address: h.address,
      port: h.sshPort,
      user: "root",
      hostKeyFingerprint: tb.hostKeyFingerprints[h.name],
    },
  };
});

afterAll(async () => {
  await closeAllTransports();
  cleanup();
  if (tb) await tb.down();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("pool, uploaded base image, disk and domain over SSH: create, read, delete", async () => {
  const conn = { hypervisor, privateKey: tb.privateKey };
  const pool = (await storagePoolProvider.create({ ...conn, name: POOL, path: path.join(tmp, "pool") }))
    .outs as StoragePoolOutputs;
  expect(pool.created).toBe(true);
  const base = (
    await baseImageProvider.create({
      ...conn,
      pool: POOL,
      name: "sftest-libvirt-ssh-base",
      source: { file: path.join(tmp, "blank.qcow2") },
    })
  ).outs as BaseImageOutputs;
  expect(base.sha256).toBe(sh(`sha256sum ${path.join(tmp, "blank.qcow2")}`).split(" ")[0]);
  const disk = (
    await nodeDiskProvider.create({
      ...conn,
      pool: POOL,
      name: `${DOMAIN}.qcow2`,
      base: base.volume,
      sizeGiB: 1,
      domain: DOMAIN,
    })
  ).outs as NodeDiskOutputs;
  const spec = {
    ...conn,
    name: DOMAIN,
    type: "qemu" as const,
    vcpu: 1,
    maxVcpu: 1,
    memoryMiB: 64,
    maxMemoryMiB: 64,
    pool: POOL,
    disk: disk.name,
    autostart: false,
  };
  // A bridge that does not exist: libvirt refuses to start the domain; the error names the hypervisor and
  // the failed create leaves no domain behind.
  const failed = await domainProvider
    .create({ ...spec, nic: { kind: "bridge", bridge: "sfnobr0", mac: "52:54:00:5f:00:01" } })
    .catch((e: Error) => e);
  expect(String(failed)).toMatch(/^Error: hypervisor tb-hv: virsh start failed/);
  expect(String(failed)).not.toContain(tb.privateKey.split("\n")[1]);
  expect(ok(`virsh -c qemu:///system dominfo ${DOMAIN}`)).toBe(false);
  // On the testbed's bridge it runs.
  const dom = (
    await domainProvider.create({
      ...spec,
      nic: { kind: "bridge", bridge: BRIDGE, mac: "52:54:00:5f:00:01" },
    })
  ).outs as DomainOutputs;
  expect(dom).toMatchObject({ state: "running", autostart: false });
  const read = await domainProvider.read!("id", dom);
  expect(read.props).toMatchObject({
    name: DOMAIN,
    memoryMiB: 64,
    state: "running",
    autostart: false,
    disk: disk.name,
    nic: { kind: "bridge", bridge: BRIDGE, mac: "52:54:00:5f:00:01" },
  });
  await domainProvider.delete!("id", read.props as DomainOutputs);
  await nodeDiskProvider.delete!("id", disk);
  await baseImageProvider.delete!("id", base);
  await storagePoolProvider.delete!("id", pool);
  expect(ok(`virsh -c qemu:///system dominfo ${DOMAIN}`)).toBe(false);
  expect(ok(`virsh -c qemu:///system pool-info ${POOL}`)).toBe(false);
});

test("a wrong key is refused with the hypervisor named and no key material in the error", async () => {
  const wrong = generateSshKeyPair().private;
  await closeAllTransports(); // connections are pooled per user@address:port: drop the one with the right key
  const err = await storagePoolProvider.read!("id", {
    hypervisor,
    privateKey: wrong,
    name: POOL,
    created: false,
  }).catch((e: Error) => e);
  expect(String(err)).toMatch(/\(tb-hv\)/);
  expect(String(err)).not.toContain(wrong.split("\n")[1]);
});
