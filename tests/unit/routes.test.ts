import * as path from "path";
import { parseStackFile, parseStackText } from "../../components/config/compose";
import { hostPathsOfRule, routesOf } from "../../components/config/routes";
import { ServiceSpec } from "../../components/config/types";

const platform = { publicNetwork: "pub", entrypoint: "websecure", certResolver: "le" };

function service(labels: Record<string, string>, traefik?: ServiceSpec["traefik"]): ServiceSpec {
  const r = parseStackText("services:\n  web:\n    image: nginx:1\n", { file: "/s/app.yaml", vars: {} });
  const s = r.stack!.services[0];
  return { ...s, labels: { ...s.labels, ...labels }, ...(traefik ? { traefik } : {}) };
}

describe("hostPathsOfRule", () => {
  it.each([
    ["Host(`a.test`)", [{ host: "a.test", path: "/" }]],
    ["Host(`A.Test`)", [{ host: "a.test", path: "/" }]],
    ['Host("a.test")', [{ host: "a.test", path: "/" }]],
    [
      "Host(`a.test`, `b.test`)",
      [
        { host: "a.test", path: "/" },
        { host: "b.test", path: "/" },
      ],
    ],
    [
      "Host(`a.test`) || Host(`b.test`)",
      [
        { host: "a.test", path: "/" },
        { host: "b.test", path: "/" },
      ],
    ],
    ["Host(`a.test`) && PathPrefix(`/api`)", [{ host: "a.test", path: "/api" }]],
    ["PathPrefix(`/api`) && Host(`a.test`)", [{ host: "a.test", path: "/api" }]],
    [
      "(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/p`)",
      [
        { host: "a.test", path: "/p" },
        { host: "b.test", path: "/p" },
      ],
    ],
    [
      "Host(`a.test`) && (PathPrefix(`/x`) || Path(`/y`))",
      [
        { host: "a.test", path: "/x" },
        { host: "a.test", path: "/y" },
      ],
    ],
    ["Host(`a.test`) && Method(`GET`)", [{ host: "a.test", path: "/" }]],
    ["Host(`a.test`) && !PathPrefix(`/admin`)", [{ host: "a.test", path: "/" }]],
    ["PathPrefix(`/only`)", []],
    ["Host(`a.test`) && Host(`b.test`)", []],
  ])("%s", (rule, expected) => {
    expect(hostPathsOfRule(rule)).toEqual(expected);
  });
  it.each(["Host(`a", "Host(`a`) ||", "Host(a)", "Host(`a`) Host(`b`)"])("cannot parse %s", (rule) => {
    expect(hostPathsOfRule(rule)).toBeUndefined();
  });
});

describe("routesOf", () => {
  it("routes of x-traefik (every host, path default /)", () => {
    const s = service({}, { hosts: ["a.test", "B.test"], port: 80, middlewares: [], tls: true });
    expect(routesOf(s)).toEqual([
      { host: "a.test", path: "/", router: "app-web" },
      { host: "b.test", path: "/", router: "app-web" },
    ]);
  });
  it("routes of raw router rule labels, one per router", () => {
    const s = service({
      "traefik.enable": "true",
      "traefik.http.routers.one.rule": "Host(`one.test`) && PathPrefix(`/v1`)",
      "traefik.http.routers.two.rule": "Host(`two.test`)",
      "traefik.http.routers.two.entrypoints": "websecure",
    });
    expect(routesOf(s)).toEqual([
      { host: "one.test", path: "/v1", router: "one" },
      { host: "two.test", path: "/", router: "two" },
    ]);
  });
  it("x-traefik expanded into labels is not counted twice", () => {
    const r = parseStackText(
      "services:\n  web:\n    image: nginx:1\n    x-traefik:\n      host: a.test\n      path: /p\n      port: 80\n",
      { file: "/s/app.yaml", vars: {}, platform },
    );
    expect(routesOf(r.stack!.services[0])).toEqual([{ host: "a.test", path: "/p", router: "app-web" }]);
  });
  it("traefik.enable=false disables label routes", () => {
    expect(
      routesOf(service({ "traefik.enable": "false", "traefik.http.routers.x.rule": "Host(`x.test`)" })),
    ).toEqual([]);
  });
  it("a stack in the shape of the Traefik-on-swarm examples routes its dashboard and its app", () => {
    const file = path.resolve(__dirname, "../fixtures/stacks/shapes/edge-proxy.yaml");
    const stack = parseStackFile(file, { vars: {}, stackName: "edge" }).stack!;
    expect(stack.services.flatMap(routesOf)).toEqual([
      { host: "panel.edge.localhost", path: "/", router: "panel" },
      { host: "hello.edge.localhost", path: "/", router: "hello" },
    ]);
  });
  it("popcube routes api and www", () => {
    const stack = parseStackFile(path.resolve(__dirname, "../../stacks/popcube.yaml"), {
      vars: {},
      platform,
    }).stack!;
    expect(stack.services.flatMap(routesOf)).toEqual([
      { host: "api.dev.popcube.xyz", path: "/", router: "maxime-api" },
      { host: "www.dev.popcube.xyz", path: "/", router: "maxime-website" },
    ]);
  });
});
