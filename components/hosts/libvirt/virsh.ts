// Host steps of the libvirt node source: `virsh`, `qemu-img`, `cloud-localds`/`genisoimage` and `curl`, run
// on a hypervisor through a Transport (SSH, or a local shell). Every error names the hypervisor and the
// command; the SSH private key never appears in one (the Transport redacts it).

/* eslint-disable @typescript-eslint/no-require-imports */
import { ExecResult, localTransport, sshTransport, Transport } from "../transport";

/** How to reach one hypervisor. */
export interface HypervisorConn {
  /** Name in config and in messages. */
  readonly name: string;
  /** libvirt URI on the hypervisor itself. Default `qemu:///system`. */
  readonly uri?: string;
  /** SSH to the hypervisor; absent: this machine runs the commands itself. */
  readonly ssh?: {
    readonly address: string;
    /** Default 22. */
    readonly port?: number;
    /** Default root. */
    readonly user?: string;
    readonly hostKeyFingerprint?: string;
  };
}

/** What every libvirt provider's inputs carry to reach its hypervisor. */
export interface HypervisorInputs {
  readonly hypervisor: HypervisorConn;
  /** SSH private key (secret); required when hypervisor.ssh is set. */
  readonly privateKey?: string;
}

export interface Host {
  readonly t: Transport;
  readonly name: string;
  /** True when the hypervisor is this machine (no `ssh`): files are copied, not streamed. */
  readonly local: boolean;
  /** Runs a command; throws (naming the hypervisor, `what` and stderr) on a non-zero exit. */
  run(what: string, command: string, stdin?: string): Promise<string>;
  /** Runs a command and returns its result whatever the exit code. */
  try(command: string, stdin?: string): Promise<ExecResult>;
  /** `virsh -c <uri> <args>` (args already quoted). */
  virsh(args: string, stdin?: string): Promise<string>;
  virshTry(args: string, stdin?: string): Promise<ExecResult>;
}

/** POSIX single-quoting. */
export function q(s: string | number): string {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

export function hostOf(p: HypervisorInputs): Host {
  const hv = p.hypervisor;
  let t: Transport;
  if (hv.ssh) {
    if (!p.privateKey) throw new Error(`hypervisor ${hv.name}: an SSH private key is required to reach it`);
    t = sshTransport({
      host: hv.name,
      address: hv.ssh.address,
      port: hv.ssh.port,
      user: hv.ssh.user,
      privateKey: p.privateKey,
      hostKeyFingerprint: hv.ssh.hostKeyFingerprint,
    });
  } else {
    t = localTransport({ LC_ALL: "C" });
  }
  const uri = hv.uri ?? "qemu:///system";
  const run = async (what: string, command: string, stdin?: string) => {
    const r = await t.exec(command, stdin);
    if (r.code !== 0) {
      const err = (r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ");
      throw new Error(`hypervisor ${hv.name}: ${what} failed (exit ${r.code}): ${err}`);
    }
    return r.stdout;
  };
  const virsh = (args: string, stdin?: string) =>
    run(`virsh ${args.split(" ")[0]}`, `virsh -q -c ${q(uri)} ${args}`, stdin);
  return {
    t,
    name: hv.name,
    local: !hv.ssh,
    run,
    try: (command, stdin) => t.exec(command, stdin),
    virsh,
    virshTry: (args, stdin) => t.exec(`virsh -q -c ${q(uri)} ${args}`, stdin),
  };
}

/** A libvirt "not found" answer (domain, network, pool or volume). */
export function isNotFound(r: ExecResult): boolean {
  return (
    r.code !== 0 && /not found|no (domain|network|storage pool|storage vol)|failed to get/i.test(r.stderr)
  );
}

/** Defines an object from XML sent on stdin (net-define, define, pool-define). */
export async function defineFromXml(h: Host, verb: string, xml: string): Promise<void> {
  const tmp = (await h.run("mktemp", "mktemp /tmp/swarmform-XXXXXX.xml")).trim();
  try {
    await h.run(`write ${tmp}`, `cat > ${q(tmp)}`, xml);
    await h.virsh(`${verb} ${q(tmp)}`);
  } finally {
    await h.try(`rm -f ${q(tmp)}`);
  }
}

/** The volume's XML, or undefined when it does not exist. */
export async function volXml(h: Host, pool: string, vol: string): Promise<string | undefined> {
  const r = await h.virshTry(`vol-dumpxml --pool ${q(pool)} ${q(vol)}`);
  if (r.code === 0) return r.stdout;
  if (isNotFound(r)) return undefined;
  throw new Error(`hypervisor ${h.name}: virsh vol-dumpxml ${pool}/${vol} failed: ${r.stderr.trim()}`);
}

/** Deletes a volume; a volume that is already gone is fine. */
export async function volDelete(h: Host, pool: string, vol: string): Promise<void> {
  const r = await h.virshTry(`vol-delete --pool ${q(pool)} ${q(vol)}`);
  if (r.code !== 0 && !isNotFound(r))
    throw new Error(`hypervisor ${h.name}: virsh vol-delete ${pool}/${vol} failed: ${r.stderr.trim()}`);
}

/** Creates volume `vol` in `pool` from a file on the hypervisor (format detected by qemu-img). */
export async function volFromFile(h: Host, pool: string, vol: string, file: string): Promise<void> {
  const info = JSON.parse(await h.run("qemu-img info", `qemu-img info --output=json ${q(file)}`)) as {
    format: string;
  };
  const size = (await h.run("stat", `stat -c %s ${q(file)}`)).trim();
  const format = info.format === "qcow2" ? "qcow2" : "raw";
  await h.virsh(`vol-create-as ${q(pool)} ${q(vol)} ${size}b --format ${format}`);
  try {
    await h.virsh(`vol-upload --pool ${q(pool)} ${q(vol)} ${q(file)}`);
  } catch (err) {
    await volDelete(h, pool, vol);
    throw err;
  }
}

/** Makes a temporary directory on the hypervisor. */
export async function tempDir(h: Host): Promise<string> {
  return (await h.run("mktemp -d", "mktemp -d /tmp/swarmform-XXXXXX")).trim();
}

/**
 * Copies a local file to `dest` on the hypervisor: with `cp` when the hypervisor is this machine, else through
 * the Transport (base64 in chunks on stdin, over SSH; a 1 GB image streamed that way to a local shell took
 * 13 min on a loaded 2-core machine). Returns the file's sha256 as computed on the hypervisor.
 */
export async function uploadFile(h: Host, local: string, dest: string): Promise<string> {
  if (h.local) {
    await h.run(`copy to ${dest}`, `cp --sparse=always ${q(local)} ${q(dest)}`);
    return sha256Of(h, dest);
  }
  const fs = require("fs") as typeof import("fs");
  const CHUNK = 24 * 1024 * 1024;
  await h.run(`truncate ${dest}`, `: > ${q(dest)}`);
  const fd = fs.openSync(local, "r");
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      await h.run(`upload to ${dest}`, `base64 -d >> ${q(dest)}`, buf.subarray(0, n).toString("base64"));
    }
  } finally {
    fs.closeSync(fd);
  }
  return sha256Of(h, dest);
}

export async function sha256Of(h: Host, path: string): Promise<string> {
  return (await h.run("sha256sum", `sha256sum ${q(path)}`)).trim().split(/\s+/)[0];
}

/** sha256 of a local file. */
export function localSha256(file: string): string {
  const crypto = require("crypto") as typeof import("crypto");
  const fs = require("fs") as typeof import("fs");
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** `virsh domstate`: running, shut off, ... or undefined when the domain does not exist. */
export async function domState(h: Host, name: string): Promise<string | undefined> {
  const r = await h.virshTry(`domstate ${q(name)}`);
  if (r.code === 0) return r.stdout.trim();
  if (isNotFound(r)) return undefined;
  throw new Error(`hypervisor ${h.name}: virsh domstate ${name} failed: ${r.stderr.trim()}`);
}

/** Whether libvirt starts the object (domain, net or pool) at boot, from `virsh dominfo`/`net-info`/`pool-info`. */
export async function autostartOf(h: Host, verb: string, name: string): Promise<boolean> {
  const out = await h.virsh(`${verb} ${q(name)}`);
  return /^Autostart:\s+(yes|enable)/im.test(out);
}
