// The libvirt resources as Pulumi dynamic providers (no libvirt provider plugin can be installed here):
// StoragePool, BaseImage, NodeDisk, SeedIso, NatNetwork and Domain. Each provider is an object literal of
// plain functions that Pulumi serializes into the state; they drive virsh & co. on the hypervisor through
// a Transport (see virsh.ts). Objects carry fixed physical names, so every replace deletes first.

import * as pulumi from "@pulumi/pulumi";
import {
  DhcpHost,
  dhcpHostXml,
  DomainSpec,
  domainChangePlan,
  domainXml,
  networkXml,
  parseDomainXml,
  parseNetworkXml,
  parseVolumeXml,
  poolXml,
} from "./render";
import {
  autostartOf,
  defineFromXml,
  domState,
  Host,
  hostOf,
  HypervisorInputs,
  isNotFound,
  localSha256,
  q,
  sha256Of,
  tempDir,
  uploadFile,
  volDelete,
  volFromFile,
  volXml,
} from "./virsh";

/** Plain diff of the listed keys (JSON equality). */
function changedKeys<T extends object>(olds: T, news: T, keys: readonly (keyof T)[]): string[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  return keys.filter((k) => !same(olds[k], news[k])).map(String);
}

/** Writes `message` to the Pulumi log when a log is attached (the dynamic-provider process has one). */
function note(message: string): void {
  try {
    // Required here, not captured: the serialized provider must not carry the engine connection.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("@pulumi/pulumi") as typeof pulumi).log.info(message);
  } catch {
    // no engine attached (direct calls in tests)
  }
}

// ---------------------------------------------------------------------------------------------- pool

export interface StoragePoolInputs extends HypervisorInputs {
  readonly name: string;
  /** Create a `dir` pool at this path. Absent: use the existing pool `name` (never created nor removed). */
  readonly path?: string;
}
export interface StoragePoolOutputs extends StoragePoolInputs {
  /** True when this resource created the pool (and so removes it). */
  readonly created: boolean;
}

async function poolActive(h: Host, name: string): Promise<boolean | undefined> {
  const r = await h.virshTry(`pool-info ${q(name)}`);
  if (r.code !== 0) {
    if (isNotFound(r)) return undefined;
    throw new Error(`hypervisor ${h.name}: virsh pool-info ${name} failed: ${r.stderr.trim()}`);
  }
  return /^State:\s+running/im.test(r.stdout);
}

export const storagePoolProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: StoragePoolOutputs, news: StoragePoolInputs) {
    const replaces = changedKeys(olds, news, ["name", "path"]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: StoragePoolInputs) {
    const h = hostOf(inputs);
    const active = await poolActive(h, inputs.name);
    if (inputs.path === undefined) {
      if (active === undefined)
        throw new Error(
          `hypervisor ${h.name}: storage pool ${inputs.name} does not exist (set pool.path to create it)`,
        );
      if (!active)
        throw new Error(`hypervisor ${h.name}: storage pool ${inputs.name} exists but is not running`);
      return { id: `${h.name}/${inputs.name}`, outs: { ...inputs, created: false } };
    }
    if (active === undefined) {
      await defineFromXml(h, "pool-define", poolXml(inputs.name, inputs.path));
      await h.virsh(`pool-build ${q(inputs.name)}`);
    }
    if (!active) await h.virsh(`pool-start ${q(inputs.name)}`);
    await h.virsh(`pool-autostart ${q(inputs.name)}`);
    return { id: `${h.name}/${inputs.name}`, outs: { ...inputs, created: active === undefined } };
  },
  async read(id: string, props: StoragePoolOutputs) {
    const active = await poolActive(hostOf(props), props.name);
    return active === undefined ? { id: "", props: {} } : { id, props };
  },
  async delete(_id: string, props: StoragePoolOutputs) {
    if (!props.created) return;
    const h = hostOf(props);
    const active = await poolActive(h, props.name);
    if (active === undefined) return;
    if (active) await h.virsh(`pool-destroy ${q(props.name)}`);
    // The folder pool-build made goes too, but only while empty: files someone else put there stay (libvirt
    // refuses to delete a folder that is not empty, and that refusal is not an error here).
    await h.virshTry(`pool-delete ${q(props.name)}`);
    await h.virsh(`pool-undefine ${q(props.name)}`);
  },
};

// ---------------------------------------------------------------------------------------------- base image

/** Where a base image comes from: exactly one of url (with sha256), file (local path) or volume (existing). */
export interface BaseImageSource {
  /** Downloaded with curl on the hypervisor, then checked against `sha256`. */
  readonly url?: string;
  /** sha256 (hex) of the file at `url` (required with url; checked for file when set). */
  readonly sha256?: string;
  /** A file on the machine running Pulumi, copied to the hypervisor. */
  readonly file?: string;
  /** An existing volume in the pool, used as is (never removed). */
  readonly volume?: string;
}

export interface BaseImageInputs extends HypervisorInputs {
  readonly pool: string;
  /** Volume name (for url/file); ignored for `volume`. */
  readonly name: string;
  readonly source: BaseImageSource;
}
export interface BaseImageOutputs extends BaseImageInputs {
  /** The volume the node disks use as backing file. */
  readonly volume: string;
  readonly path: string;
  readonly format: string;
  /** sha256 of the image (url/file sources). */
  readonly sha256: string;
  /** False for an existing volume (left alone on delete). */
  readonly owned: boolean;
  /** True when create found the volume already there with the right content (no download). */
  readonly reused: boolean;
}

export const baseImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: BaseImageInputs, news: BaseImageInputs) {
    const s = news.source ?? {};
    const given = (["url", "file", "volume"] as const).filter((k) => s[k] !== undefined);
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (given.length !== 1)
      failures.push({ property: "source", reason: "must set exactly one of url, file or volume" });
    if (s.url !== undefined && !/^[0-9a-f]{64}$/.test(s.sha256 ?? ""))
      failures.push({ property: "source", reason: "a url needs the sha256 (64 hex digits) of the image" });
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: BaseImageOutputs, news: BaseImageInputs) {
    const replaces = changedKeys(olds, news, ["pool", "name", "source"]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: BaseImageInputs) {
    const h = hostOf(inputs);
    const s = inputs.source;
    const id = `${h.name}/${inputs.pool}/${s.volume ?? inputs.name}`;
    if (s.volume !== undefined) {
      const xml = await volXml(h, inputs.pool, s.volume);
      if (!xml)
        throw new Error(`hypervisor ${h.name}: base image volume ${inputs.pool}/${s.volume} does not exist`);
      const v = parseVolumeXml(xml);
      const outs: BaseImageOutputs = {
        ...inputs,
        volume: s.volume,
        path: v.path,
        format: v.format,
        sha256: "",
        owned: false,
        reused: true,
      };
      return { id, outs };
    }
    const wanted = s.url !== undefined ? s.sha256! : (s.sha256 ?? localSha256(s.file!));
    // Never downloaded twice: a volume of this name with the right content is taken as is.
    const existing = await volXml(h, inputs.pool, inputs.name);
    if (existing) {
      const v = parseVolumeXml(existing);
      const sum = await sha256Of(h, v.path);
      if (sum !== wanted)
        throw new Error(
          `hypervisor ${h.name}: volume ${inputs.pool}/${inputs.name} exists with sha256 ${sum}, not ${wanted}; remove it or choose another image`,
        );
      const outs: BaseImageOutputs = {
        ...inputs,
        volume: inputs.name,
        path: v.path,
        format: v.format,
        sha256: sum,
        owned: true,
        reused: true,
      };
      return { id, outs };
    }
    const dir = await tempDir(h);
    const file = `${dir}/image`;
    try {
      let sum: string;
      if (s.url !== undefined) {
        await h.run(`download ${s.url}`, `curl -fsSL --retry 3 -o ${q(file)} ${q(s.url)}`);
        sum = await sha256Of(h, file);
      } else {
        sum = await uploadFile(h, s.file!, file);
      }
      if (sum !== wanted)
        throw new Error(
          `hypervisor ${h.name}: ${s.url ?? s.file} has sha256 ${sum}, expected ${wanted}; not imported`,
        );
      await volFromFile(h, inputs.pool, inputs.name, file);
      const v = parseVolumeXml((await volXml(h, inputs.pool, inputs.name))!);
      const outs: BaseImageOutputs = {
        ...inputs,
        volume: inputs.name,
        path: v.path,
        format: v.format,
        sha256: sum,
        owned: true,
        reused: false,
      };
      return { id, outs };
    } finally {
      await h.try(`rm -rf ${q(dir)}`);
    }
  },
  async read(id: string, props: BaseImageOutputs) {
    const xml = await volXml(hostOf(props), props.pool, props.volume);
    return xml ? { id, props: { ...props, path: parseVolumeXml(xml).path } } : { id: "", props: {} };
  },
  async delete(_id: string, props: BaseImageOutputs) {
    if (props.owned) await volDelete(hostOf(props), props.pool, props.volume);
  },
};

// ---------------------------------------------------------------------------------------------- node disk

export interface NodeDiskInputs extends HypervisorInputs {
  readonly pool: string;
  readonly name: string;
  /** Backing volume (the base image) in the same pool. */
  readonly base: string;
  readonly sizeGiB: number;
  /** The domain that uses the disk: a running one is grown with blockresize. */
  readonly domain: string;
}
export interface NodeDiskOutputs extends NodeDiskInputs {
  readonly path: string;
  readonly capacityBytes: number;
  readonly backingPath: string;
}

const GiB = 1024 * 1024 * 1024;

async function diskOutputs(h: Host, inputs: NodeDiskInputs): Promise<NodeDiskOutputs | undefined> {
  const xml = await volXml(h, inputs.pool, inputs.name);
  if (!xml) return undefined;
  const v = parseVolumeXml(xml);
  return {
    ...inputs,
    sizeGiB: v.capacityBytes / GiB,
    path: v.path,
    capacityBytes: v.capacityBytes,
    backingPath: v.backingPath ?? "",
  };
}

export const nodeDiskProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<NodeDiskOutputs>, news: NodeDiskInputs) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (!(news.sizeGiB > 0))
      failures.push({ property: "sizeGiB", reason: "must be a positive number of GiB" });
    if (olds.sizeGiB !== undefined && olds.name === news.name && news.sizeGiB < olds.sizeGiB)
      failures.push({
        property: "sizeGiB",
        reason: `disk ${news.name} is ${olds.sizeGiB} GiB and cannot shrink to ${news.sizeGiB} GiB (a filesystem would lose data); keep ${olds.sizeGiB} or more, or replace the node`,
      });
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: NodeDiskOutputs, news: NodeDiskInputs) {
    const replaces = changedKeys(olds, news, ["pool", "name", "base"]);
    const changes = replaces.length > 0 || changedKeys(olds, news, ["sizeGiB", "domain"]).length > 0;
    return { changes, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: NodeDiskInputs) {
    const h = hostOf(inputs);
    const base = await volXml(h, inputs.pool, inputs.base);
    if (!base)
      throw new Error(`hypervisor ${h.name}: base volume ${inputs.pool}/${inputs.base} does not exist`);
    const fmt = parseVolumeXml(base).format || "qcow2";
    await h.virsh(
      `vol-create-as ${q(inputs.pool)} ${q(inputs.name)} ${Math.round(inputs.sizeGiB * GiB)}b --format qcow2 --backing-vol ${q(inputs.base)} --backing-vol-format ${q(fmt)}`,
    );
    return { id: `${h.name}/${inputs.pool}/${inputs.name}`, outs: (await diskOutputs(h, inputs))! };
  },
  async read(id: string, props: NodeDiskOutputs) {
    const outs = await diskOutputs(hostOf(props), props);
    return outs ? { id, props: outs } : { id: "", props: {} };
  },
  async update(_id: string, olds: NodeDiskOutputs, news: NodeDiskInputs) {
    const h = hostOf(news);
    const bytes = Math.round(news.sizeGiB * GiB);
    if (bytes < olds.capacityBytes)
      throw new Error(
        `hypervisor ${h.name}: disk ${news.name} cannot shrink from ${olds.sizeGiB} to ${news.sizeGiB} GiB`,
      );
    if (bytes > olds.capacityBytes) {
      // A running domain holds the image open: grow it through the domain so QEMU sees the new size.
      if ((await domState(h, news.domain)) === "running")
        await h.virsh(`blockresize ${q(news.domain)} ${q(olds.path)} ${bytes}b`);
      else await h.virsh(`vol-resize --pool ${q(news.pool)} ${q(news.name)} ${bytes}b`);
    }
    return { outs: (await diskOutputs(h, news))! };
  },
  async delete(_id: string, props: NodeDiskOutputs) {
    await volDelete(hostOf(props), props.pool, props.name);
  },
};

// ---------------------------------------------------------------------------------------------- seed ISO

export interface SeedIsoInputs extends HypervisorInputs {
  readonly pool: string;
  readonly name: string;
  readonly userData: string;
  readonly metaData: string;
  readonly networkConfig: string;
}
export interface SeedIsoOutputs extends SeedIsoInputs {
  readonly path: string;
}

export const seedIsoProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: SeedIsoOutputs, news: SeedIsoInputs) {
    // cloud-init reads the seed once per instance: new content is a new seed (the guest sees it on a new instance).
    const replaces = changedKeys(olds, news, ["pool", "name", "userData", "metaData", "networkConfig"]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: SeedIsoInputs) {
    const h = hostOf(inputs);
    const dir = await tempDir(h);
    try {
      await h.run("write user-data", `cat > ${q(dir + "/user-data")}`, inputs.userData);
      await h.run("write meta-data", `cat > ${q(dir + "/meta-data")}`, inputs.metaData);
      await h.run("write network-config", `cat > ${q(dir + "/network-config")}`, inputs.networkConfig);
      // cloud-localds (cloud-image-utils) when present, else genisoimage with the NoCloud volume id `cidata`.
      await h.run(
        "make the seed ISO",
        `cd ${q(dir)} && if command -v cloud-localds >/dev/null; then cloud-localds -N network-config seed.iso user-data meta-data; ` +
          `else genisoimage -quiet -output seed.iso -volid cidata -joliet -rock user-data meta-data network-config; fi`,
      );
      await volFromFile(h, inputs.pool, inputs.name, `${dir}/seed.iso`);
    } finally {
      await h.try(`rm -rf ${q(dir)}`);
    }
    const v = parseVolumeXml((await volXml(h, inputs.pool, inputs.name))!);
    return { id: `${h.name}/${inputs.pool}/${inputs.name}`, outs: { ...inputs, path: v.path } };
  },
  async read(id: string, props: SeedIsoOutputs) {
    const xml = await volXml(hostOf(props), props.pool, props.name);
    return xml ? { id, props } : { id: "", props: {} };
  },
  async delete(_id: string, props: SeedIsoOutputs) {
    await volDelete(hostOf(props), props.pool, props.name);
  },
};

// ---------------------------------------------------------------------------------------------- network

export interface NatNetworkInputs extends HypervisorInputs {
  readonly name: string;
  readonly subnet: string;
  readonly hosts: readonly DhcpHost[];
}
export interface NatNetworkOutputs extends NatNetworkInputs {
  /** The bridge libvirt chose (virbrN). */
  readonly bridge: string;
  readonly active: boolean;
  readonly autostart: boolean;
}

async function netOutputs(h: Host, inputs: NatNetworkInputs): Promise<NatNetworkOutputs | undefined> {
  const r = await h.virshTry(`net-dumpxml --inactive ${q(inputs.name)}`);
  if (r.code !== 0) {
    if (isNotFound(r)) return undefined;
    throw new Error(`hypervisor ${h.name}: virsh net-dumpxml ${inputs.name} failed: ${r.stderr.trim()}`);
  }
  const n = parseNetworkXml(r.stdout);
  const info = await h.virsh(`net-info ${q(inputs.name)}`);
  return {
    ...inputs,
    subnet: n.subnet,
    hosts: n.hosts,
    bridge: n.bridge,
    active: /^Active:\s+yes/im.test(info),
    autostart: /^Autostart:\s+yes/im.test(info),
  };
}

const byMac = (hosts: readonly DhcpHost[]) => new Map(hosts.map((x) => [x.mac, x]));

export const natNetworkProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: NatNetworkOutputs, news: NatNetworkInputs) {
    const replaces = changedKeys(olds, news, ["name", "subnet"]);
    const sorted = (l: readonly DhcpHost[]) => [...l].sort((a, b) => a.mac.localeCompare(b.mac));
    const hostsChanged = JSON.stringify(sorted(olds.hosts)) !== JSON.stringify(sorted(news.hosts));
    const drift = olds.active === false || olds.autostart === false;
    return { changes: replaces.length > 0 || hostsChanged || drift, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: NatNetworkInputs) {
    const h = hostOf(inputs);
    await defineFromXml(h, "net-define", networkXml(inputs));
    await h.virsh(`net-start ${q(inputs.name)}`);
    await h.virsh(`net-autostart ${q(inputs.name)}`);
    return { id: `${h.name}/${inputs.name}`, outs: (await netOutputs(h, inputs))! };
  },
  async read(id: string, props: NatNetworkOutputs) {
    const outs = await netOutputs(hostOf(props), props);
    return outs ? { id, props: outs } : { id: "", props: {} };
  },
  async update(_id: string, olds: NatNetworkOutputs, news: NatNetworkInputs) {
    const h = hostOf(news);
    // Static leases change in place (live and in the persistent config): guests already on the network stay.
    const live = olds.active ? "--live --config" : "--config";
    const oldByMac = byMac(olds.hosts);
    const newByMac = byMac(news.hosts);
    for (const o of olds.hosts) {
      const n = newByMac.get(o.mac);
      if (!n || JSON.stringify(n) !== JSON.stringify(o))
        await h.virsh(`net-update ${q(news.name)} delete ip-dhcp-host ${q(dhcpHostXml(o))} ${live}`);
    }
    for (const n of news.hosts) {
      const o = oldByMac.get(n.mac);
      if (!o || JSON.stringify(n) !== JSON.stringify(o))
        await h.virsh(`net-update ${q(news.name)} add-last ip-dhcp-host ${q(dhcpHostXml(n))} ${live}`);
    }
    if (!olds.active) await h.virsh(`net-start ${q(news.name)}`);
    if (!olds.autostart) await h.virsh(`net-autostart ${q(news.name)}`);
    return { outs: (await netOutputs(h, news))! };
  },
  async delete(_id: string, props: NatNetworkOutputs) {
    const h = hostOf(props);
    const r = await h.virshTry(`net-destroy ${q(props.name)}`);
    if (r.code !== 0 && !isNotFound(r) && !/not active/i.test(r.stderr))
      throw new Error(`hypervisor ${h.name}: virsh net-destroy ${props.name} failed: ${r.stderr.trim()}`);
    const u = await h.virshTry(`net-undefine ${q(props.name)}`);
    if (u.code !== 0 && !isNotFound(u))
      throw new Error(`hypervisor ${h.name}: virsh net-undefine ${props.name} failed: ${u.stderr.trim()}`);
  },
};

// ---------------------------------------------------------------------------------------------- domain

export interface DomainInputs extends HypervisorInputs, DomainSpec {
  /** Start the domain with the hypervisor. Default true. */
  readonly autostart: boolean;
}
export interface DomainOutputs extends DomainInputs {
  readonly uuid: string;
  /** `virsh domstate`: running, shut off, ... */
  readonly state: string;
  readonly hasSerialConsole: boolean;
  readonly hasGuestAgentChannel: boolean;
}

/** The domain as libvirt has it: persistent config (`dumpxml --inactive`), state and autostart. */
async function domainOutputs(h: Host, inputs: DomainInputs): Promise<DomainOutputs | undefined> {
  const state = await domState(h, inputs.name);
  if (state === undefined) return undefined;
  const o = parseDomainXml(await h.virsh(`dumpxml --inactive ${q(inputs.name)}`));
  return {
    hypervisor: inputs.hypervisor,
    ...(inputs.privateKey !== undefined ? { privateKey: inputs.privateKey } : {}),
    ...o,
    autostart: await autostartOf(h, "dominfo", inputs.name),
    state,
  };
}

function specOf(p: DomainInputs): DomainSpec {
  const { hypervisor, privateKey, autostart, ...rest } = p as DomainInputs & Record<string, unknown>;
  void hypervisor;
  void privateKey;
  void autostart;
  const spec = { ...rest } as Record<string, unknown>;
  for (const k of ["uuid", "state", "hasSerialConsole", "hasGuestAgentChannel"]) delete spec[k];
  return spec as unknown as DomainSpec;
}

export const domainProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: DomainInputs, news: DomainInputs) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (news.maxVcpu < news.vcpu) failures.push({ property: "maxVcpu", reason: "must be >= vcpu" });
    if (news.maxMemoryMiB < news.memoryMiB)
      failures.push({ property: "maxMemoryMiB", reason: "must be >= memoryMiB" });
    if (news.boot && !news.boot.kernel.startsWith("/"))
      failures.push({ property: "boot", reason: "boot.kernel must be an absolute path on the hypervisor" });
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: DomainOutputs, news: DomainInputs) {
    const plan = domainChangePlan(specOf(olds), specOf(news));
    for (const r of plan.replace) note(`domain ${news.name}: replace: ${r.reason}`);
    const drift = olds.state !== "running" || olds.autostart !== news.autostart;
    return {
      changes: plan.inPlace.length > 0 || plan.replace.length > 0 || drift,
      replaces: plan.replace.map((r) => r.field),
      deleteBeforeReplace: true,
    };
  },
  async create(inputs: DomainInputs) {
    const h = hostOf(inputs);
    await defineFromXml(h, "define", domainXml(inputs));
    try {
      await h.virsh(`autostart ${inputs.autostart === false ? "--disable " : ""}${q(inputs.name)}`);
      await h.virsh(`start ${q(inputs.name)}`);
    } catch (err) {
      // A failed create leaves nothing behind (Pulumi records no state for it).
      await h.virshTry(`undefine ${q(inputs.name)}`);
      throw err;
    }
    return { id: `${h.name}/${inputs.name}`, outs: (await domainOutputs(h, inputs))! };
  },
  async read(id: string, props: DomainOutputs) {
    const outs = await domainOutputs(hostOf(props), props);
    return outs ? { id, props: outs } : { id: "", props: {} };
  },
  async update(_id: string, olds: DomainOutputs, news: DomainInputs) {
    const h = hostOf(news);
    const plan = domainChangePlan(specOf(olds), specOf(news));
    if (plan.replace.length > 0)
      throw new Error(`domain ${news.name}: ${plan.replace.map((r) => r.reason).join("; ")}`);
    // The persistent config first (what the next boot uses), then the running domain where libvirt allows.
    await defineFromXml(h, "define", domainXml(news, olds.uuid));
    const running = (await domState(h, news.name)) === "running";
    if (running && plan.inPlace.includes("memoryMiB"))
      await h.virsh(`setmem ${q(news.name)} ${news.memoryMiB * 1024} --live`);
    if (running && plan.inPlace.includes("vcpu"))
      await h.virsh(`setvcpus ${q(news.name)} ${news.vcpu} --live`);
    await h.virsh(`autostart ${news.autostart === false ? "--disable " : ""}${q(news.name)}`);
    if (!running) await h.virsh(`start ${q(news.name)}`);
    return { outs: (await domainOutputs(h, news))! };
  },
  async delete(_id: string, props: DomainOutputs) {
    // Destroy and undefine the domain, nothing else: its disk and seed ISO are their own resources, deleted
    // after it (they are its dependencies), and the base image and network stay for the other nodes.
    const h = hostOf(props);
    const state = await domState(h, props.name);
    if (state === undefined) return;
    if (state !== "shut off") await h.virsh(`destroy ${q(props.name)}`);
    await h.virsh(`undefine ${q(props.name)}`);
  },
};

// ---------------------------------------------------------------------------------------------- resources

type Args<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };
const SECRET_OUTPUTS = ["privateKey"];

function secretKey<T extends HypervisorInputs>(args: Args<T>): Args<T> {
  return args.privateKey === undefined ? args : { ...args, privateKey: pulumi.secret(args.privateKey) };
}
function withSecrets(opts?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...SECRET_OUTPUTS] };
}

/** A storage pool: an existing one by name, or a `dir` pool created at `path`. */
export class StoragePool extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly created: pulumi.Output<boolean>;
  constructor(name: string, args: Args<StoragePoolInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      storagePoolProvider,
      name,
      { ...secretKey(args), created: undefined },
      withSecrets(opts),
      "libvirt",
      "StoragePool",
    );
  }
}

/** The base image volume of one hypervisor and pool (downloaded, uploaded, or existing). */
export class BaseImage extends pulumi.dynamic.Resource {
  declare public readonly volume: pulumi.Output<string>;
  declare public readonly path: pulumi.Output<string>;
  declare public readonly sha256: pulumi.Output<string>;
  constructor(name: string, args: Args<BaseImageInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      baseImageProvider,
      name,
      {
        ...secretKey(args),
        volume: undefined,
        path: undefined,
        format: undefined,
        sha256: undefined,
        owned: undefined,
        reused: undefined,
      },
      withSecrets(opts),
      "libvirt",
      "BaseImage",
    );
  }
}

/** A node's qcow2 disk backed by the base image. */
export class NodeDisk extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly path: pulumi.Output<string>;
  declare public readonly capacityBytes: pulumi.Output<number>;
  constructor(name: string, args: Args<NodeDiskInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      nodeDiskProvider,
      name,
      { ...secretKey(args), path: undefined, capacityBytes: undefined, backingPath: undefined },
      withSecrets(opts),
      "libvirt",
      "NodeDisk",
    );
  }
}

/** A node's NoCloud seed ISO. */
export class SeedIso extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly path: pulumi.Output<string>;
  constructor(name: string, args: Args<SeedIsoInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      seedIsoProvider,
      name,
      { ...secretKey(args), path: undefined },
      withSecrets(opts),
      "libvirt",
      "SeedIso",
    );
  }
}

/** A NAT network with static DHCP leases. */
export class NatNetwork extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly bridge: pulumi.Output<string>;
  constructor(name: string, args: Args<NatNetworkInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      natNetworkProvider,
      name,
      { ...secretKey(args), bridge: undefined, active: undefined, autostart: undefined },
      withSecrets(opts),
      "libvirt",
      "NatNetwork",
    );
  }
}

/** A VM. */
export class Domain extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly uuid: pulumi.Output<string>;
  declare public readonly state: pulumi.Output<string>;
  constructor(name: string, args: Args<DomainInputs>, opts?: pulumi.CustomResourceOptions) {
    super(
      domainProvider,
      name,
      {
        ...secretKey(args),
        uuid: undefined,
        state: undefined,
        hasSerialConsole: undefined,
        hasGuestAgentChannel: undefined,
      },
      withSecrets(opts),
      "libvirt",
      "Domain",
    );
  }
}
