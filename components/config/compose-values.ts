// Pure parsers for Compose scalar formats: image references, byte sizes, durations, shell words,
// port strings, short volume strings and env files. Each returns a value or an error message; none throws.
import { interpolate } from "./interpolate";

/** A parsed image reference (`[registry/]repository[:tag][@digest]`). */
export interface ImageRef {
  /** Registry host (`registry.example.com:5000`, `localhost`), when the reference names one. */
  readonly registry?: string;
  /** Path inside the registry, e.g. `popcubeapi` or `library/traefik`. */
  readonly repository: string;
  readonly tag?: string;
  /** `algorithm:hex`, e.g. `sha256:...`. */
  readonly digest?: string;
}

/** Either a value or an error message. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

// Grammar of github.com/distribution/reference.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

/**
 * Parses a Docker image reference as `docker` does (distribution/reference grammar). The first path
 * component is a registry when it contains `.` or `:`, or is `localhost`. No tag means no tag (the
 * engine would use `latest`): callers decide whether that is allowed.
 */
export function parseImageRef(ref: string): Parsed<ImageRef> {
  const bad = (why: string) => fail<ImageRef>(`invalid image reference "${ref}": ${why}`);
  if (ref === "") return bad("it is empty");
  if (ref.length > 255 + 128 + 80) return bad("it is too long");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return bad(`digest "${digest}" is not algorithm:hex`);
    if (digest.startsWith("sha256:") && !/^sha256:[a-f0-9]{64}$/.test(digest))
      return bad("a sha256 digest has 64 lowercase hex digits");
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return bad(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  const parts = rest.split("/");
  let registry: string | undefined;
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost")) {
    registry = parts.shift();
    const [host, port, extra] = registry!.split(":");
    if (extra !== undefined || (port !== undefined && !/^\d+$/.test(port)))
      return bad(`registry "${registry}" is not host[:port]`);
    if (!host.split(".").every((c) => DOMAIN_COMPONENT.test(c)))
      return bad(`registry host "${host}" is not a valid host name`);
  }
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p)))
    return bad("the repository must be lowercase letters, digits and separators (. _ __ -), split by /");
  const repository = parts.join("/");
  if (repository.length > 255) return bad("the repository name is longer than 255 characters");
  return ok({
    ...(registry !== undefined ? { registry } : {}),
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  });
}

const UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * Parses a byte size as docker does (`units.RAMInBytes`): `128M`, `1.5G`, `512k`, `64mb`, `1gib`, or a
 * plain number of bytes. Units are binary (1k = 1024).
 */
export function parseBytes(value: string | number): Parsed<number> {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 0
      ? ok(value)
      : fail(`byte size ${value} must be a whole number`);
  }
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(value.trim());
  if (!m) return fail(`"${value}" is not a size (examples: 128M, 1.5G, 512k, 1048576)`);
  return ok(Math.round(parseFloat(m[1]) * UNITS[(m[2] ?? "").toLowerCase()]));
}

/** Validates a Go duration (`10s`, `1m30s`, `500ms`, `1h`) and returns it unchanged. Numbers are refused. */
export function parseDuration(value: string): Parsed<string> {
  return /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value)
    ? ok(value)
    : fail(`"${value}" is not a duration (examples: 10s, 1m30s, 500ms)`);
}

/** Splits a command string into words like a POSIX shell (quotes and backslashes), as compose does. */
export function shellSplit(text: string): Parsed<string[]> {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) cur += text[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) return fail(`unterminated ${quote} quote in "${text}"`);
  if (inWord) words.push(cur);
  return ok(words);
}

/** A port from the short syntax, before it becomes a PortSpec. */
export interface ShortPort {
  readonly target: number;
  readonly published?: number;
  readonly protocol: string;
}

/** True for an integer port number in 1-65535. */
export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function portRange(text: string): Parsed<number[]> {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return fail(`"${text}" is not a port or port range`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (!isPort(from) || !isPort(to)) return fail(`port ${!isPort(from) ? from : to} is outside 1-65535`);
  if (to < from) return fail(`port range "${text}" ends before it starts`);
  return ok(Array.from({ length: to - from + 1 }, (_, k) => from + k));
}

/**
 * Parses the short port syntax: `80`, `80:80`, `8080:80/udp`, `8000-8001:9000-9001`. A host IP
 * (`127.0.0.1:80:80`) is refused: swarm services cannot bind one.
 */
export function parseShortPort(text: string): Parsed<ShortPort[]> {
  const [spec, protocol = "tcp", ...more] = text.split("/");
  if (more.length > 0) return fail(`port "${text}" has more than one "/protocol"`);
  const parts = spec.split(":");
  if (parts.length > 2)
    return fail(`port "${text}": a host IP is not supported by swarm services; use PUBLISHED:TARGET`);
  const target = portRange(parts[parts.length - 1]);
  if (!target.ok) return fail(`port "${text}": ${target.error}`);
  if (parts.length === 1) return ok(target.value.map((t) => ({ target: t, protocol })));
  const published = portRange(parts[0]);
  if (!published.ok) return fail(`port "${text}": ${published.error}`);
  if (published.value.length !== target.value.length)
    return fail(`port "${text}": published and target ranges differ in length`);
  return ok(target.value.map((t, k) => ({ target: t, published: published.value[k], protocol })));
}

/** A volume from the short syntax `[source:]target[:mode]`. */
export interface ShortVolume {
  readonly source?: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** `bind` when the source is a path (starts with `/`, `.` or `~`), else `volume`. */
  readonly type: "bind" | "volume";
}

/** Parses the short volume syntax: `name:/data`, `./dir:/data:ro`, `/host:/ctr:rw`, `/anonymous`. */
export function parseShortVolume(text: string): Parsed<ShortVolume> {
  const parts = text.split(":");
  if (parts.length > 3 || parts.some((p) => p === ""))
    return fail(`volume "${text}" is not [SOURCE:]TARGET[:ro|rw]`);
  if (parts.length === 1) return ok({ target: parts[0], readOnly: false, type: "volume" });
  const [source, target, mode = "rw"] = parts;
  const modes = mode.split(",");
  const unknown = modes.filter((m) => m !== "ro" && m !== "rw");
  if (unknown.length > 0)
    return fail(`volume "${text}": mode "${unknown.join(",")}" is not supported (allowed: ro, rw)`);
  if (!target.startsWith("/"))
    return fail(`volume "${text}": the target "${target}" must be an absolute path`);
  const type = /^[/.~]/.test(source) ? "bind" : "volume";
  return ok({ source, target, readOnly: modes.includes("ro"), type });
}

/** Result of {@link parseEnvFileText}. */
export interface EnvFileResult {
  readonly values: Record<string, string>;
  readonly problems: readonly { readonly line: number; readonly message: string }[];
}

/**
 * Parses an env_file: `KEY=VALUE` lines (optionally `export KEY=VALUE`), `#` comment lines and blank
 * lines. `'single quoted'` values are taken literally; unquoted and `"double quoted"` ones are
 * interpolated; an unquoted ` # comment` tail is dropped. A bare `KEY` takes its value from `vars`.
 */
export function parseEnvFileText(
  text: string,
  vars: Readonly<Record<string, string | undefined>>,
): EnvFileResult {
  const values: Record<string, string> = {};
  const problems: { line: number; message: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const issue = (message: string): void => void problems.push({ line: i + 1, message });
    if (line === "" || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(=(.*))?$/.exec(line);
    if (!m) return issue(`"${line}" is not KEY=VALUE`);
    const key = m[1];
    if (m[2] === undefined) {
      const v = vars[key];
      if (v === undefined) return issue(`${key} has no value here and ${key} is not set`);
      values[key] = v;
      return;
    }
    let value = m[3].trim();
    if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
      values[key] = value.slice(1, -1);
      return;
    }
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, "");
    const res = interpolate(value, vars);
    res.errors.forEach(issue);
    values[key] = res.value;
  });
  return { values, problems };
}
