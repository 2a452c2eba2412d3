// Config of the `libvirt` node source (`nodes.libvirt` and each host's `vm`): the zod schemas, and the
// checks that span keys (placement, addresses inside the subnet, one network per hypervisor for NAT).
import { z } from "zod";
import { ConfigIssue, keyOrigin } from "./errors";
import { strict } from "./strictObject";

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ipv4 = z.string({ error: "must be an IPv4 address" }).regex(IPV4, { error: "must be an IPv4 address" });
const cidr = z
  .string({ error: "must be an IPv4 CIDR a.b.c.d/n (n 8-30)" })
  .refine((s) => IPV4.test(s.split("/")[0]) && /^\/([89]|[12]\d|30)$/.test(s.slice(s.indexOf("/"))), {
    error: "must be an IPv4 CIDR a.b.c.d/n (n 8-30)",
  });
const whole = (min: number, unit = "") =>
  z
    .number({ error: `must be a whole number >= ${min}${unit}` })
    .int({ error: `must be a whole number >= ${min}${unit}` })
    .min(min, { error: `must be a whole number >= ${min}${unit}` });
const absPath = z
  .string({ error: "must be an absolute path on the hypervisor" })
  .regex(/^\/\S*$/, { error: "must be an absolute path on the hypervisor" });
const objName = z
  .string({ error: "must be a name: letters, digits, '_', '.', '-'" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: "must be a name: letters, digits, '_', '.', '-'" });
const MAC = /^52:54:00(:[0-9a-f]{2}){3}$/;

export const hypervisorSchema = strict({
  name: z.string({ error: "must be a hypervisor name" }).regex(/^[a-z0-9][a-z0-9-]*$/, {
    error: "must be a hypervisor name: lower-case letters, digits and '-'",
  }),
  uri: z
    .string({ error: "must be a libvirt URI, e.g. qemu:///system" })
    .regex(/^[a-z0-9+]+:\/\/\S*$/, { error: "must be a libvirt URI, e.g. qemu:///system" })
    .default("qemu:///system"),
  ssh: strict({
    address: z
      .string({ error: "must be an IPv4 address or DNS name" })
      .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, { error: "must be an IPv4 address or DNS name" }),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, { error: "must be a user name" })
      .default("root"),
    port: whole(1).max(65535, { error: "must be a port number 1-65535" }).default(22),
    hostKeyFingerprint: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, {
        error: "must be SHA256:<base64> as printed by ssh-keygen -lf",
      })
      .optional(),
  }).optional(),
  pool: strict({ name: objName.default("default"), path: absPath.optional() }).prefault({}),
});

export const libvirtSchema = strict({
  hypervisors: z
    .array(hypervisorSchema, { error: "must be a list of hypervisors" })
    .min(1, { error: "must list at least one hypervisor" }),
  baseImage: strict({
    name: objName.default("debian-12"),
    url: z.url({ error: "must be an http(s) URL" }).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, { error: "must be the sha256 of the image: 64 lower-case hex digits" })
      .optional(),
    file: z.string({ error: "must be a path" }).min(1).optional(),
    volume: objName.optional(),
  }),
  network: strict({
    mode: z.enum(["nat", "bridge"], { error: "must be nat or bridge" }).default("nat"),
    subnet: cidr,
    bridge: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: "must be a host bridge name (at most 15 characters)" })
      .optional(),
    gateway: ipv4.optional(),
    nameservers: z.array(ipv4, { error: "must be a list of IPv4 addresses" }).optional(),
  }),
  domainType: z.enum(["kvm", "qemu"], { error: "must be kvm or qemu (emulation)" }).default("kvm"),
  defaults: strict({
    vcpu: whole(1).default(2),
    maxVcpu: whole(1).optional(),
    memoryMiB: whole(128, " (MiB)").default(2048),
    maxMemoryMiB: whole(128, " (MiB)").optional(),
    diskGiB: whole(1, " (GiB)").default(20),
  }).prefault({}),
  docker: strict({
    source: z
      .enum(["distribution", "repository", "image"], { error: "must be distribution, repository or image" })
      .default("distribution"),
    url: z.url({ error: "must be the apt repository URL" }).optional(),
    keyUrl: z.url({ error: "must be the URL of the repository's signing key" }).optional(),
    suite: objName.optional(),
  }).prefault({}),
  metricsAddress: z
    .string()
    .regex(/^[0-9.]+:\d{1,5}$/, { error: "must be address:port, e.g. 0.0.0.0:9323" })
    .default("0.0.0.0:9323"),
  bootTimeoutSeconds: whole(30, " (seconds)").default(600),
  boot: strict({ kernel: absPath, initrd: absPath.optional(), cmdline: z.string().optional() }).optional(),
  tcgCacheMiB: whole(1, " (MiB)").optional(),
});

export const hostVmSchema = strict({
  hypervisor: z.string({ error: "must name a hypervisor of nodes.libvirt.hypervisors" }).optional(),
  vcpu: whole(1).optional(),
  maxVcpu: whole(1).optional(),
  memoryMiB: whole(128, " (MiB)").optional(),
  maxMemoryMiB: whole(128, " (MiB)").optional(),
  diskGiB: whole(1, " (GiB)").optional(),
  mac: z.string().regex(MAC, { error: "must be a MAC in 52:54:00:xx:xx:xx (lower-case hex)" }).optional(),
});

export type LibvirtSpec = z.output<typeof libvirtSchema>;
export type HypervisorSpec = z.output<typeof hypervisorSchema>;
export type HostVmSpec = z.output<typeof hostVmSchema>;

/** What one node's VM gets: the host's `vm` keys over `nodes.libvirt.defaults`. */
export function vmSizeOf(
  libvirt: LibvirtSpec,
  vm: HostVmSpec | undefined,
): { vcpu: number; maxVcpu: number; memoryMiB: number; maxMemoryMiB: number; diskGiB: number } {
  const d = libvirt.defaults;
  const vcpu = vm?.vcpu ?? d.vcpu;
  const memoryMiB = vm?.memoryMiB ?? d.memoryMiB;
  return {
    vcpu,
    maxVcpu: vm?.maxVcpu ?? d.maxVcpu ?? vcpu,
    memoryMiB,
    maxMemoryMiB: vm?.maxMemoryMiB ?? d.maxMemoryMiB ?? memoryMiB,
    diskGiB: vm?.diskGiB ?? d.diskGiB,
  };
}

interface HostLike {
  readonly name: string;
  readonly address: string;
  readonly vm?: HostVmSpec;
}

/**
 * Placement: a host with `vm.hypervisor` goes there; the others are dealt round robin, in the order of
 * nodes.hosts, over the hypervisors in the order listed (the first unplaced host to the first hypervisor).
 */
export function placeNodes(
  hosts: readonly HostLike[],
  hypervisors: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  let next = 0;
  for (const h of hosts) out[h.name] = h.vm?.hypervisor ?? hypervisors[next++ % hypervisors.length];
  return out;
}

/** Checks that span keys of the libvirt node source. */
export function checkLibvirt(libvirt: LibvirtSpec | undefined, hosts: readonly HostLike[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (key: string, message: string) => issues.push({ origin: keyOrigin(key), message });
  if (!libvirt) {
    at("nodes.libvirt", "is required when nodes.source is libvirt: hypervisors, baseImage and network");
    return issues;
  }
  if (hosts.length === 0)
    at("nodes.hosts", "must list at least one manager host when nodes.source is libvirt");
  const names = libvirt.hypervisors.map((h) => h.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i)
      at(`nodes.libvirt.hypervisors[${i}].name`, `must be unique; "${n}" is listed twice`);
  });
  const b = libvirt.baseImage;
  const sources = (["url", "file", "volume"] as const).filter((k) => b[k] !== undefined);
  if (sources.length !== 1)
    at(
      "nodes.libvirt.baseImage",
      `must set exactly one of url (with sha256), file or volume; got ${sources.join(", ") || "none"}`,
    );
  if (b.url !== undefined && b.sha256 === undefined)
    at(
      "nodes.libvirt.baseImage.sha256",
      "is required with baseImage.url (the download is checked against it)",
    );
  const n = libvirt.network;
  if (n.mode === "bridge" && n.bridge === undefined)
    at("nodes.libvirt.network.bridge", "is required when network.mode is bridge (the host bridge, e.g. br0)");
  if (n.mode === "nat" && n.bridge !== undefined)
    at("nodes.libvirt.network.bridge", "is only for network.mode bridge (a NAT network gets its own bridge)");
  const d = libvirt.docker;
  if (d.source === "repository")
    for (const k of ["url", "keyUrl", "suite"] as const)
      if (d[k] === undefined) at(`nodes.libvirt.docker.${k}`, "is required when docker.source is repository");
  const maxOk = (v: number | undefined, max: number | undefined) =>
    v === undefined || max === undefined || max >= v;
  if (!maxOk(libvirt.defaults.vcpu, libvirt.defaults.maxVcpu))
    at("nodes.libvirt.defaults.maxVcpu", "must be >= defaults.vcpu");
  if (!maxOk(libvirt.defaults.memoryMiB, libvirt.defaults.maxMemoryMiB))
    at("nodes.libvirt.defaults.maxMemoryMiB", "must be >= defaults.memoryMiB");
  if (libvirt.tcgCacheMiB !== undefined && libvirt.domainType !== "qemu")
    at("nodes.libvirt.tcgCacheMiB", "is only for domainType qemu (emulation)");

  const subnet = parseSubnet(n.subnet);
  const gateway = n.gateway ?? subnet?.gateway;
  const macs = new Map<string, number>();
  hosts.forEach((h, i) => {
    const key = `nodes.hosts[${i}]`;
    if (h.vm?.hypervisor !== undefined && !names.includes(h.vm.hypervisor))
      at(
        `${key}.vm.hypervisor`,
        `must be one of nodes.libvirt.hypervisors: ${names.join(", ")}; got "${h.vm.hypervisor}"`,
      );
    if (subnet && (!IPV4.test(h.address) || !subnet.contains(h.address) || h.address === gateway))
      at(
        `${key}.address`,
        `must be a fixed IPv4 address inside nodes.libvirt.network.subnet ${n.subnet}, other than the gateway ${gateway}; got "${h.address}"`,
      );
    const size = vmSizeOf(libvirt, h.vm);
    if (size.maxVcpu < size.vcpu) at(`${key}.vm.maxVcpu`, `must be >= vcpu (${size.vcpu})`);
    if (size.maxMemoryMiB < size.memoryMiB)
      at(`${key}.vm.maxMemoryMiB`, `must be >= memoryMiB (${size.memoryMiB})`);
    if (h.vm?.mac !== undefined) {
      const j = macs.get(h.vm.mac);
      if (j !== undefined) at(`${key}.vm.mac`, `must be unique; it is also the mac of nodes.hosts[${j}]`);
      macs.set(h.vm.mac, i);
    }
  });
  if (n.mode === "nat" && issues.length === 0) {
    const used = new Set(Object.values(placeNodes(hosts, names)));
    if (used.size > 1)
      at(
        "nodes.libvirt.network.mode",
        `is nat, but the nodes are placed on ${used.size} hypervisors (${[...used].join(", ")}): a NAT network is private to one hypervisor, so nodes on different ones cannot reach each other; use mode bridge (onto a network the hypervisors share) or place every node on one hypervisor with vm.hypervisor`,
      );
  }
  return issues;
}

function parseSubnet(c: string): { gateway: string; contains(ip: string): boolean } | undefined {
  const [addr, p] = c.split("/");
  if (!IPV4.test(addr)) return undefined;
  const toInt = (ip: string) => ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(p));
  const base = Math.floor(toInt(addr) / size) * size;
  const gw = base + 1;
  return {
    gateway: [24, 16, 8, 0].map((s) => Math.floor(gw / 2 ** s) % 256).join("."),
    contains: (ip) => toInt(ip) > base && toInt(ip) < base + size - 1,
  };
}
