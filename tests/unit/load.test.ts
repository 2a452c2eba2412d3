import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { issuesOf } from "../support/configIssues";
import {
  describeVariables,
  loadClusterSpec,
  loadClusterSpecFromPulumi,
  parseRuntimeConfigValue,
  projectConfigDefaults,
  readPulumiStackFile,
} from "../../components/config/load";
import { ClusterSpec } from "../../components/config/types";

const ROOT = path.resolve(__dirname, "..", "..");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "config");

/** Loads `<dir>/Pulumi.<stack>.yaml` the way `swarmform validate` and the program do. */
function load(dir: string, stack: string, env: Record<string, string | undefined> = {}): ClusterSpec {
  const read = readPulumiStackFile(path.join(dir, `Pulumi.${stack}.yaml`));
  return loadClusterSpec({ project: "swarmform", stack, ...read, rootDir: dir, env });
}

describe("readPulumiStackFile", () => {
  it("strips the namespace, ignores other namespaces, and lists the secure keys", () => {
    const read = readPulumiStackFile(path.join(FIXTURES, "good", "Pulumi.ssh.yaml"));
    expect(read.project).toBe("swarmform");
    expect(read.secretKeys.sort()).toEqual(["registryPassword", "sshPrivateKey"]);
    expect(Object.keys(read.config).sort()).toEqual([
      "domain",
      "environment",
      "networks",
      "nodes",
      "publicNetwork",
      "registryPassword",
      "sshPrivateKey",
      "stackVariables",
      "stacks",
      "traefik",
    ]);
    expect(read.config.sshPrivateKey).toEqual({ secure: "v1:AAAABBBBCCCC:ZmFrZS1jaXBoZXJ0ZXh0" });
    // from the fixture's Pulumi.yaml, as Pulumi applies project config to every stack
    expect(read.config.publicNetwork).toBe("edge");
  });

  it("lets the stack file override project defaults and treats nested secure values as secret", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-load-"));
    fs.writeFileSync(
      path.join(dir, "Pulumi.yaml"),
      "name: other\nruntime: nodejs\nconfig:\n  publicNetwork: edge\n",
    );
    fs.writeFileSync(
      path.join(dir, "Pulumi.x.yaml"),
      "config:\n  other:publicNetwork: no\n  swarmform:publicNetwork: web\n  swarmform:nodes:\n    hosts:\n      - token:\n          secure: v1:abc\n",
    );
    const read = readPulumiStackFile(path.join(dir, "Pulumi.x.yaml"));
    expect(read).toEqual({
      config: { publicNetwork: "web", nodes: { hosts: [{ token: { secure: "v1:abc" } }] } },
      secretKeys: ["nodes"],
      project: "other",
      otherKeys: ["other:publicNetwork"],
    });
  });

  it("reports a YAML error at its line", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-load-"));
    const file = path.join(dir, "Pulumi.bad.yaml");
    fs.writeFileSync(file, "config:\n  swarmform:domain: a\n  swarmform:domain: b\n");
    const issues = issuesOf(() => readPulumiStackFile(file));
    expect(issues).toEqual([`${file}:3: YAML: Map keys must be unique`]);
  });
});

describe("projectConfigDefaults", () => {
  it("takes plain values and the default or value of declarations, in this namespace", () => {
    const doc = {
      config: {
        environment: { type: "string", description: "required, no default" },
        publicNetwork: { type: "string", default: "public" },
        "swarmform:stacks": ["stacks/a.yaml"],
        traefik: { value: { image: "traefik:v3.7.0" } },
        "aws:region": "eu-west-3",
      },
    };
    expect(projectConfigDefaults(doc)).toEqual({
      publicNetwork: "public",
      stacks: ["stacks/a.yaml"],
      traefik: { image: "traefik:v3.7.0" },
    });
    expect(projectConfigDefaults(undefined)).toEqual({});
  });
});

describe("the shipped stack configs", () => {
  /** A shipped config, with the SSH key that dev's deploy path sets (dev creates VMs and forms its swarm over SSH). */
  const shipped = (stack: string) => {
    const read = readPulumiStackFile(path.join(ROOT, `Pulumi.${stack}.yaml`));
    return loadClusterSpec({
      project: "swarmform",
      stack,
      config: { ...read.config, sshPrivateKey: { secure: "v1:stand-in" } },
      secretKeys: [...read.secretKeys, "sshPrivateKey"],
      rootDir: ROOT,
      env: {},
    });
  };
  const specs = Object.fromEntries(["local", "dev", "staging", "prod"].map((s) => [s, shipped(s)]));

  it("dev needs only its SSH key, which no shipped file can hold", () => {
    expect(issuesOf(() => load(ROOT, "dev"))).toEqual([
      "swarmform:sshPrivateKey: is required when nodes.source is libvirt; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
    ]);
  });

  it("validate with no issue and import stacks/popcube.yaml", () => {
    for (const spec of Object.values(specs)) {
      expect(spec.stacks.map((s) => path.relative(ROOT, s.file))).toEqual([
        path.join("stacks", "popcube.yaml"),
      ]);
      expect(spec.stacks[0].services.length).toBeGreaterThan(0);
    }
  });

  it("describe each environment as designed", () => {
    const { local, dev, staging, prod } = specs;
    expect([local.nodes.managers, local.nodes.workers, local.docker.host, local.domain]).toEqual([
      1,
      0,
      "unix:///var/run/docker.sock",
      "popcube.localhost",
    ]);
    expect([dev.nodes.source, dev.nodes.managers, dev.nodes.workers, dev.docker.host]).toEqual([
      "libvirt",
      3,
      2,
      "ssh://root@10.40.0.11",
    ]);
    expect(dev.nodes.libvirt?.hypervisors.map((h) => h.name)).toEqual(["hv1", "hv2"]);
    expect([staging.nodes.managers, staging.nodes.workers]).toEqual([3, 2]);
    expect([prod.nodes.managers, prod.nodes.workers, prod.traefik.dashboard.enabled]).toEqual([3, 2, true]);
    expect(prod.networks.every((n) => n.encrypted)).toBe(true);
    expect(prod.networks.map((n) => n.physicalName)).toContain("swarmform-prod_public");
  });

  it("route app services on the stack's public network and domain", () => {
    const api = specs.prod.stacks[0].services.find((s) => s.traefik)!;
    expect(api.networks).toContain("swarmform-prod_public");
    expect(api.traefik!.hosts.every((h) => h.endsWith(".popcube.xyz"))).toBe(true);
    expect(Object.values(api.labels)).toContain("websecure");
  });
});

describe("loadClusterSpec", () => {
  it("reads ${VAR} from stackVariables and the file's defaults, and the environment only for stackEnvironment names", () => {
    const dir = path.join(FIXTURES, "good");
    const read = readPulumiStackFile(path.join(dir, "Pulumi.ssh.yaml"));
    const env = { WEB_TAG: "9.9", WEB_HOST: "shop.staging.example.com" };
    const web = (config: Record<string, unknown>) =>
      loadClusterSpec({ project: "swarmform", stack: "ssh", ...read, config, rootDir: dir, env }).stacks[0];
    const closed = web(read.config);
    expect(closed.services[0].image).toBe("nginx:1.27"); // stackVariables; the shell's WEB_TAG is not read
    expect(closed.services[0].traefik?.hosts).toEqual(["www.staging.example.com"]); // the file's default
    expect(closed.variables).toEqual([
      { name: "WEB_HOST", source: "default", line: 10 },
      { name: "WEB_TAG", source: "stackVariables", line: 3 },
    ]);
    const open = web({ ...read.config, stackEnvironment: ["WEB_HOST", "WEB_TAG"] });
    expect(open.services[0].image).toBe("nginx:9.9"); // opted in: the environment wins where it is set
    expect(open.services[0].traefik?.hosts).toEqual(["shop.staging.example.com"]);
    expect(open.variables?.map((v) => [v.name, v.source])).toEqual([
      ["WEB_HOST", "environment"],
      ["WEB_TAG", "environment"],
    ]);
    expect(describeVariables({ stacks: [closed] })).toEqual([
      "stack web variables: WEB_HOST (unset: the file's default, line 10), WEB_TAG (from stackVariables, line 3)",
    ]);
  });

  it("reports a misspelt namespace as a likely typo", () => {
    const issues = issuesOf(() =>
      loadClusterSpec({
        project: "swarmform",
        stack: "staging",
        config: readPulumiStackFile(path.join(ROOT, "Pulumi.staging.yaml")).config,
        secretKeys: [],
        otherKeys: ["swarmfrom:domain", "SwarmForm:environment", "aws:region", "swarm:x"],
        rootDir: ROOT,
        env: {},
      }),
    );
    expect(issues).toEqual([
      'swarmfrom:domain: namespace "swarmfrom" is likely a typo of "swarmform": Swarmform reads only swarmform:* keys, so this key is not used; rename it to swarmform:domain',
      expect.stringMatching(/^SwarmForm:environment: namespace "SwarmForm" is likely a typo/),
    ]);
  });

  it("loads a valid ssh cluster, with secrets flagged", () => {
    const spec = load(path.join(FIXTURES, "good"), "ssh", { WEB_TAG: "9.9" });
    expect(spec.secretsSet).toEqual({
      registryPassword: true,
      traefikDashboardPassword: false,
      sshPrivateKey: true,
      stackSecrets: false,
    });
    expect(spec.docker.host).toBe("ssh://deploy@10.0.0.11:2222");
    expect(spec.publicNetwork).toBe("edge");
    expect(spec.stacks.map((s) => s.name)).toEqual(["web", "backend"]);
    const web = spec.stacks[0].services[0];
    expect(web.image).toBe("nginx:1.27"); // stackVariables; the environment is not read
    expect(web.traefik?.hosts).toEqual(["www.staging.example.com"]);
    expect(web.networks).toContain("swarmform-ssh_edge");
    expect(spec.nodes.hosts[0].labels.zone).toBe("1");
  });

  it("reports every problem at once: schema, rules, secrets and stack files", () => {
    const issues = issuesOf(() => load(path.join(FIXTURES, "broken"), "broken"));
    expect(issues.map((l) => l.slice(0, l.indexOf(": ")))).toEqual([
      "swarmform:colour",
      "swarmform:registryPassword",
      "swarmform:stacks[0]",
      // prod deploys only images pinned by digest (swarmform:images, or a digest in the stack file)
      "swarmform:images.app.api",
      "swarmform:images.app.mirror",
      "swarmform:images.other.api",
      "swarmform:nodes.managers.count",
      "swarmform:networks[0].subnet",
      "swarmform:networks[1].subnet",
      "swarmform:traefik.image",
      // stack-file problems sorted by file and line, each at the line of the offending key
      "stacks/app.yaml:3 (services.api.image)",
      "stacks/app.yaml:4 (services.api.ports)",
      "stacks/app.yaml:14 (services.mirror.x-traefik)",
      "stacks/app.yaml:20 (configs.settings.file)",
      "stacks/other.yaml:7 (services.api.x-traefik)",
    ]);
    expect(issues).toContain(
      "swarmform:nodes.managers.count: must be odd (1, 3, 5 or 7) so raft keeps a quorum; got 2",
    );
    expect(issues.find((l) => l.startsWith("swarmform:stacks[0]"))).toMatch(
      /stack file "stacks\/missing\.yaml" does not exist/,
    );
    expect(issues.find((l) => l.startsWith("stacks/other.yaml"))).toMatch(
      /both service app_api .* and service other_api/,
    );
  });

  it("ignores what later checks find under a key that is already invalid", () => {
    const config = {
      environment: "prod",
      domain: "example.com",
      docker: { host: "unix:///var/run/docker.sock" },
      nodes: { managers: { count: "three" } },
      traefik: { acme: { email: "ops@example.com" } },
    };
    const issues = issuesOf(() =>
      loadClusterSpec({ project: "swarmform", stack: "p", config, secretKeys: [], rootDir: ROOT, env: {} }),
    );
    // the default of 1 manager would break the prod rule, but the count was never valid to begin with
    expect(issues).toEqual(['swarmform:nodes.managers.count: must be a whole number >= 1; got "three"']);
  });

  it("names the config key of a missing stack file", () => {
    const read = readPulumiStackFile(path.join(ROOT, "Pulumi.dev.yaml"));
    const config = {
      ...read.config,
      sshPrivateKey: { secure: "v1:stand-in" },
      stacks: ["stacks/popcube.yaml", { file: "stacks/nope.yaml" }],
    };
    const issues = issuesOf(() =>
      loadClusterSpec({
        project: "swarmform",
        stack: "dev",
        config,
        secretKeys: ["sshPrivateKey"],
        rootDir: ROOT,
        env: {},
      }),
    );
    expect(issues.map((l) => l.split(":").slice(0, 2).join(":"))).toEqual(["swarmform:stacks[1]"]);
  });
});

describe("external configs and secrets used by a service", () => {
  it("are reported at their stack-file line before anything is registered", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-load-"));
    fs.writeFileSync(
      path.join(dir, "ext.yaml"),
      [
        "services:",
        "  web:",
        "    image: nginx:1.27",
        "    secrets: [token]",
        "secrets:",
        "  token:",
        "    external: true",
        "",
      ].join("\n"),
    );
    const config = {
      environment: "dev",
      domain: "example.com",
      docker: { host: "unix:///var/run/docker.sock" },
      traefik: { acme: { email: "ops@example.com" } },
      stacks: ["ext.yaml"],
    };
    const issues = issuesOf(() =>
      loadClusterSpec({ project: "swarmform", stack: "dev", config, secretKeys: [], rootDir: dir, env: {} }),
    );
    expect(issues).toEqual([
      'ext.yaml:6 (secrets.token): external secret "token" is not supported: Swarmform needs to create it to know its id; define it in the stack file with `file:` or `environment:` instead',
    ]);
  });
});

describe("loadClusterSpecFromPulumi", () => {
  const mocks = { newResource: () => ({ id: "id", state: {} }), call: () => ({}) };

  /** The dev stack config as the Pulumi CLI hands it to the program: JSON strings for structured values. */
  function runtimeConfig(extra: Record<string, string>): Record<string, string> {
    const read = readPulumiStackFile(path.join(ROOT, "Pulumi.dev.yaml"));
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(read.config)) {
      config[`swarmform:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return { ...config, "aws:region": "eu-west-3", "swarmform:sshPrivateKey": "stand-in", ...extra };
  }

  it("reads project, stack, config and secret keys from the runtime", async () => {
    await pulumi.runtime.setMocks(mocks, "swarmform", "dev", false);
    pulumi.runtime.setAllConfig(runtimeConfig({ "swarmform:registryPassword": "s3cret" }), [
      "swarmform:registryPassword",
      "swarmform:sshPrivateKey",
    ]);
    const spec = loadClusterSpecFromPulumi();
    expect([spec.project, spec.stack, spec.environment]).toEqual(["swarmform", "dev", "dev"]);
    expect(spec.secretsSet.registryPassword).toBe(true);
    expect(spec.nodes.workers).toBe(2);
    expect(spec.stacks[0].services.length).toBeGreaterThan(0);
  });

  it("rejects a secret key set in plain text with a RunError (printed by the runtime without a stack)", async () => {
    await pulumi.runtime.setMocks(mocks, "swarmform", "dev", false);
    pulumi.runtime.setAllConfig(runtimeConfig({ "swarmform:traefikDashboardPassword": "plain" }), [
      "swarmform:sshPrivateKey",
    ]);
    let error: unknown;
    try {
      loadClusterSpecFromPulumi();
    } catch (e) {
      error = e;
    }
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe(
      "swarmform:traefikDashboardPassword: must be a secret; set it with: pulumi config set --secret traefikDashboardPassword <value>",
    );
  });
});

describe("parseRuntimeConfigValue", () => {
  it("parses JSON maps and lists, and keeps scalars as strings", () => {
    expect(parseRuntimeConfigValue('{"a":[1]}')).toEqual({ a: [1] });
    expect(parseRuntimeConfigValue("[1,2]")).toEqual([1, 2]);
    expect(parseRuntimeConfigValue("dev")).toBe("dev");
    expect(parseRuntimeConfigValue("3")).toBe("3");
    expect(parseRuntimeConfigValue("{not json")).toBe("{not json");
  });
});
