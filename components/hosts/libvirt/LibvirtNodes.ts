// LibvirtNodes: the VMs of the `libvirt` node source. Per hypervisor in use: the storage pool, the base image
// (shared by its nodes, imported once) and, in NAT mode, the network with a static lease per node. Per node:
// its disk (backed by the base image), its cloud-init seed ISO and its domain.

import * as pulumi from "@pulumi/pulumi";
import { LibvirtSpec, placeNodes, vmSizeOf } from "../../config/libvirt";
import type { HostSpec } from "../../config/types";
import { BaseImage, Domain, NatNetwork, NodeDisk, SeedIso, StoragePool } from "./provider";
import {
  baseVolumeName,
  macFor,
  metaData,
  networkConfig,
  networkName,
  parseCidr,
  userData,
  vmNames,
} from "./render";
import type { HypervisorConn } from "./virsh";

export interface LibvirtNodesArgs {
  /** Project and stack: every physical name carries them. */
  readonly project: string;
  readonly stack: string;
  /** The nodes; `address` is the VM's fixed IP, `user` the admin user cloud-init creates. */
  readonly hosts: readonly HostSpec[];
  readonly libvirt: LibvirtSpec;
  /** SSH private key (secret): reaches SSH hypervisors; its public half is authorized in every guest. */
  readonly privateKey: pulumi.Input<string>;
}

/** The OpenSSH public key line of a private key (ssh2 parses OpenSSH and PEM keys). */
export function publicKeyOf(privateKey: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { utils } = require("ssh2") as typeof import("ssh2");
  const key = utils.parseKey(privateKey);
  if (key instanceof Error)
    throw new Error(`sshPrivateKey: cannot be parsed (${key.message.split("\n")[0]})`);
  const k = Array.isArray(key) ? key[0] : key;
  return `${k.type} ${k.getPublicSSH().toString("base64")}`;
}

export function connOf(h: LibvirtSpec["hypervisors"][number]): HypervisorConn {
  return { name: h.name, uri: h.uri, ...(h.ssh ? { ssh: { ...h.ssh } } : {}) };
}

export class LibvirtNodes extends pulumi.ComponentResource {
  /** The domain of each node, by host name (the membership of a node depends on it). */
  public readonly domains: Readonly<Record<string, Domain>>;
  /** The hypervisor of each node, by host name. */
  public readonly placement: Readonly<Record<string, string>>;

  constructor(name: string, args: LibvirtNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:hosts:LibvirtNodes", name, {}, opts);
    const { project, stack, libvirt } = args;
    const privateKey = pulumi.secret(args.privateKey);
    const authorizedKey = privateKey.apply(publicKeyOf);
    const hvs = new Map(libvirt.hypervisors.map((h) => [h.name, h]));
    this.placement = placeNodes(args.hosts, [...hvs.keys()]);
    const net = libvirt.network;
    const image = libvirt.baseImage;
    const baseName = baseVolumeName(project, stack, image.name);
    const macOf = (h: HostSpec) => h.vm?.mac ?? macFor(project, stack, h.name);

    // Per hypervisor in use.
    const perHv: Record<string, { pool: StoragePool; base: BaseImage; network?: NatNetwork }> = {};
    for (const hvName of new Set(Object.values(this.placement))) {
      const hv = hvs.get(hvName)!;
      const conn = { hypervisor: connOf(hv), privateKey };
      const pool = new StoragePool(
        `${name}-${hvName}-pool`,
        { ...conn, name: hv.pool.name, ...(hv.pool.path ? { path: hv.pool.path } : {}) },
        { parent: this },
      );
      const base = new BaseImage(
        `${name}-${hvName}-base`,
        {
          ...conn,
          pool: pool.name,
          name: baseName,
          source: {
            ...(image.url ? { url: image.url } : {}),
            ...(image.sha256 ? { sha256: image.sha256 } : {}),
            ...(image.file ? { file: image.file } : {}),
            ...(image.volume ? { volume: image.volume } : {}),
          },
        },
        { parent: this },
      );
      const network =
        net.mode === "nat"
          ? new NatNetwork(
              `${name}-${hvName}-network`,
              {
                ...conn,
                name: networkName(project, stack),
                subnet: net.subnet,
                hosts: args.hosts
                  .filter((h) => this.placement[h.name] === hvName)
                  .map((h) => ({ name: h.name, mac: macOf(h), ip: h.address })),
              },
              { parent: this },
            )
          : undefined;
      perHv[hvName] = { pool, base, network };
    }

    // Per node.
    const domains: Record<string, Domain> = {};
    for (const h of args.hosts) {
      const hvName = this.placement[h.name];
      const { pool, base, network } = perHv[hvName];
      const conn = { hypervisor: connOf(hvs.get(hvName)!), privateKey };
      const names = vmNames(project, stack, h.name);
      const size = vmSizeOf(libvirt, h.vm);
      const mac = macOf(h);
      const disk = new NodeDisk(
        `${name}-${h.name}-disk`,
        {
          ...conn,
          pool: pool.name,
          name: names.disk,
          base: base.volume,
          sizeGiB: size.diskGiB,
          domain: names.domain,
        },
        { parent: this, dependsOn: [base] },
      );
      const gateway = net.gateway ?? parseCidr(net.subnet).gateway;
      const seed = new SeedIso(
        `${name}-${h.name}-seed`,
        {
          ...conn,
          pool: pool.name,
          name: names.seed,
          userData: authorizedKey.apply((key) =>
            userData({
              hostname: h.name,
              user: h.user,
              sshAuthorizedKey: key,
              docker:
                libvirt.docker.source === "repository"
                  ? {
                      source: "repository",
                      url: libvirt.docker.url!,
                      keyUrl: libvirt.docker.keyUrl!,
                      suite: libvirt.docker.suite!,
                    }
                  : { source: libvirt.docker.source },
              metricsAddress: libvirt.metricsAddress,
            }),
          ),
          metaData: metaData(names.domain, h.name),
          networkConfig: networkConfig({
            mac,
            address: h.address,
            subnet: net.subnet,
            gateway,
            ...(net.nameservers ? { nameservers: net.nameservers } : {}),
          }),
        },
        { parent: this },
      );
      domains[h.name] = new Domain(
        `${name}-${h.name}`,
        {
          ...conn,
          name: names.domain,
          type: libvirt.domainType,
          vcpu: size.vcpu,
          maxVcpu: size.maxVcpu,
          memoryMiB: size.memoryMiB,
          maxMemoryMiB: size.maxMemoryMiB,
          pool: pool.name,
          disk: disk.name,
          seed: seed.name,
          nic:
            net.mode === "nat"
              ? { kind: "network", network: networkName(project, stack), mac }
              : { kind: "bridge", bridge: net.bridge!, mac },
          ...(libvirt.boot ? { boot: { ...libvirt.boot } } : {}),
          ...(libvirt.tcgCacheMiB ? { tcgCacheMiB: libvirt.tcgCacheMiB } : {}),
          autostart: true,
        },
        { parent: this, dependsOn: network ? [disk, seed, network] : [disk, seed] },
      );
    }
    this.domains = domains;
    this.registerOutputs({ placement: this.placement });
  }
}
