// Typed readers over the positioned YAML tree, collecting every problem as a ConfigIssue with
// file:line and a dotted path. Used by the Compose stack importer (compose.ts).
import { interpolate, InterpolationVars } from "./interpolate";
import { ConfigIssue } from "./types";
import { YEntry, YMap, YNode, YSeq } from "./yamlSource";

/** Collects issues (errors) and warnings for one file. */
export class IssueSink {
  readonly issues: ConfigIssue[] = [];
  /** Keys that swarm ignores: warnings, or issues when `strict`. */
  readonly warnings: ConfigIssue[] = [];
  constructor(
    readonly file: string,
    /** Ignored keys are errors instead of warnings. Default false. */
    readonly strict = false,
  ) {}

  /** A key that `docker stack deploy` ignores: a warning, or an issue in strict mode. */
  ignore(line: number, path: string, message: string): void {
    if (this.strict) this.add(line, path, `${message} (an error because of strict mode)`);
    else this.warnings.push({ origin: { file: this.file, line, path }, message });
  }

  /** Suppresses further problems at `path` (its value did not interpolate). */
  markBroken(path: string): void {
    this.broken.add(path);
  }

  /** Paths whose value failed interpolation: later problems at them would only repeat it. */
  private readonly broken = new Set<string>();

  /** Records a problem at `line`, with the dotted `path` of the key. */
  add(line: number, path: string, message: string): void {
    if (this.broken.has(path)) return;
    this.issues.push({ origin: { file: this.file, line, ...(path ? { path } : {}) }, message });
  }
}

/** `a.b` + `c` -> `a.b.c` (and `` + `c` -> `c`). */
export function join(path: string, key: string | number): string {
  return path === "" ? String(key) : `${path}.${key}`;
}

/**
 * Interpolates every string scalar of the tree (values only, never keys), as compose does after
 * parsing, so each error keeps the line of its scalar. Top-level `x-*` keys are skipped.
 */
export function interpolateTree(
  node: YNode,
  vars: InterpolationVars,
  sink: IssueSink,
  path = "",
  used?: Map<string, { line: number; defaulted: boolean }>,
): YNode {
  if (node.kind === "scalar") {
    if (typeof node.value !== "string" || !node.value.includes("$")) return node;
    const r = interpolate(node.value, vars);
    for (const u of r.used) {
      const seen = used?.get(u.name);
      if (!seen) used?.set(u.name, { line: node.line, defaulted: u.defaulted });
      else if (!u.defaulted) seen.defaulted = false;
    }
    for (const e of r.errors) sink.add(node.line, path, e);
    if (r.errors.length > 0) sink.markBroken(path);
    return { kind: "scalar", line: node.line, value: r.value };
  }
  if (node.kind === "seq") {
    return {
      ...node,
      items: node.items.map((n, i) => interpolateTree(n, vars, sink, `${path}[${i}]`, used)),
    };
  }
  return {
    ...node,
    entries: node.entries.map((e) =>
      path === "" && e.key.startsWith("x-")
        ? e
        : { ...e, value: interpolateTree(e.value, vars, sink, join(path, e.key), used) },
    ),
  };
}

/** Describes a node's kind for messages. */
function kindOf(node: YNode): string {
  if (node.kind !== "scalar") return node.kind === "map" ? "a mapping" : "a list";
  return node.value === null
    ? "empty"
    : typeof node.value === "string"
      ? "a string"
      : `a ${typeof node.value}`;
}

/** Readers that report wrong types and return undefined. */
export class Reader {
  constructor(readonly sink: IssueSink) {}

  /** Reports `message` at the node's line. */
  fail(node: { line: number }, path: string, message: string): undefined {
    this.sink.add(node.line, path, message);
    return undefined;
  }

  map(node: YNode, path: string): YMap | undefined {
    return node.kind === "map" ? node : this.fail(node, path, `must be a mapping, got ${kindOf(node)}`);
  }

  /** A mapping, with `null` (`key:` with no value) read as an empty mapping. */
  optMap(node: YNode, path: string): YMap | undefined {
    if (node.kind === "scalar" && node.value === null) return { kind: "map", line: node.line, entries: [] };
    return this.map(node, path);
  }

  seq(node: YNode, path: string): YSeq | undefined {
    return node.kind === "seq" ? node : this.fail(node, path, `must be a list, got ${kindOf(node)}`);
  }

  /** A string; numbers are accepted and converted (`1.0` stays as written when the source is plain). */
  str(node: YNode, path: string): string | undefined {
    if (node.kind === "scalar" && typeof node.value === "string") return node.value;
    if (node.kind === "scalar" && typeof node.value === "number") return node.raw ?? String(node.value);
    return this.fail(node, path, `must be a string, got ${kindOf(node)}`);
  }

  /** An integer in [min, max]; numeric strings (e.g. from `${REPLICAS:-3}`) are accepted. */
  int(node: YNode, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const n = this.number(node, path);
    if (n === undefined) return undefined;
    if (!Number.isInteger(n) || n < min || n > max)
      return this.fail(node, path, `must be a whole number in ${min}-${max}, got ${n}`);
    return n;
  }

  /** A number; numeric strings are accepted. */
  number(node: YNode, path: string): number | undefined {
    if (node.kind === "scalar" && typeof node.value === "number") return node.value;
    if (node.kind === "scalar" && typeof node.value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(node.value))
      return Number(node.value);
    return this.fail(node, path, `must be a number, got ${kindOf(node)}${strValue(node)}`);
  }

  /** A boolean; the strings "true"/"false" are accepted. */
  bool(node: YNode, path: string): boolean | undefined {
    if (node.kind === "scalar" && typeof node.value === "boolean") return node.value;
    if (node.kind === "scalar" && (node.value === "true" || node.value === "false"))
      return node.value === "true";
    return this.fail(node, path, `must be true or false, got ${kindOf(node)}${strValue(node)}`);
  }

  /** One of `allowed`. */
  oneOf<T extends string>(node: YNode, path: string, allowed: readonly T[]): T | undefined {
    const s = this.str(node, path);
    if (s === undefined) return undefined;
    return (allowed as readonly string[]).includes(s)
      ? (s as T)
      : this.fail(node, path, `"${s}" is not allowed (allowed: ${allowed.join(", ")})`);
  }

  /** A list of strings (numbers converted). */
  strList(node: YNode, path: string): string[] | undefined {
    const s = this.seq(node, path);
    if (!s) return undefined;
    const out: string[] = [];
    let ok = true;
    s.items.forEach((item, i) => {
      const v = this.str(item, `${path}[${i}]`);
      if (v === undefined) ok = false;
      else out.push(v);
    });
    return ok ? out : undefined;
  }

  /** A string or a list of strings, as a list. */
  strOrList(node: YNode, path: string): string[] | undefined {
    if (node.kind === "scalar") {
      const v = this.str(node, path);
      return v === undefined ? undefined : [v];
    }
    return this.strList(node, path);
  }

  /**
   * Reports every key of `map` that is not in `allowed` (keys starting with `x-` are extensions and
   * are ignored). Keys in `ignored` (key -> why swarm ignores it) are warnings, or errors in strict
   * mode; `refused` (key -> why we cannot honour it) are errors with that reason. Returns the entries
   * whose key is allowed.
   */
  keys(
    map: YMap,
    path: string,
    allowed: readonly string[],
    what: string,
    ignored: Readonly<Record<string, string>> = {},
    refused: Readonly<Record<string, string>> = {},
  ): YEntry[] {
    const out: YEntry[] = [];
    for (const e of map.entries) {
      if (e.key.startsWith("x-") && !allowed.includes(e.key)) continue;
      if (allowed.includes(e.key)) out.push(e);
      else if (Object.hasOwn(ignored, e.key))
        this.sink.ignore(e.line, join(path, e.key), `"${e.key}" is ignored: ${ignored[e.key]}`);
      else if (Object.hasOwn(refused, e.key))
        this.sink.add(e.line, join(path, e.key), `"${e.key}" is not supported: ${refused[e.key]}`);
      else
        this.sink.add(
          e.line,
          join(path, e.key),
          `unsupported key "${e.key}" in ${what} (allowed: ${allowed.join(", ")}; and x-* extensions)`,
        );
    }
    return out;
  }
}

function strValue(node: YNode): string {
  return node.kind === "scalar" && typeof node.value === "string" ? ` "${node.value}"` : "";
}

/** Reads labels in list (`k=v`) or map form. Values are strings; `null` map values become "". */
export function readLabels(
  r: Reader,
  node: YNode,
  p: string,
  what = "label",
): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (node.kind === "seq") {
    node.items.forEach((item, i) => {
      const s = r.str(item, `${p}[${i}]`);
      if (s === undefined) return;
      const eq = s.indexOf("=");
      const k = eq < 0 ? s : s.slice(0, eq);
      if (k === "") return r.fail(item, `${p}[${i}]`, `${what} "${s}" has no key`);
      if (k in out) r.fail(item, `${p}[${i}]`, `${what} "${k}" is given twice`);
      out[k] = eq < 0 ? "" : s.slice(eq + 1);
    });
    return out;
  }
  const m = r.map(node, p);
  if (!m) return undefined;
  for (const e of m.entries) {
    const v = e.value;
    if (v.kind !== "scalar") r.fail(v, join(p, e.key), `a ${what} value must be a string`);
    else
      out[e.key] =
        v.value === null ? "" : typeof v.value === "number" ? (v.raw ?? String(v.value)) : String(v.value);
  }
  return out;
}
