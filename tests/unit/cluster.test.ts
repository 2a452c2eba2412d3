// SwarmCluster from hand-built specs, under mocks: the app-stack layer, the membership seam, URLs.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { createHash } from "crypto";
import type { ClusterSpec, StackSpec } from "../../components/config/types";
import { clusterUrls } from "../../components/cluster/SwarmCluster";
import { checkExternalFileRefs } from "../../components/config/rules";
import {
  decodeData,
  DOCKER_TYPES as T,
  getResource,
  ofType,
  runMocked,
  sampleClusterSpec,
  sampleServiceSpec,
} from "../support/mocks";

/* eslint-disable @typescript-eslint/no-require-imports -- the program must load inside jest.isolateModules */
function runCluster(spec: ClusterSpec, withMembership = false, secrets: Record<string, string> = {}) {
  return runMocked(
    () => {
      const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
      class Init extends pulumi.CustomResource {
        constructor(name: string) {
          super("swarmform:swarm:Init", name, {});
        }
      }
      const { SwarmCluster } = require("../../components/cluster/SwarmCluster");
      const membership = withMembership
        ? {
            managerHost: pulumi.output("ssh://root@10.0.0.11"),
            // A stand-in for the swarm layer's resources (init, joins): any custom resource.
            ready: [new Init("swarmform-test-swarm")],
          }
        : undefined;
      const c = new SwarmCluster("swarmform-test", { spec, membership });
      return { services: c.services, registryPassword: c.registryPassword, dashboardUrl: c.dashboardUrl };
    },
    {
      project: spec.project,
      stack: spec.stack,
      config: Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`swarmform:${k}`, v])),
      secretKeys: Object.keys(secrets).map((k) => `swarmform:${k}`),
    },
  );
}
/* eslint-enable @typescript-eslint/no-require-imports */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-cluster-"));
const confFile = path.join(dir, "app.conf");
const secretFile = path.join(dir, "token.txt");
fs.writeFileSync(confFile, "listen 80;\n");
fs.writeFileSync(secretFile, "t0ken-value\n");

const stack: StackSpec = {
  name: "app",
  file: path.join(dir, "app.yaml"),
  networks: [
    { name: "backend", physicalName: "app_backend", encrypted: false, attachable: true, labels: {} },
  ],
  configs: [
    {
      key: "conf",
      name: "app_conf",
      external: false,
      file: confFile,
      origin: { file: "app.yaml", line: 20 },
    },
  ],
  secrets: [
    {
      key: "token",
      name: "app_token",
      external: false,
      file: secretFile,
      origin: { file: "app.yaml", line: 24 },
    },
    { key: "unused", name: "shared_unused", external: true, origin: { file: "app.yaml", line: 26 } },
  ],
  services: [
    sampleServiceSpec({
      image: "registry.test.example.org:5000/web:1",
      networks: ["app_backend", "swarmform-test_public", "outside_net"],
      configs: [{ source: "app_conf-whatever", key: "conf", target: "/etc/app.conf" }],
      secrets: [{ source: "app_token-whatever", key: "token", target: "token" }],
    }),
    sampleServiceSpec({ key: "worker", name: "app_worker", image: "busybox:1.36" }),
  ],
};

describe("SwarmCluster with an app stack", () => {
  const spec = sampleClusterSpec({ stacks: [stack] });
  let run: Awaited<ReturnType<typeof runCluster>>;
  beforeAll(async () => {
    run = await runCluster(spec);
  }, 120_000);

  test("stack configs and secrets are read from their files and named by content hash", () => {
    const config = getResource(run, T.config, "swarmform-test-stack-app-config-conf");
    const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 10);
    expect(decodeData(config)).toBe("listen 80;\n");
    expect(config.inputs.name).toBe(`app_conf-${hash("listen 80;\n")}`);
    const secret = getResource(run, T.secret, "swarmform-test-stack-app-secret-token");
    expect(decodeData(secret)).toBe("t0ken-value\n");
    expect(secret.inputs.name).toBe(`app_token-${hash("t0ken-value\n")}`);
    expect(secret.secretInputs).toContain("data");
    // External objects are never created.
    expect(ofType(run, T.secret).some((s) => String(s.inputs.name).startsWith("shared_"))).toBe(false);
  });

  test("the service refers to them by id, joins networks by id (external ones by name) and pulls with auth", () => {
    const web = getResource(run, T.service, "swarmform-test-stack-app-web");
    const config = getResource(run, T.config, "swarmform-test-stack-app-config-conf");
    const secret = getResource(run, T.secret, "swarmform-test-stack-app-secret-token");
    const backend = getResource(run, T.network, "swarmform-test-stack-app-net-backend");
    const pub = getResource(run, T.network, "swarmform-test-networks-public");
    const cs = web.inputs.taskSpec.containerSpec;
    expect(cs.configs).toEqual([
      { configId: config.id, configName: config.inputs.name, fileName: "/etc/app.conf" },
    ]);
    expect(cs.secrets).toEqual([{ secretId: secret.id, secretName: secret.inputs.name, fileName: "token" }]);
    expect(web.inputs.taskSpec.networksAdvanceds).toEqual([
      { id: backend.id },
      { id: pub.id },
      { name: "outside_net" },
    ]);
    expect(web.dependencies).toEqual(expect.arrayContaining([config.urn, secret.urn, backend.urn, pub.urn]));
    expect(web.inputs.auth).toEqual({
      serverAddress: "registry.test.example.org:5000",
      username: "swarmform",
      password: run.outputs.registryPassword,
    });
    expect(web.secretInputs).toContain("auth");
    const worker = getResource(run, T.service, "swarmform-test-stack-app-worker");
    expect(worker.inputs.auth).toBeUndefined();
    expect(run.outputs.services).toEqual(
      expect.arrayContaining(["app_web", "app_worker", "swarmform-test_traefik"]),
    );
  });

  test("stack networks carry the stack namespace label", () => {
    const backend = getResource(run, T.network, "swarmform-test-stack-app-net-backend");
    expect(backend.inputs).toMatchObject({ name: "app_backend", driver: "overlay", attachable: true });
    expect(backend.inputs.labels).toContainEqual({ label: "com.docker.stack.namespace", value: "app" });
  });
});

describe("SwarmCluster seams and switches", () => {
  test("membership: its manager endpoint feeds the provider, which waits for it", async () => {
    const run = await runCluster(sampleClusterSpec(), true);
    const provider = getResource(run, T.provider, "swarmform-test-docker");
    const swarm = getResource(run, "swarmform:swarm:Init", "swarmform-test-swarm");
    expect(provider.inputs.host).toBe("ssh://root@10.0.0.11");
    expect(provider.dependencies).toContain(swarm.urn);
    for (const r of run.resources.filter((x) => x.type.startsWith("docker:"))) {
      expect(r.provider?.startsWith(provider.urn)).toBe(true);
    }
  }, 120_000);

  test("node source ssh: a SwarmMembership child forms the swarm, and the provider goes to its init manager", async () => {
    const base = sampleClusterSpec();
    const host = (
      name: string,
      address: string,
      role: "manager" | "worker",
      labels: Record<string, string>,
    ) => ({
      name,
      address,
      role,
      labels,
      user: "root",
      port: 22,
      availability: "active" as const,
    });
    const spec = sampleClusterSpec({
      nodes: {
        ...base.nodes,
        source: "ssh",
        managers: 1,
        workers: 1,
        hosts: [
          host("m1", "10.0.0.21", "manager", { "swarmform.traefik": "true", "swarmform.registry": "true" }),
          host("w1", "10.0.0.22", "worker", {}),
        ],
      },
      secretsSet: { ...base.secretsSet, sshPrivateKey: true },
    });
    const run = await runCluster(spec, false, { sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n" });
    const swarm = getResource(run, "swarmform:swarm:SwarmMembership", "swarmform-test-swarm");
    const cluster = getResource(run, "swarmform:index:SwarmCluster", "swarmform-test");
    expect(swarm.parent).toBe(cluster.urn);
    const nodes = run.resources.filter((r) => r.parent === swarm.urn && r.custom);
    expect(nodes.map((n) => n.name).sort()).toEqual(["swarmform-test-swarm-m1", "swarmform-test-swarm-w1"]);
    const provider = getResource(run, T.provider, "swarmform-test-docker");
    expect(provider.inputs.host).toBe("ssh://root@10.0.0.21");
    expect(provider.dependencies).toEqual(expect.arrayContaining(nodes.map((n) => n.urn)));
  }, 120_000);

  test("disabled registry, monitoring and dashboard register nothing for them", async () => {
    const base = sampleClusterSpec();
    const spec = sampleClusterSpec({
      registry: { ...base.registry, enabled: false },
      monitoring: { ...base.monitoring, enabled: false },
      traefik: { ...base.traefik, dashboard: { ...base.traefik.dashboard, enabled: false } },
    });
    const run = await runCluster(spec);
    expect(ofType(run, T.service).map((s) => s.inputs.name)).toEqual(["swarmform-test_traefik"]);
    expect(ofType(run, T.secret)).toHaveLength(0);
    expect(ofType(run, T.config)).toHaveLength(0);
    expect(run.outputs.dashboardUrl).toBeUndefined();
    const traefik = ofType(run, T.service)[0];
    const labels = (traefik.inputs.labels as { label: string }[]).map((l) => l.label);
    expect(labels.some((l) => l.includes("basicauth") || l.includes(".routers."))).toBe(false);
    expect(traefik.inputs.endpointSpec.ports.map((p: { targetPort: number }) => p.targetPort)).toEqual([
      80, 443,
    ]);
  }, 120_000);
});

describe("external configs and secrets", () => {
  test("a service using an external secret or config is rejected before any resource exists", async () => {
    const ext = {
      ...stack,
      configs: [
        ...stack.configs,
        { key: "extconf", name: "shared_conf", external: true, origin: { file: "app.yaml", line: 30 } },
      ],
      secrets: [
        ...stack.secrets,
        { key: "ext", name: "shared_token", external: true, origin: { file: "app.yaml", line: 26 } },
      ],
      services: [
        sampleServiceSpec({
          secrets: [{ source: "shared_token", key: "ext", target: "t" }],
          configs: [{ source: "shared_conf", key: "extconf", target: "/c" }],
        }),
      ],
    };
    expect(checkExternalFileRefs([stack])).toEqual([]);
    const issues = checkExternalFileRefs([ext]);
    expect(
      issues.map((i) => [i.origin, /external (secret|config) "shared_(token|conf)"/.test(i.message)]),
    ).toEqual([
      [{ file: "app.yaml", line: 30 }, true],
      [{ file: "app.yaml", line: 26 }, true],
    ]);
    const run = await runMocked(
      () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { SwarmCluster } = require("../../components/cluster/SwarmCluster");
        new SwarmCluster("swarmform-test", { spec: sampleClusterSpec({ stacks: [ext] }) });
        return {};
      },
      { project: "swarmform", stack: "test", allowError: true },
    );
    expect((run.error as Error).name).toBe("ConfigError");
    expect(run.resources).toHaveLength(0);
  }, 120_000);
});

describe("clusterUrls", () => {
  test("from the spec; undefined for disabled parts; non-default ports shown", () => {
    const spec = sampleClusterSpec();
    expect(clusterUrls(spec)).toEqual({
      traefikUrl: "https://test.example.org",
      registryUrl: "https://registry.test.example.org:5000",
      dashboardUrl: "https://traefik.test.example.org",
      prometheusUrl: "https://prometheus.test.example.org",
    });
    const off = sampleClusterSpec({
      traefik: {
        ...spec.traefik,
        ports: { web: 8080, websecure: 8443, registry: 5443 },
        dashboard: { ...spec.traefik.dashboard, enabled: false },
      },
      monitoring: { ...spec.monitoring, enabled: false },
      registry: { ...spec.registry, enabled: false },
    });
    expect(clusterUrls(off)).toEqual({
      traefikUrl: "https://test.example.org:8443",
      registryUrl: undefined,
      dashboardUrl: undefined,
      prometheusUrl: undefined,
    });
  });
});

describe("stack secrets declared with `environment: NAME`", () => {
  const envStack: StackSpec = {
    ...stack,
    name: "env",
    configs: [],
    secrets: [
      {
        key: "db",
        name: "env_db",
        external: false,
        environment: "DB_PASSWORD",
        origin: { file: "e.yaml", line: 3 },
      },
      {
        key: "api",
        name: "env_api",
        external: false,
        environment: "API_KEY",
        origin: { file: "e.yaml", line: 5 },
      },
    ],
    services: [sampleServiceSpec({ stack: "env", key: "web", name: "env_web", image: "busybox:1.36" })],
  };
  const spec = sampleClusterSpec({
    stacks: [envStack],
    secretsSet: { ...sampleClusterSpec().secretsSet, stackSecrets: true },
    stackSecretNames: ["DB_PASSWORD"],
  });

  test("take their value from the secret config stackSecrets, else a generated password; both stay secret", async () => {
    const run = await runCluster(spec, false, { stackSecrets: JSON.stringify({ DB_PASSWORD: "s3cret-db" }) });
    const db = getResource(run, T.secret, "swarmform-test-stack-env-secret-db");
    expect(decodeData(db)).toBe("s3cret-db");
    expect(db.inputs.name).toBe(
      `env_db-${createHash("sha256").update("s3cret-db").digest("hex").slice(0, 10)}`,
    );
    expect(db.secretInputs).toEqual(expect.arrayContaining(["data", "name"]));
    // API_KEY is not in stackSecrets: generated, 32 characters, kept in state as a secret.
    const generated = getResource(
      run,
      "random:index/randomPassword:RandomPassword",
      "swarmform-test-stack-env-secret-api-value",
    );
    expect(generated.inputs).toMatchObject({ length: 32, special: false });
    expect(generated.additionalSecretOutputs).toContain("result");
    const api = getResource(run, T.secret, "swarmform-test-stack-env-secret-api");
    expect(api.secretInputs).toContain("data");
    // No resource input carries the configured value in clear.
    for (const r of run.resources) {
      for (const [k, v] of Object.entries(r.inputs ?? {})) {
        if (!r.secretInputs.includes(k)) expect(JSON.stringify(v) ?? "").not.toContain("s3cret-db");
      }
    }
  }, 120_000);
});
