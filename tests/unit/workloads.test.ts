import * as bcrypt from "bcryptjs";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import {
  base64,
  contentHash,
  deterministicSalt,
  hashedName,
  htpasswdLine,
} from "../../components/workloads/content";
import {
  cadvisorService,
  labelConstraint,
  networkArgs,
  nodeExporterService,
  prometheusConfig,
  prometheusService,
  registryService,
  traefikArgs,
  traefikService,
} from "../../components/workloads/platform";
import { dockerProviderArgs, sshOptsFor } from "../../components/workloads/provider";
import {
  imageRegistry,
  labelList,
  nanoCpus,
  serviceArgs,
  toDuration,
} from "../../components/workloads/serviceArgs";
import { sampleClusterSpec, sampleServiceSpec } from "../support/mocks";
import { dockerswarmMetaLabels, traefikSwarmProviderOptions } from "../support/oracles";

/** Resolves a value that may contain Outputs (works without a Pulumi engine). */
function resolve<T>(v: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
  return new Promise((ok) => pulumi.output(v).apply((x) => ok(x as pulumi.Unwrap<T>)));
}

describe("toDuration", () => {
  test.each([
    ["10s", "10s"],
    ["1m30s", "1m30s"],
    ["500ms", "500ms"],
    ["2h", "2h"],
    [" 5s ", "5s"],
    ["30", "30s"],
    [15, "15s"],
  ])("%p -> %p", (input, expected) => {
    expect(toDuration(input)).toBe(expected);
  });
  test.each(["1d", "abc", "10 s", "-1s", ""])("rejects %p", (bad) => {
    expect(() => toDuration(bad)).toThrow(/invalid duration/);
  });
});

describe("small mappings", () => {
  test("labelList sorts by key", () => {
    expect(labelList({ b: "2", a: "1" })).toEqual([
      { label: "a", value: "1" },
      { label: "b", value: "2" },
    ]);
  });
  test("nanoCpus", () => {
    expect(nanoCpus(0.5)).toBe(500_000_000);
    expect(nanoCpus(2)).toBe(2_000_000_000);
    expect(nanoCpus(undefined)).toBeUndefined();
  });
  test("imageRegistry recognises a registry host only when it looks like one", () => {
    expect(imageRegistry("registry.example.org:5000/api:1")).toBe("registry.example.org:5000");
    expect(imageRegistry("localhost/x")).toBe("localhost");
    expect(imageRegistry("traefik/whoami")).toBeUndefined();
    expect(imageRegistry("nginx:1.27")).toBeUndefined();
  });
  test("labelConstraint", () => {
    expect(labelConstraint("swarmform.traefik=true")).toBe("node.labels.swarmform.traefik==true");
    expect(labelConstraint("node.role==manager")).toBe("node.role==manager");
    expect(() => labelConstraint("novalue")).toThrow(/key=value/);
  });
  test("sshOptsFor: ssh hosts fail fast and never prompt; host keys stay checked unless configured", () => {
    const opts = sshOptsFor("ssh://deploy@m1")!;
    expect(opts).toEqual(expect.arrayContaining(["ConnectTimeout=10", "BatchMode=yes"]));
    expect(opts.join(" ")).not.toMatch(/StrictHostKeyChecking/);
    expect(sshOptsFor("ssh://m1", ["-o", "StrictHostKeyChecking=accept-new"])).toContain(
      "StrictHostKeyChecking=accept-new",
    );
    expect(sshOptsFor("unix:///var/run/docker.sock")).toBeUndefined();
  });
  test("dockerProviderArgs", async () => {
    const a = dockerProviderArgs("unix:///run/docker.sock");
    expect(await resolve(a.host!)).toBe("unix:///run/docker.sock");
    expect(await resolve(a.sshOpts!)).toEqual([]);
  });
});

describe("serviceArgs", () => {
  test("maps a full Compose service", async () => {
    const spec = sampleServiceSpec({
      command: ["serve", "--port", "8080"],
      entrypoint: ["/bin/app"],
      user: "1000",
      environment: { A: "1" },
      networks: ["app_backend", "external_net"],
      mounts: [{ type: "volume", source: "app_data", target: "/data", readOnly: false }],
      configs: [{ source: "app_conf-0123456789", key: "conf", target: "/etc/app.conf", mode: 0o440 }],
      secrets: [{ source: "ext_secret", key: "ext", target: "token", uid: "1000", gid: "1000" }],
      healthcheck: { test: ["CMD", "true"], interval: "10s", timeout: "1m30s", retries: 3, startPeriod: "5" },
      ports: [{ target: 80, published: 8080, protocol: "tcp", mode: "host" }],
      replicas: 3,
      labels: { "com.docker.stack.namespace": "app", x: "y" },
      containerLabels: { "com.docker.stack.namespace": "app", c: "d" },
      constraints: ["node.role==worker"],
      preferences: ["node.labels.zone"],
      updateConfig: {
        parallelism: 2,
        delay: "10s",
        failureAction: "rollback",
        maxFailureRatio: 0.1,
        order: "start-first",
      },
      rollbackConfig: { parallelism: 1, monitor: "30s" },
      restartPolicy: { condition: "on-failure", delay: "5s", maxAttempts: 3, window: "2m" },
      resources: { limits: { cpus: 0.5, memoryBytes: 134217728 }, reservations: { memoryBytes: 67108864 } },
      endpointMode: "vip",
    });
    const args = await resolve(
      serviceArgs(spec, {
        networkIds: { app_backend: "net-id-1" },
        configs: { conf: { id: "cfg-id", name: "app_conf-0123456789" } },
      }) as pulumi.Input<object>,
    );
    expect(args).toMatchObject({
      name: "app_web",
      labels: [
        { label: "com.docker.stack.namespace", value: "app" },
        { label: "x", value: "y" },
      ],
      mode: { replicated: { replicas: 3 } },
      taskSpec: {
        containerSpec: {
          image: "nginx:1.27",
          commands: ["/bin/app"],
          args: ["serve", "--port", "8080"],
          user: "1000",
          env: { A: "1" },
          labels: [
            { label: "c", value: "d" },
            { label: "com.docker.stack.namespace", value: "app" },
          ],
          mounts: [{ type: "volume", source: "app_data", target: "/data", readOnly: false }],
          healthcheck: {
            tests: ["CMD", "true"],
            interval: "10s",
            timeout: "1m30s",
            retries: 3,
            startPeriod: "5s",
          },
          configs: [
            {
              configId: "cfg-id",
              configName: "app_conf-0123456789",
              fileName: "/etc/app.conf",
              fileMode: 0o440,
            },
          ],
          secrets: [
            {
              secretId: "ext_secret",
              secretName: "ext_secret",
              fileName: "token",
              fileUid: "1000",
              fileGid: "1000",
            },
          ],
        },
        networksAdvanceds: [{ id: "net-id-1" }, { name: "external_net" }],
        placement: { constraints: ["node.role==worker"], prefs: ["spread=node.labels.zone"] },
        resources: {
          limits: { nanoCpus: 500_000_000, memoryBytes: 134217728 },
          reservation: { memoryBytes: 67108864 },
        },
        restartPolicy: { condition: "on-failure", delay: "5s", maxAttempts: 3, window: "2m" },
      },
      updateConfig: {
        parallelism: 2,
        delay: "10s",
        failureAction: "rollback",
        maxFailureRatio: "0.1",
        order: "start-first",
      },
      rollbackConfig: { parallelism: 1, monitor: "30s" },
      endpointSpec: {
        mode: "vip",
        ports: [{ targetPort: 80, publishedPort: 8080, protocol: "tcp", publishMode: "host" }],
      },
    });
    expect(args).not.toHaveProperty("auth");
    // Volumes created by swarm on first use carry the stack namespace, as with `docker stack deploy`.
    const mounts = (args as { taskSpec: { containerSpec: { mounts: { volumeOptions?: unknown }[] } } })
      .taskSpec.containerSpec.mounts;
    expect(mounts[0].volumeOptions).toEqual({
      labels: [{ label: "com.docker.stack.namespace", value: "app" }],
    });
  });

  test("global mode, dnsrr, no replicas", async () => {
    const args = await resolve(
      serviceArgs(sampleServiceSpec({ mode: "global", replicas: undefined, endpointMode: "dnsrr" }), {
        networkIds: {},
      }) as pulumi.Input<object>,
    );
    expect(args).toMatchObject({ mode: { global: true }, endpointSpec: { mode: "dnsrr", ports: [] } });
  });

  test("registry auth only for images of the platform registry, with a secret password", async () => {
    const registryAuth = { serverAddress: "registry.example.org:5000", username: "u", password: "pw" };
    const own = serviceArgs(sampleServiceSpec({ image: "registry.example.org:5000/api:1" }), {
      networkIds: {},
      registryAuth,
    });
    expect(own.auth).toBeDefined();
    const auth = await resolve(own.auth!);
    expect(auth).toEqual({ serverAddress: "registry.example.org:5000", username: "u", password: "pw" });
    expect(await pulumi.isSecret(pulumi.output(own.auth!).apply((a) => a!.password))).toBe(true);
    const other = serviceArgs(sampleServiceSpec({ image: "registry.example.org/api:1" }), {
      networkIds: {},
      registryAuth,
    });
    expect(other.auth).toBeUndefined();
  });

  test("secret labels are merged and keep the labels secret", async () => {
    const args = serviceArgs(sampleServiceSpec(), {
      networkIds: {},
      secretLabels: pulumi.secret({ "traefik.http.middlewares.m.basicauth.users": "a:b" }),
    });
    expect(await pulumi.isSecret(pulumi.output(args.labels!))).toBe(true);
    expect(await resolve(args.labels!)).toContainEqual({
      label: "traefik.http.middlewares.m.basicauth.users",
      value: "a:b",
    });
  });
});

describe("content", () => {
  test("hashedName changes with the content and only with it", () => {
    expect(hashedName("ns_prometheus", "a")).toBe(hashedName("ns_prometheus", "a"));
    expect(hashedName("ns_prometheus", "a")).not.toBe(hashedName("ns_prometheus", "b"));
    expect(hashedName("ns_prometheus", "a")).toMatch(/^ns_prometheus-[0-9a-f]{10}$/);
    expect(contentHash(Buffer.from("a"))).toBe(contentHash("a"));
  });
  test("htpasswd lines are bcrypt, deterministic per user+password, and verify", () => {
    const a = htpasswdLine("admin", "s3cret");
    expect(a).toBe(htpasswdLine("admin", "s3cret"));
    expect(a).not.toBe(htpasswdLine("admin", "other"));
    expect(a).not.toBe(htpasswdLine("root", "s3cret"));
    const [user, hash] = a.split(/:(.*)/s);
    expect(user).toBe("admin");
    expect(hash).toMatch(/^\$2y\$10\$/);
    expect(bcrypt.compareSync("s3cret", hash)).toBe(true);
    expect(bcrypt.compareSync("wrong", hash)).toBe(false);
    expect(deterministicSalt("u", "p")).not.toBe(deterministicSalt("u", "q"));
    expect(() => htpasswdLine("a:b", "x")).toThrow();
  });
  test("base64 round-trips", () => {
    expect(Buffer.from(base64("héllo"), "base64").toString("utf8")).toBe("héllo");
  });
});

describe("platform builders", () => {
  const spec = sampleClusterSpec();

  test("networkArgs: overlay, attachable, encrypted option, subnet, namespace label", () => {
    const a = networkArgs(spec.networks[0], "swarmform-test");
    expect(a).toMatchObject({
      name: "swarmform-test_public",
      driver: "overlay",
      attachable: true,
      options: { encrypted: "true" },
      ipamConfigs: [{ subnet: "10.30.0.0/24" }],
    });
    expect(a.labels).toEqual(
      expect.arrayContaining([
        { label: "com.docker.stack.namespace", value: "swarmform-test" },
        { label: "tier", value: "edge" },
      ]),
    );
    const plain = networkArgs({ ...spec.networks[0], encrypted: false, subnet: undefined }, "x");
    expect(plain.options).toBeUndefined();
    expect(plain.ipamConfigs).toBeUndefined();
  });

  test("Traefik static configuration", () => {
    const args = traefikArgs(spec);
    expect(args).toEqual(
      expect.arrayContaining([
        "--providers.swarm.endpoint=unix:///var/run/docker.sock",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.network=swarmform-test_public",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.websecure.address=:443",
        "--entrypoints.registry.address=:5000",
        "--entrypoints.registry.transport.respondingTimeouts.readTimeout=0s",
        "--entrypoints.registry.transport.respondingTimeouts.writeTimeout=0s",
        "--certificatesresolvers.letsencrypt.acme.email=ops@example.org",
        "--certificatesresolvers.letsencrypt.acme.storage=/letsencrypt/acme.json",
        "--certificatesresolvers.letsencrypt.acme.tlschallenge=true",
        "--api.dashboard=true",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
        "--entrypoints.metrics.address=:8082",
      ]),
    );
    expect(args.some((a) => a.includes("caServer"))).toBe(false);
    const off = sampleClusterSpec({
      traefik: {
        ...spec.traefik,
        dashboard: { ...spec.traefik.dashboard, enabled: false },
        acme: { ...spec.traefik.acme!, caServer: "https://ca/dir" },
      },
    });
    expect(traefikArgs(off)).not.toContain("--api.dashboard=true");
    expect(traefikArgs(off)).toContain("--certificatesresolvers.letsencrypt.acme.caServer=https://ca/dir");
    const http = sampleClusterSpec({
      traefik: { ...spec.traefik, acme: { ...spec.traefik.acme!, challenge: "http" } },
      registry: { ...spec.registry, enabled: false },
    });
    expect(traefikArgs(http)).toContain(
      "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
    );
    expect(traefikArgs(http).some((a) => a.includes("tlschallenge"))).toBe(false);
    expect(traefikArgs(http).some((a) => a.startsWith("--entrypoints.registry."))).toBe(false);
    const quiet = sampleClusterSpec({ monitoring: { ...spec.monitoring, enabled: false } });
    expect(traefikArgs(quiet).some((a) => a.includes("metrics"))).toBe(false);
    expect(traefikService(quiet).labels["prometheus.io/scrape"]).toBeUndefined();
    expect(traefikService(spec).labels).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "8082",
    });
  });

  test("Traefik static option names exist in Traefik's swarm provider reference", () => {
    const known = new Set(traefikSwarmProviderOptions());
    expect(known.size).toBeGreaterThan(10);
    const used = traefikArgs(spec)
      .filter((a) => a.startsWith("--providers.swarm."))
      .map((a) => a.slice(2).split("=")[0]);
    expect(used).toEqual(
      expect.arrayContaining([
        "providers.swarm.endpoint",
        "providers.swarm.exposedByDefault",
        "providers.swarm.network",
      ]),
    );
    for (const opt of used) expect([opt, known.has(opt)]).toEqual([opt, true]);
  });

  test("Traefik service: pinned to a labelled manager, socket read-only, host-mode ports, ACME volume", () => {
    const t = traefikService(spec);
    expect(t.name).toBe("swarmform-test_traefik");
    expect(t.constraints).toEqual(["node.role==manager", "node.labels.swarmform.traefik==true"]);
    expect(t.mounts).toContainEqual({
      type: "bind",
      source: "/var/run/docker.sock",
      target: "/var/run/docker.sock",
      readOnly: true,
    });
    expect(t.mounts).toContainEqual(expect.objectContaining({ type: "volume", target: "/letsencrypt" }));
    expect(t.ports.map((p) => [p.target, p.published, p.mode])).toEqual([
      [80, 80, "host"],
      [443, 443, "host"],
      [5000, 5000, "host"],
    ]);
    expect(t.labels["com.docker.stack.namespace"]).toBe("swarmform-test");
    expect(t.labels["traefik.http.routers.swarmform-test-dashboard.service"]).toBe("api@internal");
    expect(t.labels["traefik.http.routers.swarmform-test-dashboard.middlewares"]).toBe(
      "swarmform-test-auth@swarm",
    );
    // The users label is secret: it is never part of the plain spec.
    expect(Object.keys(t.labels).some((k) => k.includes("basicauth"))).toBe(false);
    const off = traefikService(
      sampleClusterSpec({
        traefik: { ...spec.traefik, dashboard: { ...spec.traefik.dashboard, enabled: false } },
      }),
    );
    expect(
      Object.keys(off.labels).some((k) => k.includes("api@internal") || off.labels[k] === "api@internal"),
    ).toBe(false);
  });

  test("registry: htpasswd auth from a secret file, storage volume, pinned, routed on the registry entrypoint", () => {
    const r = registryService(spec, "swarmform-test_registry-htpasswd");
    expect(r.environment).toMatchObject({
      REGISTRY_AUTH: "htpasswd",
      REGISTRY_AUTH_HTPASSWD_PATH: "/run/secrets/registry-htpasswd",
    });
    expect(r.environment.REGISTRY_AUTH_HTPASSWD_REALM).toBeTruthy();
    expect(r.secrets).toEqual([expect.objectContaining({ key: "htpasswd", target: "registry-htpasswd" })]);
    expect(r.mounts).toContainEqual(expect.objectContaining({ type: "volume", target: "/var/lib/registry" }));
    expect(r.constraints).toEqual(["node.labels.swarmform.registry==true"]);
    expect(r.labels).toMatchObject({
      "traefik.enable": "true",
      "traefik.http.routers.swarmform-test-registry.entrypoints": "registry",
      "traefik.http.routers.swarmform-test-registry.rule": "Host(`registry.test.example.org`)",
      "traefik.http.routers.swarmform-test-registry.tls.certresolver": "letsencrypt",
      "traefik.http.services.swarmform-test-registry.loadbalancer.server.port": "5000",
    });
  });

  test("prometheus configuration: swarm discovery of nodes and tasks", () => {
    const cfg = YAML.parse(prometheusConfig(spec));
    const jobs = Object.fromEntries(cfg.scrape_configs.map((j: { job_name: string }) => [j.job_name, j]));
    const nodes = jobs["swarm-nodes"];
    expect(nodes.dockerswarm_sd_configs).toEqual([
      expect.objectContaining({ host: "unix:///var/run/docker.sock", role: "nodes", port: 9100 }),
    ]);
    expect(nodes.relabel_configs).toContainEqual(
      expect.objectContaining({
        source_labels: ["__meta_dockerswarm_node_address"],
        target_label: "__address__",
        replacement: "$1:9100",
      }),
    );
    const tasks = jobs["swarm-tasks"];
    expect(tasks.dockerswarm_sd_configs[0].role).toBe("tasks");
    const keep = tasks.relabel_configs.find((r: { source_labels: string[] }) =>
      r.source_labels.includes("__meta_dockerswarm_service_label_prometheus_io_scrape"),
    );
    const re = new RegExp(`^(?:${keep.regex})$`);
    expect(re.test("swarmform-test_cadvisor;")).toBe(true);
    expect(re.test("swarmform-test_node-exporter;")).toBe(true);
    expect(re.test("app_api;true")).toBe(true);
    expect(re.test("app_api;")).toBe(false);
    expect(re.test("app_api;false")).toBe(false);
    const net = tasks.relabel_configs.find((r: { source_labels: string[] }) =>
      r.source_labels.includes("__meta_dockerswarm_network_name"),
    );
    expect(net.action).toBe("keep");
    const netRe = new RegExp(`^(?:${net.regex})$`);
    expect(netRe.test("swarmform-test_public")).toBe(true);
    expect(netRe.test("swarmform-test_publicX")).toBe(false);
    expect(netRe.test("swarmform-testXpublic")).toBe(false);
    expect(netRe.test("")).toBe(false);
    // Every meta label used exists in Prometheus' reference.
    const known = new Set(dockerswarmMetaLabels());
    const used = new Set<string>();
    for (const job of [nodes, tasks]) {
      for (const r of job.relabel_configs) for (const l of r.source_labels ?? []) used.add(l);
    }
    const meta = [...used].filter((l) => l.startsWith("__meta_"));
    expect(meta.length).toBeGreaterThan(4);
    for (const l of meta) {
      const generic = l.replace(/^(__meta_dockerswarm_\w+?_label_).*$/, "$1<labelname>");
      expect([l, known.has(generic)]).toEqual([l, true]);
    }
  });

  test("prometheus runs on a manager with the socket read-only; exporters are global", () => {
    const p = prometheusService(spec, "cfg");
    expect(p.constraints).toContain("node.role==manager");
    expect(p.mounts).toContainEqual(
      expect.objectContaining({ source: "/var/run/docker.sock", readOnly: true }),
    );
    expect(p.configs).toEqual([expect.objectContaining({ target: "/etc/prometheus/prometheus.yml" })]);
    expect(p.labels["traefik.http.routers.swarmform-test-prometheus.middlewares"]).toBe(
      "swarmform-test-auth@swarm",
    );
    expect(p.command).toContain("--storage.tsdb.retention.time=15d");
    for (const s of [nodeExporterService(spec), cadvisorService(spec)]) {
      expect(s.mode).toBe("global");
      expect(s.replicas).toBeUndefined();
      expect(s.mounts.every((m) => m.readOnly)).toBe(true);
    }
    expect(nodeExporterService(spec).ports).toEqual([
      { target: 9100, published: 9100, protocol: "tcp", mode: "host" },
    ]);
  });
});
