// Pure functions of the libvirt node source: physical names, MAC addresses, placement on hypervisors, and the
// documents libvirt and cloud-init read (pool, network and domain XML; NoCloud user-data, meta-data and
// network-config), plus the parsers of what `virsh dumpxml` prints back. No I/O here.
//
// Functions that providers call after serialization require their modules inside the function body.

/* eslint-disable @typescript-eslint/no-require-imports */

/** Names every libvirt object of one node carries: `<project>-<stack>-<node>` (two stacks never collide). */
export interface VmNames {
  readonly domain: string;
  readonly disk: string;
  readonly seed: string;
}

export function vmNames(project: string, stack: string, node: string): VmNames {
  const base = `${project}-${stack}-${node}`;
  return { domain: base, disk: `${base}.qcow2`, seed: `${base}-seed.iso` };
}

/** The NAT network of one stack on one hypervisor: `<project>-<stack>`. */
export function networkName(project: string, stack: string): string {
  return `${project}-${stack}`;
}

/** The base image volume, shared by every node of the stack on one hypervisor and pool. */
export function baseVolumeName(project: string, stack: string, image: string): string {
  return `${project}-${stack}-base-${image}`;
}

/** A fixed MAC in QEMU's locally administered range 52:54:00, derived from project, stack and node. */
export function macFor(project: string, stack: string, node: string): string {
  const crypto = require("crypto") as typeof import("crypto");
  const h = crypto.createHash("sha256").update(`${project}/${stack}/${node}`).digest();
  return ["52", "54", "00", ...[0, 1, 2].map((i) => h[i].toString(16).padStart(2, "0"))].join(":");
}

export { placeNodes } from "../../config/libvirt";

/** XML text/attribute escaping. */
export function xe(s: string | number): string {
  return String(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

// ---------------------------------------------------------------------------------------------- IPv4

export function ipToInt(ip: string): number {
  return ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
}
export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
/** `192.168.130.0/24` → network, prefix, netmask, gateway (first address) and whether `ip` lies inside. */
export function parseCidr(cidr: string): {
  network: string;
  prefix: number;
  netmask: string;
  gateway: string;
  contains(ip: string): boolean;
} {
  const [addr, p] = cidr.split("/");
  const prefix = Number(p);
  const size = 2 ** (32 - prefix);
  const base = Math.floor(ipToInt(addr) / size) * size;
  return {
    network: intToIp(base),
    prefix,
    netmask: intToIp(2 ** 32 - size),
    gateway: intToIp(base + 1),
    contains: (ip) => {
      const n = ipToInt(ip);
      return n > base + 1 && n < base + size - 1;
    },
  };
}

// ---------------------------------------------------------------------------------------------- pool

/** A `dir` storage pool at `path`. */
export function poolXml(name: string, path: string): string {
  return [
    `<pool type='dir'>`,
    `  <name>${xe(name)}</name>`,
    `  <target>`,
    `    <path>${xe(path)}</path>`,
    `  </target>`,
    `</pool>`,
    ``,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------- network

export interface DhcpHost {
  readonly name: string;
  readonly mac: string;
  readonly ip: string;
}

export interface NatNetworkSpec {
  readonly name: string;
  /** IPv4 CIDR; the first address is the gateway (the host side), nodes get fixed addresses inside it. */
  readonly subnet: string;
  /** Static leases: fixed MAC → fixed address. No dynamic range: every guest's address is known in advance. */
  readonly hosts: readonly DhcpHost[];
}

export function dhcpHostXml(h: DhcpHost): string {
  return `<host mac='${xe(h.mac)}' name='${xe(h.name)}' ip='${xe(h.ip)}'/>`;
}

/** A NAT network with one static DHCP lease per node. */
export function networkXml(n: NatNetworkSpec): string {
  const c = parseCidr(n.subnet);
  return [
    `<network>`,
    `  <name>${xe(n.name)}</name>`,
    `  <forward mode='nat'/>`,
    `  <ip address='${c.gateway}' netmask='${c.netmask}'>`,
    `    <dhcp>`,
    ...n.hosts.map((h) => `      ${dhcpHostXml(h)}`),
    `    </dhcp>`,
    `  </ip>`,
    `</network>`,
    ``,
  ].join("\n");
}

export interface NetworkObservation {
  readonly name: string;
  readonly subnet: string;
  readonly bridge: string;
  readonly hosts: DhcpHost[];
}

/** Parses `virsh net-dumpxml`. */
export function parseNetworkXml(xml: string): NetworkObservation {
  const net = parseXml(xml).network;
  const ip = arr(net.ip)[0] ?? {};
  const prefix = 32 - Math.log2(2 ** 32 - ipToInt(String(ip["@_netmask"] ?? "255.255.255.0")));
  return {
    name: String(net.name),
    // parseCidr rounds the gateway address down to its network (unsigned: `&` would turn 192.x negative).
    subnet: `${parseCidr(`${String(ip["@_address"])}/${prefix}`).network}/${prefix}`,
    bridge: String(net.bridge?.["@_name"] ?? ""),
    hosts: arr(ip.dhcp?.host).map((h: Record<string, string>) => ({
      name: String(h["@_name"] ?? ""),
      mac: String(h["@_mac"]).toLowerCase(),
      ip: String(h["@_ip"]),
    })),
  };
}

// ---------------------------------------------------------------------------------------------- domain

/** Where the NIC goes: a libvirt network (NAT with static leases), or a host bridge onto an existing network. */
export type NicSpec =
  | { readonly kind: "network"; readonly network: string; readonly mac: string }
  | { readonly kind: "bridge"; readonly bridge: string; readonly mac: string };

/** Direct kernel boot (no bootloader in the image). */
export interface KernelBoot {
  /** Path of the kernel on the hypervisor. */
  readonly kernel: string;
  /** Path of the initrd on the hypervisor. Default: none. */
  readonly initrd?: string;
  /** Kernel command line, e.g. `root=/dev/vda rw console=ttyS0`. Default: none. */
  readonly cmdline?: string;
}

export interface DomainSpec {
  readonly name: string;
  /** `kvm` (hardware virtualisation) or `qemu` (TCG emulation, where the CPU has no vmx/svm). */
  readonly type: "kvm" | "qemu";
  readonly vcpu: number;
  /** vCPUs the domain can be raised to while running (hotplug). >= vcpu. */
  readonly maxVcpu: number;
  readonly memoryMiB: number;
  /** Memory the domain can be raised to while running (balloon). >= memoryMiB. */
  readonly maxMemoryMiB: number;
  readonly pool: string;
  /** Volume (in `pool`) of the node disk, attached as vda (virtio). */
  readonly disk: string;
  /** Volume (in `pool`) of the cloud-init seed ISO, attached as a SATA cdrom. Default: none. */
  readonly seed?: string;
  readonly nic: NicSpec;
  readonly boot?: KernelBoot;
  /** TCG translation cache in MiB (type qemu only); helps emulated guests. Default: none. */
  readonly tcgCacheMiB?: number;
}

/**
 * Where the hypervisor keeps what a domain printed on its serial console since it last started (virtlogd
 * writes it): the first place to look when a guest boots but never answers on SSH.
 */
export function consoleLogPath(domain: string): string {
  return `/var/log/libvirt/qemu/${domain}-console.log`;
}

/**
 * Domain XML: virtio disk, seed cdrom, NIC with a fixed MAC, serial console (logged), qemu-guest-agent channel.
 * `uuid`: the existing domain's, to redefine it (libvirt refuses a second domain of the same name).
 */
export function domainXml(d: DomainSpec, uuid?: string): string {
  const kib = (mib: number) => mib * 1024;
  const os = d.boot
    ? [
        `    <kernel>${xe(d.boot.kernel)}</kernel>`,
        ...(d.boot.initrd ? [`    <initrd>${xe(d.boot.initrd)}</initrd>`] : []),
        ...(d.boot.cmdline ? [`    <cmdline>${xe(d.boot.cmdline)}</cmdline>`] : []),
      ]
    : [`    <boot dev='hd'/>`];
  const nic =
    d.nic.kind === "network"
      ? `<interface type='network'>\n      <source network='${xe(d.nic.network)}'/>`
      : `<interface type='bridge'>\n      <source bridge='${xe(d.nic.bridge)}'/>`;
  const tcg =
    d.type === "qemu" && d.tcgCacheMiB
      ? [`    <tcg>`, `      <tb-cache unit='MiB'>${d.tcgCacheMiB}</tb-cache>`, `    </tcg>`]
      : [];
  return [
    `<domain type='${d.type}'>`,
    `  <name>${xe(d.name)}</name>`,
    ...(uuid ? [`  <uuid>${xe(uuid)}</uuid>`] : []),
    `  <memory unit='KiB'>${kib(d.maxMemoryMiB)}</memory>`,
    `  <currentMemory unit='KiB'>${kib(d.memoryMiB)}</currentMemory>`,
    `  <vcpu placement='static' current='${d.vcpu}'>${d.maxVcpu}</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='q35'>hvm</type>`,
    ...os,
    `  </os>`,
    `  <features>`,
    `    <acpi/>`,
    `    <apic/>`,
    ...tcg,
    `  </features>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    `    <disk type='volume' device='disk'>`,
    `      <driver name='qemu' type='qcow2'/>`,
    `      <source pool='${xe(d.pool)}' volume='${xe(d.disk)}'/>`,
    `      <target dev='vda' bus='virtio'/>`,
    `    </disk>`,
    ...(d.seed
      ? [
          `    <disk type='volume' device='cdrom'>`,
          `      <driver name='qemu' type='raw'/>`,
          `      <source pool='${xe(d.pool)}' volume='${xe(d.seed)}'/>`,
          `      <target dev='sda' bus='sata'/>`,
          `      <readonly/>`,
          `    </disk>`,
        ]
      : []),
    `    ${nic}`,
    `      <mac address='${xe(d.nic.mac)}'/>`,
    `      <model type='virtio'/>`,
    `    </interface>`,
    `    <serial type='pty'>`,
    `      <log file='${xe(consoleLogPath(d.name))}' append='off'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <console type='pty'>`,
    `      <target type='serial' port='0'/>`,
    `    </console>`,
    `    <channel type='unix'>`,
    `      <target type='virtio' name='org.qemu.guest_agent.0'/>`,
    `    </channel>`,
    `    <memballoon model='virtio'/>`,
    `    <rng model='virtio'>`,
    `      <backend model='random'>/dev/urandom</backend>`,
    `    </rng>`,
    `  </devices>`,
    `</domain>`,
    ``,
  ].join("\n");
}

/** What `virsh dumpxml` says about a domain, in the terms of DomainSpec (plus what libvirt assigned). */
export interface DomainObservation extends DomainSpec {
  readonly uuid: string;
  readonly hasSerialConsole: boolean;
  readonly hasGuestAgentChannel: boolean;
}

/** Parses `virsh dumpxml` (live or `--inactive`). */
export function parseDomainXml(xml: string): DomainObservation {
  const d = parseXml(xml).domain;
  const toMiB = (e: Record<string, unknown>) => {
    const unit = String(e["@_unit"] ?? "KiB");
    const n = Number(e["#text"]);
    const factor: Record<string, number> = { KiB: 1 / 1024, MiB: 1, GiB: 1024, b: 1 / 1048576 };
    return Math.round(n * (factor[unit] ?? 1 / 1024));
  };
  const vcpu = d.vcpu as Record<string, unknown>;
  const maxVcpu = Number(vcpu["#text"]);
  const disks = arr(d.devices?.disk) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  const disk = disks.find((x) => x["@_device"] === "disk");
  const cdrom = disks.find((x) => x["@_device"] === "cdrom");
  const iface = arr(d.devices?.interface)[0] as Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
  const mac = String(iface?.mac?.["@_address"] ?? "").toLowerCase();
  const nic: NicSpec =
    iface?.["@_type"] === "bridge"
      ? { kind: "bridge", bridge: String(iface.source?.["@_bridge"] ?? ""), mac }
      : { kind: "network", network: String(iface?.source?.["@_network"] ?? ""), mac };
  const os = d.os ?? {};
  const channels = arr(d.devices?.channel) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  const cache = d.features?.tcg?.["tb-cache"];
  return {
    name: String(d.name),
    uuid: String(d.uuid ?? ""),
    type: d["@_type"] === "kvm" ? "kvm" : "qemu",
    vcpu: vcpu["@_current"] !== undefined ? Number(vcpu["@_current"]) : maxVcpu,
    maxVcpu,
    memoryMiB: toMiB(d.currentMemory ?? d.memory),
    maxMemoryMiB: toMiB(d.memory),
    pool: String(disk?.source?.["@_pool"] ?? ""),
    disk: String(disk?.source?.["@_volume"] ?? disk?.source?.["@_file"] ?? ""),
    ...(cdrom?.source?.["@_volume"] ? { seed: String(cdrom.source["@_volume"]) } : {}),
    nic,
    ...(os.kernel
      ? {
          boot: {
            kernel: String(os.kernel),
            ...(os.initrd ? { initrd: String(os.initrd) } : {}),
            ...(os.cmdline ? { cmdline: String(os.cmdline) } : {}),
          },
        }
      : {}),
    ...(cache ? { tcgCacheMiB: toMiB(cache) } : {}),
    hasSerialConsole: arr(d.devices?.serial).length > 0,
    hasGuestAgentChannel: channels.some((c) => c.target?.["@_name"] === "org.qemu.guest_agent.0"),
  };
}

/** The fields of a domain that its config decides (what read compares with the inputs). */
export const DOMAIN_FIELDS = [
  "name",
  "type",
  "vcpu",
  "maxVcpu",
  "memoryMiB",
  "maxMemoryMiB",
  "pool",
  "disk",
  "seed",
  "nic",
  "boot",
  "tcgCacheMiB",
] as const;

export interface DomainChangePlan {
  /** Fields that change in place (define the new XML; apply live to a running domain). */
  readonly inPlace: string[];
  /** Fields that need a new domain, each with the reason. */
  readonly replace: { readonly field: string; readonly reason: string }[];
}

/**
 * How a domain moves from `old` to `next`. vcpu and memory change in place up to the maxima the domain was
 * started with (libvirt hotplugs vCPUs and moves the balloon); beyond them, and for every other field,
 * the domain is replaced.
 */
export function domainChangePlan(old: DomainSpec, next: DomainSpec): DomainChangePlan {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const inPlace: string[] = [];
  const replace: { field: string; reason: string }[] = [];
  for (const f of DOMAIN_FIELDS) {
    if (same(old[f], next[f])) continue;
    if (f === "vcpu" && next.vcpu <= old.maxVcpu && same(old.maxVcpu, next.maxVcpu)) inPlace.push(f);
    else if (
      f === "memoryMiB" &&
      next.memoryMiB <= old.maxMemoryMiB &&
      same(old.maxMemoryMiB, next.maxMemoryMiB)
    )
      inPlace.push(f);
    else if (f === "vcpu" || f === "maxVcpu")
      replace.push({
        field: f,
        reason: `vcpu ${next.vcpu} (max ${next.maxVcpu}) is beyond the maximum of ${old.maxVcpu} the domain was defined with; libvirt cannot raise the maximum of a running domain`,
      });
    else if (f === "memoryMiB" || f === "maxMemoryMiB")
      replace.push({
        field: f,
        reason: `memory ${next.memoryMiB} MiB (max ${next.maxMemoryMiB}) is beyond the maximum of ${old.maxMemoryMiB} MiB the domain was defined with; libvirt cannot raise the maximum of a running domain`,
      });
    else replace.push({ field: f, reason: `${f} cannot change on an existing domain` });
  }
  return { inPlace, replace };
}

// ---------------------------------------------------------------------------------------------- volumes

export interface VolumeObservation {
  readonly name: string;
  readonly path: string;
  readonly capacityBytes: number;
  readonly format: string;
  /** Path of the backing file, if any. */
  readonly backingPath?: string;
}

/** Parses `virsh vol-dumpxml`. */
export function parseVolumeXml(xml: string): VolumeObservation {
  const v = parseXml(xml).volume;
  const unit = String(v.capacity?.["@_unit"] ?? "bytes");
  const factor: Record<string, number> = { bytes: 1, b: 1, KiB: 1024, MiB: 1048576, GiB: 1073741824 };
  return {
    name: String(v.name),
    path: String(v.target?.path ?? ""),
    capacityBytes: Number(v.capacity?.["#text"] ?? v.capacity) * (factor[unit] ?? 1),
    format: String(v.target?.format?.["@_type"] ?? ""),
    ...(v.backingStore?.path ? { backingPath: String(v.backingStore.path) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------- cloud-init

export interface GuestSpec {
  readonly hostname: string;
  /** Admin user created with the SSH key (in the docker group, passwordless sudo). `root`: the key goes to root. */
  readonly user: string;
  readonly sshAuthorizedKey: string;
  /**
   * Docker from the distribution (`docker.io`), from an apt repository (`docker-ce`), or already in the base
   * image (`image`: nothing is installed at first boot, so a guest without internet boots the same way).
   */
  readonly docker:
    | { readonly source: "distribution" | "image" }
    | {
        readonly source: "repository";
        readonly url: string;
        readonly keyUrl: string;
        readonly suite: string;
      };
  /** Address Docker's metrics endpoint listens on (`metrics-addr` in daemon.json), e.g. `0.0.0.0:9323`. */
  readonly metricsAddress: string;
  /** Registry host:port the daemon trusts: its CA (PEM) goes to /etc/docker/certs.d/<host:port>/ca.crt. Default none. */
  readonly registry?: { readonly address: string; readonly caPem?: string };
  /** NTP servers. Default: the distribution's pool. */
  readonly ntpServers?: readonly string[];
}

/** /etc/docker/daemon.json: rotated json-file logs, the metrics address, live restore off (swarm mode). */
export function daemonJson(g: Pick<GuestSpec, "metricsAddress">): string {
  return (
    JSON.stringify(
      {
        "log-driver": "json-file",
        "log-opts": { "max-size": "10m", "max-file": "3" },
        "metrics-addr": g.metricsAddress,
      },
      null,
      2,
    ) + "\n"
  );
}

/** NoCloud user-data (`#cloud-config`). */
export function userData(g: GuestSpec): string {
  const YAML = require("yaml") as typeof import("yaml");
  const isRoot = g.user === "root";
  const packages =
    g.docker.source === "image"
      ? []
      : g.docker.source === "distribution"
        ? ["docker.io", "qemu-guest-agent", "chrony"]
        : ["docker-ce", "docker-ce-cli", "containerd.io", "qemu-guest-agent", "chrony"];
  const files: Record<string, unknown>[] = [
    { path: "/etc/docker/daemon.json", permissions: "0644", content: daemonJson(g) },
  ];
  if (g.registry?.caPem) {
    files.push({
      path: `/etc/docker/certs.d/${g.registry.address}/ca.crt`,
      permissions: "0644",
      content: g.registry.caPem,
    });
  }
  const doc: Record<string, unknown> = {
    hostname: g.hostname,
    fqdn: g.hostname,
    manage_etc_hosts: true,
    disable_root: !isRoot,
    ssh_pwauth: false,
    groups: ["docker"],
    users: isRoot
      ? [{ name: "root", lock_passwd: true, ssh_authorized_keys: [g.sshAuthorizedKey] }]
      : [
          {
            name: g.user,
            groups: ["docker"],
            sudo: "ALL=(ALL) NOPASSWD:ALL",
            shell: "/bin/bash",
            lock_passwd: true,
            ssh_authorized_keys: [g.sshAuthorizedKey],
          },
        ],
    ...(g.docker.source === "repository"
      ? {
          // The repository key is fetched before apt runs; the source line trusts only that key.
          bootcmd: [
            [
              "sh",
              "-c",
              `mkdir -p /etc/apt/keyrings && curl -fsSL '${g.docker.keyUrl}' -o /etc/apt/keyrings/docker.asc`,
            ],
          ],
          apt: {
            sources: {
              "docker.list": {
                source: `deb [signed-by=/etc/apt/keyrings/docker.asc] ${g.docker.url} ${g.docker.suite} stable`,
              },
            },
          },
        }
      : {}),
    // With Docker in the image nothing is installed: no apt update, and time sync is the image's own.
    ...(packages.length > 0
      ? {
          package_update: true,
          packages,
          ntp: {
            enabled: true,
            ntp_client: "chrony",
            ...(g.ntpServers ? { servers: [...g.ntpServers] } : {}),
          },
        }
      : {}),
    write_files: files,
    runcmd: [
      ["systemctl", "enable", "--now", "qemu-guest-agent"],
      ["systemctl", "enable", "--now", "docker"],
    ],
  };
  return "#cloud-config\n" + YAML.stringify(doc, { lineWidth: 0 });
}

/** NoCloud meta-data: the instance id (a new one makes cloud-init run again) and the host name. */
export function metaData(instanceId: string, hostname: string): string {
  return `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`;
}

/** NoCloud network-config (version 2): the NIC, matched by its MAC, gets its fixed address statically. */
export function networkConfig(n: {
  mac: string;
  address: string;
  subnet: string;
  gateway?: string;
  nameservers?: readonly string[];
}): string {
  const YAML = require("yaml") as typeof import("yaml");
  const c = parseCidr(n.subnet);
  const gateway = n.gateway ?? c.gateway;
  return YAML.stringify({
    version: 2,
    ethernets: {
      eth0: {
        match: { macaddress: n.mac },
        "set-name": "eth0",
        addresses: [`${n.address}/${c.prefix}`],
        routes: [{ to: "0.0.0.0/0", via: gateway }],
        nameservers: { addresses: [...(n.nameservers ?? [gateway])] },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------- xml

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function parseXml(xml: string): any {
  const { XMLParser } = require("fast-xml-parser") as typeof import("fast-xml-parser");
  return new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", parseTagValue: false }).parse(
    xml,
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function arr(x: any): any[] {
  return x === undefined || x === null ? [] : Array.isArray(x) ? x : [x];
}
