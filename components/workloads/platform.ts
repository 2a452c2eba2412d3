// Pure builders for the platform layer: overlay networks, Traefik, the registry and monitoring, each as a
// ServiceSpec (so it goes through the same `serviceArgs` mapping as the app services) or plain args.
import * as docker from "@pulumi/docker";
import * as YAML from "yaml";
import { ClusterSpec, MountSpec, NetworkSpec, ServiceSpec } from "../config/types";
import { keyOrigin } from "../config/errors";
import { certResolverOf } from "../config/clusterConfig";
import { ROUTE_ENTRYPOINT } from "../config/load";
import {
  apiRouterLabels,
  basicAuthMiddlewareLabels,
  buildTraefikLabels,
  enableLabels,
  servicePortLabels,
} from "../config/traefikLabels";
import { labelList, NAMESPACE_LABEL } from "./serviceArgs";

export { NAMESPACE_LABEL };
export const DOCKER_SOCKET = "/var/run/docker.sock";
/** Where Traefik keeps its ACME certificates. */
export const ACME_STORAGE = "/letsencrypt/acme.json";
/** File name of the registry htpasswd secret inside the container (`/run/secrets/<name>`). */
export const REGISTRY_HTPASSWD_TARGET = "registry-htpasswd";
export const PROMETHEUS_CONFIG_TARGET = "/etc/prometheus/prometheus.yml";

/** Entry point names and container ports of Traefik. */
export const ENTRYPOINTS = { web: 80, websecure: 443, registry: 5000 } as const;

/** `<project>-<stack>`: the stack namespace of the platform services. */
export function platformNamespace(spec: Pick<ClusterSpec, "project" | "stack">): string {
  return `${spec.project}-${spec.stack}`;
}

/** Name of the shared basic-auth middleware (defined on Traefik's own labels). */
export function authMiddleware(spec: ClusterSpec): string {
  return `${platformNamespace(spec)}-auth`;
}

/** `key=value` (a node label) -> `node.labels.key==value`. A value that already is a constraint is kept. */
export function labelConstraint(nodeLabel: string): string {
  if (nodeLabel.includes("==") || nodeLabel.includes("!=")) return nodeLabel;
  const eq = nodeLabel.indexOf("=");
  if (eq <= 0) throw new Error(`node label "${nodeLabel}" must be key=value`);
  return `node.labels.${nodeLabel.slice(0, eq).trim()}==${nodeLabel.slice(eq + 1).trim()}`;
}

/** Args of one overlay network, labelled with the stack namespace it belongs to. */
export function networkArgs(net: NetworkSpec, namespace: string): docker.NetworkArgs {
  return {
    name: net.physicalName,
    driver: "overlay",
    attachable: net.attachable,
    options: net.encrypted ? { encrypted: "true" } : undefined,
    ipamConfigs: net.subnet ? [{ subnet: net.subnet }] : undefined,
    labels: labelList({ ...net.labels, [NAMESPACE_LABEL]: namespace }),
  };
}

/** The physical name of the network Traefik routes on. */
export function publicNetworkName(spec: ClusterSpec): string {
  const net = spec.networks.find(
    (n) => n.name === spec.publicNetwork || n.physicalName === spec.publicNetwork,
  );
  return net ? net.physicalName : spec.publicNetwork;
}

/** A ServiceSpec with the defaults of a platform service; `over` sets the rest. */
function platformService(
  spec: ClusterSpec,
  key: string,
  over: Partial<ServiceSpec> & { image: string },
): ServiceSpec {
  const ns = platformNamespace(spec);
  const nsLabel = { [NAMESPACE_LABEL]: ns };
  return {
    stack: ns,
    key,
    name: `${ns}_${key}`,
    environment: {},
    networks: [publicNetworkName(spec)],
    mounts: [],
    secrets: [],
    configs: [],
    ports: [],
    mode: "replicated",
    replicas: 1,
    constraints: [],
    preferences: [],
    origin: keyOrigin(key),
    ...over,
    labels: { ...(over.labels ?? {}), ...nsLabel },
    containerLabels: { ...(over.containerLabels ?? {}), ...nsLabel },
  };
}

const socketMount: MountSpec = { type: "bind", source: DOCKER_SOCKET, target: DOCKER_SOCKET, readOnly: true };

/** Traefik's static configuration, as command-line arguments. */
export function traefikArgs(spec: ClusterSpec): string[] {
  const t = spec.traefik;
  const acme = certResolverOf(t) ? t.acme : undefined;
  const r = `--certificatesresolvers.${acme?.resolverName}.acme`;
  const args = [
    `--providers.swarm.endpoint=unix://${DOCKER_SOCKET}`,
    "--providers.swarm.exposedByDefault=false",
    `--providers.swarm.network=${publicNetworkName(spec)}`,
    `--entrypoints.web.address=:${ENTRYPOINTS.web}`,
    "--entrypoints.web.http.redirections.entrypoint.to=websecure",
    "--entrypoints.web.http.redirections.entrypoint.scheme=https",
    `--entrypoints.websecure.address=:${ENTRYPOINTS.websecure}`,
  ];
  // tls `default`: no resolver; routers with tls=true get Traefik's default (self-signed) certificate.
  if (acme) {
    args.push(
      `${r}.email=${acme.email}`,
      `${r}.storage=${ACME_STORAGE}`,
      acme.challenge === "http" ? `${r}.httpchallenge.entrypoint=web` : `${r}.tlschallenge=true`,
    );
  }
  if (spec.registry.enabled) {
    args.push(
      `--entrypoints.registry.address=:${ENTRYPOINTS.registry}`,
      // Traefik v3 cuts a request body read after 60 s by default, which breaks pushes of large layers
      // (the seed's api image is 332 MB): no read/write timeout on the registry entrypoint.
      "--entrypoints.registry.transport.respondingTimeouts.readTimeout=0s",
      "--entrypoints.registry.transport.respondingTimeouts.writeTimeout=0s",
    );
  }
  if (spec.monitoring.enabled) {
    args.push(
      `--entrypoints.metrics.address=:${TRAEFIK_METRICS_PORT}`,
      "--metrics.prometheus=true",
      "--metrics.prometheus.entryPoint=metrics",
    );
  }
  if (acme?.caServer) args.push(`${r}.caServer=${acme.caServer}`);
  if (t.dashboard.enabled) args.push("--api.dashboard=true");
  return args;
}

/**
 * Traefik as a swarm service. The basic-auth users label is secret, so it is not here: pass
 * {@link authLabels} as the service's secret labels.
 */
export function traefikService(spec: ClusterSpec): ServiceSpec {
  const t = spec.traefik;
  const ns = platformNamespace(spec);
  const network = publicNetworkName(spec);
  let labels: Record<string, string> = {
    ...enableLabels(network),
    // Traefik needs a port for the service it derives from its own labels; 8080 is its API port.
    ...servicePortLabels(`${ns}-traefik`, 8080),
    ...(spec.monitoring.enabled
      ? { [SCRAPE_LABEL]: "true", [SCRAPE_PORT_LABEL]: String(TRAEFIK_METRICS_PORT) }
      : {}),
  };
  if (t.dashboard.enabled) {
    labels = {
      ...labels,
      ...apiRouterLabels({
        router: `${ns}-dashboard`,
        hosts: [t.dashboard.host],
        entrypoint: ROUTE_ENTRYPOINT,
        certResolver: certResolverOf(t),
        middlewares: [`${authMiddleware(spec)}@swarm`],
      }),
    };
  }
  const port = (target: number, published: number) =>
    ({ target, published, protocol: "tcp", mode: "host" }) as const;
  return platformService(spec, "traefik", {
    image: t.image,
    command: traefikArgs(spec),
    mounts: [
      socketMount,
      { type: "volume", source: `${ns}_traefik-letsencrypt`, target: "/letsencrypt", readOnly: false },
    ],
    ports: [
      port(ENTRYPOINTS.web, t.ports.web),
      port(ENTRYPOINTS.websecure, t.ports.websecure),
      ...(spec.registry.enabled ? [port(ENTRYPOINTS.registry, t.ports.registry)] : []),
    ],
    // One labelled manager: the swarm API (socket) is only on managers, and the ACME volume is local.
    constraints: ["node.role==manager", labelConstraint(t.placementLabel)],
    labels,
    origin: keyOrigin("traefik"),
  });
}

/** The secret labels of Traefik: the basic-auth middleware, from one htpasswd line. */
export function authLabels(spec: ClusterSpec, htpasswd: string): Record<string, string> {
  return basicAuthMiddlewareLabels(authMiddleware(spec), [htpasswd]);
}

/** `<registry.host>:<port>`: the prefix of images in the platform registry. */
export function registryAddress(spec: ClusterSpec): string {
  return `${spec.registry.host}:${spec.traefik.ports.registry}`;
}

/** The registry (distribution) behind Traefik's `registry` entrypoint, with htpasswd auth. */
export function registryService(spec: ClusterSpec, htpasswdSecretName: string): ServiceSpec {
  const ns = platformNamespace(spec);
  const reg = spec.registry;
  return platformService(spec, "registry", {
    image: reg.image,
    environment: {
      REGISTRY_AUTH: "htpasswd",
      REGISTRY_AUTH_HTPASSWD_REALM: `${ns} registry`,
      REGISTRY_AUTH_HTPASSWD_PATH: `/run/secrets/${REGISTRY_HTPASSWD_TARGET}`,
    },
    mounts: [{ type: "volume", source: `${ns}_registry-data`, target: "/var/lib/registry", readOnly: false }],
    secrets: [{ source: htpasswdSecretName, key: "htpasswd", target: REGISTRY_HTPASSWD_TARGET, mode: 0o444 }],
    constraints: [labelConstraint(reg.storageLabel)],
    labels: buildTraefikLabels({
      router: `${ns}-registry`,
      route: { hosts: [reg.host], port: 5000, middlewares: [], tls: true },
      network: publicNetworkName(spec),
      entrypoint: "registry",
      certResolver: certResolverOf(spec.traefik),
    }),
    origin: keyOrigin("registry"),
  });
}

/** Label (on a service) that asks Prometheus to scrape its tasks, and the port label that says where. */
export const SCRAPE_LABEL = "prometheus.io/scrape";
export const SCRAPE_PORT_LABEL = "prometheus.io/port";
export const NODE_EXPORTER_PORT = 9100;
export const CADVISOR_PORT = 8080;

/** `s` as a regular expression that matches exactly it. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Traefik's metrics entry point (Prometheus format), enabled with monitoring. */
export const TRAEFIK_METRICS_PORT = 8082;

/** Prometheus' configuration: swarm service discovery for nodes (node-exporter) and tasks. */
export function prometheusConfig(spec: ClusterSpec): string {
  const ns = platformNamespace(spec);
  const sd = (role: string, port?: number) => [
    { host: `unix://${DOCKER_SOCKET}`, role, refresh_interval: "10s", ...(port ? { port } : {}) },
  ];
  const config = {
    global: { scrape_interval: "15s", evaluation_interval: "15s" },
    scrape_configs: [
      { job_name: "prometheus", static_configs: [{ targets: ["localhost:9090"] }] },
      {
        // Every swarm node, on node-exporter's host-mode port.
        job_name: "swarm-nodes",
        dockerswarm_sd_configs: sd("nodes", NODE_EXPORTER_PORT),
        relabel_configs: [
          {
            source_labels: ["__meta_dockerswarm_node_address"],
            target_label: "__address__",
            replacement: `$1:${NODE_EXPORTER_PORT}`,
          },
          { source_labels: ["__meta_dockerswarm_node_hostname"], target_label: "instance" },
          { source_labels: ["__meta_dockerswarm_node_role"], target_label: "node_role" },
        ],
      },
      {
        // Running tasks of cAdvisor, node-exporter and of any service labelled prometheus.io/scrape=true.
        job_name: "swarm-tasks",
        dockerswarm_sd_configs: sd("tasks"),
        relabel_configs: [
          { source_labels: ["__meta_dockerswarm_task_desired_state"], regex: "running", action: "keep" },
          {
            source_labels: [
              "__meta_dockerswarm_service_name",
              "__meta_dockerswarm_service_label_prometheus_io_scrape",
            ],
            regex: `(${escapeRegex(`${ns}_cadvisor`)}|${escapeRegex(`${ns}_node-exporter`)});.*|.*;true`,
            action: "keep",
          },
          {
            // One target per task: its address on the public network (not also its host-mode ports, which
            // would scrape the same exporter twice; the nodes job covers node-exporter by host address).
            source_labels: ["__meta_dockerswarm_network_name"],
            regex: escapeRegex(publicNetworkName(spec)),
            action: "keep",
          },
          {
            source_labels: ["__address__", "__meta_dockerswarm_service_label_prometheus_io_port"],
            regex: "([^:]+)(?::\\d+)?;(\\d+)",
            replacement: "$1:$2",
            target_label: "__address__",
          },
          { source_labels: ["__meta_dockerswarm_service_name"], target_label: "service" },
          { source_labels: ["__meta_dockerswarm_node_hostname"], target_label: "node" },
          { source_labels: ["__meta_dockerswarm_task_slot"], target_label: "slot" },
        ],
      },
    ],
  };
  return YAML.stringify(config);
}

/** Prometheus, on a manager (swarm discovery reads the manager API through the read-only socket). */
export function prometheusService(spec: ClusterSpec, configName: string): ServiceSpec {
  const ns = platformNamespace(spec);
  const m = spec.monitoring;
  return platformService(spec, "prometheus", {
    image: m.prometheusImage,
    command: [
      `--config.file=${PROMETHEUS_CONFIG_TARGET}`,
      "--storage.tsdb.path=/prometheus",
      `--storage.tsdb.retention.time=${m.retention}`,
    ],
    // The socket is root:docker 0660; the image's default user (nobody) could not read it.
    user: "root",
    mounts: [
      socketMount,
      { type: "volume", source: `${ns}_prometheus-data`, target: "/prometheus", readOnly: false },
    ],
    configs: [{ source: configName, key: "prometheus", target: PROMETHEUS_CONFIG_TARGET, mode: 0o444 }],
    constraints: ["node.role==manager"],
    labels: buildTraefikLabels({
      router: `${ns}-prometheus`,
      route: {
        hosts: [m.prometheusHost],
        port: 9090,
        middlewares: [`${authMiddleware(spec)}@swarm`],
        tls: true,
      },
      network: publicNetworkName(spec),
      entrypoint: ROUTE_ENTRYPOINT,
      certResolver: certResolverOf(spec.traefik),
    }),
    origin: keyOrigin("monitoring"),
  });
}

/** node-exporter on every node, its port published in host mode (the `nodes` role scrapes node:9100). */
export function nodeExporterService(spec: ClusterSpec): ServiceSpec {
  const ro = (source: string, target: string): MountSpec => ({
    type: "bind",
    source,
    target,
    readOnly: true,
  });
  return platformService(spec, "node-exporter", {
    image: spec.monitoring.nodeExporterImage,
    mode: "global",
    replicas: undefined,
    command: ["--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/rootfs"],
    mounts: [ro("/proc", "/host/proc"), ro("/sys", "/host/sys"), ro("/", "/rootfs")],
    ports: [{ target: NODE_EXPORTER_PORT, published: NODE_EXPORTER_PORT, protocol: "tcp", mode: "host" }],
    labels: { [SCRAPE_PORT_LABEL]: String(NODE_EXPORTER_PORT) },
    origin: keyOrigin("monitoring"),
  });
}

/** cAdvisor on every node, scraped through the `tasks` role on its container port. */
export function cadvisorService(spec: ClusterSpec): ServiceSpec {
  const ro = (source: string, target: string): MountSpec => ({
    type: "bind",
    source,
    target,
    readOnly: true,
  });
  return platformService(spec, "cadvisor", {
    image: spec.monitoring.cadvisorImage,
    mode: "global",
    replicas: undefined,
    command: ["-docker_only"],
    mounts: [
      ro("/", "/rootfs"),
      ro("/var/run", "/var/run"),
      ro("/sys", "/sys"),
      ro("/var/lib/docker", "/var/lib/docker"),
      ro("/dev/disk", "/dev/disk"),
    ],
    labels: { [SCRAPE_PORT_LABEL]: String(CADVISOR_PORT) },
    origin: keyOrigin("monitoring"),
  });
}
