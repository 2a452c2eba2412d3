// The host+path pairs a service is routed on by Traefik, from its x-traefik shorthand and from raw
// `traefik.http.routers.<r>.rule` labels, so that one host+path routed by two services can be found.
import { routerNameOf } from "./traefikLabels";
import { ServiceSpec } from "./types";

/** One route of a service: a host (lowercase) and a path prefix (`/` when the rule has none). */
export interface Route {
  readonly host: string;
  readonly path: string;
  readonly router: string;
}

type Atom = { readonly kind: "host" | "path"; readonly value: string } | { readonly kind: "other" };
/** Disjunctive normal form: an OR of ANDs of atoms. */
type Dnf = Atom[][];

const MAX_TERMS = 256;
const RULE_LABEL = /^traefik\.http\.routers\.([^.]+)\.rule$/;

/** Every host+path a service is routed on (x-traefik and raw router rule labels), without duplicates. */
export function routesOf(service: ServiceSpec): Route[] {
  const out: Route[] = [];
  const seen = new Set<string>();
  const add = (r: Route): void => {
    const k = `${r.router}\n${r.host}\n${r.path}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push(r);
  };
  if (service.traefik) {
    const router = routerNameOf(service.stack, service.key);
    for (const h of service.traefik.hosts)
      add({ host: h.toLowerCase(), path: service.traefik.path || "/", router });
  }
  if (service.labels["traefik.enable"] === "false") return out;
  for (const [key, value] of Object.entries(service.labels)) {
    const m = RULE_LABEL.exec(key);
    if (!m) continue;
    for (const hp of hostPathsOfRule(value) ?? []) add({ ...hp, router: m[1] });
  }
  return out;
}

/**
 * The host+path pairs a Traefik rule matches, e.g. "Host(`a`) || Host(`b`) && PathPrefix(`/p`)".
 * Understands Host (several arguments too), PathPrefix, Path, `||`, `&&`, `!` and parentheses;
 * other matchers narrow a route without changing its host or path. A branch with no Host matcher (or
 * under `!`) gives no pair. Returns undefined when the rule cannot be parsed.
 */
export function hostPathsOfRule(rule: string): { host: string; path: string }[] | undefined {
  let dnf: Dnf;
  try {
    dnf = new RuleParser(rule).parse();
  } catch {
    return undefined;
  }
  const out: { host: string; path: string }[] = [];
  for (const term of dnf) {
    const hosts = unique(term.flatMap((a) => (a.kind === "host" ? [a.value.toLowerCase()] : [])));
    const paths = unique(term.flatMap((a) => (a.kind === "path" ? [a.value] : [])));
    if (hosts.length !== 1) continue; // no host, or Host(a) && Host(b) which never matches
    const path = paths.sort((a, b) => b.length - a.length)[0] ?? "/";
    if (!out.some((o) => o.host === hosts[0] && o.path === path)) out.push({ host: hosts[0], path });
  }
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

type Token = { t: "id"; v: string } | { t: "str"; v: string } | { t: "op"; v: string };

function tokenize(rule: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i];
    if (/\s/.test(c)) i++;
    else if (rule.startsWith("||", i) || rule.startsWith("&&", i)) {
      out.push({ t: "op", v: rule.slice(i, i + 2) });
      i += 2;
    } else if ("(),!".includes(c)) {
      out.push({ t: "op", v: c });
      i++;
    } else if (c === "`" || c === '"') {
      const end = rule.indexOf(c, i + 1);
      if (end < 0) throw new Error("unterminated string");
      out.push({ t: "str", v: rule.slice(i + 1, end) });
      i = end + 1;
    } else {
      const m = /^[A-Za-z][A-Za-z0-9]*/.exec(rule.slice(i));
      if (!m) throw new Error(`unexpected "${c}"`);
      out.push({ t: "id", v: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

class RuleParser {
  private readonly tokens: Token[];
  private pos = 0;
  constructor(rule: string) {
    this.tokens = tokenize(rule);
  }

  parse(): Dnf {
    const d = this.or();
    if (this.pos !== this.tokens.length) throw new Error("trailing tokens");
    return d;
  }

  private peek(v: string): boolean {
    const t = this.tokens[this.pos];
    return t !== undefined && t.t === "op" && t.v === v;
  }

  private expect(v: string): void {
    if (!this.peek(v)) throw new Error(`expected ${v}`);
    this.pos++;
  }

  private or(): Dnf {
    let d = this.and();
    while (this.peek("||")) {
      this.pos++;
      d = [...d, ...this.and()];
      if (d.length > MAX_TERMS) throw new Error("rule too complex");
    }
    return d;
  }

  private and(): Dnf {
    let d = this.unary();
    while (this.peek("&&")) {
      this.pos++;
      const right = this.unary();
      d = d.flatMap((l) => right.map((r) => [...l, ...r]));
      if (d.length > MAX_TERMS) throw new Error("rule too complex");
    }
    return d;
  }

  private unary(): Dnf {
    if (this.peek("!")) {
      this.pos++;
      this.unary();
      return [[{ kind: "other" }]];
    }
    if (this.peek("(")) {
      this.pos++;
      const d = this.or();
      this.expect(")");
      return d;
    }
    const t = this.tokens[this.pos++];
    if (!t || t.t !== "id") throw new Error("expected a matcher");
    this.expect("(");
    const args: string[] = [];
    while (!this.peek(")")) {
      const a = this.tokens[this.pos++];
      if (!a || a.t !== "str") throw new Error("expected a string argument");
      args.push(a.v);
      if (this.peek(",")) this.pos++;
    }
    this.expect(")");
    if (t.v === "Host") return args.map((v) => [{ kind: "host", value: v }]);
    if (t.v === "PathPrefix" || t.v === "Path") return args.map((v) => [{ kind: "path", value: v }]);
    return [[{ kind: "other" }]];
  }
}
