// The documents the libvirt node source renders, checked by the tools that read them: libvirt's own
// schema (`virt-xml-validate`, libxml2-utils + libvirt-clients) and Debian's cloud-init
// (`cloud-init schema --config-file`). Needs: apt-get install libvirt-clients libxml2-utils cloud-init.
import * as child from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  domainXml,
  DomainSpec,
  macFor,
  networkXml,
  poolXml,
  userData,
  GuestSpec,
} from "../../components/hosts/libvirt/render";

let dir: string;
beforeAll(() => {
  for (const [tool, pkg] of [
    ["virt-xml-validate", "libvirt-clients libxml2-utils"],
    ["cloud-init", "cloud-init"],
  ]) {
    const r = child.spawnSync("sh", ["-c", `command -v ${tool}`]);
    if (r.status !== 0) throw new Error(`${tool} is missing: apt-get install ${pkg} (.ci/run does this)`);
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sf-docs-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs a validator on `text`; returns its exit code and output. */
function validate(
  cmd: (file: string) => string[],
  text: string,
  name: string,
): { code: number; out: string } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const [bin, ...args] = cmd(file);
  const r = child.spawnSync(bin, args, { encoding: "utf8" });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
const virtXml = (kind: string) => (f: string) => ["virt-xml-validate", f, kind];
const cloudInit = (f: string) => ["cloud-init", "schema", "--config-file", f];

const base: DomainSpec = {
  name: "swarmform-dev-m1",
  type: "kvm",
  vcpu: 2,
  maxVcpu: 4,
  memoryMiB: 2048,
  maxMemoryMiB: 4096,
  pool: "default",
  disk: "swarmform-dev-m1.qcow2",
  seed: "swarmform-dev-m1-seed.iso",
  nic: { kind: "network", network: "swarmform-dev", mac: macFor("swarmform", "dev", "m1") },
};

test.each([
  ["NAT network NIC, bootloader", base],
  [
    "bridge NIC, no seed",
    { ...base, seed: undefined, nic: { kind: "bridge", bridge: "br0", mac: base.nic.mac } },
  ],
  [
    "direct kernel boot under TCG",
    {
      ...base,
      type: "qemu",
      boot: {
        kernel: "/var/lib/sf/vmlinuz",
        initrd: "/var/lib/sf/initrd.img",
        cmdline: "root=/dev/vda rw console=ttyS0",
      },
      tcgCacheMiB: 256,
    },
  ],
] as [string, DomainSpec][])("domain XML (%s) passes virt-xml-validate", (name, spec) => {
  const r = validate(virtXml("domain"), domainXml(spec), `${name.replace(/\W+/g, "-")}.xml`);
  expect(r).toEqual({ code: 0, out: expect.stringContaining("validates") });
});

test("a broken domain XML fails virt-xml-validate (the check can fail)", () => {
  const broken = domainXml(base).replace(
    "<vcpu placement='static' current='2'>4</vcpu>",
    "<vcpu>many</vcpu>",
  );
  expect(validate(virtXml("domain"), broken, "broken.xml").code).not.toBe(0);
});

test("network and pool XML pass virt-xml-validate", () => {
  const net = networkXml({
    name: "swarmform-dev",
    subnet: "192.168.130.0/24",
    hosts: [{ name: "m1", mac: base.nic.mac, ip: "192.168.130.11" }],
  });
  expect(validate(virtXml("network"), net, "net.xml").code).toBe(0);
  expect(
    validate(virtXml("storagepool"), poolXml("swarmform", "/var/lib/libvirt/swarmform"), "pool.xml").code,
  ).toBe(0);
});

const guest: GuestSpec = {
  hostname: "dev-manager-1",
  user: "swarmform",
  sshAuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx test",
  docker: { source: "distribution" },
  metricsAddress: "0.0.0.0:9323",
};

test.each([
  ["admin user, distribution Docker", guest],
  [
    "root, Docker's repository, registry CA, NTP servers",
    {
      ...guest,
      user: "root",
      docker: {
        source: "repository",
        url: "https://download.docker.com/linux/debian",
        keyUrl: "https://download.docker.com/linux/debian/gpg",
        suite: "bookworm",
      },
      registry: {
        address: "registry.dev.popcube.xyz:5000",
        caPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      },
      ntpServers: ["0.debian.pool.ntp.org"],
    },
  ],
] as [string, GuestSpec][])("user-data (%s) passes cloud-init schema", (name, g) => {
  const r = validate(cloudInit, userData(g), `${name.replace(/\W+/g, "-")}.yaml`);
  expect(r).toEqual({ code: 0, out: expect.stringContaining("Valid cloud-config") });
});

test("user-data with a wrong type fails cloud-init schema (the check can fail)", () => {
  const bad = userData(guest).replace("ssh_pwauth: false", "ssh_pwauth: [1, 2]");
  expect(validate(cloudInit, bad, "bad.yaml").code).not.toBe(0);
});
