// Typed builders for Traefik v3 swarm-provider labels. Every key emitted here is checked against
// Traefik's own label reference (tests/unit/traefikLabels.test.ts). Values go to the Docker API as
// they are: no `$$` escaping is needed (that is only for compose files).
import { TraefikRouteSpec } from "./types";

/** Service labels, key -> value. */
export type Labels = Record<string, string>;

/** Input of {@link buildTraefikLabels}. */
export interface TraefikRouterInput {
  /** Router name, also used as the Traefik service name; by convention `<stack>-<key>`. */
  readonly router: string;
  readonly route: TraefikRouteSpec;
  /** Physical name of the overlay network Traefik reaches the service on. */
  readonly network: string;
  /** Entrypoint name, e.g. `websecure`. */
  readonly entrypoint: string;
  /** ACME resolver name, set as `tls.certresolver` when the route uses TLS. Default: none. */
  readonly certResolver?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Router (and Traefik service) name of a stack service: `<stack>-<key>`, with other characters as `-`. */
export function routerNameOf(stack: string, key: string): string {
  return `${stack}-${key}`.replace(/[^A-Za-z0-9_-]/g, "-");
}

/** Throws unless `name` is a valid Traefik router/service/middleware name (no dots, no `@`). */
function checkName(kind: string, name: string): void {
  if (!NAME.test(name))
    throw new Error(`invalid Traefik ${kind} name "${name}": use letters, digits, - and _`);
}

/** A Traefik rule matcher argument, in backticks. */
function quoteRuleArg(value: string): string {
  if (value.includes("`")) throw new Error(`a Traefik rule argument cannot contain a backtick: ${value}`);
  return "`" + value + "`";
}

/** `Host(`a`) || Host(`b`)`, combined with `&& PathPrefix(`/p`)` when a path is given. */
export function buildRule(hosts: readonly string[], path?: string): string {
  if (hosts.length === 0) throw new Error("a Traefik route needs at least one host");
  const hostRule = hosts.map((h) => `Host(${quoteRuleArg(h)})`).join(" || ");
  if (path === undefined || path === "" || path === "/") return hostRule;
  return `${hosts.length > 1 ? `(${hostRule})` : hostRule} && PathPrefix(${quoteRuleArg(path)})`;
}

/** `traefik.enable=true` and `traefik.swarm.network=<network>`. */
export function enableLabels(network: string): Labels {
  return { "traefik.enable": "true", "traefik.swarm.network": network };
}

/** The router labels (rule, entrypoints, service, TLS, middlewares) for one router. */
export function routerLabels(input: {
  readonly router: string;
  readonly rule: string;
  readonly entrypoint: string;
  readonly service: string;
  readonly tls: boolean;
  readonly certResolver?: string;
  readonly middlewares?: readonly string[];
}): Labels {
  checkName("router", input.router);
  const p = `traefik.http.routers.${input.router}`;
  const labels: Labels = {
    [`${p}.rule`]: input.rule,
    [`${p}.entrypoints`]: input.entrypoint,
    [`${p}.service`]: input.service,
  };
  if (input.tls) {
    labels[`${p}.tls`] = "true";
    if (input.certResolver) labels[`${p}.tls.certresolver`] = input.certResolver;
  }
  if (input.middlewares && input.middlewares.length > 0)
    labels[`${p}.middlewares`] = input.middlewares.join(",");
  return labels;
}

/** `traefik.http.services.<service>.loadbalancer.server.port=<port>`. */
export function servicePortLabels(service: string, port: number): Labels {
  checkName("service", service);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}: 1-65535`);
  return { [`traefik.http.services.${service}.loadbalancer.server.port`]: String(port) };
}

/**
 * All labels for one routed service: enable + network, one router named `router` and a Traefik
 * service of the same name on `route.port`.
 */
export function buildTraefikLabels(input: TraefikRouterInput): Labels {
  const { router, route } = input;
  return {
    ...enableLabels(input.network),
    ...routerLabels({
      router,
      rule: buildRule(route.hosts, route.path),
      entrypoint: input.entrypoint,
      service: router,
      tls: route.tls,
      certResolver: input.certResolver,
      middlewares: route.middlewares,
    }),
    ...servicePortLabels(router, route.port),
  };
}

/**
 * A basic-auth middleware: `traefik.http.middlewares.<name>.basicauth.users=<user:hash,...>`.
 * `users` are htpasswd lines (`user:$2y$...`), passed unescaped.
 */
export function basicAuthMiddlewareLabels(name: string, users: readonly string[]): Labels {
  checkName("middleware", name);
  if (users.length === 0) throw new Error("a basic-auth middleware needs at least one user");
  for (const u of users) {
    if (!/^[^:,\s]+:\S+$/.test(u) || u.includes(","))
      throw new Error("basic-auth users must be `user:hash` lines");
  }
  return { [`traefik.http.middlewares.${name}.basicauth.users`]: users.join(",") };
}

/** A router to Traefik's own API/dashboard (`service=api@internal`), e.g. for the dashboard host. */
export function apiRouterLabels(input: {
  readonly router: string;
  readonly hosts: readonly string[];
  readonly entrypoint: string;
  readonly certResolver?: string;
  readonly middlewares?: readonly string[];
  /** Default true. */
  readonly tls?: boolean;
}): Labels {
  return routerLabels({
    router: input.router,
    rule: buildRule(input.hosts),
    entrypoint: input.entrypoint,
    service: "api@internal",
    tls: input.tls ?? true,
    certResolver: input.certResolver,
    middlewares: input.middlewares,
  });
}
