// The `libvirt` node source: its config checks, placement, renderers, the graph it registers under Pulumi
// mocks (VMs first, each node's membership after its domain, secrets kept secret), and that every libvirt
// dynamic provider survives pulumi.runtime.serializeFunction.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { parseClusterConfig, resolvePlatform } from "../../components/config/clusterConfig";
import { placeNodes } from "../../components/config/libvirt";
import { publicKeyOf } from "../../components/hosts/libvirt/LibvirtNodes";
import { generateSshKeyPair } from "../../components/hosts/transport";
import * as providers from "../../components/hosts/libvirt/provider";
import {
  domainChangePlan,
  DomainSpec,
  domainXml,
  macFor,
  networkConfig,
  networkXml,
  parseDomainXml,
  parseNetworkXml,
  userData,
  vmNames,
} from "../../components/hosts/libvirt/render";
import { readPulumiStackFile } from "../../components/config/load";
import { byUrn, CapturedResource, ofType, ProgramRun, runProgram } from "../support/mocks";
import { loadSerialized } from "../testbed/serialize";

const FIXTURE = path.resolve(__dirname, "../fixtures/config/libvirt/Pulumi.dev-libvirt.yaml");
const KEY = generateSshKeyPair();
const T = (t: string) => `pulumi-nodejs:dynamic/libvirt:${t}`;
const SWARM_NODE = "pulumi-nodejs:dynamic/swarm:SwarmNode";
const NAMES = ["dev-manager-1", "dev-manager-2", "dev-manager-3", "dev-worker-1", "dev-worker-2"];

/** The fixture's `swarmform:` config as a plain map, with `over` merged into nodes.libvirt. */
function rawConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  const file = readPulumiStackFile(FIXTURE);
  const raw = Object.fromEntries(
    Object.entries(file.config).map(([k, v]) => [k.replace(/^swarmform:/, ""), v]),
  ) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  raw.nodes = { ...raw.nodes, libvirt: { ...raw.nodes.libvirt, ...over } };
  return raw;
}
function issuesOf(raw: Record<string, unknown>): string[] {
  const parsed = parseClusterConfig(raw);
  if (!parsed.config) return parsed.issues.map((i) => `${(i.origin as { key: string }).key}: ${i.message}`);
  return resolvePlatform(parsed.config, { project: "swarmform", stack: "dev" }).issues.map(
    (i) => `${(i.origin as { key: string }).key}: ${i.message}`,
  );
}

describe("config of nodes.source libvirt", () => {
  test("the dev fixture is valid", () => {
    expect(issuesOf(rawConfig())).toEqual([]);
  });

  test("bad keys are reported with their key and what is allowed", () => {
    const raw = rawConfig({
      baseImage: { url: "https://example.org/x.img" },
      network: { mode: "bridge", subnet: "10.40.0.0/24" },
      domainType: "xen",
    });
    expect(issuesOf(raw)).toEqual([
      'swarmform:nodes.libvirt.domainType: must be kvm or qemu (emulation); got "xen"',
    ]);
    expect(
      issuesOf(rawConfig({ domainType: "kvm", baseImage: { url: "https://example.org/x.img" } })),
    ).toContain(
      "swarmform:nodes.libvirt.baseImage.sha256: is required with baseImage.url (the download is checked against it)",
    );
    expect(issuesOf(rawConfig({ network: { mode: "bridge", subnet: "10.40.0.0/24" } }))).toContain(
      "swarmform:nodes.libvirt.network.bridge: is required when network.mode is bridge (the host bridge, e.g. br0)",
    );
    expect(issuesOf(rawConfig({ network: { mode: "nat", subnet: "10.99.0.0/24" } }))).toContain(
      'swarmform:nodes.hosts[0].address: must be a fixed IPv4 address inside nodes.libvirt.network.subnet 10.99.0.0/24, other than the gateway 10.99.0.1; got "10.40.0.11"',
    );
    expect(issuesOf(rawConfig({ network: { mode: "nat", subnet: "10.40.0.0/24" } }))).toEqual([
      expect.stringMatching(
        /^swarmform:nodes\.libvirt\.network\.mode: is nat, but the nodes are placed on 2 hypervisors \(hv1, hv2\)/,
      ),
    ]);
    expect(issuesOf(rawConfig({ hypervisors: [{ name: "hv1", color: "red" }] }))).toContain(
      "swarmform:nodes.libvirt.hypervisors[0].color: unknown key; allowed keys here: name, uri, ssh, pool",
    );
  });

  test("placement: explicit per node, the others round robin in order", () => {
    const hosts = [
      { name: "a", address: "" },
      { name: "b", address: "", vm: { hypervisor: "hv1" } },
      { name: "c", address: "" },
      { name: "d", address: "" },
    ];
    expect(placeNodes(hosts, ["hv1", "hv2"])).toEqual({ a: "hv1", b: "hv1", c: "hv2", d: "hv1" });
  });
});

describe("renderers", () => {
  const spec: DomainSpec = {
    name: "p-s-n1",
    type: "qemu",
    vcpu: 1,
    maxVcpu: 2,
    memoryMiB: 512,
    maxMemoryMiB: 1024,
    pool: "default",
    disk: "p-s-n1.qcow2",
    seed: "p-s-n1-seed.iso",
    nic: { kind: "bridge", bridge: "br0", mac: macFor("p", "s", "n1") },
    boot: {
      kernel: "/var/lib/k/vmlinuz",
      initrd: "/var/lib/k/initrd.img",
      cmdline: "root=/dev/vda rw console=ttyS0",
    },
    tcgCacheMiB: 256,
  };

  test("domain XML parses back to the spec it was rendered from", () => {
    const o = parseDomainXml(domainXml(spec));
    expect({ ...o, uuid: undefined, hasSerialConsole: undefined, hasGuestAgentChannel: undefined }).toEqual({
      ...spec,
      uuid: undefined,
      hasSerialConsole: undefined,
      hasGuestAgentChannel: undefined,
    });
    expect(o.hasSerialConsole && o.hasGuestAgentChannel).toBe(true);
    expect(domainXml(spec, "0b7d3a8e-1111-2222-3333-444455556666")).toContain(
      "<uuid>0b7d3a8e-1111-2222-3333-444455556666</uuid>",
    );
  });

  test("vcpu and memory change in place up to their maxima; beyond, and other fields, replace with a reason", () => {
    expect(domainChangePlan(spec, { ...spec, vcpu: 2, memoryMiB: 768 })).toEqual({
      inPlace: ["vcpu", "memoryMiB"],
      replace: [],
    });
    const p = domainChangePlan(spec, { ...spec, memoryMiB: 2048, maxMemoryMiB: 2048 });
    expect(p.replace.map((r) => r.field)).toEqual(["memoryMiB", "maxMemoryMiB"]);
    expect(p.replace[0].reason).toMatch(/beyond the maximum of 1024 MiB/);
    expect(domainChangePlan(spec, { ...spec, boot: undefined }).replace).toEqual([
      { field: "boot", reason: "boot cannot change on an existing domain" },
    ]);
  });

  test("names carry project, stack and node; MACs are fixed and in 52:54:00", () => {
    expect(vmNames("swarmform", "dev", "m1")).toEqual({
      domain: "swarmform-dev-m1",
      disk: "swarmform-dev-m1.qcow2",
      seed: "swarmform-dev-m1-seed.iso",
    });
    expect(macFor("swarmform", "dev", "m1")).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(macFor("swarmform", "dev", "m1")).toBe(macFor("swarmform", "dev", "m1"));
    expect(macFor("swarmform", "dev", "m1")).not.toBe(macFor("swarmform", "prod", "m1"));
  });

  test("user-data and network-config carry the node's identity, key and fixed address", () => {
    const ud = userData({
      hostname: "m1",
      user: "root",
      sshAuthorizedKey: "ssh-ed25519 AAAA k",
      docker: { source: "distribution" },
      metricsAddress: "0.0.0.0:9323",
    });
    expect(ud.startsWith("#cloud-config\n")).toBe(true);
    expect(ud).toMatch(/hostname: m1/);
    expect(ud).toMatch(/disable_root: false/);
    expect(ud).toContain("ssh-ed25519 AAAA k");
    expect(ud).toContain('"metrics-addr": "0.0.0.0:9323"');
    const nc = networkConfig({ mac: "52:54:00:01:02:03", address: "10.40.0.11", subnet: "10.40.0.0/24" });
    expect(nc).toContain("- 10.40.0.11/24");
    expect(nc).toContain("via: 10.40.0.1");
  });

  test("docker.source image installs nothing at first boot (no apt, no NTP client), distribution does", () => {
    const guest = {
      hostname: "m1",
      user: "ops",
      sshAuthorizedKey: "ssh-ed25519 AAAA k",
      metricsAddress: "0.0.0.0:9323",
    };
    const parse = (docker: { source: "distribution" | "image" }) =>
      YAML.parse(userData({ ...guest, docker }).replace(/^#cloud-config\n/, "")) as Record<string, unknown>;
    const fromImage = parse({ source: "image" });
    expect(fromImage).not.toHaveProperty("packages");
    expect(fromImage).not.toHaveProperty("package_update");
    expect(fromImage).not.toHaveProperty("ntp");
    expect(fromImage.runcmd).toEqual([
      ["systemctl", "enable", "--now", "qemu-guest-agent"],
      ["systemctl", "enable", "--now", "docker"],
    ]);
    const fromDistribution = parse({ source: "distribution" });
    expect(fromDistribution.packages).toEqual(["docker.io", "qemu-guest-agent", "chrony"]);
    expect(fromDistribution.package_update).toBe(true);
  });

  test.each(["10.237.181.0/24", "192.168.217.0/24", "172.16.32.0/20"])(
    "a network's XML reads back as the same subnet and leases (%s)",
    (subnet) => {
      const hosts = [{ name: "m1", mac: "52:54:00:01:02:03", ip: subnet.replace(/\.0\/\d+$/, ".10") }];
      const back = parseNetworkXml(networkXml({ name: "sf-dev", subnet, hosts }));
      expect(back).toMatchObject({ name: "sf-dev", subnet, hosts });
    },
  );

  test("the guests' authorized key is the public half of sshPrivateKey", () => {
    expect(publicKeyOf(KEY.private)).toBe(KEY.public.split(" ").slice(0, 2).join(" "));
  });
});

describe("each libvirt provider serializes as Pulumi does it, and the copy works", () => {
  test.each([
    "storagePoolProvider",
    "baseImageProvider",
    "nodeDiskProvider",
    "seedIsoProvider",
    "natNetworkProvider",
    "domainProvider",
  ] as const)("%s", async (name) => {
    const p = providers[name];
    const sf = await pulumi.runtime.serializeFunction(() => p, { allowSecrets: true });
    expect(sf.text).not.toContain("PRIVATE KEY");
    const copy = (loadSerialized(sf.text).handler as () => pulumi.dynamic.ResourceProvider)();
    expect(copy).not.toBe(p);
    expect(typeof copy.create).toBe("function");
    expect(typeof copy.delete).toBe("function");
    // The copy runs: a hypervisor reached over SSH without a key is refused before any command.
    const hv = { hypervisor: { name: "hvx", ssh: { address: "192.0.2.1" } } };
    await expect(
      copy.delete!("id", { ...hv, name: "x", pool: "p", created: true, owned: true }),
    ).rejects.toThrow("hypervisor hvx: an SSH private key is required to reach it");
  });
});

describe("Pulumi.dev-libvirt.yaml under mocks", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram({ stackFile: FIXTURE, secrets: { sshPrivateKey: KEY.private } });
  }, 120_000);
  const one = (type: string, name: string): CapturedResource => {
    const r = ofType(run, type).find((x) => x.name === name);
    if (!r) throw new Error(`no ${type} ${name}: ${ofType(run, type).map((x) => x.name)}`);
    return r;
  };
  const ns = "swarmform-dev-libvirt";

  test("one pool and one base image per hypervisor, a disk, seed and domain per node, no NAT network", () => {
    expect(
      ofType(run, T("StoragePool"))
        .map((r) => r.name)
        .sort(),
    ).toEqual([`${ns}-vms-hv1-pool`, `${ns}-vms-hv2-pool`]);
    expect(ofType(run, T("BaseImage"))).toHaveLength(2);
    expect(ofType(run, T("NatNetwork"))).toHaveLength(0);
    expect(ofType(run, T("NodeDisk"))).toHaveLength(5);
    expect(ofType(run, T("SeedIso"))).toHaveLength(5);
    expect(ofType(run, T("Domain"))).toHaveLength(5);
    const hvOf = (n: string) => one(T("Domain"), `${ns}-vms-${n}`).inputs.hypervisor.name;
    expect(NAMES.map(hvOf)).toEqual(["hv1", "hv2", "hv1", "hv2", "hv1"]);
    const w1 = one(T("Domain"), `${ns}-vms-dev-worker-1`).inputs;
    expect(w1).toMatchObject({
      name: "swarmform-dev-libvirt-dev-worker-1",
      type: "kvm",
      vcpu: 4,
      maxVcpu: 4,
      memoryMiB: 4096,
      maxMemoryMiB: 4096,
      pool: "swarmform",
      disk: "swarmform-dev-libvirt-dev-worker-1.qcow2",
      seed: "swarmform-dev-libvirt-dev-worker-1-seed.iso",
      nic: { kind: "bridge", bridge: "br0", mac: macFor("swarmform", "dev-libvirt", "dev-worker-1") },
      autostart: true,
    });
    expect(one(T("NodeDisk"), `${ns}-vms-dev-worker-1-disk`).inputs.sizeGiB).toBe(40);
    expect(one(T("Domain"), `${ns}-vms-dev-manager-2`).inputs).toMatchObject({
      vcpu: 2,
      maxVcpu: 4,
      memoryMiB: 2048,
      maxMemoryMiB: 4096,
    });
  });

  test("dependencies: disk on the base image; domain on its disk and seed; membership on the domain", () => {
    for (const n of NAMES) {
      const domain = one(T("Domain"), `${ns}-vms-${n}`);
      const disk = one(T("NodeDisk"), `${ns}-vms-${n}-disk`);
      const seed = one(T("SeedIso"), `${ns}-vms-${n}-seed`);
      const hv = domain.inputs.hypervisor.name;
      expect(disk.dependencies).toContain(one(T("BaseImage"), `${ns}-vms-${hv}-base`).urn);
      expect(domain.dependencies).toEqual(expect.arrayContaining([disk.urn, seed.urn]));
      // The swarm node of this host depends on its domain: Pulumi creates the VM first, and on removal
      // deletes the SwarmNode (drain, leave, node rm) before it destroys the domain.
      const member = one(SWARM_NODE, `${ns}-swarm-${n}`);
      expect(member.dependencies).toContain(domain.urn);
      expect(member.inputs).toMatchObject({ address: disk ? expect.stringMatching(/^10\.40\.0\.\d+$/) : "" });
      expect(member.inputs.timeouts).toEqual({ readySeconds: 600 });
    }
  });

  test("the SSH private key stays secret everywhere, and so does the user-data derived from it", () => {
    const libvirt = run.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/libvirt:"));
    expect(libvirt.length).toBe(19);
    for (const r of [...libvirt, ...ofType(run, SWARM_NODE)]) {
      expect([r.name, r.secretInputs]).toEqual([r.name, expect.arrayContaining(["privateKey"])]);
      expect(r.additionalSecretOutputs).toContain("privateKey");
    }
    for (const s of ofType(run, T("SeedIso"))) {
      expect(s.secretInputs).toContain("userData");
      expect(s.inputs.userData).toContain(KEY.public.split(" ")[1]);
      expect(s.inputs.userData).not.toContain("PRIVATE KEY");
    }
    const plain = JSON.stringify(run.outputs);
    expect(plain).not.toContain("PRIVATE KEY");
  });

  test("every libvirt resource is under the cluster", () => {
    const cluster = ofType(run, "swarmform:index:SwarmCluster")[0];
    for (const r of run.resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic/libvirt:"))) {
      const parent = byUrn(run, r.parent!);
      expect(parent.type).toBe("swarmform:hosts:LibvirtNodes");
      expect(parent.parent).toBe(cluster.urn);
    }
  });
});
