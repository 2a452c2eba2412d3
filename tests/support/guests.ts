// Real VMs for the vm tests: the guest image (tests/support/guest-image.sh), libvirtd, and a small libvirt
// network + domains booted by direct kernel boot with a NoCloud seed ISO.
//
// The two XML renderers below are deliberately minimal and test-only: the libvirt provider (issue 8) brings
// the validated, documented renderers for networks and domains (with `boot.kernel`/`initrd`/`cmdline`), and
// these tests are to switch to them once it lands.
import { execFileSync, spawnSync } from "child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "fs";
import { join } from "path";

export interface GuestImage {
  readonly dir: string;
  readonly disk: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
}

const SCRIPT = join(__dirname, "guest-image.sh");
const PACKAGES =
  "apt-get install debootstrap e2fsprogs qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients " +
  "dnsmasq-base cloud-image-utils openssh-client";

/** Builds the guest image, or finds it cached; its progress goes to this process's stderr. */
export function guestImage(): GuestImage {
  if (process.getuid?.() !== 0)
    throw new Error(`the vm tests must run as root (they drive libvirtd and debootstrap)`);
  const out = execFileSync("bash", [SCRIPT], {
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 40 * 60_000,
  })
    .toString()
    .trim();
  const dir = out.split("\n").pop()!;
  return {
    dir,
    disk: join(dir, "disk.qcow2"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    cmdline: readFileSync(join(dir, "cmdline"), "utf8").trim(),
  };
}

/** Runs a command; returns stdout, throws with stderr. */
export function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function virsh(...args: string[]): string {
  return run("virsh", ["-c", "qemu:///system", ...args]);
}

function have(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
}

/** Makes sure the tools exist and libvirtd answers; starts virtlogd and libvirtd (daemonized) if it does not. */
export async function requireLibvirt(): Promise<void> {
  for (const tool of [
    "virsh",
    "libvirtd",
    "virtlogd",
    "qemu-system-x86_64",
    "qemu-img",
    "cloud-localds",
    "ssh-keygen",
  ]) {
    if (!have(tool)) throw new Error(`'${tool}' not found: the vm tests need ${PACKAGES} (or run .ci/run)`);
  }
  const answers = () => spawnSync("virsh", ["-c", "qemu:///system", "version"]).status === 0;
  if (answers()) return;
  spawnSync("virtlogd", ["-d"]);
  spawnSync("libvirtd", ["-d"]);
  for (let i = 0; i < 60 && !answers(); i++) await new Promise((r) => setTimeout(r, 500));
  if (!answers())
    throw new Error("libvirtd does not answer on qemu:///system after `virtlogd -d; libvirtd -d`");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;");
}

export interface TestNetwork {
  readonly name: string;
  readonly bridge: string;
  /** Gateway address; the network is its /24. */
  readonly gateway: string;
  readonly hosts: readonly { readonly name: string; readonly mac: string; readonly ip: string }[];
}

/** A NAT network with a static DHCP lease per host (test-only; replaced by the issue-8 renderer). */
export function testNetworkXml(n: TestNetwork): string {
  const hosts = n.hosts
    .map((h) => `      <host mac='${esc(h.mac)}' name='${esc(h.name)}' ip='${esc(h.ip)}'/>`)
    .join("\n");
  return `<network>
  <name>${esc(n.name)}</name>
  <forward mode='nat'/>
  <bridge name='${esc(n.bridge)}' stp='off'/>
  <ip address='${esc(n.gateway)}' netmask='255.255.255.0'>
    <dhcp>
${hosts}
    </dhcp>
  </ip>
</network>
`;
}

export interface TestDomain {
  readonly name: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly disk: string;
  readonly seedIso: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  readonly network: string;
  readonly mac: string;
  /** The serial console goes to this file. */
  readonly consoleLog: string;
}

/** A TCG guest booted by direct kernel boot (test-only; replaced by the issue-8 renderer). */
export function testDomainXml(d: TestDomain): string {
  return `<domain type='qemu'>
  <name>${esc(d.name)}</name>
  <memory unit='MiB'>${d.memoryMiB}</memory>
  <vcpu>${d.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${esc(d.kernel)}</kernel>
    <initrd>${esc(d.initrd)}</initrd>
    <cmdline>${esc(d.cmdline)}</cmdline>
  </os>
  <features>
    <acpi/>
    <tcg><tb-cache unit='MiB'>256</tb-cache></tcg>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${esc(d.disk)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${esc(d.seedIso)}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <source network='${esc(d.network)}'/>
      <mac address='${esc(d.mac)}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='${esc(d.consoleLog)}'/>
      <target port='0'/>
    </serial>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** cloud-init user-data: hostname, one sudo user in the docker group with our SSH key. */
export function userData(hostname: string, user: string, publicKey: string): string {
  return `#cloud-config
hostname: ${hostname}
manage_etc_hosts: true
users:
  - name: ${user}
    groups: [sudo, docker]
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/bash
    lock_passwd: true
    ssh_authorized_keys:
      - ${publicKey.trim()}
`;
}

export interface GuestSpec {
  readonly name: string;
  readonly hostname: string;
  readonly mac: string;
  readonly ip: string;
}

export interface Lab {
  readonly network: TestNetwork;
  readonly dir: string;
  readonly user: string;
  readonly privateKey: string;
  readonly guests: readonly GuestSpec[];
}

/**
 * Defines and starts the network and one domain per guest, each on its own qcow2 overlay over a copy of the
 * image (in a folder under /var/lib/libvirt/images that libvirt's qemu user can reach; ~/.cache may not be).
 */
export function startLab(
  image: GuestImage,
  network: TestNetwork,
  guests: readonly GuestSpec[],
  opts: { memoryMiB: number; vcpus: number },
): Lab {
  const dir = `/var/lib/libvirt/images/${network.name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", network.name, "-f", join(dir, "id")]);
  const publicKey = readFileSync(join(dir, "id.pub"), "utf8");
  const privateKey = readFileSync(join(dir, "id"), "utf8");
  const user = "swarmform";
  run("cp", ["--sparse=always", image.disk, join(dir, "base.qcow2")]);
  run("cp", [image.kernel, join(dir, "vmlinuz")]);
  run("cp", [image.initrd, join(dir, "initrd.img")]);

  writeFileSync(join(dir, "network.xml"), testNetworkXml(network));
  virsh("net-define", join(dir, "network.xml"));
  virsh("net-start", network.name);
  for (const g of guests) {
    const disk = join(dir, `${g.name}.qcow2`);
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", join(dir, "base.qcow2"), disk]);
    writeFileSync(join(dir, `${g.name}.user-data`), userData(g.hostname, user, publicKey));
    writeFileSync(
      join(dir, `${g.name}.meta-data`),
      `instance-id: ${g.name}-${Date.now()}\nlocal-hostname: ${g.hostname}\n`,
    );
    const seedIso = join(dir, `${g.name}-seed.iso`);
    run("cloud-localds", [seedIso, join(dir, `${g.name}.user-data`), join(dir, `${g.name}.meta-data`)]);
    const xml = testDomainXml({
      name: g.name,
      memoryMiB: opts.memoryMiB,
      vcpus: opts.vcpus,
      disk,
      seedIso,
      kernel: join(dir, "vmlinuz"),
      initrd: join(dir, "initrd.img"),
      cmdline: image.cmdline,
      network: network.name,
      mac: g.mac,
      consoleLog: join(dir, `${g.name}.console.log`),
    });
    writeFileSync(join(dir, `${g.name}.xml`), xml);
    virsh("define", join(dir, `${g.name}.xml`));
    virsh("start", g.name);
  }
  return { network, dir, user, privateKey, guests };
}

/** The last lines of a guest's serial console, for error messages. */
export function consoleTail(lab: Lab, guest: string, lines = 25): string {
  const file = join(lab.dir, `${guest}.console.log`);
  if (!existsSync(file)) return "(no console log)";
  return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

/** Resident memory of a running guest's qemu process, in MiB (undefined if it is not running). */
export function guestRssMiB(name: string): number | undefined {
  const pidFile = `/run/libvirt/qemu/${name}.pid`;
  if (!existsSync(pidFile)) return undefined;
  const pid = readFileSync(pidFile, "utf8").trim();
  const r = spawnSync("ps", ["-o", "rss=", "-p", pid], { encoding: "utf8" });
  return r.status === 0 ? Math.round(Number(r.stdout.trim()) / 1024) : undefined;
}

/** Names of domains and networks (any state) that start with `prefix`. */
export function leftovers(prefix: string): string[] {
  const domains = virsh("list", "--all", "--name").split("\n");
  const networks = virsh("net-list", "--all", "--name").split("\n");
  return [...domains, ...networks].map((s) => s.trim()).filter((s) => s.startsWith(prefix));
}

/** Destroys and undefines every guest and the network, and removes the lab folder. Never throws half-way. */
export function destroyLab(network: string, guests: readonly string[]): string[] {
  const errors: string[] = [];
  const attempt = (...args: string[]) => {
    try {
      virsh(...args);
    } catch (e) {
      if (!/not found|not running|no domain|no network|not active/i.test((e as Error).message)) {
        errors.push((e as Error).message);
      }
    }
  };
  for (const g of guests) {
    attempt("destroy", g);
    attempt("undefine", g);
  }
  attempt("net-destroy", network);
  attempt("net-undefine", network);
  rmSync(`/var/lib/libvirt/images/${network}`, { recursive: true, force: true });
  return errors;
}
