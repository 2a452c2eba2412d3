import {
  apiRouterLabels,
  basicAuthMiddlewareLabels,
  buildRule,
  buildTraefikLabels,
  routerNameOf,
} from "../../components/config/traefikLabels";
import { traefikLabelKeys } from "../support/oracles";

/** Replaces the user-chosen name after routers/services/middlewares by a placeholder. */
function normalise(key: string): string {
  return key
    .replace(/^traefik\.http\.routers\.[^.]+\./, "traefik.http.routers.<router>.")
    .replace(/^traefik\.http\.services\.[^.]+\./, "traefik.http.services.<service>.")
    .replace(/^traefik\.http\.middlewares\.[^.]+\./, "traefik.http.middlewares.<middleware>.");
}

const keys = traefikLabelKeys();
const known = new Set(keys.map(normalise));

/** Everything the builders can emit: TLS with resolver, path, several hosts, middlewares, basic auth, api router. */
function everyLabel(): Record<string, string> {
  return {
    ...buildTraefikLabels({
      router: "popcube-api",
      route: {
        hosts: ["api.example.com", "api2.example.com"],
        path: "/v1",
        port: 3000,
        middlewares: ["auth", "ratelimit"],
        tls: true,
      },
      network: "proj-dev_public",
      entrypoint: "websecure",
      certResolver: "letsencrypt",
    }),
    ...basicAuthMiddlewareLabels("dashboard-auth", ["admin:$2y$05$abcdefghijklmnopqrstuv"]),
    ...apiRouterLabels({
      router: "dashboard",
      hosts: ["traefik.example.com"],
      entrypoint: "websecure",
      certResolver: "letsencrypt",
      middlewares: ["dashboard-auth"],
    }),
  };
}

describe("Traefik's label keys (tests/fixtures/oracles/traefik-labels.json)", () => {
  it("were read and hold the keys the normalisation relies on", () => {
    expect(keys.length).toBeGreaterThan(200);
    expect(keys).toEqual(expect.arrayContaining(["traefik.enable", "traefik.swarm.network"]));
    expect(known.has("traefik.http.routers.<router>.rule")).toBe(true);
    // the normalisation must not make an unknown key look known
    expect(known.has(normalise("traefik.http.routers.r.tls.certresolverx"))).toBe(false);
  });
});

describe("every label the builders emit is a Traefik v3 swarm label", () => {
  const labels = everyLabel();
  it.each(Object.keys(labels))("%s", (key) => {
    expect(known.has(normalise(key))).toBe(true);
  });
  it("covers every kind of label the builders know", () => {
    const kinds = new Set(Object.keys(labels).map(normalise));
    for (const k of [
      "traefik.enable",
      "traefik.swarm.network",
      "traefik.http.routers.<router>.rule",
      "traefik.http.routers.<router>.entrypoints",
      "traefik.http.routers.<router>.service",
      "traefik.http.routers.<router>.tls",
      "traefik.http.routers.<router>.tls.certresolver",
      "traefik.http.routers.<router>.middlewares",
      "traefik.http.services.<service>.loadbalancer.server.port",
      "traefik.http.middlewares.<middleware>.basicauth.users",
    ])
      expect(kinds).toContain(k);
  });
});

describe("buildTraefikLabels", () => {
  it("builds the router, service and network labels", () => {
    expect(
      buildTraefikLabels({
        router: "popcube-api",
        route: { hosts: ["api.dev.popcube.xyz"], port: 3000, middlewares: [], tls: true },
        network: "swarmform-dev_public",
        entrypoint: "websecure",
        certResolver: "letsencrypt",
      }),
    ).toEqual({
      "traefik.enable": "true",
      "traefik.swarm.network": "swarmform-dev_public",
      "traefik.http.routers.popcube-api.rule": "Host(`api.dev.popcube.xyz`)",
      "traefik.http.routers.popcube-api.entrypoints": "websecure",
      "traefik.http.routers.popcube-api.service": "popcube-api",
      "traefik.http.routers.popcube-api.tls": "true",
      "traefik.http.routers.popcube-api.tls.certresolver": "letsencrypt",
      "traefik.http.services.popcube-api.loadbalancer.server.port": "3000",
    });
  });

  it("leaves TLS labels out when tls is false, and joins middlewares with commas", () => {
    const l = buildTraefikLabels({
      router: "r",
      route: { hosts: ["a.test"], port: 80, middlewares: ["m1", "m2@swarm"], tls: false },
      network: "n",
      entrypoint: "web",
      certResolver: "le",
    });
    expect(Object.keys(l).filter((k) => k.includes(".tls"))).toEqual([]);
    expect(l["traefik.http.routers.r.middlewares"]).toBe("m1,m2@swarm");
    expect(l["traefik.http.routers.r.entrypoints"]).toBe("web");
  });

  it("refuses a bad port or router name", () => {
    const route = { hosts: ["a.test"], port: 0, middlewares: [], tls: true };
    expect(() => buildTraefikLabels({ router: "r", route, network: "n", entrypoint: "e" })).toThrow(/port/);
    expect(() =>
      buildTraefikLabels({ router: "a.b", route: { ...route, port: 80 }, network: "n", entrypoint: "e" }),
    ).toThrow(/router name/);
  });
});

describe("buildRule", () => {
  it("joins hosts with || and adds PathPrefix with &&", () => {
    expect(buildRule(["a.test"])).toBe("Host(`a.test`)");
    expect(buildRule(["a.test", "b.test"])).toBe("Host(`a.test`) || Host(`b.test`)");
    expect(buildRule(["a.test"], "/p")).toBe("Host(`a.test`) && PathPrefix(`/p`)");
    expect(buildRule(["a.test", "b.test"], "/p")).toBe(
      "(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/p`)",
    );
  });
  it("needs a host", () => {
    expect(() => buildRule([])).toThrow();
  });
});

describe("small builders", () => {
  it("basic auth joins users, unescaped", () => {
    expect(basicAuthMiddlewareLabels("auth", ["a:$apr1$x$y", "b:$2y$05$z"])).toEqual({
      "traefik.http.middlewares.auth.basicauth.users": "a:$apr1$x$y,b:$2y$05$z",
    });
    expect(() => basicAuthMiddlewareLabels("auth", ["nocolon"])).toThrow();
  });
  it("the api router targets api@internal", () => {
    const l = apiRouterLabels({ router: "dashboard", hosts: ["t.test"], entrypoint: "websecure" });
    expect(l["traefik.http.routers.dashboard.service"]).toBe("api@internal");
    expect(l["traefik.http.routers.dashboard.tls"]).toBe("true");
    expect(l["traefik.http.routers.dashboard.tls.certresolver"]).toBeUndefined();
  });
  it("router names are <stack>-<key>", () => {
    expect(routerNameOf("maxime", "api")).toBe("maxime-api");
    expect(routerNameOf("s", "a.b")).toBe("s-a-b");
  });
});
