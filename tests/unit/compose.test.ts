import Ajv from "ajv";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { parseStackFile, parseStackText, StackImportOptions } from "../../components/config/compose";
import {
  parseBytes,
  parseEnvFileText,
  parseImageRef,
  parseShortPort,
  shellSplit,
} from "../../components/config/compose-values";
import { formatIssue } from "../../components/config/errors";
import { ServiceSpec, StackSpec } from "../../components/config/types";
import { composeKeysSchema } from "../support/oracles";

const ROOT = path.resolve(__dirname, "../..");
const FIXTURES = path.join(ROOT, "tests/fixtures/stacks");
const SHAPES = path.join(FIXTURES, "shapes");
const platform = {
  publicNetwork: "swarmform-dev_public",
  entrypoint: "websecure",
  certResolver: "letsencrypt",
};

function svc(stack: StackSpec | undefined, key: string): ServiceSpec {
  const s = stack?.services.find((x) => x.key === key);
  if (!s) throw new Error(`no service ${key}`);
  return s;
}

/** Imports a text stack; fails the test with readable issues when `expectOk`. */
function importText(text: string, extra: Partial<StackImportOptions> = {}) {
  return parseStackText(text, {
    file: "/srv/stacks/t.yaml",
    displayPath: "stacks/t.yaml",
    vars: {},
    ...extra,
  });
}

describe("stack files in the shapes of real-world ones import as they are (tests/fixtures/stacks/shapes)", () => {
  it("a monitoring stack: global exporters, templates, $$, defaults, configs, healthcheck", () => {
    const r = parseStackFile(path.join(SHAPES, "metrics.yaml"), {
      vars: {},
      stackName: "mon",
      displayPath: "metrics.yaml",
    });
    expect(r.issues.map(formatIssue)).toEqual([]);
    const stack = r.stack!;
    expect(stack.services.map((s) => s.name)).toEqual([
      "mon_host-exporter",
      "mon_container-exporter",
      "mon_tsdb",
      "mon_dashboards",
      "mon_gateway",
    ]);
    const hostExporter = svc(stack, "host-exporter");
    expect(hostExporter.mode).toBe("global");
    expect(hostExporter.replicas).toBeUndefined();
    expect(hostExporter.environment).toEqual({ HOST_NODE: "{{.Node.Hostname}}" });
    expect(hostExporter.command).toContain(
      "--collector.filesystem.mount-points-exclude=^/(sys|proc|dev|run)($|/)",
    );
    expect(hostExporter.mounts).toContainEqual({
      type: "bind",
      source: "/",
      target: "/rootfs",
      readOnly: true,
    });
    expect(svc(stack, "container-exporter").command).toEqual(["-logtostderr", "-docker_only"]);
    expect(svc(stack, "dashboards").environment.GF_SECURITY_ADMIN_USER).toBe("admin");
    expect(svc(stack, "dashboards").constraints).toEqual(["node.role == manager"]);
    expect(svc(stack, "dashboards").mounts).toEqual([
      { type: "volume", source: "mon_dashboards", target: "/var/lib/grafana", readOnly: false },
    ]);
    expect(svc(stack, "tsdb").resources).toEqual({
      limits: { memoryBytes: 2048 * 1024 * 1024 },
      reservations: { memoryBytes: 128 * 1024 * 1024 },
    });
    expect(svc(stack, "tsdb").command).toContain("--storage.tsdb.retention.time=15d");
    const gateway = svc(stack, "gateway");
    expect(gateway.ports).toContainEqual({ target: 3000, published: 3000, protocol: "tcp", mode: "ingress" });
    expect(gateway.healthcheck).toEqual({
      test: ["CMD", "wget", "-q", "--spider", "http://localhost:3000"],
      interval: "5s",
      timeout: "1s",
      retries: 5,
    });
    expect(gateway.configs).toEqual([
      { source: "mon_gateway_config", key: "gateway_config", target: "/etc/caddy/Caddyfile" },
    ]);
    expect(stack.configs.find((c) => c.key === "alert_rules")).toMatchObject({
      name: "mon_alert_rules",
      external: false,
      file: path.join(SHAPES, "conf/alerts.rules.yml"),
      origin: { file: "metrics.yaml", path: "configs.alert_rules" },
    });
    expect(stack.networks).toEqual([
      {
        name: "mon",
        physicalName: "mon_mon",
        encrypted: false,
        attachable: true,
        labels: { "com.docker.stack.namespace": "mon" },
        origin: { file: "metrics.yaml", line: 9, path: "networks.mon" },
      },
    ]);
  });

  it("a Traefik-on-swarm stack: host-mode ports, socket, command flags, list-form deploy.labels", () => {
    const file = path.join(SHAPES, "edge-proxy.yaml");
    const r = parseStackFile(file, { vars: {}, stackName: "edge" });
    expect(r.issues.map(formatIssue)).toEqual([]);
    const stack = r.stack!;
    expect(stack.name).toBe("edge");
    const edge = stack.services.find((s) => s.key === "edge")!;
    expect(edge.ports).toEqual([
      { target: 80, published: 80, protocol: "tcp", mode: "host" },
      { target: 443, published: 443, protocol: "tcp", mode: "host" },
    ]);
    expect(edge.labels).toMatchObject({
      "traefik.enable": "true",
      "traefik.http.routers.panel.rule": "Host(`panel.edge.localhost`)",
      "traefik.http.routers.panel.service": "api@internal",
      "traefik.http.middlewares.panel-auth.basicauth.users": "ops:$2y$05$abcdefghijklmnopqrstuv",
      "traefik.http.services.edge.loadbalancer.server.port": "8080",
      "com.docker.stack.namespace": stack.name,
      "com.docker.stack.image": "traefik:v3.4",
    });
    expect(edge.mounts).toContainEqual({
      type: "bind",
      source: path.join(SHAPES, "conf"),
      target: "/conf",
      readOnly: true,
    });
    expect(edge.command).toContain("--providers.swarm.exposedbydefault=false");
    const hello = stack.services.find((s) => s.key === "hello")!;
    expect(hello.labels["traefik.http.services.hello.loadbalancer.server.port"]).toBe("80");
    expect(hello.replicas).toBe(1);
  });
});

describe("stacks/popcube.yaml", () => {
  const load = (vars: Record<string, string | undefined> = {}) =>
    parseStackFile(path.join(ROOT, "stacks/popcube.yaml"), {
      vars,
      platform,
      displayPath: "stacks/popcube.yaml",
    });

  it("imports with zero issues", () => {
    expect(load().issues.map(formatIssue)).toEqual([]);
  });

  it("has the api of the ops notes: 5 replicas, rolling update by 2 with rollback, the org label", () => {
    const stack = load().stack!;
    expect(stack.name).toBe("maxime");
    const api = svc(stack, "api");
    expect(api.name).toBe("maxime_api");
    expect(api.replicas).toBe(5);
    expect(api.updateConfig).toMatchObject({ parallelism: 2, failureAction: "rollback" });
    expect(api.rollbackConfig).toBeDefined();
    expect(api.containerLabels["xyz.popcube.org"]).toBe("maxime");
    expect(api.image).toBe("registry.dev.popcube.xyz:5000/popcubeapi:alpha-1.1.11");
    expect(api.healthcheck).toBeDefined();
    expect(api.resources?.limits?.memoryBytes).toBe(512 * 1024 * 1024);
  });

  it("puts every service on its backend overlay, routes api and website through Traefik", () => {
    const stack = load().stack!;
    expect(stack.networks.map((n) => n.physicalName)).toEqual(["maxime_backend"]);
    for (const s of stack.services) {
      expect(s.networks).toContain("maxime_backend");
      const ref = parseImageRef(s.image);
      expect(ref.ok && ref.value.registry).toBe("registry.dev.popcube.xyz:5000");
      expect(ref.ok && ref.value.tag).toMatch(/^alpha-/);
      expect(s.healthcheck).toBeDefined();
      expect(s.resources).toBeDefined();
    }
    expect(svc(stack, "api").labels["traefik.http.routers.maxime-api.rule"]).toBe(
      "Host(`api.dev.popcube.xyz`)",
    );
    expect(svc(stack, "website").traefik?.hosts).toEqual(["www.dev.popcube.xyz"]);
    expect(svc(stack, "website").networks).toContain("swarmform-dev_public");
    expect(svc(stack, "database").traefik).toBeUndefined();
    expect(svc(stack, "database").networks).not.toContain("swarmform-dev_public");
    expect(svc(stack, "database").mounts).toEqual([
      { type: "volume", source: "maxime_dbdata", target: "/var/lib/mysql", readOnly: false },
    ]);
  });

  it("follows its variables", () => {
    const stack = load({
      ORG: "acme",
      DOMAIN: "popcube.xyz",
      API_TAG: "1.2.0",
      REGISTRY: "reg.local:5000",
    }).stack!;
    expect(stack.name).toBe("acme");
    const api = svc(stack, "api");
    expect(api.name).toBe("acme_api");
    expect(api.image).toBe("reg.local:5000/popcubeapi:1.2.0");
    expect(api.containerLabels["xyz.popcube.org"]).toBe("acme");
    expect(api.traefik?.hosts).toEqual(["api.popcube.xyz"]);
  });
});

describe("every supported key (fixtures/stacks/full.yaml)", () => {
  const file = path.join(FIXTURES, "full.yaml");
  const r = parseStackFile(file, { vars: { FROM_VARS: "fv" }, platform, displayPath: "full.yaml" });
  const stack = r.stack!;
  const web = () => svc(stack, "web");

  it("has no issue", () => {
    expect(r.issues.map(formatIssue)).toEqual([]);
    expect(stack.name).toBe("shop");
  });
  it("command string split like a shell, entrypoint list, user", () => {
    expect(web().command).toEqual(["nginx", "-g", "daemon off;"]);
    expect(web().entrypoint).toEqual(["/docker-entrypoint.sh"]);
    expect(web().user).toBe("101:101");
    expect(svc(stack, "worker").command).toEqual(["sh", "-c", "echo $HOME; sleep 1000"]);
  });
  it("env_file then environment (which wins); value-less keys come from the variables", () => {
    expect(web().environment).toEqual({
      APP_NAME: "shop",
      LOG_LEVEL: "debug",
      QUOTED: "a b # not a comment",
      SINGLE: "$NOT_EXPANDED",
      EXPANDED: "fv-x",
      EXPORTED: "1",
      FROM_VARS: "fv",
    });
  });
  it("networks: map form, stack-defined, named and external; plus the public network for x-traefik", () => {
    expect(web().networks).toEqual(["shop_front", "shop-backend", "platform_shared", "swarmform-dev_public"]);
    expect(svc(stack, "worker").networks).toEqual(["shop_default"]);
    const byName = Object.fromEntries(stack.networks.map((n) => [n.name, n]));
    expect(Object.keys(byName).sort()).toEqual(["back", "default", "front"]);
    expect(byName.front).toMatchObject({
      physicalName: "shop_front",
      encrypted: true,
      attachable: true,
      subnet: "10.50.0.0/24",
    });
    expect(byName.back).toMatchObject({
      physicalName: "shop-backend",
      labels: { "com.example.net": "back" },
    });
    expect(byName.default.physicalName).toBe("shop_default");
  });
  it("volumes, short and long", () => {
    expect(web().mounts).toEqual([
      { type: "volume", source: "shop_static", target: "/usr/share/nginx/html", readOnly: true },
      { type: "bind", source: path.join(FIXTURES, "conf"), target: "/etc/nginx/conf.d", readOnly: false },
      { type: "bind", source: "/var/log/web", target: "/var/log/nginx", readOnly: false },
      { type: "volume", target: "/cache", readOnly: false },
      { type: "tmpfs", target: "/tmp", readOnly: false },
      { type: "volume", source: "shop-uploads", target: "/uploads", readOnly: true },
      { type: "bind", source: path.resolve(FIXTURES, "../certs"), target: "/certs", readOnly: false },
    ]);
  });
  it("secrets and configs, short and long, with octal modes", () => {
    expect(web().secrets).toEqual([
      { source: "shop_api_key", key: "api_key", target: "api_key" },
      {
        source: "shop_tls_key_v2",
        key: "tls_key",
        target: "/run/secrets/tls.key",
        uid: "101",
        gid: "101",
        mode: 0o400,
      },
    ]);
    expect(web().configs).toEqual([
      { source: "shop_nginx_conf", key: "nginx_conf", target: "/nginx_conf" },
      { source: "shop-site", key: "site", target: "/etc/nginx/site.conf", mode: 0o444 },
    ]);
    expect(stack.secrets.map((s) => [s.key, s.name, s.external, s.file])).toEqual([
      ["api_key", "shop_api_key", false, path.join(FIXTURES, "secrets/api_key.txt")],
      ["tls_key", "shop_tls_key_v2", true, undefined],
    ]);
    expect(stack.configs.map((s) => [s.name, s.file])).toEqual([
      ["shop_nginx_conf", path.join(FIXTURES, "conf/nginx.conf")],
      ["shop-site", path.join(FIXTURES, "conf/site.conf")],
    ]);
  });
  it("healthcheck string test becomes CMD-SHELL", () => {
    expect(web().healthcheck).toEqual({
      test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
      interval: "30s",
      timeout: "5s",
      retries: 3,
      startPeriod: "1m30s",
    });
  });
  it("ports: short, udp, ranges, bare number, long with mode host", () => {
    expect(web().ports).toEqual([
      { target: 80, published: 8080, protocol: "tcp", mode: "ingress" },
      { target: 53, published: 5353, protocol: "udp", mode: "ingress" },
      { target: 9100, published: 9000, protocol: "tcp", mode: "ingress" },
      { target: 9101, published: 9001, protocol: "tcp", mode: "ingress" },
      { target: 7000, protocol: "tcp", mode: "ingress" },
      { target: 443, published: 8443, protocol: "tcp", mode: "host" },
    ]);
  });
  it("deploy: every key, merge keys included", () => {
    const w = web();
    expect(w.mode).toBe("replicated");
    expect(w.replicas).toBe(3);
    expect(w.endpointMode).toBe("dnsrr");
    expect(w.constraints).toEqual(["node.role == worker", "node.labels.zone != dmz"]);
    expect(w.preferences).toEqual(["node.labels.zone"]);
    expect(w.updateConfig).toEqual({
      parallelism: 2,
      delay: "10s",
      failureAction: "rollback",
      monitor: "1m",
      maxFailureRatio: 0.25,
      order: "start-first",
    });
    expect(w.rollbackConfig).toEqual({ parallelism: 0, order: "stop-first" });
    expect(w.restartPolicy).toEqual({ condition: "on-failure", maxAttempts: 3 });
    expect(w.resources).toEqual({
      limits: { cpus: 0.5, memoryBytes: Math.round(1.5 * 1024 ** 3) },
      reservations: { cpus: 0.25, memoryBytes: 128 * 1024 ** 2 },
    });
    expect(svc(stack, "worker").mode).toBe("global");
  });
  it("labels: service labels get namespace, image and Traefik; container labels get the namespace", () => {
    expect(web().containerLabels).toEqual({
      "com.example.team": "web",
      "com.example.tier": "1",
      "com.docker.stack.namespace": "shop",
    });
    expect(web().labels).toMatchObject({
      "com.example.routed": "yes",
      "com.docker.stack.namespace": "shop",
      "com.docker.stack.image": "registry.example.com:5000/shop/web:1.2.3",
      "traefik.enable": "true",
      "traefik.swarm.network": "swarmform-dev_public",
      "traefik.http.routers.shop-web.rule":
        "(Host(`shop.example.com`) || Host(`www.shop.example.com`)) && PathPrefix(`/store`)",
      "traefik.http.routers.shop-web.entrypoints": "websecure",
      "traefik.http.routers.shop-web.tls.certresolver": "letsencrypt",
      "traefik.http.routers.shop-web.middlewares": "compress",
      "traefik.http.services.shop-web.loadbalancer.server.port": "80",
    });
    expect(web().traefik).toEqual({
      hosts: ["shop.example.com", "www.shop.example.com"],
      path: "/store",
      port: 80,
      middlewares: ["compress"],
      tls: true,
    });
  });
  it("without platform settings, x-traefik is kept but not expanded", () => {
    const r2 = parseStackFile(file, { vars: { FROM_VARS: "fv" } });
    const w = svc(r2.stack, "web");
    expect(w.traefik?.port).toBe(80);
    expect(Object.keys(w.labels).filter((k) => k.startsWith("traefik."))).toEqual([]);
    expect(w.networks).not.toContain("swarmform-dev_public");
  });
  it("origins point at the service", () => {
    expect(web().origin).toEqual({ file: "full.yaml", line: 9, path: "services.web" });
  });
});

describe("unsupported keys are errors with file:line, key and what is allowed", () => {
  const r = parseStackFile(path.join(FIXTURES, "unsupported.yaml"), {
    vars: {},
    displayPath: "stacks/unsupported.yaml",
  });
  const lines = r.issues.map(formatIssue);

  it("returns no stack and reports all of them", () => {
    expect(r.stack).toBeUndefined();
    expect(lines).toEqual([
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:2 \(include\): unsupported key "include" in the stack file \(allowed: version, name, services/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:13 \(services\.api\.deploy\.max_replicas_per_node\): unsupported key .*allowed: mode, replicas, placement/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:16 \(services\.api\.deploy\.resources\.limits\.pids\): "pids" is not supported: swarm honours it, but the docker provider .* has no field for it/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:20 \(services\.db\.ports\[0\]\): .*host IP is not supported/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:21 \(services\.db\.ports\[1\]\): .*70000 is outside 1-65535/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:22 \(services\.db\.ports\[2\]\.target\): must be a whole number in 1-65535/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:25 \(networks\.bridged\.driver\): driver "bridge" is not allowed .*allowed: overlay/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:26 \(networks\.bridged\.internal\): unsupported key "internal"/,
      ),
    ]);
  });

  it("keys that swarm ignores are warnings naming file:line and the key, in order", () => {
    expect(r.warnings.map(formatIssue)).toEqual([
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:7 \(services\.api\.container_name\): "container_name" is ignored: swarm names/,
      ),
      expect.stringMatching(
        /^stacks\/unsupported\.yaml:8 \(services\.api\.depends_on\): "depends_on" is ignored/,
      ),
      expect.stringMatching(/^stacks\/unsupported\.yaml:10 \(services\.api\.restart\): "restart" is ignored/),
    ]);
  });

  it("strict mode makes them errors, and leaves no warning", () => {
    const strict = parseStackFile(path.join(FIXTURES, "unsupported.yaml"), {
      vars: {},
      displayPath: "stacks/unsupported.yaml",
      strict: true,
    });
    expect(strict.warnings).toEqual([]);
    const ignored = strict.issues.map(formatIssue).filter((l) => l.includes("is ignored"));
    expect(ignored).toEqual([
      expect.stringMatching(/:7 \(services\.api\.container_name\): .*\(an error because of strict mode\)$/),
      expect.stringMatching(/:8 \(services\.api\.depends_on\): .*strict mode/),
      expect.stringMatching(/:10 \(services\.api\.restart\): .*strict mode/),
    ]);
    expect(strict.issues).toHaveLength(lines.length + 3);
  });
});

describe("labels: list and map forms are the same", () => {
  it("for container and service labels", () => {
    const list = importText(
      "services:\n  a:\n    image: nginx:1\n    labels:\n      - x=1\n      - y=a=b\n      - z\n    deploy:\n      labels:\n        - s=2\n",
    );
    const map = importText(
      "services:\n  a:\n    image: nginx:1\n    labels:\n      x: '1'\n      y: a=b\n      z:\n    deploy:\n      labels:\n        s: 2\n",
    );
    expect(list.issues).toEqual([]);
    expect(map.issues).toEqual([]);
    const [l, m] = [svc(list.stack, "a"), svc(map.stack, "a")];
    expect(l.containerLabels).toEqual({ x: "1", y: "a=b", z: "", "com.docker.stack.namespace": "t" });
    expect(m.containerLabels).toEqual(l.containerLabels);
    expect(m.labels).toEqual(l.labels);
    expect(l.labels.s).toBe("2");
  });
  it("a label that contradicts a generated one is an error", () => {
    const r = importText(
      "services:\n  a:\n    image: nginx:1\n    deploy:\n      labels:\n        com.docker.stack.namespace: other\n",
    );
    expect(r.issues.map((i) => i.message).join()).toMatch(/com.docker.stack.namespace.*generated/);
  });
});

describe("naming and references", () => {
  it("stack name: option, then top-level name, then file basename; must be valid", () => {
    expect(importText("name: top\nservices:\n  a:\n    image: nginx:1\n").stack?.name).toBe("top");
    expect(
      importText("name: top\nservices:\n  a:\n    image: nginx:1\n", { stackName: "opt" }).stack?.name,
    ).toBe("opt");
    expect(importText("services:\n  a:\n    image: nginx:1\n").stack?.name).toBe("t");
    const bad = importText("name: Bad Name\nservices:\n  a:\n    image: nginx:1\n");
    expect(bad.issues[0]).toMatchObject({ origin: { line: 1, path: "name" } });
  });
  it("undefined networks, volumes, secrets and configs are errors at their line", () => {
    const r = importText(
      [
        "services:",
        "  a:",
        "    image: nginx:1",
        "    networks: [nope]",
        "    volumes: ['data:/d']",
        "    secrets: [s]",
        "    configs: [c]",
      ].join("\n"),
    );
    expect(r.issues.map((i) => [i.origin, i.message.split(" ").slice(0, 2).join(" ")])).toEqual([
      [{ file: "stacks/t.yaml", line: 4, path: "services.a.networks[0]" }, 'network "nope"'],
      [{ file: "stacks/t.yaml", line: 5, path: "services.a.volumes[0]" }, 'volume "data"'],
      [{ file: "stacks/t.yaml", line: 6, path: "services.a.secrets[0]" }, 'secret "s"'],
      [{ file: "stacks/t.yaml", line: 7, path: "services.a.configs[0]" }, 'config "c"'],
    ]);
  });
  it("a service without networks joins <stack>_default, and the stack defines it", () => {
    const r = importText("services:\n  a:\n    image: nginx:1\n");
    expect(svc(r.stack, "a").networks).toEqual(["t_default"]);
    expect(r.stack!.networks.map((n) => n.physicalName)).toEqual(["t_default"]);
  });
  it("external networks are referenced, not defined", () => {
    const r = importText(
      "services:\n  a:\n    image: nginx:1\n    networks: [pub]\nnetworks:\n  pub:\n    external: true\n",
    );
    expect(svc(r.stack, "a").networks).toEqual(["pub"]);
    expect(r.stack!.networks).toEqual([]);
  });
  it("mode global with replicas is an error; bad values name the key", () => {
    const r = importText(
      "services:\n  a:\n    image: nginx:1\n    deploy:\n      mode: global\n      replicas: 2\n      endpoint_mode: rr\n      resources:\n        limits:\n          memory: lots\n",
    );
    expect(
      r.issues.map((i) => `${i.origin && "line" in i.origin ? i.origin.line : ""} ${i.message}`),
    ).toEqual([
      expect.stringMatching(/^6 "replicas" cannot be used with mode global/),
      expect.stringMatching(/^7 "rr" is not allowed \(allowed: vip, dnsrr\)/),
      expect.stringMatching(/^10 "lots" is not a size/),
    ]);
  });
  it("x-traefik is checked: port required, path, hosts and keys", () => {
    const r = importText(
      "services:\n  a:\n    image: nginx:1\n    x-traefik:\n      host: [ok.test, 'bad host']\n      path: nope\n      tls: maybe\n      entrypoint: web\n",
      { platform },
    );
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        /^stacks\/t\.yaml:5 \(services\.a\.x-traefik\.host\): "bad host" is not a host name/,
      ),
      expect.stringMatching(/^stacks\/t\.yaml:5 \(services\.a\.x-traefik\): x-traefik needs "port"/),
      expect.stringMatching(
        /^stacks\/t\.yaml:6 \(services\.a\.x-traefik\.path\): path "nope" must start with "\/"/,
      ),
      expect.stringMatching(/^stacks\/t\.yaml:7 \(services\.a\.x-traefik\.tls\): must be true or false/),
      expect.stringMatching(
        /^stacks\/t\.yaml:8 \(services\.a\.x-traefik\.entrypoint\): unsupported key "entrypoint".*allowed: host, path, port, middlewares, tls/,
      ),
    ]);
  });
  it("service names follow docker's rules and limit", () => {
    const long = "s".repeat(62);
    const r = importText(`services:\n  ${long}:\n    image: nginx:1\n  bad key:\n    image: nginx:1\n`);
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:2 .*longer than 63 characters/),
      expect.stringMatching(/^stacks\/t\.yaml:4 .*service name "bad key" must match/),
    ]);
  });
  it("a bad image reference and a missing image are errors", () => {
    const r = importText("services:\n  a:\n    image: Nginx:1\n  b:\n    command: x\n");
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:3 \(services\.a\.image\): invalid image reference "Nginx:1"/),
      expect.stringMatching(/^stacks\/t\.yaml:4 \(services\.b\): service "b" needs "image"/),
    ]);
  });
  it("a YAML syntax error names its line", () => {
    const r = importText("services:\n  a:\n    image: nginx:1\n   bad: [\n");
    expect(r.stack).toBeUndefined();
    expect(r.issues[0].message).toMatch(/^YAML: /);
    expect("line" in r.issues[0].origin && r.issues[0].origin.line).toBeGreaterThanOrEqual(3);
  });
  it("YAML anchors, aliases and merge keys are resolved; a bad merge is an error at its line", () => {
    const ok = importText(
      "x-base: &base\n  image: nginx:1\n  labels: [a=1]\nservices:\n  a:\n    <<: *base\n    labels: [b=2]\n  b: *base\n",
    );
    expect(ok.issues).toEqual([]);
    expect(svc(ok.stack, "a").image).toBe("nginx:1");
    expect(svc(ok.stack, "a").containerLabels).toEqual({ b: "2", "com.docker.stack.namespace": "t" });
    expect(svc(ok.stack, "b").containerLabels.a).toBe("1");
    const bad = importText("x-s: &s hello\nservices:\n  a:\n    image: nginx:1\n    <<: *s\n");
    expect(bad.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:5: YAML: merge key/),
    ]);
  });
  it("duplicate keys are a YAML error", () => {
    const r = importText("services:\n  a:\n    image: nginx:1\n    image: nginx:2\n");
    expect(r.issues.map(formatIssue)).toEqual([expect.stringMatching(/^stacks\/t\.yaml:4: YAML: .*unique/i)]);
  });
  it("a missing env_file is an error", () => {
    const r = importText("services:\n  a:\n    image: nginx:1\n    env_file: nope.env\n", {
      file: path.join(FIXTURES, "x.yaml"),
    });
    expect(r.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:4 \(services\.a\.env_file\): cannot read env_file "nope.env"/),
    ]);
  });
  it("an unreadable stack file is one issue", () => {
    const r = parseStackFile(path.join(FIXTURES, "does-not-exist.yaml"), { vars: {} });
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0].message).toMatch(/cannot read the stack file/);
  });
});

describe("parseImageRef", () => {
  it.each([
    ["nginx", { repository: "nginx" }],
    ["nginx:1.27", { repository: "nginx", tag: "1.27" }],
    ["library/nginx:latest", { repository: "library/nginx", tag: "latest" }],
    [
      "registry.dev.popcube.xyz:5000/popcubeapi:alpha-1.1.11",
      { registry: "registry.dev.popcube.xyz:5000", repository: "popcubeapi", tag: "alpha-1.1.11" },
    ],
    ["localhost/app", { registry: "localhost", repository: "app" }],
    ["localhost:5000/a/b__c:v1", { registry: "localhost:5000", repository: "a/b__c", tag: "v1" }],
    [`app@sha256:${"a".repeat(64)}`, { repository: "app", digest: `sha256:${"a".repeat(64)}` }],
    [
      `r.io/app:1@sha256:${"b".repeat(64)}`,
      { registry: "r.io", repository: "app", tag: "1", digest: `sha256:${"b".repeat(64)}` },
    ],
  ])("%s", (ref, expected) => {
    expect(parseImageRef(ref)).toEqual({ ok: true, value: expected });
  });
  it.each([
    "",
    "Nginx",
    "nginx:",
    "nginx:bad/tag",
    "-nginx",
    "a//b",
    "reg:port/app",
    "app@sha256:abc",
    "nginx:1 ",
    "r.io:50:00/a",
  ])("refuses %j", (ref) => {
    const r = parseImageRef(ref);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain("invalid image reference");
  });
});

describe("scalar parsers", () => {
  it("parseBytes like docker's RAMInBytes", () => {
    expect(parseBytes("128M")).toEqual({ ok: true, value: 134217728 });
    expect(parseBytes("1.5G")).toEqual({ ok: true, value: 1610612736 });
    expect(parseBytes("512k")).toEqual({ ok: true, value: 524288 });
    expect(parseBytes("64mb")).toEqual({ ok: true, value: 67108864 });
    expect(parseBytes("1gib")).toEqual({ ok: true, value: 1073741824 });
    expect(parseBytes(1000)).toEqual({ ok: true, value: 1000 });
    expect(parseBytes("12X").ok).toBe(false);
    expect(parseBytes("-1M").ok).toBe(false);
  });
  it("parseEnvFileText: values, quotes, comments, and problems with their line", () => {
    const r = parseEnvFileText("# c\nA=1 # tail\nB='$X'\nC=\"$X\"\n\nbad line\nD\nE=${R:?need R}\n", {
      X: "x",
    });
    expect(r.values).toEqual({ A: "1", B: "$X", C: "x", E: "" });
    expect(r.problems).toEqual([
      { line: 6, message: '"bad line" is not KEY=VALUE' },
      { line: 7, message: "D has no value here and D is not set" },
      { line: 8, message: "required variable R is missing a value: need R" },
    ]);
  });
  it("an env_file problem is reported in the env file, at its line", () => {
    const r = parseStackText("services:\n  a:\n    image: nginx:1\n    env_file: bad.env\n", {
      file: path.join(FIXTURES, "x.yaml"),
      displayPath: "tests/fixtures/stacks/x.yaml",
      vars: {},
    });
    expect(r.issues.map(formatIssue)).toEqual([
      'tests/fixtures/stacks/bad.env:2 (services.a.env_file): "not valid" is not KEY=VALUE',
    ]);
  });
  it("shellSplit", () => {
    expect(shellSplit(`a "b c" 'd $e' f\\ g ""`)).toEqual({
      ok: true,
      value: ["a", "b c", "d $e", "f g", ""],
    });
    expect(shellSplit(`a "b`).ok).toBe(false);
  });
  it("parseShortPort", () => {
    expect(parseShortPort("80")).toEqual({ ok: true, value: [{ target: 80, protocol: "tcp" }] });
    expect(parseShortPort("8080:80/udp")).toEqual({
      ok: true,
      value: [{ target: 80, published: 8080, protocol: "udp" }],
    });
    expect(parseShortPort("0:80").ok).toBe(false);
    expect(parseShortPort("1-3:1-2").ok).toBe(false);
  });
});

describe("files we accept also have only Compose keys, of Compose types (tests/fixtures/oracles/compose-keys.json)", () => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(composeKeysSchema());

  it.each([
    path.join(ROOT, "stacks/popcube.yaml"),
    path.join(FIXTURES, "full.yaml"),
    path.join(SHAPES, "metrics.yaml"),
    path.join(SHAPES, "edge-proxy.yaml"),
  ])("%s", (file) => {
    expect(parseStackFile(file, { vars: { FROM_VARS: "x" }, stackName: "s" }).issues).toEqual([]);
    const data = YAML.parse(fs.readFileSync(file, "utf8"), { merge: true }) as unknown;
    expect(validate(data) ? [] : validate.errors).toEqual([]);
  });

  it("the schema check itself can fail: an unknown key, a wrong type, a value not allowed", () => {
    expect(validate({ services: { a: { image: "x", not_a_compose_key: 1 } } })).toBe(false);
    expect(validate({ services: { a: { image: ["x"] } } })).toBe(false);
    expect(validate({ services: { a: { image: "x", deploy: { replicas: [2] } } } })).toBe(false);
    expect(validate({ services: { a: { image: "x", deploy: { endpoint_mode: 1 } } } })).toBe(false);
    expect(validate({ services: { a: { image: "x", deploy: { restart_policy: { condition: 3 } } } } })).toBe(
      false,
    );
    expect(validate({ services: { a: { image: "x", volumes: [{ type: "nfs", target: "/d" }] } } })).toBe(
      false,
    );
    expect(validate({ services: { a: { image: "x", volumes: [{ type: "tmpfs", target: "/d" }] } } })).toBe(
      true,
    );
    expect(validate({ services: { a: { image: "x", deploy: { replicas: 2 }, "x-any": 1 } } })).toBe(true);
  });
});

describe("secrets from `environment:` (values from the secret config stackSecrets)", () => {
  it("are imported with their variable name and no file", () => {
    const r = importText(
      "services:\n  a:\n    image: busybox:1.36\n    secrets: [db]\nsecrets:\n  db:\n    environment: DB_PASSWORD\n",
    );
    expect(r.issues).toEqual([]);
    expect(r.stack!.secrets).toEqual([
      expect.objectContaining({ key: "db", name: "t_db", external: false, environment: "DB_PASSWORD" }),
    ]);
    expect(r.stack!.secrets[0].file).toBeUndefined();
  });

  it("file and environment together, a bad name, or environment on a config are errors at their line", () => {
    const r = importText(
      [
        "services:",
        "  a:",
        "    image: busybox:1.36",
        "secrets:",
        "  both:",
        "    file: ./x",
        "    environment: X",
        "  bad:",
        "    environment: 1-X",
        "configs:",
        "  c:",
        "    environment: X",
        "",
      ].join("\n"),
    );
    const lines = r.issues.map(formatIssue);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^stacks\/t\.yaml:6 \(secrets\.both\.file\): takes "file" or "environment", not both/,
        ),
        expect.stringMatching(/^stacks\/t\.yaml:9 \(secrets\.bad\.environment\): must be a variable name/),
        expect.stringMatching(/^stacks\/t\.yaml:12 \(configs\.c\.environment\)/),
      ]),
    );
  });
});
