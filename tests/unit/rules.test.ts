import { parseClusterConfig, resolvePlatform } from "../../components/config/clusterConfig";
import { formatIssue, keyOrigin } from "../../components/config/errors";
import {
  checkClusterSpec,
  checkImages,
  checkManagerCount,
  checkPlacementLabels,
  checkPorts,
  checkRoutes,
  checkSecrets,
  stackSecretNamesOf,
  checkStackNames,
  checkSubnets,
  checkUniqueHosts,
  cidrsOverlap,
  imageProblem,
  parseCidr,
  secretsSetOf,
} from "../../components/config/rules";
import { ClusterSpec, HostSpec, PortSpec, ServiceSpec, StackSpec } from "../../components/config/types";
import { sampleServiceSpec } from "../support/mocks";

/** A resolved spec from a config map (with the required keys filled in), without stacks. */
function specOf(extra: Record<string, unknown> = {}, stacks: StackSpec[] = []): ClusterSpec {
  const parsed = parseClusterConfig({
    environment: "dev",
    domain: "popcube.xyz",
    docker: { host: "unix:///var/run/docker.sock" },
    traefik: { acme: { email: "ops@popcube.xyz" } },
    ...extra,
  });
  if (!parsed.config) throw new Error(parsed.issues.map(formatIssue).join("\n"));
  const { platform } = resolvePlatform(parsed.config, { project: "swarmform", stack: "dev" });
  return {
    ...platform,
    stacks,
    secretsSet: {
      registryPassword: false,
      traefikDashboardPassword: false,
      sshPrivateKey: false,
      stackSecrets: false,
    },
  };
}

/** A service as the stack importer would produce it; `line` is its line in `stacks/<stack>.yaml`. */
function service(stack: string, key: string, line: number, more: Partial<ServiceSpec> = {}): ServiceSpec {
  return sampleServiceSpec({
    stack,
    key,
    name: `${stack}_${key}`,
    labels: {},
    containerLabels: {},
    origin: { file: `stacks/${stack}.yaml`, line },
    ...more,
  });
}

function stackOf(name: string, services: ServiceSpec[]): StackSpec {
  return { name, file: `/project/stacks/${name}.yaml`, services, networks: [], configs: [], secrets: [] };
}

const port = (published: number, protocol: PortSpec["protocol"] = "tcp"): PortSpec => ({
  target: 8080,
  published,
  protocol,
  mode: "ingress",
});

const route = (host: string, path?: string) => ({
  hosts: [host],
  ...(path ? { path } : {}),
  port: 80,
  middlewares: [],
  tls: true,
});

const lines = (issues: readonly { origin: unknown; message: string }[]) =>
  issues.map((i) => formatIssue(i as Parameters<typeof formatIssue>[0]));

describe("checkManagerCount", () => {
  const origin = keyOrigin("nodes.managers.count");
  it("requires an odd count of 1 to 7", () => {
    expect(lines(checkManagerCount("dev", 2, origin))).toEqual([
      "swarmform:nodes.managers.count: must be odd (1, 3, 5 or 7) so raft keeps a quorum; got 2",
    ]);
    expect(checkManagerCount("dev", 9, origin)).toHaveLength(1);
    expect(checkManagerCount("dev", 0, origin)).toHaveLength(1);
    for (const n of [1, 3, 5, 7]) expect(checkManagerCount("dev", n, origin)).toEqual([]);
  });

  it("requires at least 3 in prod", () => {
    expect(lines(checkManagerCount("prod", 1, origin))).toEqual([
      "swarmform:nodes.managers.count: must be 3, 5 or 7 in prod so the swarm survives the loss of a manager; got 1",
    ]);
    expect(checkManagerCount("prod", 3, origin)).toEqual([]);
  });

  it("is checked on the hosts when the count comes from them", () => {
    const hosts = ["a", "b"].map((name, i) => ({ name, address: `10.0.0.${i + 1}`, role: "manager" }));
    const spec = specOf({ nodes: { source: "ssh", hosts } });
    expect(lines(checkClusterSpec(spec)).filter((l) => l.includes("raft"))).toEqual([
      "swarmform:nodes.hosts: the number of manager hosts must be odd (1, 3, 5 or 7) so raft keeps a quorum; got 2",
    ]);
  });
});

describe("checkUniqueHosts", () => {
  const host = (name: string, address: string): HostSpec => ({
    name,
    address,
    role: "manager",
    labels: {},
    user: "root",
    port: 22,
    availability: "active",
  });
  it("reports a repeated name and a repeated address, pointing at the first", () => {
    const issues = checkUniqueHosts([host("m1", "10.0.0.1"), host("m2", "10.0.0.2"), host("m1", "10.0.0.2")]);
    expect(lines(issues)).toEqual([
      'swarmform:nodes.hosts[2].name: must be unique; "m1" is already the name of nodes.hosts[0]',
      'swarmform:nodes.hosts[2].address: must be unique; "10.0.0.2" is already the address of nodes.hosts[1]',
    ]);
    expect(checkUniqueHosts([host("m1", "10.0.0.1"), host("m2", "10.0.0.2")])).toEqual([]);
  });
});

describe("CIDRs", () => {
  it("parses IPv4 networks with host bits zero", () => {
    expect(parseCidr("10.20.0.0/16")).toEqual({ base: 10 * 2 ** 24 + 20 * 2 ** 16, prefix: 16 });
    expect(parseCidr("0.0.0.0/0")).toEqual({ base: 0, prefix: 0 });
    expect(parseCidr("10.20.0.1/16")).toMatch(/host bits are set, the network is 10\.20\.0\.0\/16$/);
    for (const bad of ["10.20.0.0", "10.256.0.0/16", "10.0.0.0/33", "fd00::/64", "ten/8"]) {
      expect(typeof parseCidr(bad)).toBe("string");
    }
  });

  it("detects overlap, including containment, but not adjacency", () => {
    const c = (s: string) => parseCidr(s) as Exclude<ReturnType<typeof parseCidr>, string>;
    expect(cidrsOverlap(c("10.0.0.0/8"), c("10.20.1.0/24"))).toBe(true);
    expect(cidrsOverlap(c("10.20.1.0/24"), c("10.20.1.128/25"))).toBe(true);
    expect(cidrsOverlap(c("10.20.0.0/24"), c("10.20.1.0/24"))).toBe(false);
    expect(cidrsOverlap(c("192.168.0.0/16"), c("10.0.0.0/8"))).toBe(false);
  });

  it("checks network subnets against each other and the default address pool", () => {
    const spec = specOf({
      nodes: { swarm: { defaultAddrPool: ["10.20.0.0/16", "10.21.0.0/25"] } },
      networks: [
        { name: "a", subnet: "10.20.3.0/24" },
        { name: "b", subnet: "10.30.0.0/24" },
        { name: "c", subnet: "10.30.0.128/25" },
        { name: "d", subnet: "10.40.0.1/24" },
      ],
    });
    expect(lines(checkSubnets(spec))).toEqual([
      "swarmform:nodes.swarm.defaultAddrPool[1]: must be /24 or larger (swarm allocates /24 networks from it); got 10.21.0.0/25",
      "swarmform:networks[0].subnet: 10.20.3.0/24 overlaps 10.20.0.0/16 (swarmform:nodes.swarm.defaultAddrPool[0]); subnets must not overlap",
      "swarmform:networks[2].subnet: 10.30.0.128/25 overlaps 10.30.0.0/24 (swarmform:networks[1].subnet); subnets must not overlap",
      'swarmform:networks[3].subnet: must be an IPv4 CIDR a.b.c.d/n (n 0-32, host bits zero); got "10.40.0.1/24": host bits are set, the network is 10.40.0.0/24',
    ]);
    expect(checkSubnets(specOf({ networks: [{ name: "a", subnet: "10.30.0.0/24" }] }))).toEqual([]);
  });

  it("includes the subnets of stack networks", () => {
    const shop: StackSpec = {
      ...stackOf("shop", [service("shop", "web", 3)]),
      networks: [
        {
          name: "backend",
          physicalName: "shop_backend",
          subnet: "10.30.0.0/16",
          encrypted: false,
          attachable: false,
          labels: {},
        },
      ],
    };
    const spec = specOf({ networks: [{ name: "a", subnet: "10.30.5.0/24" }] }, [shop]);
    expect(lines(checkSubnets(spec))).toEqual([
      "stacks/shop.yaml:1 (networks.backend.ipam.config[0].subnet): 10.30.0.0/16 overlaps 10.30.5.0/24 (swarmform:networks[0].subnet); subnets must not overlap",
    ]);
  });
});

describe("images", () => {
  const digest = "sha256:" + "ab".repeat(32);
  it("needs a well-formed reference everywhere", () => {
    expect(imageProblem("Nginx:1.0", "dev")).toMatch(/^invalid image reference "Nginx:1.0"/);
    expect(imageProblem("nginx", "dev")).toBeUndefined();
    expect(imageProblem("nginx:latest", "staging")).toBeUndefined();
  });

  it("needs a pinned tag or a digest in prod", () => {
    expect(imageProblem("nginx", "prod")).toBe(
      '"nginx" has no tag; prod images must be pinned to a version tag or digest',
    );
    expect(imageProblem("nginx:latest", "prod")).toBe(
      '"nginx:latest" uses latest; prod images must be pinned to a version tag or digest',
    );
    expect(imageProblem(`nginx@${digest}`, "prod")).toBeUndefined();
    expect(imageProblem(`nginx:latest@${digest}`, "prod")).toBeUndefined();
    expect(imageProblem("registry.popcube.xyz:5000/popcubeapi:alpha-1.1.11", "prod")).toBeUndefined();
  });

  it("checks platform images by key and stack images at the service", () => {
    const spec = specOf(
      { environment: "prod", traefik: { image: "traefik", acme: { email: "ops@popcube.xyz" } } },
      [stackOf("shop", [service("shop", "web", 3, { image: "nginx:latest" }), service("shop", "db", 9)])],
    );
    expect(lines(checkImages(spec))).toEqual([
      'swarmform:traefik.image: "traefik" has no tag; prod images must be pinned to a version tag or digest',
      'stacks/shop.yaml:3 (services.web.image): "nginx:latest" uses latest; prod images must be pinned to a version tag or digest',
    ]);
  });
});

describe("checkPorts", () => {
  it("reports a service port that Traefik already publishes, naming both", () => {
    const spec = specOf({}, [stackOf("shop", [service("shop", "web", 3, { ports: [port(443)] })])]);
    expect(lines(checkPorts(spec))).toEqual([
      "stacks/shop.yaml:3 (services.web.ports): port 443/tcp is published by both Traefik's websecure entrypoint (swarmform:traefik.ports.websecure) and service shop_web; each published port must have one owner",
    ]);
  });

  it("compares across stacks, by port and protocol", () => {
    const spec = specOf({}, [
      stackOf("a", [service("a", "dns", 2, { ports: [port(5353, "udp"), port(8080)] })]),
      stackOf("b", [service("b", "dns", 4, { ports: [port(5353, "udp"), port(5353, "tcp")] })]),
    ]);
    expect(lines(checkPorts(spec))).toEqual([
      "stacks/b.yaml:4 (services.dns.ports): port 5353/udp is published by both service a_dns (stacks/a.yaml:2) and service b_dns; each published port must have one owner",
    ]);
  });

  it("counts the registry port only when the registry is enabled", () => {
    const stacks = [stackOf("shop", [service("shop", "web", 3, { ports: [port(5000)] })])];
    expect(checkPorts(specOf({}, stacks))).toHaveLength(1);
    expect(checkPorts(specOf({ registry: { enabled: false } }, stacks))).toEqual([]);
  });

  it("rejects ports outside 1-65535", () => {
    const spec = specOf({}, [stackOf("shop", [service("shop", "web", 3, { ports: [port(70000)] })])]);
    expect(lines(checkPorts(spec))).toEqual([
      "stacks/shop.yaml:3 (services.web.ports): port must be 1-65535; got 70000",
    ]);
  });

  it("reports two platform entrypoints on one port", () => {
    const spec = specOf({ traefik: { acme: { email: "ops@popcube.xyz" }, ports: { registry: 443 } } });
    expect(lines(checkPorts(spec))).toEqual([
      "swarmform:traefik.ports.registry: port 443/tcp is published by both Traefik's websecure entrypoint (swarmform:traefik.ports.websecure) and Traefik's registry entrypoint; each published port must have one owner",
    ]);
  });
});

describe("checkRoutes", () => {
  it("reports one host+path routed by two services in different stacks, naming both", () => {
    const spec = specOf({}, [
      stackOf("a", [service("a", "api", 2, { traefik: route("api.popcube.xyz") })]),
      stackOf("b", [
        service("b", "api", 5, { traefik: route("API.popcube.xyz") }),
        service("b", "docs", 9, { traefik: route("api.popcube.xyz", "/docs") }),
      ]),
    ]);
    expect(lines(checkRoutes(spec))).toEqual([
      "stacks/b.yaml:5 (services.api.x-traefik): Traefik route api.popcube.xyz/ is routed by both service a_api (stacks/a.yaml:2) and service b_api; each host+path must be routed by exactly one service",
    ]);
  });

  it("sees routes written as raw Traefik labels", () => {
    const labels = { "traefik.enable": "true", "traefik.http.routers.x.rule": "Host(`www.popcube.xyz`)" };
    const spec = specOf({}, [
      stackOf("a", [service("a", "web", 2, { traefik: route("www.popcube.xyz") })]),
      stackOf("b", [service("b", "web", 4, { labels })]),
    ]);
    expect(checkRoutes(spec)).toHaveLength(1);
  });

  it("includes the platform hosts when they are enabled", () => {
    const stacks = [
      stackOf("a", [
        service("a", "reg", 2, { traefik: route("registry.popcube.xyz") }),
        service("a", "dash", 7, { traefik: route("traefik.popcube.xyz") }),
      ]),
    ];
    expect(lines(checkRoutes(specOf({}, stacks)))).toEqual([
      "stacks/a.yaml:2 (services.reg.x-traefik): Traefik route registry.popcube.xyz/ is routed by both the registry (swarmform:registry.host) and service a_reg; each host+path must be routed by exactly one service",
    ]);
    const dashboard = { acme: { email: "ops@popcube.xyz" }, dashboard: { enabled: true } };
    const both = checkRoutes(specOf({ traefik: dashboard, registry: { enabled: false } }, stacks));
    expect(lines(both)).toEqual([
      "stacks/a.yaml:7 (services.dash.x-traefik): Traefik route traefik.popcube.xyz/ is routed by both the Traefik dashboard (swarmform:traefik.dashboard.host) and service a_dash; each host+path must be routed by exactly one service",
    ]);
  });
});

describe("secrets", () => {
  it("rejects a plain value for a secret key, with the command that sets it", () => {
    const config = { registryPassword: "hunter2", traefikDashboardPassword: "x" };
    expect(lines(checkSecrets(config, ["traefikDashboardPassword"], "existing"))).toEqual([
      "swarmform:registryPassword: must be a secret; set it with: pulumi config set --secret registryPassword <value>",
    ]);
  });

  it("requires sshPrivateKey for the ssh source only", () => {
    expect(lines(checkSecrets({}, [], "ssh"))).toEqual([
      "swarmform:sshPrivateKey: is required when nodes.source is ssh; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
    ]);
    expect(checkSecrets({ sshPrivateKey: { secure: "v1:x" } }, ["sshPrivateKey"], "ssh")).toEqual([]);
    expect(checkSecrets({}, [], "existing")).toEqual([]);
  });

  it("stackSecrets: must be a secret map of strings; only its names reach the spec", () => {
    expect(lines(checkSecrets({ stackSecrets: { DB_PASSWORD: "clear" } }, [], "existing"))).toEqual([
      "swarmform:stackSecrets: must be a secret; set it with: pulumi config set --secret --path 'stackSecrets.NAME' <value>",
    ]);
    expect(lines(checkSecrets({ stackSecrets: ["x"] }, ["stackSecrets"], "existing"))).toEqual([
      "swarmform:stackSecrets: must be a map of NAME: value (strings), read by stack secrets declared with `environment: NAME`",
    ]);
    const fromFile = { stackSecrets: { DB_PASSWORD: { secure: "v1:x" }, API_KEY: { secure: "v1:y" } } };
    expect(checkSecrets(fromFile, ["stackSecrets"], "existing")).toEqual([]);
    expect(stackSecretNamesOf(fromFile)).toEqual(["API_KEY", "DB_PASSWORD"]);
    expect(stackSecretNamesOf({})).toEqual([]);
  });

  it("tells which secrets are set", () => {
    expect(secretsSetOf({ registryPassword: "p", sshPrivateKey: "k" }, ["registryPassword"])).toEqual({
      registryPassword: true,
      traefikDashboardPassword: false,
      sshPrivateKey: false,
      stackSecrets: false,
    });
  });
});

describe("placement labels and stack names", () => {
  const hosts = (labels: Record<string, string>) => [
    { name: "m1", address: "10.0.0.1", role: "manager", labels },
    { name: "w1", address: "10.0.0.2", role: "worker", labels: { "swarmform.registry": "true" } },
  ];
  it("needs a manager with the Traefik label and a host with the registry label when Swarmform labels the nodes", () => {
    const spec = specOf({ nodes: { source: "ssh", hosts: hosts({}) } });
    expect(lines(checkPlacementLabels(spec))).toEqual([
      "swarmform:traefik.placementLabel: no manager in nodes.hosts carries the node label swarmform.traefik=true; add it to the labels of one manager",
    ]);
    const noRegistry = specOf({
      nodes: { source: "ssh", hosts: [hosts({ "swarmform.traefik": "true" })[0]] },
    });
    expect(lines(checkPlacementLabels(noRegistry))).toEqual([
      "swarmform:registry.storageLabel: no host in nodes.hosts carries the node label swarmform.registry=true; add it to the labels of one host",
    ]);
    const labelled = hosts({ "swarmform.traefik": "true", "swarmform.registry": "true" });
    expect(checkPlacementLabels(specOf({ nodes: { source: "ssh", hosts: labelled } }))).toEqual([]);
    expect(checkPlacementLabels(specOf())).toEqual([]);
  });

  it("rejects two stacks with one name", () => {
    const spec = specOf({}, [stackOf("shop", []), stackOf("blog", []), stackOf("shop", [])]);
    expect(lines(checkStackNames(spec))).toEqual([
      'swarmform:stacks[2]: stack name "shop" is already used by swarmform:stacks[0]; give one of them another name with { file, name }',
    ]);
  });
});

describe("checkClusterSpec", () => {
  it("finds nothing wrong in a sound spec", () => {
    const spec = specOf({ networks: [{ name: "backend", subnet: "10.30.0.0/24" }] }, [
      stackOf("shop", [
        service("shop", "web", 3, { ports: [port(8443)], traefik: route("shop.popcube.xyz") }),
      ]),
    ]);
    expect(checkClusterSpec(spec)).toEqual([]);
  });
});
