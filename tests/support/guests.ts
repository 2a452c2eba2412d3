// Real VMs for the vm tests: the guest image (tests/support/guest-image.sh), libvirtd, and clean-up by name
// prefix. The domains, networks, pools and volumes themselves come from the product's libvirt providers
// (components/hosts/libvirt), run by the Pulumi engine (tests/vm/chain.test.ts).
import { execFileSync, spawnSync } from "child_process";
import { readFileSync, existsSync } from "fs";
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

/** Resident memory of a running guest's qemu process, in MiB (undefined if it is not running). */
export function guestRssMiB(name: string): number | undefined {
  const pidFile = `/run/libvirt/qemu/${name}.pid`;
  if (!existsSync(pidFile)) return undefined;
  const pid = readFileSync(pidFile, "utf8").trim();
  const r = spawnSync("ps", ["-o", "rss=", "-p", pid], { encoding: "utf8" });
  return r.status === 0 ? Math.round(Number(r.stdout.trim()) / 1024) : undefined;
}

/** Names of domains, networks, pools and volumes (in any pool) that start with `prefix`. */
export function leftovers(prefix: string): string[] {
  const names = (...args: string[]) =>
    virsh(...args)
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  const pools = names("pool-list", "--all", "--name");
  const volumes = pools.flatMap((p) => {
    try {
      return names("vol-list", p)
        .slice(2)
        .map((l) => `${p}/${l.split(/\s+/)[0]}`);
    } catch {
      return []; // an inactive pool lists no volumes
    }
  });
  return [
    ...names("list", "--all", "--name").map((d) => `domain ${d}`),
    ...names("net-list", "--all", "--name").map((n) => `network ${n}`),
    ...pools.map((p) => `pool ${p}`),
    ...volumes.map((v) => `volume ${v}`),
  ].filter(
    (s) =>
      s
        .split(" ")[1]
        .replace(/^[^/]*\//, "")
        .startsWith(prefix) || s.split(" ")[1].startsWith(prefix),
  );
}

/**
 * Removes every domain, network and pool (with its volumes) whose name starts with `prefix`, as a failed run
 * may leave them. Never throws half-way; returns the errors.
 */
export function purge(prefix: string): string[] {
  const errors: string[] = [];
  const attempt = (...args: string[]) => {
    try {
      virsh(...args);
    } catch (e) {
      if (!/not found|not running|no domain|no network|not active|no storage/i.test((e as Error).message))
        errors.push((e as Error).message);
    }
  };
  for (const item of leftovers(prefix)) {
    const [kind, name] = item.split(" ");
    if (kind === "domain") {
      attempt("destroy", name);
      attempt("undefine", name);
    } else if (kind === "network") {
      attempt("net-destroy", name);
      attempt("net-undefine", name);
    }
  }
  // Every volume first, those of our own pools too: `pool-delete` only removes an empty folder.
  for (const item of leftovers(prefix)) {
    const [kind, name] = item.split(" ");
    if (kind === "volume") attempt("vol-delete", name.split("/")[1], "--pool", name.split("/")[0]);
  }
  for (const item of leftovers(prefix)) {
    const [kind, name] = item.split(" ");
    if (kind !== "pool") continue;
    attempt("pool-destroy", name);
    attempt("pool-delete", name);
    attempt("pool-undefine", name);
  }
  return errors;
}
