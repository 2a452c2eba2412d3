// docs/config-reference.md, generated from the config schema (clusterConfigSchema, through zod's JSON
// Schema) and one description per key (CONFIG_DESCRIPTIONS). `npm run docs` writes it; a unit test fails
// when the file is stale or a key has no description.
import { z } from "zod";
import { clusterConfigSchema } from "./clusterConfig";

/** One line per config key path (`nodes.hosts[].name`); every key of the schema must have one. */
export const CONFIG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  "nodes.hosts[].vm": "Source libvirt: this host's VM; overrides nodes.libvirt.defaults.",
  "nodes.hosts[].vm.hypervisor":
    "Name of the hypervisor (nodes.libvirt.hypervisors[].name) the VM runs on. Unset: round robin in host order.",
  "nodes.hosts[].vm.vcpu": "Virtual CPUs.",
  "nodes.hosts[].vm.maxVcpu": "Upper bound for vcpu changes in place (beyond it: a new VM).",
  "nodes.hosts[].vm.memoryMiB": "Memory in MiB.",
  "nodes.hosts[].vm.maxMemoryMiB": "Upper bound for memory changes in place (beyond it: a new VM).",
  "nodes.hosts[].vm.diskGiB": "Disk size in GiB; grows in place, a smaller size is refused.",
  "nodes.hosts[].vm.mac":
    "Fixed MAC of the VM's NIC. Unset: 52:54:00 plus a hash of project, stack and node.",
  "nodes.labels":
    "Source existing: { <node name>: { key: value } }, node labels Swarmform sets through docker.host (destroy removes only its own).",
  "nodes.local": "Source local: the local Docker engine.",
  "nodes.local.initSwarm":
    "Run docker swarm init when the engine is not in swarm mode (and leave that swarm on destroy); else up fails naming this key.",
  "nodes.local.advertiseAddr": "--advertise-addr of that swarm init (IPv4).",
  "nodes.local.labels": "Labels of the local node, besides the placement labels it always gets.",
  "nodes.libvirt": "Source libvirt: the hypervisors, base image, network and VM defaults.",
  "nodes.libvirt.hypervisors": "The libvirt hosts that run the VMs.",
  "nodes.libvirt.hypervisors[].name":
    "Name of the hypervisor (used by nodes.hosts[].vm.hypervisor and in errors).",
  "nodes.libvirt.hypervisors[].uri": "libvirt URI on that host.",
  "nodes.libvirt.hypervisors[].ssh":
    "How to reach the hypervisor over SSH (with sshPrivateKey). Unset: this machine.",
  "nodes.libvirt.hypervisors[].ssh.address": "IPv4 address or DNS name of the hypervisor.",
  "nodes.libvirt.hypervisors[].ssh.user": "SSH user on the hypervisor.",
  "nodes.libvirt.hypervisors[].ssh.port": "SSH port of the hypervisor.",
  "nodes.libvirt.hypervisors[].ssh.hostKeyFingerprint": "Pinned host key of the hypervisor, SHA256:<base64>.",
  "nodes.libvirt.hypervisors[].pool": "The storage pool for disks and seed ISOs.",
  "nodes.libvirt.hypervisors[].pool.name": "Pool name (an existing pool, or the dir pool created at path).",
  "nodes.libvirt.hypervisors[].pool.path": "Set: a dir pool created at this path on the hypervisor.",
  "nodes.libvirt.baseImage":
    "The guest image every node disk is backed by (one volume per hypervisor and pool).",
  "nodes.libvirt.baseImage.name": "Volume name of the base image.",
  "nodes.libvirt.baseImage.url": "Downloaded on the hypervisor from this URL (with sha256).",
  "nodes.libvirt.baseImage.sha256": "Checksum of the downloaded image; a mismatch is refused.",
  "nodes.libvirt.baseImage.file": "A local file copied to the hypervisor.",
  "nodes.libvirt.baseImage.volume": "An existing volume in the pool.",
  "nodes.libvirt.network": "The network the VMs are on.",
  "nodes.libvirt.network.mode":
    "nat (a private network per hypervisor with a static DHCP lease per node) or bridge (an existing host bridge).",
  "nodes.libvirt.network.subnet": "IPv4 CIDR that holds every node's address.",
  "nodes.libvirt.network.bridge": "Mode bridge: the host bridge, e.g. br0.",
  "nodes.libvirt.network.gateway": "Gateway address. Unset: the first address of the subnet.",
  "nodes.libvirt.network.nameservers": "DNS servers of the guests. Unset: [gateway].",
  "nodes.libvirt.domainType": "kvm, or qemu (emulation, where the CPU has no vmx/svm).",
  "nodes.libvirt.defaults": "VM size of every node unless nodes.hosts[].vm says otherwise.",
  "nodes.libvirt.defaults.vcpu": "Virtual CPUs.",
  "nodes.libvirt.defaults.maxVcpu": "Upper bound for vcpu changes in place. Unset: vcpu.",
  "nodes.libvirt.defaults.memoryMiB": "Memory in MiB.",
  "nodes.libvirt.defaults.maxMemoryMiB": "Upper bound for memory changes in place. Unset: memoryMiB.",
  "nodes.libvirt.defaults.diskGiB": "Disk size in GiB.",
  "nodes.libvirt.docker": "Where cloud-init installs Docker from.",
  "nodes.libvirt.docker.source":
    "distribution (Debian's docker.io), repository (docker-ce from url, keyUrl, suite), or image (Docker is already in the base image: no apt at first boot, for hosts without internet).",
  "nodes.libvirt.docker.url": "Source repository: the apt repository URL.",
  "nodes.libvirt.docker.keyUrl": "Source repository: the URL of its signing key.",
  "nodes.libvirt.docker.suite": "Source repository: the suite, e.g. bookworm.",
  "nodes.libvirt.metricsAddress": "dockerd's metrics-addr in /etc/docker/daemon.json.",
  "nodes.libvirt.bootTimeoutSeconds": "How long the swarm layer waits for a new VM to answer on SSH.",
  "nodes.libvirt.boot": "Optional direct kernel boot (paths on the hypervisor).",
  "nodes.libvirt.boot.kernel": "Absolute path of the kernel on the hypervisor.",
  "nodes.libvirt.boot.initrd": "Absolute path of the initrd on the hypervisor.",
  "nodes.libvirt.boot.cmdline": "Kernel command line, e.g. root=/dev/vda rw console=ttyS0.",
  "nodes.libvirt.tcgCacheMiB": "Optional TCG translation cache size (domainType qemu).",
  "traefik.tls":
    "acme (certificates from the ACME CA) or default (Traefik's default self-signed certificate). Default: default on local, else acme.",
  stackEnvironment:
    "Variable names that ${VAR} may read from the environment of pulumi up (they win over stackVariables); no other is read.",
  strictCompose: "true: Compose keys that swarm ignores are errors, not warnings (the CLI's --strict).",
  environment:
    "Which environment this stack is; sets the policies (prod: 3+ managers, pinned images by digest, encrypted networks).",
  domain:
    "Base domain; the platform hosts default to traefik.<domain>, registry.<domain>, prometheus.<domain>.",
  docker: "How the docker provider reaches a manager.",
  "docker.host":
    "ssh://user@host[:port], unix:///path or tcp://host:port. Required for nodes.source existing; for ssh, the first manager host.",
  nodes: "Where the nodes come from and how the swarm is formed.",
  "nodes.source":
    "existing: a swarm that already exists at docker.host. ssh: Swarmform forms the swarm from nodes.hosts over SSH.",
  "nodes.managers": "Manager count (when the hosts are not listed).",
  "nodes.managers.count": "Number of managers: odd, 1-7 (3+ in prod). Derived from nodes.hosts when listed.",
  "nodes.workers": "Worker count (when the hosts are not listed).",
  "nodes.workers.count": "Number of workers. Derived from nodes.hosts when listed.",
  "nodes.hosts": "The machines of the ssh source: each joins the swarm in its role.",
  "nodes.hosts[].name": "Swarm node name (a DNS name in lower case); unique.",
  "nodes.hosts[].address": "IPv4 address or DNS name that SSH connects to; unique.",
  "nodes.hosts[].role": "manager or worker.",
  "nodes.hosts[].labels":
    'Node labels that Swarmform sets (placement targets, e.g. swarmform.traefik: "true").',
  "nodes.hosts[].user": "SSH user.",
  "nodes.hosts[].port": "SSH port.",
  "nodes.hosts[].hostKeyFingerprint":
    "Pinned host key, SHA256:<base64> as ssh-keygen -lf prints it. Unset: not pinned.",
  "nodes.hosts[].availability": "Swarm availability: active, pause or drain.",
  "nodes.swarm": "Options of swarm init (ssh source).",
  "nodes.swarm.defaultAddrPool": "Address pools for overlay networks without a subnet.",
  "nodes.swarm.dataPathPort": "VXLAN data path port.",
  "nodes.swarm.certExpiry": "Node certificate validity, a Go duration.",
  "nodes.swarm.forceQuorumLoss": "Allow a change that leaves the managers without quorum.",
  "nodes.swarm.maxParallelJoins":
    "Most nodes joining the swarm at once in one pulumi up (each join is a certificate the leader signs); changing it updates no node.",
  networks:
    "Platform overlay networks (physical name <project>-<stack>_<name>); each must be used by something.",
  "networks[].name": "Logical name.",
  "networks[].subnet": "IPv4 CIDR; subnets must not overlap.",
  "networks[].encrypted": "IPsec encryption of the data path. Unset: encryptNetworks.",
  "networks[].attachable": "Whether standalone containers may attach.",
  "networks[].labels": "Network labels.",
  encryptNetworks:
    "Encrypt every overlay network, the app stacks' own included. Unset: true in prod, false elsewhere.",
  plaintextNetworks:
    "Networks left unencrypted when encryptNetworks is on: platform networks by name, stack networks as <stack>_<network>.",
  publicNetwork: "The network Traefik routes on (created when not listed in networks).",
  traefik: "Traefik, the reverse proxy.",
  "traefik.image": "Traefik image.",
  "traefik.placementLabel": "Node label (key=value) that pins Traefik and its ACME storage to one manager.",
  "traefik.acme": "The ACME (Let's Encrypt) resolver.",
  "traefik.acme.email": "ACME account e-mail. Required.",
  "traefik.acme.caServer":
    "ACME directory URL (e.g. Let's Encrypt staging). Unset: Let's Encrypt production.",
  "traefik.acme.resolverName": "Name of the certificate resolver that routes use.",
  "traefik.acme.challenge": "tls (TLS-ALPN-01 on websecure) or http (HTTP-01 on web).",
  "traefik.dashboard": "The Traefik dashboard (behind basic auth).",
  "traefik.dashboard.enabled": "Whether the dashboard is routed.",
  "traefik.dashboard.host": "Dashboard host. Unset: traefik.<domain>.",
  "traefik.dashboard.user": "Basic auth user (password: secret traefikDashboardPassword, else generated).",
  "traefik.ports": "Host ports of the entrypoints (host mode).",
  "traefik.ports.web": "HTTP entrypoint (redirects to HTTPS).",
  "traefik.ports.websecure": "HTTPS entrypoint.",
  "traefik.ports.registry": "Registry entrypoint.",
  registry: "The private registry.",
  "registry.enabled": "Whether the registry runs.",
  "registry.image": "Registry image.",
  "registry.host": "Registry host. Unset: registry.<domain>.",
  "registry.user": "htpasswd user (password: secret registryPassword, else generated).",
  "registry.storageLabel": "Node label (key=value) that pins the registry and its storage volume.",
  monitoring: "Prometheus, node-exporter and cAdvisor.",
  "monitoring.enabled": "Whether monitoring runs.",
  "monitoring.prometheusImage": "Prometheus image.",
  "monitoring.nodeExporterImage": "node-exporter image.",
  "monitoring.cadvisorImage": "cAdvisor image.",
  "monitoring.prometheusHost": "Prometheus host. Unset: prometheus.<domain>.",
  "monitoring.retention": "Prometheus retention, a Prometheus duration.",
  stacks: "Compose-format stack files, relative to the project root: a path, or { file, name }.",
  stackVariables: "Values for ${VAR} in stack files; they win over the environment.",
  images:
    "Image pins: stack name -> service key -> TAG or TAG@sha256:DIGEST, on the stack file's repository. In staging and prod every service needs a pin unless its stack-file image already obeys the policy; prod takes only digests, staging no latest. Copied by swarmform promote.",
  registryPassword: "Secret. Registry password; generated when unset.",
  traefikDashboardPassword: "Secret. Dashboard password; generated when unset.",
  sshPrivateKey: "Secret. SSH private key for the ssh node source (required there).",
  stackSecrets:
    "Secret. Map NAME: value for stack secrets declared with environment: NAME; generated when unset.",
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON Schema is untyped here
type Json = any;

/** One row per key path: type, default and whether it is required. */
export interface ReferenceRow {
  readonly path: string;
  readonly type: string;
  readonly default?: string;
  readonly required: boolean;
}

function typeOf(s: Json): string {
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(" \\| ");
  if (s.anyOf) return [...new Set(s.anyOf.map(typeOf))].join(" or ");
  if (s.type === "array") return `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.type === "object" && !s.properties) return "map";
  if (Array.isArray(s.type)) return s.type.join(" or ");
  return s.type ?? "any";
}

/** The key paths of the schema, depth first, in schema order. */
export function referenceRows(): ReferenceRow[] {
  const root = z.toJSONSchema(clusterConfigSchema, { io: "input", unrepresentable: "any" }) as Json;
  const rows: ReferenceRow[] = [];
  const walk = (obj: Json, prefix: string) => {
    for (const [key, s] of Object.entries<Json>(obj.properties ?? {})) {
      const p = prefix + key;
      rows.push({
        path: p,
        type: typeOf(s),
        ...(s.default !== undefined ? { default: JSON.stringify(s.default) } : {}),
        required: (obj.required ?? []).includes(key),
      });
      if (s.type === "object" && s.properties) walk(s, `${p}.`);
      if (s.type === "array" && s.items?.properties) walk(s.items, `${p}[].`);
    }
  };
  walk(root, "");
  return rows;
}

/** The Markdown of docs/config-reference.md. */
export function renderConfigReference(): string {
  const cell = (s: string) => s.replace(/\\?\|/g, "\\|").replace(/</g, "&lt;");
  const lines = [
    "# Configuration reference",
    "",
    "<!-- Generated by `npm run docs` from components/config (clusterConfigSchema and CONFIG_DESCRIPTIONS). Do not edit. -->",
    "",
    "Every key is in the `swarmform` namespace of `Pulumi.<stack>.yaml` (`swarmform:nodes`, ...); nested keys",
    "are set as YAML under their parent (or `pulumi config set --path 'nodes.hosts[0].name' ...`). Unknown keys",
    "are errors. Environments and promotion: [environments.md](environments.md).",
    "",
    "| key | type | default | description |",
    "|---|---|---|---|",
    ...referenceRows().map(
      (r) =>
        `| \`${r.path}\` | ${cell(r.type)} | ${r.required ? "**required**" : r.default !== undefined ? `\`${cell(r.default)}\`` : ""} | ${cell(CONFIG_DESCRIPTIONS[r.path] ?? "(no description)")} |`,
    ),
    "",
  ];
  return lines.join("\n");
}
