// One Compose service (swarm subset) -> ServiceSpec. Used by compose.ts.
import * as fs from "fs";
import * as path from "path";
import { join, Reader, readLabels } from "./compose-read";
import {
  isPort,
  parseBytes,
  parseEnvFileText,
  parseDuration,
  parseImageRef,
  parseShortPort,
  parseShortVolume,
  shellSplit,
} from "./compose-values";
import { buildTraefikLabels, routerNameOf } from "./traefikLabels";
import {
  DnsSpec,
  FileRefSpec,
  HealthcheckSpec,
  LoggingSpec,
  VolumeOptionsSpec,
  MountSpec,
  NetworkSpec,
  PortSpec,
  ResourcesSpec,
  RestartPolicySpec,
  ServiceSpec,
  StackFileSpec,
  TraefikRouteSpec,
  UpdateConfigSpec,
} from "./types";
import { YEntry, YMap, YNode } from "./yamlSource";

/** Top-level definitions a service may refer to. */
export interface StackRefs {
  readonly networks: ReadonlyMap<string, { readonly physicalName: string; readonly spec?: NetworkSpec }>;
  /** Volume key -> physical name, and how swarm creates it (stack-defined volumes only). */
  readonly volumes: ReadonlyMap<
    string,
    { readonly physicalName: string; readonly volume?: VolumeOptionsSpec }
  >;
  readonly configs: ReadonlyMap<string, StackFileSpec>;
  readonly secrets: ReadonlyMap<string, StackFileSpec>;
}

/** What a service parser needs from its stack. */
export interface ServiceContext {
  readonly r: Reader;
  readonly stack: string;
  /** Absolute directory of the stack file. */
  readonly dir: string;
  /** Directory of the stack file as shown in issues. */
  readonly displayDir: string;
  readonly refs: StackRefs;
  readonly opts: {
    readonly vars: Readonly<Record<string, string | undefined>>;
    readonly platform?: {
      readonly publicNetwork: string;
      readonly entrypoint: string;
      /** ACME resolver of routes with TLS; none: Traefik's default certificate. */
      readonly certResolver?: string;
    };
  };
}

/** Service keys of the supported swarm subset. */
export const SERVICE_KEYS = [
  "image",
  "command",
  "entrypoint",
  "user",
  "environment",
  "env_file",
  "networks",
  "volumes",
  "secrets",
  "configs",
  "healthcheck",
  "ports",
  "labels",
  "deploy",
  "x-traefik",
  "logging",
  "stop_grace_period",
  "stop_signal",
  "hostname",
  "dns",
  "dns_search",
  "dns_opt",
  "extra_hosts",
  "working_dir",
  "read_only",
  "init",
  "cap_add",
  "cap_drop",
  "sysctls",
  "isolation",
] as const;

const NOT_SWARM = "swarm services do not support it, and docker stack deploy ignores it too";
/** Service keys that `docker stack deploy` ignores (with a warning, or silently): why, for the warning. */
export const IGNORED_SERVICE_KEYS: Readonly<Record<string, string>> = {
  build: "swarm runs images and never builds them; build and push the image first",
  restart: "swarm restarts tasks according to deploy.restart_policy",
  container_name: "swarm names the containers of a service itself",
  depends_on: "swarm starts services in no particular order",
  links: "services reach each other by name on a shared network",
  external_links: "services reach each other by name on a shared network",
  expose: "every port of a service is reachable from its networks",
  network_mode: NOT_SWARM,
  privileged: NOT_SWARM,
  devices: NOT_SWARM,
  cgroup_parent: NOT_SWARM,
  cgroupns_mode: NOT_SWARM,
  domainname: NOT_SWARM,
  ipc: NOT_SWARM,
  mac_address: NOT_SWARM,
  pid: NOT_SWARM,
  security_opt: NOT_SWARM,
  shm_size: NOT_SWARM,
  userns_mode: NOT_SWARM,
};

const NO_PROVIDER_FIELD =
  "swarm honours it, but the docker provider (@pulumi/docker v5 Service) has no field for it, so Swarmform cannot set it";
/** Service keys that swarm honours but we cannot: why. */
export const REFUSED_SERVICE_KEYS: Readonly<Record<string, string>> = {
  tty: NO_PROVIDER_FIELD,
  stdin_open: NO_PROVIDER_FIELD,
  ulimits: NO_PROVIDER_FIELD,
  credential_spec: NO_PROVIDER_FIELD,
  oom_score_adj: NO_PROVIDER_FIELD,
  volumes_from: "docker stack deploy refuses it: swarm services cannot share another container's volumes",
  extends: "docker stack deploy refuses it; use YAML anchors and `<<:` merges instead",
};
const DEPLOY_KEYS = [
  "mode",
  "replicas",
  "placement",
  "update_config",
  "rollback_config",
  "restart_policy",
  "resources",
  "labels",
  "endpoint_mode",
];
const UPDATE_KEYS = ["parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"];
const RESTART_KEYS = ["condition", "delay", "max_attempts", "window"];
const HEALTH_KEYS = ["test", "interval", "timeout", "retries", "start_period", "disable"];
const TRAEFIK_KEYS = ["host", "path", "port", "middlewares", "tls"];
const SERVICE_KEY = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

type Fields = Map<string, YEntry>;
const fieldsOf = (r: Reader, m: YMap, p: string, allowed: readonly string[], what: string): Fields =>
  new Map(r.keys(m, p, allowed, what).map((e) => [e.key, e]));

/** Parses `services.<key>` (every problem reported in the sink); undefined when it has no valid image. */
export function parseService(ctx: ServiceContext, entry: YEntry): ServiceSpec | undefined {
  const { r, stack } = ctx;
  const p = join("services", entry.key);
  if (!SERVICE_KEY.test(entry.key))
    r.fail(entry, p, `service name "${entry.key}" must match ${SERVICE_KEY.source}`);
  else if (`${stack}_${entry.key}`.length > 63)
    r.fail(entry, p, `service name "${stack}_${entry.key}" is longer than 63 characters (docker's limit)`);
  const m = r.map(entry.value, p);
  if (!m) return undefined;
  const f = new Map(
    r
      .keys(m, p, SERVICE_KEYS, `service "${entry.key}"`, IGNORED_SERVICE_KEYS, REFUSED_SERVICE_KEYS)
      .map((e) => [e.key, e]),
  );
  const get = <T>(
    key: string,
    read: (node: YNode, path: string, e: YEntry) => T | undefined,
  ): T | undefined => {
    const e = f.get(key);
    return e ? read(e.value, join(p, key), e) : undefined;
  };

  const image = get("image", (n, q) => {
    const s = r.str(n, q);
    if (s === undefined) return undefined;
    const ref = parseImageRef(s);
    return ref.ok ? s : r.fail(n, q, ref.error);
  });
  if (!f.has("image"))
    r.fail(entry, p, `service "${entry.key}" needs "image" (build is not supported by swarm)`);
  const command = get("command", (n, q) => words(r, n, q));
  const entrypoint = get("entrypoint", (n, q) => words(r, n, q));
  const user = get("user", (n, q) => {
    const u = r.str(n, q);
    return u === undefined || /^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(u)
      ? u
      : r.fail(n, q, `user "${u}" is not USER[:GROUP]`);
  });
  const environment = {
    ...(get("env_file", (n, q) => readEnvFiles(ctx, n, q)) ?? {}),
    ...(get("environment", (n, q) => readEnvironment(ctx, n, q)) ?? {}),
  };
  const declaredNetworks = get("networks", (n, q) => serviceNetworks(ctx, n, q)) ?? { names: [] };
  const mounts = get("volumes", (n, q) => readMounts(ctx, n, q)) ?? [];
  const secrets = get("secrets", (n, q) => fileRefs(ctx, n, q, "secrets")) ?? [];
  const configs = get("configs", (n, q) => fileRefs(ctx, n, q, "configs")) ?? [];
  const healthcheck = get("healthcheck", (n, q) => readHealthcheck(r, n, q));
  const ports = get("ports", (n, q) => readPorts(r, n, q)) ?? [];
  const userContainerLabels = get("labels", (n, q) => readLabels(r, n, q)) ?? {};
  const deploy = get("deploy", (n, q) => readDeploy(r, n, q)) ?? {};
  const traefik = get("x-traefik", (n, q) => readTraefik(r, n, q));
  const logging = get("logging", (n, q) => readLogging(r, n, q));
  const stopGracePeriod = get("stop_grace_period", (n, q) => durationOf(r, n, q));
  const stopSignal = get("stop_signal", (n, q) => {
    const v = r.str(n, q);
    return v === undefined || /^(SIG[A-Z0-9+-]+|\d+)$/.test(v)
      ? v
      : r.fail(n, q, `"${v}" is not a signal (e.g. SIGTERM, SIGQUIT, 15)`);
  });
  const hostname = get("hostname", (n, q) => r.str(n, q));
  const dns = readDns(r, f, p);
  const extraHosts = get("extra_hosts", (n, q) => readExtraHosts(r, n, q));
  const workingDir = get("working_dir", (n, q) => {
    const v = r.str(n, q);
    return v === undefined || v.startsWith("/") ? v : r.fail(n, q, `"${v}" must be an absolute path`);
  });
  const readOnly = get("read_only", (n, q) => r.bool(n, q));
  const init = get("init", (n, q) => r.bool(n, q));
  const capAdd = get("cap_add", (n, q) => r.strList(n, q));
  const capDrop = get("cap_drop", (n, q) => r.strList(n, q));
  const sysctls = get("sysctls", (n, q) => readLabels(r, n, q, "sysctl"));
  const isolation = get("isolation", (n, q) => r.oneOf(n, q, ["default", "process", "hyperv"] as const));
  const lines: Record<string, number> = {};
  for (const [k, e] of f) lines[k] = e.line;
  const labelLines: Record<string, { line: number; path: string }> = {};
  const deployLabels = f.get("deploy")?.value;
  const dl = deployLabels?.kind === "map" ? deployLabels.entries.find((e) => e.key === "labels") : undefined;
  if (dl) {
    lines["deploy.labels"] = dl.line;
    Object.assign(labelLines, lineOfEachLabel(dl.value, join(p, "deploy.labels")));
  }

  const networks = declaredNetworks.names.length > 0 ? [...declaredNetworks.names] : [`${stack}_default`];
  const namespace = { "com.docker.stack.namespace": stack };
  const labels: Record<string, string> = { ...(deploy.labels ?? {}) };
  const labelsLine = f.get("deploy")?.line ?? entry.line;
  addLabels(
    r,
    labels,
    { ...namespace, ...(image ? { "com.docker.stack.image": image } : {}) },
    labelsLine,
    p,
  );
  const router = routerNameOf(stack, entry.key);
  if (traefik && ctx.opts.platform) {
    const { publicNetwork, entrypoint: ep, certResolver } = ctx.opts.platform;
    if (!networks.includes(publicNetwork)) networks.push(publicNetwork);
    const at = f.get("x-traefik")!;
    try {
      const generated = buildTraefikLabels({
        router,
        route: traefik,
        network: publicNetwork,
        entrypoint: ep,
        certResolver,
      });
      addLabels(r, labels, generated, at.line, join(p, "x-traefik"));
      for (const k of Object.keys(generated)) labelLines[k] ??= { line: at.line, path: join(p, "x-traefik") };
    } catch (e) {
      r.fail(at, join(p, "x-traefik"), (e as Error).message);
    }
  }
  const containerLabels: Record<string, string> = { ...userContainerLabels };
  addLabels(r, containerLabels, namespace, f.get("labels")?.line ?? entry.line, join(p, "labels"));

  if (deploy.mode === "global" && deploy.replicas !== undefined)
    r.fail(deploy.replicasLine!, join(p, "deploy.replicas"), `"replicas" cannot be used with mode global`);
  // A service with problems is still returned (without the fields that failed), so that the checks
  // across services and stacks report their problems in the same pass; the stack is only used when the
  // file has no issue at all (see parseStackText).
  if (image === undefined) return undefined;
  const mode = deploy.mode ?? "replicated";
  return {
    stack,
    key: entry.key,
    name: `${stack}_${entry.key}`,
    image,
    ...(command ? { command } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    ...(user !== undefined ? { user } : {}),
    environment,
    networks,
    mounts,
    secrets,
    configs,
    ...(healthcheck ? { healthcheck } : {}),
    ports,
    mode,
    ...(mode === "replicated" ? { replicas: deploy.replicas ?? 1 } : {}),
    labels,
    containerLabels,
    constraints: deploy.constraints ?? [],
    preferences: deploy.preferences ?? [],
    ...(deploy.updateConfig ? { updateConfig: deploy.updateConfig } : {}),
    ...(deploy.rollbackConfig ? { rollbackConfig: deploy.rollbackConfig } : {}),
    ...(deploy.restartPolicy ? { restartPolicy: deploy.restartPolicy } : {}),
    ...(deploy.resources ? { resources: deploy.resources } : {}),
    ...(deploy.endpointMode ? { endpointMode: deploy.endpointMode } : {}),
    ...(traefik ? { traefik } : {}),
    ...(deploy.maxReplicasPerNode !== undefined ? { maxReplicasPerNode: deploy.maxReplicasPerNode } : {}),
    ...(declaredNetworks.aliases && Object.keys(declaredNetworks.aliases).length > 0
      ? { networkAliases: declaredNetworks.aliases }
      : {}),
    ...(logging ? { logging } : {}),
    ...(stopGracePeriod !== undefined ? { stopGracePeriod } : {}),
    ...(stopSignal !== undefined ? { stopSignal } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(dns ? { dns } : {}),
    ...(extraHosts ? { extraHosts } : {}),
    ...(workingDir !== undefined ? { workingDir } : {}),
    ...(readOnly !== undefined ? { readOnly } : {}),
    ...(init !== undefined ? { init } : {}),
    ...(capAdd ? { capAdd } : {}),
    ...(capDrop ? { capDrop } : {}),
    ...(sysctls ? { sysctls } : {}),
    ...(isolation ? { isolation } : {}),
    origin: { file: r.sink.file, line: entry.line, path: p },
    lines,
    labelLines,
  };
}

/** Adds generated labels; a user label with the same key and another value is an error. */
function addLabels(
  r: Reader,
  into: Record<string, string>,
  add: Record<string, string>,
  line: number,
  p: string,
): void {
  for (const [k, v] of Object.entries(add)) {
    if (k in into && into[k] !== v)
      r.fail(
        { line },
        p,
        `label "${k}" is generated as "${v}" but the file sets "${into[k]}"; remove it from the file`,
      );
    into[k] = v;
  }
}

/** command/entrypoint: a list of words, or a string split like a shell. */
function words(r: Reader, n: YNode, q: string): string[] | undefined {
  if (n.kind === "seq") return r.strList(n, q);
  const s = r.str(n, q);
  if (s === undefined) return undefined;
  const w = shellSplit(s);
  return w.ok ? w.value : r.fail(n, q, w.error);
}

/** environment, list (`K=V`, `K`) or map form; a value-less `K` takes its value from the variables. */
function readEnvironment(ctx: ServiceContext, n: YNode, q: string): Record<string, string> | undefined {
  const { r } = ctx;
  const out: Record<string, string> = {};
  const fromVars = (key: string, node: { line: number }, at: string): void => {
    const v = ctx.opts.vars[key];
    if (v === undefined)
      r.fail(node, at, `environment variable ${key} has no value here and ${key} is not set`);
    else out[key] = v;
  };
  if (n.kind === "seq") {
    n.items.forEach((item, i) => {
      const at = `${q}[${i}]`;
      const s = r.str(item, at);
      if (s === undefined) return;
      const eq = s.indexOf("=");
      const key = eq < 0 ? s : s.slice(0, eq);
      if (!/^[^\s=]+$/.test(key)) return void r.fail(item, at, `"${s}" is not KEY=VALUE`);
      if (eq < 0) fromVars(key, item, at);
      else out[key] = s.slice(eq + 1);
    });
    return out;
  }
  const m = r.map(n, q);
  if (!m) return undefined;
  for (const e of m.entries) {
    const v = e.value;
    if (v.kind !== "scalar")
      r.fail(v, join(q, e.key), "an environment value must be a string, number or boolean");
    else if (v.value === null) fromVars(e.key, e, join(q, e.key));
    else out[e.key] = typeof v.value === "number" ? (v.raw ?? String(v.value)) : String(v.value);
  }
  return out;
}

/** env_file: one path or a list, relative to the stack file; `KEY=VAL` lines, `#` comments. */
function readEnvFiles(ctx: ServiceContext, n: YNode, q: string): Record<string, string> | undefined {
  const { r } = ctx;
  const files = r.strOrList(n, q);
  if (!files) return undefined;
  const out: Record<string, string> = {};
  for (const rel of files) {
    const abs = path.resolve(ctx.dir, rel);
    const display = path.isAbsolute(rel) ? rel : path.join(ctx.displayDir, rel);
    let text: string;
    try {
      text = fs.readFileSync(abs, "utf8");
    } catch (e) {
      r.fail(
        n,
        q,
        `cannot read env_file "${rel}" (${abs}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
      continue;
    }
    const parsed = parseEnvFileText(text, ctx.opts.vars);
    for (const pr of parsed.problems)
      r.sink.issues.push({ origin: { file: display, line: pr.line, path: q }, message: pr.message });
    Object.assign(out, parsed.values);
  }
  return out;
}

/**
 * networks: list or map form. In the map form a network takes `aliases`; `default` is the stack's
 * implicit default network (`<stack>_default`) unless the file defines it.
 */
function serviceNetworks(
  ctx: ServiceContext,
  n: YNode,
  q: string,
): { names: string[]; aliases?: Record<string, string[]> } | undefined {
  const { r } = ctx;
  const names: { name: string; node: { line: number }; at: string; aliases?: string[] }[] = [];
  if (n.kind === "seq") {
    n.items.forEach((item, i) => {
      const s = r.str(item, `${q}[${i}]`);
      if (s !== undefined) names.push({ name: s, node: item, at: `${q}[${i}]` });
    });
  } else {
    const m = r.map(n, q);
    if (!m) return undefined;
    for (const e of m.entries) {
      const at = join(q, e.key);
      const opts = r.optMap(e.value, at);
      let aliases: string[] | undefined;
      for (const o of opts
        ? r.keys(opts, at, ["aliases"], `network "${e.key}" of a service`, {}, NETWORK_OPTS_REFUSED)
        : [])
        aliases = r.strList(o.value, join(at, "aliases"));
      names.push({ name: e.key, node: e, at, ...(aliases ? { aliases } : {}) });
    }
  }
  const out: string[] = [];
  const aliases: Record<string, string[]> = {};
  for (const { name, node, at, aliases: a } of names) {
    const def = ctx.refs.networks.get(name);
    const physical = def?.physicalName ?? (name === "default" ? `${ctx.stack}_default` : undefined);
    if (physical === undefined) {
      const known = [...ctx.refs.networks.keys()];
      r.fail(
        node,
        at,
        `network "${name}" is not defined under top-level networks` +
          (known.length ? ` (defined: ${known.join(", ")})` : ""),
      );
      continue;
    }
    if (!out.includes(physical)) out.push(physical);
    if (a && a.length > 0) aliases[physical] = a;
  }
  return { names: out, aliases };
}

const NETWORK_OPTS_REFUSED: Readonly<Record<string, string>> = {
  ipv4_address: "swarm assigns task addresses itself; a service cannot have a static address",
  ipv6_address: "swarm assigns task addresses itself; a service cannot have a static address",
  link_local_ips: "swarm services do not support it",
  priority: "swarm services do not support it",
};

/** Resolves a bind source against the stack file's directory, as docker stack deploy does. */
function bindSource(
  ctx: ServiceContext,
  src: string,
  node: { line: number },
  at: string,
): string | undefined {
  if (src.startsWith("~"))
    return ctx.r.fail(
      node,
      at,
      `bind source "${src}": "~" is not supported; use an absolute or ./relative path`,
    );
  return path.isAbsolute(src) ? src : path.resolve(ctx.dir, src);
}

function volumeSource(
  ctx: ServiceContext,
  key: string,
  node: { line: number },
  at: string,
): { physicalName: string; volume?: VolumeOptionsSpec } | undefined {
  const def = ctx.refs.volumes.get(key);
  if (def === undefined)
    return ctx.r.fail(node, at, `volume "${key}" is not defined under top-level volumes`);
  return def;
}

/** volumes: short `src:dst[:ro]` and long syntax (type, source, target, read_only). */
function readMounts(ctx: ServiceContext, n: YNode, q: string): MountSpec[] | undefined {
  const { r } = ctx;
  const s = r.seq(n, q);
  if (!s) return undefined;
  const out: MountSpec[] = [];
  s.items.forEach((item, i) => {
    const at = `${q}[${i}]`;
    if (item.kind === "scalar") {
      const text = r.str(item, at);
      if (text === undefined) return;
      const v = parseShortVolume(text);
      if (!v.ok) return void r.fail(item, at, v.error);
      const { target, readOnly } = v.value;
      if (v.value.source === undefined) return void out.push({ type: "volume", target, readOnly });
      if (v.value.type === "bind") {
        const source = bindSource(ctx, v.value.source, item, at);
        if (source !== undefined) out.push({ type: "bind", source, target, readOnly });
        return;
      }
      const vol = volumeSource(ctx, v.value.source, item, at);
      if (vol !== undefined)
        out.push({
          type: "volume",
          source: vol.physicalName,
          target,
          readOnly,
          ...(vol.volume ? { volume: vol.volume } : {}),
        });
      return;
    }
    const m = r.map(item, at);
    if (!m) return;
    const f = fieldsOf(r, m, at, ["type", "source", "target", "read_only"], "a volume");
    const type = f.get("type")
      ? r.oneOf(f.get("type")!.value, join(at, "type"), ["volume", "bind", "tmpfs"] as const)
      : undefined;
    if (!f.has("type")) r.fail(m, at, `a long-syntax volume needs "type" (volume, bind or tmpfs)`);
    const target = f.get("target") && r.str(f.get("target")!.value, join(at, "target"));
    if (!f.has("target")) r.fail(m, at, `a long-syntax volume needs "target"`);
    else if (target !== undefined && !target.startsWith("/"))
      r.fail(f.get("target")!, join(at, "target"), `target "${target}" must be an absolute path`);
    const readOnly = f.get("read_only") ? r.bool(f.get("read_only")!.value, join(at, "read_only")) : false;
    const srcEntry = f.get("source");
    const src = srcEntry && r.str(srcEntry.value, join(at, "source"));
    if (!type || target === undefined) return;
    let source: string | undefined;
    let volume: VolumeOptionsSpec | undefined;
    if (type === "tmpfs") {
      if (srcEntry) return void r.fail(srcEntry, join(at, "source"), "a tmpfs mount has no source");
    } else if (type === "bind") {
      if (!srcEntry) return void r.fail(m, at, "a bind mount needs a source");
      if (src === undefined) return;
      source = bindSource(ctx, src, srcEntry, join(at, "source"));
      if (source === undefined) return;
    } else if (src !== undefined) {
      const vol = volumeSource(ctx, src, srcEntry!, join(at, "source"));
      if (vol === undefined) return;
      source = vol.physicalName;
      volume = vol.volume;
    }
    out.push({
      type,
      ...(source !== undefined ? { source } : {}),
      target,
      readOnly: readOnly ?? false,
      ...(volume ? { volume } : {}),
    });
  });
  return out;
}

/** Parses a file mode: YAML numbers written with a leading 0 (`0440`) and strings like "0440" are octal. */
function fileMode(r: Reader, n: YNode, q: string): number | undefined {
  if (n.kind === "scalar" && typeof n.value === "number" && n.raw && /^0\d+$/.test(n.raw))
    return parseInt(n.raw, 8);
  if (n.kind === "scalar" && typeof n.value === "string" && /^0[0-7]+$/.test(n.value))
    return parseInt(n.value, 8);
  return r.int(n, q, 0, 0o7777);
}

/**
 * secrets/configs of a service, short (`key`) or long syntax. Default targets follow the docker CLI:
 * a secret's target is its key (mounted under /run/secrets/), a config's is `/<key>`.
 */
function fileRefs(
  ctx: ServiceContext,
  n: YNode,
  q: string,
  kind: "secrets" | "configs",
): FileRefSpec[] | undefined {
  const { r } = ctx;
  const s = r.seq(n, q);
  if (!s) return undefined;
  const defs = ctx.refs[kind];
  const out: FileRefSpec[] = [];
  s.items.forEach((item, i) => {
    const at = `${q}[${i}]`;
    let key: string | undefined;
    let target: string | undefined;
    let uid: string | undefined;
    let gid: string | undefined;
    let mode: number | undefined;
    if (item.kind === "scalar") key = r.str(item, at);
    else {
      const m = r.map(item, at);
      if (!m) return;
      const f = fieldsOf(
        r,
        m,
        at,
        ["source", "target", "uid", "gid", "mode"],
        `a ${kind.slice(0, -1)} reference`,
      );
      if (!f.has("source")) r.fail(m, at, `needs "source"`);
      key = f.get("source") && r.str(f.get("source")!.value, join(at, "source"));
      target = f.get("target") && r.str(f.get("target")!.value, join(at, "target"));
      uid = f.get("uid") && r.str(f.get("uid")!.value, join(at, "uid"));
      gid = f.get("gid") && r.str(f.get("gid")!.value, join(at, "gid"));
      mode = f.get("mode") && fileMode(r, f.get("mode")!.value, join(at, "mode"));
    }
    if (key === undefined) return;
    const def = defs.get(key);
    if (!def)
      return void r.fail(item, at, `${kind.slice(0, -1)} "${key}" is not defined under top-level ${kind}`);
    out.push({
      source: def.name,
      key,
      target: target ?? (kind === "secrets" ? key : `/${key}`),
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
      ...(mode !== undefined ? { mode } : {}),
    });
  });
  return out;
}

function duration(r: Reader, f: Fields, key: string, p: string): string | undefined {
  const e = f.get(key);
  if (!e) return undefined;
  const s = r.str(e.value, join(p, key));
  if (s === undefined) return undefined;
  const d = parseDuration(s);
  return d.ok ? d.value : r.fail(e.value, join(p, key), d.error);
}

function readHealthcheck(r: Reader, n: YNode, q: string): HealthcheckSpec | undefined {
  const m = r.map(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, HEALTH_KEYS, "healthcheck");
  const disable = f.get("disable") ? r.bool(f.get("disable")!.value, join(q, "disable")) : false;
  let test: string[] | undefined;
  const t = f.get("test");
  if (t) {
    if (t.value.kind === "scalar") {
      const s = r.str(t.value, join(q, "test"));
      if (s !== undefined) test = ["CMD-SHELL", s];
    } else {
      test = r.strList(t.value, join(q, "test"));
      if (test && !["NONE", "CMD", "CMD-SHELL"].includes(test[0]))
        test = r.fail(t.value, join(q, "test"), `a test list starts with "CMD", "CMD-SHELL" or "NONE"`);
    }
  }
  if (disable) {
    if (t) r.fail(t, join(q, "test"), `"test" and "disable: true" exclude each other`);
    return { test: ["NONE"] };
  }
  if (!t) return r.fail(m, q, `a healthcheck needs "test" (or "disable: true")`);
  const retries = f.get("retries") ? r.int(f.get("retries")!.value, join(q, "retries")) : undefined;
  if (!test) return undefined;
  const interval = duration(r, f, "interval", q);
  const timeout = duration(r, f, "timeout", q);
  const startPeriod = duration(r, f, "start_period", q);
  return {
    test,
    ...(interval ? { interval } : {}),
    ...(timeout ? { timeout } : {}),
    ...(retries !== undefined ? { retries } : {}),
    ...(startPeriod ? { startPeriod } : {}),
  };
}

const PROTOCOLS = ["tcp", "udp", "sctp"] as const;

function readPorts(r: Reader, n: YNode, q: string): PortSpec[] | undefined {
  const s = r.seq(n, q);
  if (!s) return undefined;
  const out: PortSpec[] = [];
  s.items.forEach((item, i) => {
    const at = `${q}[${i}]`;
    if (item.kind === "scalar") {
      if (typeof item.value === "number") {
        if (!isPort(item.value)) return void r.fail(item, at, `port ${item.value} is outside 1-65535`);
        return void out.push({ target: item.value, protocol: "tcp", mode: "ingress" });
      }
      const text = r.str(item, at);
      if (text === undefined) return;
      const p = parseShortPort(text);
      if (!p.ok) return void r.fail(item, at, p.error);
      for (const sp of p.value) {
        if (!(PROTOCOLS as readonly string[]).includes(sp.protocol))
          return void r.fail(
            item,
            at,
            `protocol "${sp.protocol}" is not allowed (allowed: ${PROTOCOLS.join(", ")})`,
          );
        out.push({
          target: sp.target,
          ...(sp.published !== undefined ? { published: sp.published } : {}),
          protocol: sp.protocol as PortSpec["protocol"],
          mode: "ingress",
        });
      }
      return;
    }
    const m = r.map(item, at);
    if (!m) return;
    const f = fieldsOf(r, m, at, ["target", "published", "protocol", "mode"], "a port");
    if (!f.has("target")) r.fail(m, at, `a long-syntax port needs "target"`);
    const target = f.get("target") && r.int(f.get("target")!.value, join(at, "target"), 1, 65535);
    const published = f.get("published") && r.int(f.get("published")!.value, join(at, "published"), 1, 65535);
    const protocol = f.get("protocol")
      ? r.oneOf(f.get("protocol")!.value, join(at, "protocol"), PROTOCOLS)
      : "tcp";
    const mode = f.get("mode")
      ? r.oneOf(f.get("mode")!.value, join(at, "mode"), ["ingress", "host"] as const)
      : "ingress";
    if (target === undefined || !protocol || !mode) return;
    out.push({ target, ...(published !== undefined ? { published } : {}), protocol, mode });
  });
  return out;
}

interface DeployFields {
  mode?: "replicated" | "global";
  replicas?: number;
  replicasLine?: { line: number };
  constraints?: string[];
  preferences?: string[];
  updateConfig?: UpdateConfigSpec;
  rollbackConfig?: UpdateConfigSpec;
  restartPolicy?: RestartPolicySpec;
  resources?: ResourcesSpec;
  labels?: Record<string, string>;
  endpointMode?: "vip" | "dnsrr";
  maxReplicasPerNode?: number;
}

function readDeploy(r: Reader, n: YNode, q: string): DeployFields | undefined {
  const m = r.optMap(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, DEPLOY_KEYS, "deploy");
  const d: DeployFields = {};
  const e = (k: string) => f.get(k);
  if (e("mode")) d.mode = r.oneOf(e("mode")!.value, join(q, "mode"), ["replicated", "global"] as const);
  if (e("replicas")) {
    d.replicas = r.int(e("replicas")!.value, join(q, "replicas"));
    d.replicasLine = e("replicas");
  }
  if (e("placement")) Object.assign(d, readPlacement(r, e("placement")!.value, join(q, "placement")));
  if (e("update_config"))
    d.updateConfig = readUpdateConfig(r, e("update_config")!.value, join(q, "update_config"));
  if (e("rollback_config"))
    d.rollbackConfig = readUpdateConfig(r, e("rollback_config")!.value, join(q, "rollback_config"));
  if (e("restart_policy"))
    d.restartPolicy = readRestart(r, e("restart_policy")!.value, join(q, "restart_policy"));
  if (e("resources")) d.resources = readResources(r, e("resources")!.value, join(q, "resources"));
  if (e("labels")) d.labels = readLabels(r, e("labels")!.value, join(q, "labels"));
  if (e("endpoint_mode"))
    d.endpointMode = r.oneOf(e("endpoint_mode")!.value, join(q, "endpoint_mode"), ["vip", "dnsrr"] as const);
  return d;
}

const CONSTRAINT = /^\s*[A-Za-z0-9_.-]+(?:\.[A-Za-z0-9_.-]+)*\s*(==|!=)\s*\S.*$/;

function readPlacement(
  r: Reader,
  n: YNode,
  q: string,
): Pick<DeployFields, "constraints" | "preferences" | "maxReplicasPerNode"> {
  const m = r.optMap(n, q);
  if (!m) return {};
  const f = fieldsOf(r, m, q, ["constraints", "preferences", "max_replicas_per_node"], "placement");
  const out: Pick<DeployFields, "constraints" | "preferences" | "maxReplicasPerNode"> = {};
  const mr = f.get("max_replicas_per_node");
  if (mr) out.maxReplicasPerNode = r.int(mr.value, join(q, "max_replicas_per_node"), 1);
  const c = f.get("constraints");
  if (c) {
    const list = r.strList(c.value, join(q, "constraints"));
    list?.forEach((s, i) => {
      if (!CONSTRAINT.test(s))
        r.fail(
          c.value.kind === "seq" ? c.value.items[i] : c,
          `${join(q, "constraints")}[${i}]`,
          `constraint "${s}" is not "<attribute> ==|!= <value>"`,
        );
    });
    out.constraints = list;
  }
  const p = f.get("preferences");
  if (p) {
    const s = r.seq(p.value, join(q, "preferences"));
    out.preferences = [];
    s?.items.forEach((item, i) => {
      const at = `${join(q, "preferences")}[${i}]`;
      const pm = r.map(item, at);
      if (!pm) return;
      const pf = fieldsOf(r, pm, at, ["spread"], "a placement preference");
      const spread = pf.get("spread") && r.str(pf.get("spread")!.value, join(at, "spread"));
      if (!pf.has("spread")) r.fail(pm, at, `a placement preference needs "spread"`);
      if (spread !== undefined) out.preferences!.push(spread);
    });
  }
  return out;
}

function readUpdateConfig(r: Reader, n: YNode, q: string): UpdateConfigSpec | undefined {
  const m = r.optMap(n, q);
  if (!m) return undefined;
  const f = fieldsOf(
    r,
    m,
    q,
    UPDATE_KEYS,
    q.endsWith("rollback_config") ? "rollback_config" : "update_config",
  );
  const parallelism = f.get("parallelism") ? r.int(f.get("parallelism")!.value, join(q, "parallelism")) : 1;
  const delay = duration(r, f, "delay", q);
  const monitor = duration(r, f, "monitor", q);
  const failureAction = f.get("failure_action")
    ? r.oneOf(f.get("failure_action")!.value, join(q, "failure_action"), [
        "pause",
        "continue",
        "rollback",
      ] as const)
    : undefined;
  const order = f.get("order")
    ? r.oneOf(f.get("order")!.value, join(q, "order"), ["stop-first", "start-first"] as const)
    : undefined;
  let maxFailureRatio: number | undefined;
  const mfr = f.get("max_failure_ratio");
  if (mfr) {
    maxFailureRatio = r.number(mfr.value, join(q, "max_failure_ratio"));
    if (maxFailureRatio !== undefined && (maxFailureRatio < 0 || maxFailureRatio > 1))
      maxFailureRatio = r.fail(mfr.value, join(q, "max_failure_ratio"), "must be between 0 and 1");
  }
  if (parallelism === undefined) return undefined;
  return {
    parallelism,
    ...(delay ? { delay } : {}),
    ...(failureAction ? { failureAction } : {}),
    ...(monitor ? { monitor } : {}),
    ...(maxFailureRatio !== undefined ? { maxFailureRatio } : {}),
    ...(order ? { order } : {}),
  };
}

function readRestart(r: Reader, n: YNode, q: string): RestartPolicySpec | undefined {
  const m = r.optMap(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, RESTART_KEYS, "restart_policy");
  const condition = f.get("condition")
    ? r.oneOf(f.get("condition")!.value, join(q, "condition"), ["none", "on-failure", "any"] as const)
    : undefined;
  const delay = duration(r, f, "delay", q);
  const window = duration(r, f, "window", q);
  const maxAttempts = f.get("max_attempts")
    ? r.int(f.get("max_attempts")!.value, join(q, "max_attempts"))
    : undefined;
  return {
    ...(condition ? { condition } : {}),
    ...(delay ? { delay } : {}),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    ...(window ? { window } : {}),
  };
}

function readResources(r: Reader, n: YNode, q: string): ResourcesSpec | undefined {
  const m = r.optMap(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, ["limits", "reservations"], "resources");
  const one = (key: "limits" | "reservations") => {
    const e = f.get(key);
    if (!e) return undefined;
    const at = join(q, key);
    const lm = r.optMap(e.value, at);
    if (!lm) return undefined;
    const lf = new Map(
      r
        .keys(
          lm,
          at,
          key === "limits" ? ["cpus", "memory"] : ["cpus", "memory", "generic_resources"],
          key,
          {},
          {
            pids: NO_PROVIDER_FIELD,
            devices: NO_PROVIDER_FIELD,
          },
        )
        .map((x) => [x.key, x]),
    );
    const gr = lf.get("generic_resources");
    const genericResources = gr
      ? readGenericResources(r, gr.value, join(at, "generic_resources"))
      : undefined;
    let cpus: number | undefined;
    if (lf.get("cpus")) {
      cpus = r.number(lf.get("cpus")!.value, join(at, "cpus"));
      if (cpus !== undefined && !(cpus > 0))
        cpus = r.fail(lf.get("cpus")!.value, join(at, "cpus"), "must be more than 0");
    }
    let memoryBytes: number | undefined;
    const me = lf.get("memory");
    if (me) {
      const v = me.value;
      const raw = v.kind === "scalar" && typeof v.value === "number" ? v.value : r.str(v, join(at, "memory"));
      if (raw !== undefined) {
        const b = parseBytes(raw);
        memoryBytes = b.ok ? b.value : r.fail(v, join(at, "memory"), b.error);
      }
    }
    return {
      ...(cpus !== undefined ? { cpus } : {}),
      ...(memoryBytes !== undefined ? { memoryBytes } : {}),
      ...(genericResources ? { genericResources } : {}),
    };
  };
  const limits = one("limits");
  const reservations = one("reservations");
  return { ...(limits ? { limits } : {}), ...(reservations ? { reservations } : {}) };
}

/** `x-traefik: { host, path?, port, middlewares?, tls? }`. */
function readTraefik(r: Reader, n: YNode, q: string): TraefikRouteSpec | undefined {
  const m = r.map(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, TRAEFIK_KEYS, "x-traefik");
  const hosts = f.get("host") ? r.strOrList(f.get("host")!.value, join(q, "host")) : undefined;
  if (!f.has("host")) r.fail(m, q, `x-traefik needs "host" (a host name or a list of them)`);
  hosts?.forEach((h) => {
    if (
      !/^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(
        h,
      )
    )
      r.fail(f.get("host")!.value, join(q, "host"), `"${h}" is not a host name`);
  });
  if (hosts && hosts.length === 0) r.fail(f.get("host")!.value, join(q, "host"), "needs at least one host");
  const pathV = f.get("path") && r.str(f.get("path")!.value, join(q, "path"));
  if (pathV !== undefined && (!pathV.startsWith("/") || /[`\s]/.test(pathV)))
    r.fail(
      f.get("path")!.value,
      join(q, "path"),
      `path "${pathV}" must start with "/" and contain no spaces or backticks`,
    );
  if (!f.has("port")) r.fail(m, q, `x-traefik needs "port" (the container port Traefik forwards to)`);
  const port = f.get("port") && r.int(f.get("port")!.value, join(q, "port"), 1, 65535);
  const middlewares = f.get("middlewares")
    ? r.strList(f.get("middlewares")!.value, join(q, "middlewares"))
    : [];
  middlewares?.forEach((mw) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*(@[A-Za-z0-9_-]+)?$/.test(mw))
      r.fail(
        f.get("middlewares")!.value,
        join(q, "middlewares"),
        `"${mw}" is not a middleware name (name or name@provider)`,
      );
  });
  const tls = f.get("tls") ? r.bool(f.get("tls")!.value, join(q, "tls")) : true;
  if (!hosts || port === undefined || !middlewares || tls === undefined) return undefined;
  return { hosts, ...(pathV !== undefined ? { path: pathV } : {}), port, middlewares, tls };
}

/** A Go duration (`10s`, `1m30s`). */
function durationOf(r: Reader, n: YNode, q: string): string | undefined {
  const v = r.str(n, q);
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  return d.ok ? d.value : r.fail(n, q, d.error);
}

/** `logging: { driver, options }`. Without a driver, json-file (Docker's default) with a warning. */
function readLogging(r: Reader, n: YNode, q: string): LoggingSpec | undefined {
  const m = r.optMap(n, q);
  if (!m) return undefined;
  const f = fieldsOf(r, m, q, ["driver", "options"], "logging");
  const driver = f.get("driver") && r.str(f.get("driver")!.value, join(q, "driver"));
  const options = f.get("options")
    ? readLabels(r, f.get("options")!.value, join(q, "options"), "option")
    : {};
  if (!f.has("driver"))
    r.sink.warnings.push({
      origin: { file: r.sink.file, line: m.line, path: q },
      message:
        "logging has no driver: docker stack deploy leaves it to each engine's default; the docker provider needs a name, so json-file (Docker's default) is used",
    });
  if (options === undefined || (f.has("driver") && driver === undefined)) return undefined;
  return { driver: driver ?? "json-file", options };
}

/** `dns`, `dns_search`, `dns_opt` (each a string or a list). */
function readDns(r: Reader, f: Fields, p: string): DnsSpec | undefined {
  const list = (key: string) => {
    const e = f.get(key);
    return e ? r.strOrList(e.value, join(p, key)) : undefined;
  };
  const nameservers = list("dns");
  const searches = list("dns_search");
  const options = list("dns_opt");
  if (!nameservers && !searches && !options) return undefined;
  if (!f.has("dns")) {
    const e = f.get("dns_search") ?? f.get("dns_opt")!;
    return r.fail(
      e,
      join(p, e.key),
      `"${e.key}" needs "dns" too: the docker provider (@pulumi/docker v5) requires name servers in a DNS config`,
    );
  }
  return { nameservers: nameservers ?? [], searches: searches ?? [], options: options ?? [] };
}

/** `extra_hosts`: `["host:ip"]`, `["host=ip"]` or `{ host: ip }`. */
function readExtraHosts(r: Reader, n: YNode, q: string): { host: string; ip: string }[] | undefined {
  const out: { host: string; ip: string }[] = [];
  if (n.kind === "map") {
    for (const e of n.entries) {
      const ip = r.str(e.value, join(q, e.key));
      if (ip !== undefined) out.push({ host: e.key, ip });
    }
    return out;
  }
  const items = r.strList(n, q);
  items?.forEach((s, i) => {
    const sep = /^[^:=]+[=:]/.exec(s);
    if (!sep) return void r.fail(n.kind === "seq" ? n.items[i] : n, `${q}[${i}]`, `"${s}" is not HOST:IP`);
    out.push({ host: s.slice(0, sep[0].length - 1), ip: s.slice(sep[0].length) });
  });
  return items && out;
}

/** The line of each label of a labels node (list or map form). */
function lineOfEachLabel(n: YNode, path: string): Record<string, { line: number; path: string }> {
  const out: Record<string, { line: number; path: string }> = {};
  if (n.kind === "map") for (const e of n.entries) out[e.key] = { line: e.line, path };
  if (n.kind === "seq")
    for (const item of n.items)
      if (item.kind === "scalar" && typeof item.value === "string")
        out[item.value.split("=")[0]] = { line: item.line, path };
  return out;
}

/** `generic_resources: [{ discrete_resource_spec: { kind, value } }]` (the only form of the Compose schema). */
function readGenericResources(r: Reader, n: YNode, q: string): string[] | undefined {
  const s = r.seq(n, q);
  if (!s) return undefined;
  const out: string[] = [];
  s.items.forEach((item, i) => {
    const at = `${q}[${i}]`;
    const m = r.map(item, at);
    if (!m) return;
    for (const e of r.keys(m, at, ["discrete_resource_spec"], "a generic resource")) {
      const ep = join(at, e.key);
      const spec = r.map(e.value, ep);
      if (!spec) continue;
      const sf = fieldsOf(r, spec, ep, ["kind", "value"], e.key);
      if (!sf.has("kind") || !sf.has("value")) r.fail(spec, ep, `needs "kind" and "value"`);
      const kind = sf.get("kind") && r.str(sf.get("kind")!.value, join(ep, "kind"));
      const value = sf.get("value") && r.int(sf.get("value")!.value, join(ep, "value"));
      if (kind !== undefined && value !== undefined) out.push(`${kind}=${value}`);
    }
  });
  return out;
}
