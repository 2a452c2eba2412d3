import * as fs from "fs";
import * as path from "path";
import {
  clusterConfigSchema,
  formatKeyPath,
  parseClusterConfig,
  partialClusterConfig,
  resolvePlatform,
  stackEntries,
} from "../../components/config/clusterConfig";
import { formatIssue } from "../../components/config/errors";

const minimal = (extra: Record<string, unknown> = {}) => ({
  environment: "dev",
  domain: "dev.popcube.xyz",
  docker: { host: "ssh://deploy@dev-manager-1.popcube.xyz" },
  traefik: { acme: { email: "ops@popcube.xyz" } },
  ...extra,
});

/** Parses and resolves; fails the test with the issues when the config does not parse. */
function resolve(raw: Record<string, unknown>, stack = "dev") {
  const parsed = parseClusterConfig(raw);
  if (!parsed.config) throw new Error(parsed.issues.map(formatIssue).join("\n"));
  return resolvePlatform(parsed.config, { project: "swarmform", stack });
}

const lines = (raw: Record<string, unknown>) => parseClusterConfig(raw).issues.map(formatIssue);

describe("defaults", () => {
  it("fills every documented default", () => {
    const { platform, issues } = resolve(minimal());
    expect(issues).toEqual([]);
    expect(platform.nodes).toEqual({
      source: "existing",
      managers: 1,
      workers: 0,
      hosts: [],
      labels: {},
      local: { initSwarm: false, labels: {} },
      swarm: {
        defaultAddrPool: ["10.20.0.0/16"],
        dataPathPort: 4789,
        certExpiry: "2160h0m0s",
        forceQuorumLoss: false,
        maxParallelJoins: 10,
      },
    });
    expect(platform.traefik).toEqual({
      image: "traefik:v3.7",
      placementLabel: "swarmform.traefik=true",
      tls: "acme",
      acme: { email: "ops@popcube.xyz", resolverName: "letsencrypt", challenge: "tls" },
      dashboard: { enabled: false, host: "traefik.dev.popcube.xyz", user: "admin" },
      ports: { web: 80, websecure: 443, registry: 5000 },
    });
    expect(platform.registry).toEqual({
      enabled: true,
      image: "registry:2.8.3",
      host: "registry.dev.popcube.xyz",
      user: "swarmform",
      storageLabel: "swarmform.registry=true",
    });
    expect(platform.monitoring).toEqual({
      enabled: true,
      prometheusImage: "prom/prometheus:v3.5.0",
      nodeExporterImage: "prom/node-exporter:v1.9.1",
      cadvisorImage: "gcr.io/cadvisor/cadvisor:v0.52.1",
      prometheusHost: "prometheus.dev.popcube.xyz",
      retention: "15d",
    });
    expect(platform.publicNetwork).toBe("public");
    expect(platform.docker.host).toBe("ssh://deploy@dev-manager-1.popcube.xyz");
  });

  it("adds the public network once, with its physical name", () => {
    const { platform } = resolve(minimal({ networks: [{ name: "backend", subnet: "10.30.1.0/24" }] }));
    expect(platform.networks.map((n) => [n.name, n.physicalName, n.attachable])).toEqual([
      ["backend", "swarmform-dev_backend", true],
      ["public", "swarmform-dev_public", true],
    ]);
    const listed = resolve(
      minimal({ publicNetwork: "edge", networks: [{ name: "edge", attachable: false }] }),
    );
    expect(listed.platform.networks).toHaveLength(1);
    expect(listed.platform.networks[0]).toMatchObject({
      name: "edge",
      physicalName: "swarmform-dev_edge",
      attachable: false,
    });
  });

  it("encrypts networks by default in prod only, and an explicit value wins", () => {
    const nets = [{ name: "a" }, { name: "b", encrypted: false }];
    const prod = resolve(minimal({ environment: "prod", networks: nets }), "prod").platform.networks;
    expect(prod.map((n) => [n.name, n.encrypted])).toEqual([
      ["a", true],
      ["b", false],
      ["public", true],
    ]);
    const dev = resolve(minimal({ networks: nets })).platform.networks;
    expect(dev.map((n) => n.encrypted)).toEqual([false, false, false]);
  });

  it("keeps given platform hosts instead of deriving them from the domain", () => {
    const { platform } = resolve(
      minimal({
        registry: { host: "hub.popcube.xyz" },
        monitoring: { prometheusHost: "metrics.popcube.xyz" },
      }),
    );
    expect(platform.registry.host).toBe("hub.popcube.xyz");
    expect(platform.monitoring.prometheusHost).toBe("metrics.popcube.xyz");
  });

  it("normalises stack entries and keeps label and variable values as strings", () => {
    const parsed = parseClusterConfig(
      minimal({
        stacks: ["stacks/popcube.yaml", { file: "stacks/other.yaml", name: "shop" }],
        stackVariables: { API_TAG: 11, DEBUG: true },
        networks: [{ name: "backend", labels: { tier: 2 } }],
      }),
    );
    expect(parsed.issues).toEqual([]);
    expect(stackEntries(parsed.config!)).toEqual([
      { file: "stacks/popcube.yaml", key: "swarmform:stacks[0]" },
      { file: "stacks/other.yaml", name: "shop", key: "swarmform:stacks[1]" },
    ]);
    expect(parsed.config!.stackVariables).toEqual({ API_TAG: "11", DEBUG: "true" });
    expect(parsed.config!.networks[0].labels).toEqual({ tier: "2" });
  });
});

describe("nodes", () => {
  const hosts = [
    { name: "m1", address: "10.0.0.11", role: "manager", user: "deploy", port: 2222 },
    { name: "m2", address: "10.0.0.12", role: "manager" },
    { name: "m3", address: "10.0.0.13", role: "manager" },
    { name: "w1", address: "10.0.0.21", role: "worker" },
  ];

  it("derives counts and docker.host from the hosts for the ssh source", () => {
    const { platform, issues } = resolve(minimal({ docker: {}, nodes: { source: "ssh", hosts } }));
    expect(issues).toEqual([]);
    expect([platform.nodes.managers, platform.nodes.workers]).toEqual([3, 1]);
    expect(platform.docker.host).toBe("ssh://deploy@10.0.0.11:2222");
    expect(platform.nodes.hosts[1]).toEqual({
      name: "m2",
      address: "10.0.0.12",
      role: "manager",
      labels: {},
      user: "root",
      port: 22,
      availability: "active",
    });
  });

  it("omits the default SSH port from the derived docker.host", () => {
    const { platform } = resolve(minimal({ docker: {}, nodes: { source: "ssh", hosts: hosts.slice(1, 2) } }));
    expect(platform.docker.host).toBe("ssh://root@10.0.0.12");
  });

  it("requires counts that agree with the hosts", () => {
    const { issues } = resolve(
      minimal({ nodes: { source: "ssh", hosts, managers: { count: 3 }, workers: { count: 2 } } }),
    );
    expect(issues.map(formatIssue)).toEqual([
      "swarmform:nodes.workers.count: must agree with nodes.hosts, which lists 1 worker host(s); got 2 (or leave it unset)",
    ]);
  });

  it("requires docker.host for an existing swarm, and hosts for the ssh source", () => {
    expect(resolve(minimal({ docker: {} })).issues.map(formatIssue)).toEqual([
      "swarmform:docker.host: is required when nodes.source is existing: ssh://user@host[:port], unix:///path or tcp://host:port of a manager",
    ]);
    expect(resolve(minimal({ nodes: { source: "ssh" } })).issues.map((i) => i.origin)).toEqual([
      { key: "swarmform:nodes.hosts" },
    ]);
  });
});

describe("schema issues", () => {
  it("names the missing required keys", () => {
    expect(lines({})).toEqual([
      "swarmform:environment: is required; must be one of local, dev, staging, prod",
      "swarmform:domain: is required; must be a base domain (a DNS name in lower case)",
    ]);
  });

  it("states what is allowed and what was given", () => {
    const issues = lines(
      minimal({
        environment: "qa",
        docker: { host: "http://manager:2375" },
        nodes: {
          hosts: [{ name: "m1", address: "10.0.0.1", role: "boss", port: 0, hostKeyFingerprint: "md5:aa" }],
        },
        monitoring: { retention: "two weeks" },
      }),
    );
    expect(issues).toEqual([
      'swarmform:environment: must be one of local, dev, staging, prod; got "qa"',
      'swarmform:docker.host: must be ssh://user@host[:port], unix:///path or tcp://host:port; got "http://manager:2375"',
      'swarmform:nodes.hosts[0].role: must be manager or worker; got "boss"',
      "swarmform:nodes.hosts[0].port: must be a port number 1-65535; got 0",
      'swarmform:nodes.hosts[0].hostKeyFingerprint: must be SHA256:<base64> as printed by ssh-keygen -lf; got "md5:aa"',
      'swarmform:monitoring.retention: must be a Prometheus duration, e.g. 15d; got "two weeks"',
    ]);
  });

  it("rejects unknown keys at any depth, listing the allowed ones", () => {
    const issues = lines(
      minimal({ colour: "blue", traefik: { acme: { email: "ops@popcube.xyz" }, dashbord: {} } }),
    );
    expect(issues).toEqual([
      "swarmform:traefik.dashbord: unknown key; allowed keys here: image, tls, placementLabel, acme, dashboard, ports",
      expect.stringMatching(
        /^swarmform:colour: unknown key; allowed keys here: environment, domain, docker, nodes,/,
      ),
    ]);
  });

  it("rejects a malformed stack entry", () => {
    expect(lines(minimal({ stacks: [{ path: "x.yaml" }] }))).toEqual([
      'swarmform:stacks[0]: must be a stack file path, e.g. "stacks/popcube.yaml", or { file, name? }',
    ]);
  });
});

describe("partialClusterConfig", () => {
  it("drops the invalid top-level keys and stands in for required ones", () => {
    const raw = minimal({ environment: "qa", colour: "blue", nodes: { managers: { count: 3 } } });
    const { config, dropped } = partialClusterConfig(raw, parseClusterConfig(raw).issues);
    expect(dropped.sort()).toEqual(["colour", "environment"]);
    expect(config?.nodes.managers?.count).toBe(3);
    expect(config?.domain).toBe("dev.popcube.xyz");
  });
});

describe("formatKeyPath", () => {
  it("writes indexes in brackets", () => {
    expect(formatKeyPath(["nodes", "hosts", 0, "name"])).toBe("nodes.hosts[0].name");
    expect(formatKeyPath([])).toBe("");
  });
});

describe("Pulumi.yaml", () => {
  it("documents every top-level key in its config block, declared or in a comment", () => {
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.yaml"), "utf8");
    const block = text.slice(text.indexOf("\nconfig:\n"));
    const undocumented = Object.keys(clusterConfigSchema.shape).filter(
      (key) => !new RegExp(`^ {2}(#\\s+)?${key}[:\\s]`, "m").test(block),
    );
    expect(undocumented).toEqual([]);
  });
});

describe("traefik.acme.challenge", () => {
  it("is tls by default, takes http, and rejects anything else naming the key", () => {
    const withChallenge = (challenge: unknown) =>
      parseClusterConfig(minimal({ traefik: { acme: { email: "ops@popcube.xyz", challenge } } }));
    expect(withChallenge("http").config?.traefik.acme?.challenge).toBe("http");
    expect(withChallenge("dns").issues.map(formatIssue)).toEqual([
      'swarmform:traefik.acme.challenge: must be tls (TLS-ALPN-01 on websecure) or http (HTTP-01 on web); got "dns"',
    ]);
  });
});
