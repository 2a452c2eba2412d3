// The stack files under tests/fixtures/stacks/real-shapes are our own text with the shapes that public swarm
// stacks use. Each one renders (`swarmform render`, exit 0), and its meaning is checked here field by field
// against what the file says: the expected values below are read from the files, not from our output.
import * as path from "path";
import { runRender } from "../../cli/render";
import { parseStackFile } from "../../components/config/compose";
import { formatIssue } from "../../components/config/errors";
import { ServiceSpec, StackSpec } from "../../components/config/types";
import { serviceArgs } from "../../components/workloads/serviceArgs";

const ROOT = path.resolve(__dirname, "../..");
const DIR = path.join(ROOT, "tests/fixtures/stacks/real-shapes");
const at = (f: string) => path.join(DIR, f);

/** `swarmform render FILE` in-process: exit code, stdout JSON, stderr lines. */
function render(file: string, ...flags: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runRender([...flags, at(file)], {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    cwd: ROOT,
    env: { APP_TAG: "from-the-shell", DASH_HOST: "from.the.shell" },
  });
  const json =
    code === 0 ? (JSON.parse(out.join("\n")) as { services: Record<string, unknown>[] }) : undefined;
  return { code, json, err };
}

/** The imported stack; fails with readable issues. */
function load(file: string, stackName?: string): { stack: StackSpec; warnings: string[] } {
  const r = parseStackFile(at(file), { vars: {}, displayPath: file, ...(stackName ? { stackName } : {}) });
  expect(r.issues.map(formatIssue)).toEqual([]);
  return { stack: r.stack!, warnings: r.warnings.map(formatIssue) };
}

const svc = (stack: StackSpec, key: string): ServiceSpec => {
  const s = stack.services.find((x) => x.key === key);
  if (!s) throw new Error(`no service ${key} in ${stack.services.map((x) => x.key)}`);
  return s;
};
// The docker.ServiceArgs inputs are deeply nested pulumi.Input types; the test reads them as plain data.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const args = (s: ServiceSpec) => serviceArgs(s, { networkIds: {} }) as any;

const FILES = [
  "Docker-Stack.v2.yml",
  "anchors.yml",
  "ci-runner.yml",
  "database.yml",
  "edge-proxy.yml",
  "metrics.yml",
  "portainer.yml",
  "search.yml",
  "storage.yml",
  "voting.yml",
];

describe.each(FILES)("%s renders", (file) => {
  it("exits 0 with a service for each key under services:", () => {
    const r = render(file);
    expect(r.err.filter((l) => !l.startsWith("warning: "))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.json!.services.length).toBe(load(file).stack.services.length);
  });
});

test("a file whose name is not a stack name renders with --name, and is refused without one", () => {
  const bad = render("Legacy_Stack.yaml");
  expect(bad.code).toBe(1);
  expect(bad.err.join("\n")).toMatch(
    /Legacy_Stack\.yaml:1: the stack name comes from the file name, and "Legacy_Stack" is not one .*render --name/,
  );
  const named = render("Legacy_Stack.yaml", "--name", "legacy");
  expect(named.code).toBe(0);
  expect(named.json!.services.map((s) => s.name)).toEqual(["legacy_app"]);
});

describe("edge-proxy.yml: its own Traefik", () => {
  const { stack } = load("edge-proxy.yml");
  const proxy = svc(stack, "proxy");
  it("host-mode ports in long syntax, the default protocol tcp", () => {
    expect(proxy.ports).toEqual([
      { target: 80, published: 8080, protocol: "tcp", mode: "host" },
      { target: 443, published: 8443, protocol: "tcp", mode: "host" },
    ]);
  });
  it("the socket bind read-only, a stack volume, an external network by its own name", () => {
    expect(proxy.mounts).toEqual([
      { type: "bind", source: "/var/run/docker.sock", target: "/var/run/docker.sock", readOnly: true },
      { type: "volume", source: "edge-proxy_certificates", target: "/certificates", readOnly: false },
    ]);
    expect(proxy.networks).toEqual(["edge-public"]);
    expect(stack.networks).toEqual([]); // external: referenced, not created
  });
  it("deploy.labels in list form are service labels; $$ is a literal $; defaults fill ${VAR:-x}", () => {
    expect(proxy.labels).toMatchObject({
      "traefik.enable": "true",
      "traefik.swarm.network": "edge-public",
      "traefik.http.routers.edge-dash.rule": "Host(`dash.edge.example.org`)",
      "traefik.http.routers.edge-dash.service": "api@internal",
      "traefik.http.middlewares.edge-auth.basicauth.users": "ops:$apr1$q8f2k1zz$Vd0eXampleHashOnly0.",
      "traefik.http.services.edge-dash.loadbalancer.server.port": "8080",
    });
    expect(proxy.constraints).toEqual(["node.role == manager", "node.labels.edge.certificates == true"]);
    expect(proxy.command).toHaveLength(5);
    expect(proxy.command![0]).toBe("--providers.swarm.endpoint=unix:///var/run/docker.sock");
  });
  it("logging becomes the task's log driver", () => {
    expect(proxy.logging).toEqual({ driver: "json-file", options: { "max-size": "10m", "max-file": "3" } });
    expect(args(proxy).taskSpec.logDriver).toEqual({
      name: "json-file",
      options: { "max-size": "10m", "max-file": "3" },
    });
  });
  it("the shell's DASH_HOST is not read: render uses the file's default", () => {
    const labels = render("edge-proxy.yml").json!.services[0].labels as Record<string, string>;
    expect(labels["traefik.http.routers.edge-dash.rule"]).toBe("Host(`dash.edge.example.org`)");
  });
});

describe("portainer.yml", () => {
  const { stack, warnings } = load("portainer.yml");
  it("agent: global, host port 9001, two binds, flow-style constraint", () => {
    const agent = svc(stack, "agent");
    expect(agent.mode).toBe("global");
    expect(agent.replicas).toBeUndefined();
    expect(agent.environment).toEqual({ AGENT_CLUSTER_ADDR: "tasks.agent" });
    expect(agent.ports).toEqual([{ target: 9001, published: 9001, protocol: "tcp", mode: "host" }]);
    expect(agent.mounts.map((m) => [m.type, m.source, m.target])).toEqual([
      ["bind", "/var/run/docker.sock", "/var/run/docker.sock"],
      ["bind", "/var/lib/docker/volumes", "/var/lib/docker/volumes"],
    ]);
    expect(agent.constraints).toEqual(["node.platform.os == linux"]);
    expect(args(agent).mode).toEqual({ global: true });
  });
  it("server: a command string split like a shell, three short ports, one replica on a manager", () => {
    const p = svc(stack, "portainer");
    expect(p.command).toEqual(["-H", "tcp://tasks.agent:9001", "--tlsskipverify"]);
    expect(p.ports.map((x) => [x.published, x.target, x.mode])).toEqual([
      [9443, 9443, "ingress"],
      [9000, 9000, "ingress"],
      [8000, 8000, "ingress"],
    ]);
    expect(p.replicas).toBe(1);
    expect(p.constraints).toEqual(["node.role == manager"]);
    expect(p.mounts).toEqual([
      { type: "volume", source: "portainer_portainer_data", target: "/data", readOnly: false },
    ]);
  });
  it("the attachable overlay network; container_name and restart are warned about at their lines", () => {
    expect(stack.networks.map((n) => [n.physicalName, n.attachable])).toEqual([
      ["portainer_agent_network", true],
    ]);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^portainer\.yml:27 \(services\.portainer\.container_name\): "container_name" is ignored/,
      ),
      expect.stringMatching(/^portainer\.yml:28 \(services\.portainer\.restart\): "restart" is ignored/),
    ]);
  });
});

describe("voting.yml", () => {
  const { stack, warnings } = load("voting.yml");
  it("null-valued networks and volumes define them", () => {
    expect(stack.networks.map((n) => n.physicalName)).toEqual([
      "voting_default",
      "voting_frontend",
      "voting_backend",
    ]);
    expect(svc(stack, "db").mounts[0].source).toBe("voting_db-data");
  });
  it("a port without a published side, replicas, update and restart policies", () => {
    const redis = svc(stack, "redis");
    expect(redis.ports).toEqual([{ target: 6379, protocol: "tcp", mode: "ingress" }]);
    expect(redis.replicas).toBe(2);
    expect(redis.updateConfig).toEqual({ parallelism: 2, delay: "10s" });
    expect(redis.restartPolicy).toEqual({ condition: "on-failure" });
    expect(svc(stack, "vote").ports).toEqual([
      { target: 80, published: 5080, protocol: "tcp", mode: "ingress" },
    ]);
  });
  it("worker: labels as a list, every restart_policy key, both networks", () => {
    const w = svc(stack, "worker");
    expect(w.labels.APP).toBe("VOTING");
    expect(w.restartPolicy).toEqual({
      condition: "on-failure",
      delay: "10s",
      maxAttempts: 3,
      window: "120s",
    });
    expect(w.networks).toEqual(["voting_frontend", "voting_backend"]);
  });
  it("a *_FILE variable beside its secret; a service with no networks joins the default network", () => {
    const db = svc(stack, "db");
    expect(db.environment.POSTGRES_PASSWORD_FILE).toBe("/run/secrets/db_password");
    expect(db.secrets).toEqual([{ source: "voting_db_password", key: "db_password", target: "db_password" }]);
    const viz = svc(stack, "visualizer");
    expect(viz.networks).toEqual(["voting_default"]);
    expect(viz.stopGracePeriod).toBe("1m30s");
    expect(args(viz).taskSpec.containerSpec.stopGracePeriod).toBe("1m30s");
  });
  it("depends_on is a warning at each of its lines", () => {
    expect(warnings).toEqual([
      expect.stringMatching(/^voting\.yml:41 \(services\.vote\.depends_on\)/),
      expect.stringMatching(/^voting\.yml:56 \(services\.result\.depends_on\)/),
    ]);
  });
});

describe("metrics.yml: anchors, merges and Go templates", () => {
  const { stack } = load("metrics.yml");
  it("the exporter anchor gives both exporters their network and global deploy with resources", () => {
    for (const key of ["node-exporter", "cadvisor"]) {
      const s = svc(stack, key);
      expect(s.networks).toEqual(["metrics_metrics"]);
      expect(s.mode).toBe("global");
      expect(s.resources).toEqual({
        limits: { memoryBytes: 128 * 1024 ** 2 },
        reservations: { memoryBytes: 64 * 1024 ** 2 },
      });
    }
  });
  it("Go templates stay for swarm to expand; $$ in a regex is a single $", () => {
    const ne = svc(stack, "node-exporter");
    expect(ne.hostname).toBe("{{.Node.Hostname}}");
    expect(ne.environment).toEqual({ NODE_ID: "{{.Node.ID}}" });
    expect(ne.command).toContain(
      "--collector.filesystem.mount-points-exclude=^/(sys|proc|dev|host|etc)($|/)",
    );
    expect(svc(stack, "cadvisor").hostname).toBe("cadvisor-{{.Node.ID}}");
    expect(args(ne).taskSpec.containerSpec.hostname).toBe("{{.Node.Hostname}}");
  });
  it("deploy merges: the anchor's restart policy, the file's own placement, resources and replicas", () => {
    const prom = svc(stack, "prometheus");
    expect(prom.replicas).toBe(1);
    expect(prom.restartPolicy).toEqual({ condition: "on-failure", delay: "5s" });
    expect(prom.constraints).toEqual(["node.role == manager"]);
    expect(prom.resources).toEqual({
      limits: { cpus: 0.5, memoryBytes: 2048 * 1024 ** 2 },
      reservations: { memoryBytes: 128 * 1024 ** 2 },
    });
    expect(prom.command).toContain("--storage.tsdb.retention.time=24h");
    const grafana = svc(stack, "grafana");
    expect(grafana.replicas).toBe(2); // the service's own key wins over the merged one
    expect(grafana.restartPolicy).toEqual({ condition: "on-failure", delay: "5s" });
    expect(grafana.environment).toEqual({ GF_SECURITY_ADMIN_USER: "admin", GF_USERS_ALLOW_SIGN_UP: "false" });
  });
  it("configs in long syntax with an octal mode, and a default target", () => {
    expect(svc(stack, "prometheus").configs).toEqual([
      {
        source: "metrics_prometheus_config",
        key: "prometheus_config",
        target: "/etc/prometheus/prometheus.yml",
        mode: 0o440,
      },
      { source: "metrics_node_rules", key: "node_rules", target: "/etc/prometheus/node.rules.yml" },
    ]);
    expect(stack.configs.map((c) => c.file)).toEqual([
      at("config/prometheus.yml"),
      at("config/node.rules.yml"),
    ]);
  });
});

describe("database.yml: *_FILE secrets, env_file, external objects", () => {
  const { stack, warnings } = load("database.yml");
  const pg = svc(stack, "postgres");
  it("env_file then environment", () => {
    expect(pg.environment).toEqual({
      POSTGRES_DB: "app",
      POSTGRES_INITDB_ARGS: "--data-checksums",
      TZ: "UTC",
      POSTGRES_PASSWORD_FILE: "/run/secrets/pg_password",
      POSTGRES_USER_FILE: "/run/secrets/pg_user",
      PGDATA: "/var/lib/postgresql/data/pgdata",
    });
  });
  it("secrets short and long (uid, gid, octal mode), one external; an external config by its name", () => {
    expect(pg.secrets).toEqual([
      { source: "database_pg_password", key: "pg_password", target: "pg_password" },
      { source: "database_pg_user", key: "pg_user", target: "pg_user", uid: "999", gid: "999", mode: 0o400 },
      { source: "replication_key", key: "replication_key", target: "replication_key" },
    ]);
    expect(stack.secrets.map((s) => [s.key, s.external])).toEqual([
      ["pg_password", false],
      ["pg_user", false],
      ["replication_key", true],
    ]);
    expect(pg.configs).toEqual([
      { source: "pg_hba_v3", key: "pg_hba", target: "/etc/postgresql/pg_hba.conf" },
    ]);
  });
  it("an external volume by its name in long syntax; $$ reaches the healthcheck shell as $", () => {
    expect(pg.mounts).toEqual([
      { type: "volume", source: "pg-primary-data", target: "/var/lib/postgresql/data", readOnly: false },
    ]);
    expect(pg.healthcheck).toEqual({
      test: ["CMD-SHELL", "pg_isready -U ${POSTGRES_USER:-postgres}"],
      interval: "10s",
      timeout: "5s",
      retries: 5,
      startPeriod: "30s",
    });
    expect(pg.restartPolicy).toEqual({ condition: "any" });
    expect(pg.constraints).toEqual(["node.labels.db == primary"]);
  });
  it("shm_size is ignored with a warning, as docker stack deploy does", () => {
    expect(warnings).toEqual([
      expect.stringMatching(/^database\.yml:34 \(services\.postgres\.shm_size\): "shm_size" is ignored/),
    ]);
  });
});

describe("ci-runner.yml", () => {
  const { stack } = load("ci-runner.yml");
  const runner = svc(stack, "runner");
  it("entrypoint and command lists; numbers and booleans in environment as written", () => {
    expect(runner.entrypoint).toEqual(["/usr/bin/dumb-init", "/entrypoint"]);
    expect(runner.command).toEqual([
      "run",
      "--user=gitlab-runner",
      "--working-directory=/home/gitlab-runner",
    ]);
    expect(runner.environment).toEqual({ CONCURRENT: "4", RUNNER_DEBUG: "false", CHECK_INTERVAL: "3.5" });
  });
  it("init, stop signal and grace period, extra hosts in both separators, DNS, capabilities", () => {
    expect([runner.init, runner.stopSignal, runner.stopGracePeriod]).toEqual([true, "SIGQUIT", "2h"]);
    expect(runner.extraHosts).toEqual([
      { host: "forge.internal", ip: "10.10.0.5" },
      { host: "registry.internal", ip: "10.10.0.6" },
    ]);
    expect(runner.dns).toEqual({
      nameservers: ["10.10.0.2", "1.1.1.1"],
      searches: ["internal"],
      options: ["ndots:2"],
    });
    expect(runner.capAdd).toEqual(["SYS_ADMIN"]);
    const c = args(runner).taskSpec.containerSpec;
    expect(c.init).toBe(true);
    expect(c.stopSignal).toBe("SIGQUIT");
    expect(c.stopGracePeriod).toBe("2h");
    expect(c.hosts).toEqual([
      { host: "forge.internal", ip: "10.10.0.5" },
      { host: "registry.internal", ip: "10.10.0.6" },
    ]);
    expect(c.dnsConfig).toEqual({
      nameservers: ["10.10.0.2", "1.1.1.1"],
      searches: ["internal"],
      options: ["ndots:2"],
    });
    expect(c.capAdds).toEqual(["SYS_ADMIN"]);
  });
  it("a GPU reservation as a generic resource", () => {
    expect(runner.resources?.reservations?.genericResources).toEqual(["NVIDIA-GPU=1"]);
    expect(args(runner).taskSpec.resources.reservation.genericResources).toEqual({
      discreteResourcesSpecs: ["NVIDIA-GPU=1"],
    });
    expect(runner.mode).toBe("global");
  });
});

describe("storage.yml", () => {
  const { stack } = load("storage.yml");
  const minio = svc(stack, "minio");
  it("templated hostname, dnsrr, four replicas at most one per node, spread over zones", () => {
    expect(minio.hostname).toBe("minio{{.Task.Slot}}");
    expect(minio.endpointMode).toBe("dnsrr");
    expect(minio.replicas).toBe(4);
    expect(minio.maxReplicasPerNode).toBe(1);
    expect(minio.preferences).toEqual(["node.labels.zone"]);
    expect(args(minio).taskSpec.placement).toEqual({
      constraints: ["node.labels.storage == true"],
      prefs: ["spread=node.labels.zone"],
      maxReplicas: 1,
    });
  });
  it("network aliases on the long network syntax; `default` joins <stack>_default", () => {
    expect(minio.networks).toEqual(["storage_storage", "storage_default"]);
    expect(minio.networkAliases).toEqual({ storage_storage: ["s3", "objects.internal"] });
    expect(args(minio).taskSpec.networksAdvanceds).toEqual([
      { name: "storage_storage", aliases: ["s3", "objects.internal"] },
      { name: "storage_default" },
    ]);
    expect(stack.networks.map((n) => [n.physicalName, n.encrypted])).toEqual([
      ["storage_default", false],
      ["storage_storage", true],
    ]);
  });
  it("an NFS volume: its name, driver, options and labels reach the mount", () => {
    expect(minio.mounts[0]).toEqual({
      type: "volume",
      source: "minio-export",
      target: "/export",
      readOnly: false,
      volume: {
        driver: "local",
        driverOpts: { type: "nfs", o: "addr=10.10.0.20,nfsvers=4,rw", device: ":/srv/minio" },
        labels: { backup: "nightly" },
      },
    });
    expect(args(minio).taskSpec.containerSpec.mounts[0].volumeOptions).toEqual({
      driverName: "local",
      driverOptions: { type: "nfs", o: "addr=10.10.0.20,nfsvers=4,rw", device: ":/srv/minio" },
      labels: [
        { label: "backup", value: "nightly" },
        { label: "com.docker.stack.namespace", value: "storage" },
      ],
    });
    expect(minio.mounts[1]).toEqual({
      type: "bind",
      source: at("config/minio-policy.json"),
      target: "/etc/minio/policy.json",
      readOnly: true,
    });
  });
  it("update and rollback configs; the command keeps its braces", () => {
    expect(minio.updateConfig).toEqual({
      parallelism: 1,
      delay: "30s",
      order: "stop-first",
      failureAction: "rollback",
    });
    expect(minio.rollbackConfig).toEqual({ parallelism: 1, monitor: "60s" });
    expect(minio.command).toEqual(["server", "--console-address", ":9001", "http://minio{1...4}/export"]);
    expect(minio.healthcheck?.test).toEqual(["CMD", "curl", "-f", "http://localhost:9000/minio/health/live"]);
  });
});

describe("search.yml", () => {
  const { stack } = load("search.yml");
  it("search: user, working_dir, sysctls in map form, IPC_LOCK, a quoted env entry with spaces", () => {
    const s = svc(stack, "search");
    expect([s.user, s.workingDir]).toEqual(["1000:1000", "/usr/share/opensearch"]);
    expect(s.sysctls).toEqual({ "net.core.somaxconn": "1024", "net.ipv4.tcp_keepalive_time": "600" });
    expect(s.environment["OPENSEARCH_JAVA_OPTS"]).toBe("-Xms512m -Xmx512m");
    expect(s.environment["cluster.name"]).toBe("logs");
    expect(s.resources).toEqual({ limits: { cpus: 2, memoryBytes: 2 * 1024 ** 3 } });
    const c = args(s).taskSpec.containerSpec;
    expect([c.dir, c.sysctl, c.capAdds]).toEqual([
      "/usr/share/opensearch",
      { "net.core.somaxconn": "1024", "net.ipv4.tcp_keepalive_time": "600" },
      ["IPC_LOCK"],
    ]);
  });
  it("shipper: read-only root with a tmpfs, sysctls in list form, cap_drop, a GELF driver with a template", () => {
    const s = svc(stack, "shipper");
    expect(s.readOnly).toBe(true);
    expect(s.capDrop).toEqual(["ALL"]);
    expect(s.sysctls).toEqual({ "net.ipv4.ip_unprivileged_port_start": "0" });
    expect(s.mounts[0]).toEqual({ type: "tmpfs", target: "/tmp", readOnly: false });
    expect(s.logging).toEqual({
      driver: "gelf",
      options: { "gelf-address": "udp://10.10.0.30:12201", tag: "shipper/{{.Name}}" },
    });
    const c = args(s).taskSpec.containerSpec;
    expect([c.readOnly, c.capDrops]).toEqual([true, ["ALL"]]);
  });
});

describe("Docker-Stack.v2.yml: the top-level name, and the implicit default network", () => {
  const { stack } = load("Docker-Stack.v2.yml");
  it("is named by `name:`, not by its file name", () => {
    expect(stack.name).toBe("shop");
    expect(stack.services.map((s) => s.name)).toEqual(["shop_web", "shop_api", "shop_cron"]);
  });
  it("`default` beside another network, and no network at all, both join shop_default", () => {
    expect(svc(stack, "web").networks).toEqual(["shop_default", "shop_backend"]);
    expect(svc(stack, "api").networks).toEqual(["shop_backend"]);
    expect(svc(stack, "cron").networks).toEqual(["shop_default"]);
    expect(stack.networks.map((n) => n.physicalName)).toEqual(["shop_default", "shop_backend"]);
  });
  it("a config stacks[].name wins over `name:`", () => {
    expect(load("Docker-Stack.v2.yml", "shop2").stack.services[0].name).toBe("shop2_web");
  });
});

describe("anchors.yml: several merges, aliased lists, overrides, $${...}", () => {
  const { stack } = load("anchors.yml");
  it("`<<: [*a, *b]` merges both; the first mapping wins a key both have, the service's own keys win", () => {
    const web = svc(stack, "web");
    expect(web.image).toBe("example/app:4.2.0");
    expect(web.logging).toEqual({ driver: "json-file", options: { "max-size": "5m" } });
    expect(web.networks).toEqual(["anchors_apps"]);
    expect(web.replicas).toBe(3); // ${APP_REPLICAS:-3}, a string that becomes a number
    expect(web.labels["com.example.team"]).toBe("payments");
    const worker = svc(stack, "worker");
    expect(worker.image).toBe("example/app-worker:4.2.0");
    expect(worker.replicas).toBe(1);
    expect(worker.labels["com.example.team"]).toBe("payments");
    expect(worker.logging?.driver).toBe("json-file");
  });
  it("an aliased environment list; $${...} stays literal for the container's shell", () => {
    const env = { APP_MODE: "production", APP_HOME: "${HOME}/app" };
    expect(svc(stack, "web").environment).toEqual(env);
    expect(svc(stack, "worker").environment).toEqual(env);
    expect(svc(stack, "web").command).toEqual(["sh", "-c", "exec app serve --port ${PORT:-8080}"]);
  });
  it("the shell's APP_TAG is not read by render (not opted in)", () => {
    const images = render("anchors.yml").json!.services.map((s) => s.image);
    expect(images).toEqual(["example/app:4.2.0", "example/app-worker:4.2.0"]);
  });
});
