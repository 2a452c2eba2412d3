// Compose-format stack import: the swarm subset of a `docker stack deploy` file turned into a typed
// StackSpec, named as `docker stack deploy` names things. Every problem is reported with file:line and
// the dotted key path; nothing unsupported is silently dropped.
import * as fs from "fs";
import * as path from "path";
import { IssueSink, interpolateTree, join, Reader, readLabels } from "./compose-read";
import { parseService, ServiceContext, StackRefs } from "./compose-service";
import { NetworkSpec, ConfigIssue, StackFileSpec, StackSpec, VariableUse, VolumeOptionsSpec } from "./types";
import { parseYamlSource, YEntry, YMap, YNode } from "./yamlSource";

export { parseImageRef } from "./compose-values";
export type { ImageRef } from "./compose-values";

/** Traefik settings of the platform, used to expand `x-traefik` into labels. */
export interface TraefikPlatform {
  /** Physical name of the overlay network Traefik routes on; routed services join it. */
  readonly publicNetwork: string;
  /** Entrypoint name, e.g. `websecure`. */
  readonly entrypoint: string;
  /** ACME resolver name, e.g. `letsencrypt`. */
  /** ACME resolver of routes with TLS; none: Traefik's default certificate. */
  readonly certResolver?: string;
}

/** Options of {@link parseStackText}. */
export interface StackImportOptions {
  /** Absolute path of the stack file, for resolving relative paths (env_file, bind mounts, file:). */
  readonly file: string;
  /** Used in issue origins, e.g. `stacks/popcube.yaml`. Default: `file`. */
  readonly displayPath?: string;
  /** Stack name. Default: the top-level `name`, else the file's basename without extension. */
  readonly stackName?: string;
  /** Interpolation variables; `undefined` means unset. */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** When given, `x-traefik` is expanded into service labels and the public network is joined. */
  readonly platform?: TraefikPlatform;
  /** Keys that swarm ignores are errors instead of warnings. Default false. */
  readonly strict?: boolean;
  /**
   * Names of the variables in `vars` that came from the environment (opted in by `stackEnvironment`), to
   * report where each value comes from. Default: none.
   */
  readonly fromEnvironment?: readonly string[];
}

/** Result of an import: the stack when there is no issue, and every issue found. */
export interface StackImportResult {
  readonly stack?: StackSpec;
  readonly issues: ConfigIssue[];
  /** Keys that swarm ignores, and other things to tell the user; empty in strict mode. */
  readonly warnings: ConfigIssue[];
  /**
   * When there are issues: the stack made of what did parse (services without problems), so that the
   * checks across stacks (ports, routes, images) still run and every problem is reported in one pass.
   */
  readonly partial?: StackSpec;
}

const TOP_KEYS = ["version", "name", "services", "networks", "volumes", "configs", "secrets"] as const;
const NETWORK_KEYS = ["driver", "driver_opts", "attachable", "external", "name", "labels", "ipam"];
const VOLUME_KEYS = ["driver", "driver_opts", "external", "name", "labels"];
const FILE_KEYS = ["file", "external", "name"];
/** Secrets may also take their value from `environment:` (the secret config `stackSecrets`). */
const SECRET_KEYS_ALLOWED = [...FILE_KEYS, "environment"];
/** What `docker stack deploy` accepts as a stack name (a namespace). */
export const STACK_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * Imports a Compose-format stack from its text. Interpolation runs on string scalars after YAML
 * parsing. Returns the stack only when no issue was found; `issues` lists all of them.
 */
export function parseStackText(text: string, opts: StackImportOptions): StackImportResult {
  const sink = new IssueSink(opts.displayPath ?? opts.file, opts.strict ?? false);
  const r = new Reader(sink);
  const src = parseYamlSource(text);
  const done = (): StackImportResult => ({
    issues: byPosition(sink.issues),
    warnings: byPosition(sink.warnings),
  });
  for (const p of src.problems) sink.add(p.line, "", `YAML: ${p.message}`);
  if (src.problems.length > 0) return done();
  if (!src.root) {
    sink.add(1, "", "the stack file is empty; it needs a `services:` mapping");
    return done();
  }
  const rootRaw = r.map(src.root, "");
  if (!rootRaw) return done();
  const used = new Map<string, { line: number; defaulted: boolean }>();
  const root = interpolateTree(rootRaw, opts.vars, sink, "", used) as YMap;
  const top = new Map(r.keys(root, "", TOP_KEYS, "the stack file").map((e) => [e.key, e]));

  // An invalid name is reported, and the rest of the file is still checked under a stand-in name.
  const stackName = resolveStackName(r, opts, top.get("name")) ?? "invalid-name";
  const dir = path.dirname(opts.file);

  const refs: StackRefs = {
    networks: parseNetworks(r, stackName, top.get("networks")),
    volumes: parseVolumes(r, stackName, top.get("volumes")),
    configs: parseFiles(r, stackName, dir, top.get("configs"), "configs"),
    secrets: parseFiles(r, stackName, dir, top.get("secrets"), "secrets"),
  };
  const ctx: ServiceContext = { r, stack: stackName, dir, displayDir: path.dirname(sink.file), refs, opts };
  const servicesEntry = top.get("services");
  const services = [];
  if (!servicesEntry) sink.add(1, "services", "the stack file has no `services:` mapping");
  else {
    const map = r.map(servicesEntry.value, "services");
    if (map && map.entries.length === 0) sink.add(servicesEntry.line, "services", "`services:` is empty");
    for (const e of map?.entries ?? []) {
      const s = parseService(ctx, e);
      if (s) services.push(s);
    }
  }
  const usedDefault = services.some((s) => s.networks.includes(`${stackName}_default`));
  const networks: NetworkSpec[] = [...refs.networks.entries()].flatMap(([k, n]) =>
    n.spec && k !== "default" ? [n.spec] : [],
  );
  if (usedDefault || refs.networks.get("default")?.spec) {
    const def = refs.networks.get("default");
    if (!def || def.spec) networks.unshift(def?.spec ?? defaultNetwork(stackName));
  }
  const env = new Set(opts.fromEnvironment ?? []);
  const variables: VariableUse[] = [...used.entries()]
    .map(([name, u]) => ({
      name,
      line: u.line,
      source:
        opts.vars[name] === undefined
          ? u.defaulted
            ? ("default" as const)
            : ("unset" as const)
          : env.has(name)
            ? ("environment" as const)
            : ("stackVariables" as const),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const stack: StackSpec = {
    name: stackName,
    file: opts.file,
    services,
    networks,
    configs: [...refs.configs.values()],
    secrets: [...refs.secrets.values()],
    variables,
  };
  if (sink.issues.length > 0) return { ...done(), partial: stack };
  return { stack, issues: [], warnings: byPosition(sink.warnings) };
}

/**
 * Reads and imports a stack file. `displayPath` defaults to the path relative to the current
 * directory. A file that cannot be read is one issue.
 */
export function parseStackFile(
  file: string,
  opts: Omit<StackImportOptions, "file" | "displayPath"> & { displayPath?: string },
): StackImportResult {
  const abs = path.resolve(file);
  const displayPath = opts.displayPath ?? path.relative(process.cwd(), abs);
  let text: string;
  try {
    text = fs.readFileSync(abs, "utf8");
  } catch (e) {
    return {
      issues: [
        {
          origin: { file: displayPath, line: 1 },
          message: `cannot read the stack file: ${(e as Error).message}`,
        },
      ],
      warnings: [],
    };
  }
  return parseStackText(text, { ...opts, file: abs, displayPath });
}

function resolveStackName(
  r: Reader,
  opts: StackImportOptions,
  nameEntry: YEntry | undefined,
): string | undefined {
  let name = opts.stackName;
  let line = 1;
  if (name === undefined && nameEntry) {
    name = r.str(nameEntry.value, "name");
    line = nameEntry.line;
    if (name === undefined) return undefined;
  }
  const fromFile = name === undefined;
  name ??= path.basename(opts.file).replace(/\.[^.]*$/, "");
  if (!STACK_NAME.test(name)) {
    r.sink.add(
      line,
      nameEntry && opts.stackName === undefined ? "name" : "",
      fromFile
        ? `the stack name comes from the file name, and "${name}" is not one (it must match ${STACK_NAME.source}); ` +
            `give a name with a top-level "name:", with { file, name } in swarmform:stacks, or with render --name`
        : `stack name "${name}" must match ${STACK_NAME.source}`,
    );
    return undefined;
  }
  return name;
}

/** Issues sorted by file, then by line within a file; stable otherwise. Config-key issues come first. */
export function byPosition(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const fileOf = (i: ConfigIssue) => ("file" in i.origin ? i.origin.file : "");
  const lineOf = (i: ConfigIssue) => ("line" in i.origin ? i.origin.line : 0);
  const files = [...new Set(issues.map(fileOf))].sort();
  return files.flatMap((f) =>
    issues
      .map((issue, index) => ({ issue, index }))
      .filter((x) => fileOf(x.issue) === f)
      .sort((a, b) => lineOf(a.issue) - lineOf(b.issue) || a.index - b.index)
      .map((x) => x.issue),
  );
}

function defaultNetwork(stack: string): NetworkSpec {
  return {
    name: "default",
    physicalName: `${stack}_default`,
    encrypted: false,
    attachable: false,
    labels: {},
  };
}

/** A top-level network: its physical name and, for stack-defined ones, its spec. */
export interface NetworkRef {
  readonly key: string;
  readonly physicalName: string;
  readonly spec?: NetworkSpec;
}

function parseNetworks(r: Reader, stack: string, entry: YEntry | undefined): Map<string, NetworkRef> {
  const out = new Map<string, NetworkRef>();
  const map = entry && r.optMap(entry.value, "networks");
  for (const e of map?.entries ?? []) {
    const p = join("networks", e.key);
    const def = r.optMap(e.value, p);
    if (!def) continue;
    const f = new Map(r.keys(def, p, NETWORK_KEYS, `network "${e.key}"`).map((x) => [x.key, x]));
    const ext = external(r, f, p);
    const name = f.get("name") && r.str(f.get("name")!.value, join(p, "name"));
    if (ext.external) {
      for (const k of f.keys())
        if (k !== "external" && k !== "name")
          r.fail(f.get(k)!, join(p, k), `an external network only takes "name"`);
      out.set(e.key, { key: e.key, physicalName: ext.name ?? name ?? e.key });
      continue;
    }
    const driver = f.get("driver") && r.str(f.get("driver")!.value, join(p, "driver"));
    if (driver !== undefined && driver !== "overlay")
      r.fail(
        f.get("driver")!,
        join(p, "driver"),
        `driver "${driver}" is not allowed for a stack network (allowed: overlay)`,
      );
    let encrypted = false;
    const opts = f.get("driver_opts") && r.optMap(f.get("driver_opts")!.value, join(p, "driver_opts"));
    for (const o of opts?.entries ?? []) {
      if (o.key === "encrypted") encrypted = true;
      else
        r.fail(
          o,
          join(join(p, "driver_opts"), o.key),
          `driver option "${o.key}" is not supported (allowed: encrypted)`,
        );
    }
    const attachable = f.get("attachable")
      ? r.bool(f.get("attachable")!.value, join(p, "attachable"))
      : false;
    const labels = f.get("labels") ? readLabels(r, f.get("labels")!.value, join(p, "labels")) : {};
    const subnet = f.get("ipam") ? readIpam(r, f.get("ipam")!.value, join(p, "ipam")) : undefined;
    const physicalName = name ?? `${stack}_${e.key}`;
    out.set(e.key, {
      key: e.key,
      physicalName,
      spec: {
        name: e.key,
        physicalName,
        ...(subnet
          ? {
              subnet: subnet.value,
              subnetOrigin: { file: r.sink.file, line: subnet.line, path: subnet.path },
            }
          : {}),
        origin: { file: r.sink.file, line: e.line, path: p },
        encrypted,
        attachable: attachable ?? false,
        labels: { ...(labels ?? {}), "com.docker.stack.namespace": stack },
      },
    });
  }
  return out;
}

function readIpam(
  r: Reader,
  node: YNode,
  p: string,
): { value: string; line: number; path: string } | undefined {
  const m = r.map(node, p);
  if (!m) return undefined;
  const f = new Map(r.keys(m, p, ["config"], "ipam").map((x) => [x.key, x]));
  const cfg = f.get("config") && r.seq(f.get("config")!.value, join(p, "config"));
  if (!cfg) return undefined;
  if (cfg.items.length !== 1)
    return r.fail(cfg, join(p, "config"), "exactly one ipam config entry ({subnet}) is supported");
  const cp = `${join(p, "config")}[0]`;
  const c = r.map(cfg.items[0], cp);
  if (!c) return undefined;
  const cf = r.keys(c, cp, ["subnet"], "an ipam config entry");
  const s = cf[0] && r.str(cf[0].value, join(cp, "subnet"));
  if (s !== undefined && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(s))
    return r.fail(cf[0], join(cp, "subnet"), `"${s}" is not an IPv4 CIDR`);
  return s === undefined ? undefined : { value: s, line: cf[0].line, path: join(cp, "subnet") };
}

/** Reads `external: true` or the legacy `external: {name: x}`. */
function external(r: Reader, f: Map<string, YEntry>, p: string): { external: boolean; name?: string } {
  const e = f.get("external");
  if (!e) return { external: false };
  if (e.value.kind === "map") {
    const m = r.keys(e.value, join(p, "external"), ["name"], "external");
    const name = m[0] && r.str(m[0].value, join(join(p, "external"), "name"));
    return { external: true, ...(name ? { name } : {}) };
  }
  return { external: r.bool(e.value, join(p, "external")) ?? false };
}

/** A top-level volume: its physical name and, for a stack-defined one, how swarm creates it. */
function parseVolumes(
  r: Reader,
  stack: string,
  entry: YEntry | undefined,
): Map<string, { physicalName: string; volume?: VolumeOptionsSpec }> {
  const out = new Map<string, { physicalName: string; volume?: VolumeOptionsSpec }>();
  const map = entry && r.optMap(entry.value, "volumes");
  for (const e of map?.entries ?? []) {
    const p = join("volumes", e.key);
    const def = r.optMap(e.value, p);
    if (!def) continue;
    const f = new Map(r.keys(def, p, VOLUME_KEYS, `volume "${e.key}"`).map((x) => [x.key, x]));
    const ext = external(r, f, p);
    const name = f.get("name") && r.str(f.get("name")!.value, join(p, "name"));
    if (ext.external) {
      for (const k of f.keys())
        if (k !== "external" && k !== "name")
          r.fail(f.get(k)!, join(p, k), `an external volume only takes "name"`);
      out.set(e.key, { physicalName: ext.name ?? name ?? e.key });
      continue;
    }
    const driver = f.get("driver") && r.str(f.get("driver")!.value, join(p, "driver"));
    const driverOpts = f.get("driver_opts")
      ? readLabels(r, f.get("driver_opts")!.value, join(p, "driver_opts"), "driver option")
      : {};
    const labels = f.get("labels") ? readLabels(r, f.get("labels")!.value, join(p, "labels")) : {};
    const volume = {
      ...(driver !== undefined ? { driver } : {}),
      driverOpts: driverOpts ?? {},
      labels: labels ?? {},
    };
    const plain =
      driver === undefined && !Object.keys(volume.driverOpts).length && !Object.keys(volume.labels).length;
    out.set(e.key, { physicalName: name ?? `${stack}_${e.key}`, ...(plain ? {} : { volume }) });
  }
  return out;
}

/** Top-level configs or secrets. */
function parseFiles(
  r: Reader,
  stack: string,
  dir: string,
  entry: YEntry | undefined,
  kind: "configs" | "secrets",
): Map<string, StackFileSpec> {
  const out = new Map<string, StackFileSpec>();
  const map = entry && r.optMap(entry.value, kind);
  for (const e of map?.entries ?? []) {
    const p = join(kind, e.key);
    const def = r.map(e.value, p);
    if (!def) continue;
    const allowed = kind === "secrets" ? SECRET_KEYS_ALLOWED : FILE_KEYS;
    const f = new Map(r.keys(def, p, allowed, `${kind.slice(0, -1)} "${e.key}"`).map((x) => [x.key, x]));
    const ext = external(r, f, p);
    const name = f.get("name") && r.str(f.get("name")!.value, join(p, "name"));
    const origin = { file: r.sink.file, line: e.line, path: p };
    if (ext.external) {
      for (const k of ["file", "environment"].filter((k) => f.has(k)))
        r.fail(f.get(k)!, join(p, k), `an external ${kind.slice(0, -1)} cannot have "${k}"`);
      out.set(e.key, { key: e.key, name: ext.name ?? name ?? e.key, external: true, origin });
      continue;
    }
    const environment = f.get("environment") && r.str(f.get("environment")!.value, join(p, "environment"));
    if (environment !== undefined) {
      if (f.has("file")) r.fail(f.get("file")!, join(p, "file"), `takes "file" or "environment", not both`);
      else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(environment))
        r.fail(
          f.get("environment")!,
          join(p, "environment"),
          `must be a variable name (letters, digits, '_')`,
        );
      else
        out.set(e.key, {
          key: e.key,
          name: name ?? `${stack}_${e.key}`,
          external: false,
          environment,
          origin,
        });
      continue;
    }
    const file = f.get("file") && r.str(f.get("file")!.value, join(p, "file"));
    if (file === undefined) {
      const needs = kind === "secrets" ? `"file:", "environment:"` : `"file:"`;
      if (!f.has("file")) r.fail(e, p, `needs ${needs} (or "external: true")`);
      continue;
    }
    const abs = path.resolve(dir, file);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) {
      r.fail(
        f.get("file")!,
        join(p, "file"),
        `file "${file}" does not exist (${abs}); paths are relative to the stack file`,
      );
    }
    out.set(e.key, { key: e.key, name: name ?? `${stack}_${e.key}`, external: false, file: abs, origin });
  }
  return out;
}
