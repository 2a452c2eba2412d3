// The `local` node source, node labels for `existing`, traefik.tls, and the placement checks: config keys and
// their errors (pure), the label plan, and the messages that say how to fix a missing placement label.
import * as path from "path";
import { clusterSummary, localNodeLabels } from "../../components/cluster/SwarmCluster";
import { parseClusterConfig, resolvePlatform } from "../../components/config/clusterConfig";
import { formatIssue } from "../../components/config/errors";
import { loadClusterSpec, readPulumiStackFile } from "../../components/config/load";
import { checkPlacementLabels } from "../../components/config/rules";
import { ClusterSpec } from "../../components/config/types";
import { localTeardown, missingPlacements, ownedLabelChanges } from "../../components/swarm/labelPlan";
import { traefikArgs, traefikService } from "../../components/workloads/platform";

const ROOT = path.join(__dirname, "..", "..");

const base = (extra: Record<string, unknown> = {}) => ({
  environment: "dev",
  domain: "popcube.xyz",
  traefik: { acme: { email: "ops@popcube.xyz" } },
  ...extra,
});

/** Every issue of parsing and resolving `raw`, as printed lines. */
function issuesOf(raw: Record<string, unknown>): string[] {
  const parsed = parseClusterConfig(raw);
  if (!parsed.config) return parsed.issues.map(formatIssue);
  return resolvePlatform(parsed.config, { project: "swarmform", stack: "t" }).issues.map(formatIssue);
}

function specOf(raw: Record<string, unknown>): ClusterSpec {
  return loadClusterSpec({ project: "swarmform", stack: "t", config: raw, secretKeys: [], rootDir: ROOT });
}

describe("nodes.source local", () => {
  it("defaults: no swarm init, docker.host the local socket, one manager", () => {
    const spec = specOf(base({ nodes: { source: "local" } }));
    expect(spec.nodes.local).toEqual({ initSwarm: false, labels: {} });
    expect(spec.docker.host).toBe("unix:///var/run/docker.sock");
    expect([spec.nodes.managers, spec.nodes.workers]).toEqual([1, 0]);
  });

  it("rejects bad values and keys of other sources, naming the key", () => {
    expect(issuesOf(base({ nodes: { source: "local", local: { initSwarm: "yes" } } }))).toEqual([
      'swarmform:nodes.local.initSwarm: must be true or false; got "yes"',
    ]);
    expect(issuesOf(base({ nodes: { source: "local", local: { advertiseAddr: "eth0" } } }))).toEqual([
      'swarmform:nodes.local.advertiseAddr: must be an IPv4 address, e.g. 127.0.0.1; got "eth0"',
    ]);
    expect(issuesOf(base({ nodes: { source: "local", local: { workers: 2 } } }))).toEqual([
      "swarmform:nodes.local.workers: unknown key; allowed keys here: initSwarm, advertiseAddr, labels",
    ]);
    expect(issuesOf(base({ nodes: { source: "lokal" } }))).toEqual([
      'swarmform:nodes.source: must be existing, ssh, libvirt or local; got "lokal"',
    ]);
    expect(
      issuesOf(
        base({
          nodes: {
            source: "local",
            managers: { count: 3 },
            workers: { count: 1 },
            labels: { n1: { a: "b" } },
          },
        }),
      ),
    ).toEqual([
      "swarmform:nodes.labels: is for nodes.source existing; with local, set node labels in nodes.local.labels",
      "swarmform:nodes.managers.count: must be 1 when nodes.source is local (the local engine); got 3",
      "swarmform:nodes.workers.count: must be 0 when nodes.source is local (extra Docker-in-Docker nodes are not supported yet); got 1",
    ]);
  });

  it("labels the local node with the placement labels, then nodes.local.labels", () => {
    const spec = specOf(base({ nodes: { source: "local", local: { labels: { zone: "a" } } } }));
    expect(localNodeLabels(spec)).toEqual({
      "swarmform.traefik": "true",
      "swarmform.registry": "true",
      zone: "a",
    });
    const noRegistry = specOf(base({ nodes: { source: "local" }, registry: { enabled: false } }));
    expect(localNodeLabels(noRegistry)).toEqual({ "swarmform.traefik": "true" });
  });

  it("Pulumi.local.yaml: local source with swarm init, default TLS, images built locally", () => {
    const file = readPulumiStackFile(path.join(ROOT, "Pulumi.local.yaml"));
    const spec = loadClusterSpec({
      project: "swarmform",
      stack: "local",
      ...file,
      rootDir: ROOT,
      env: {},
    });
    expect(spec.nodes.source).toBe("local");
    expect(spec.nodes.local.initSwarm).toBe(true);
    expect(spec.traefik.tls).toBe("default");
    const images = spec.stacks.flatMap((s) => s.services.map((x) => x.image));
    expect(images.length).toBeGreaterThan(0);
    expect(images.every((i) => i.startsWith("swarmform.local/"))).toBe(true);
  });
});

describe("nodes.labels (source existing)", () => {
  const existing = (labels: unknown) =>
    base({ docker: { host: "unix:///var/run/docker.sock" }, nodes: { labels } });

  it("takes labels by node name and rejects bad shapes naming the key", () => {
    expect(
      specOf(existing({ "sw-01": { "swarmform.traefik": true, "swarmform.registry": "true" } })).nodes.labels,
    ).toEqual({ "sw-01": { "swarmform.traefik": "true", "swarmform.registry": "true" } });
    expect(issuesOf(existing(["sw-01"]))).toEqual([
      "swarmform:nodes.labels: must be a map of node name to { label: value }",
    ]);
    expect(issuesOf(base({ nodes: { source: "ssh", labels: { a: { b: "c" } } } }))).toContain(
      "swarmform:nodes.labels: is for nodes.source existing; with ssh, set node labels in nodes.hosts[].labels",
    );
  });

  it("a placement label on no listed node is an error at validate time, naming the config key", () => {
    expect(
      checkPlacementLabels(
        specOf(existing({ "sw-01": { "swarmform.traefik": "true", "swarmform.registry": "true" } })),
      ),
    ).toEqual([]);
    expect(() => specOf(existing({ "sw-01": { "swarmform.traefik": "true" } }))).toThrow(
      'swarmform:registry.storageLabel: no node in nodes.labels carries the node label swarmform.registry=true; add it to one node, e.g. nodes.labels: { <node>: { swarmform.registry: "true" } }',
    );
    // Nothing listed: only the swarm knows; checked at `up` (NodeLabels' create).
    expect(checkPlacementLabels(specOf(existing({})))).toEqual([]);
  });
});

describe("traefik.tls", () => {
  it("is default (Traefik's self-signed certificate) on local, acme elsewhere; acme needs its e-mail", () => {
    const local = specOf({ environment: "local", domain: "popcube.localhost", nodes: { source: "local" } });
    expect(local.traefik.tls).toBe("default");
    expect(traefikArgs(local).some((a) => a.includes("certificatesresolvers"))).toBe(false);
    const labels = traefikService({
      ...local,
      traefik: { ...local.traefik, dashboard: { ...local.traefik.dashboard, enabled: true } },
    }).labels;
    expect(Object.keys(labels).some((k) => k.endsWith(".tls.certresolver"))).toBe(false);
    expect(Object.entries(labels).some(([k, v]) => k.endsWith(".tls") && v === "true")).toBe(true);

    expect(issuesOf({ environment: "dev", domain: "popcube.xyz", docker: { host: "unix:///x" } })).toEqual([
      "swarmform:traefik.acme.email: is required when traefik.tls is acme (the default outside local): the ACME account e-mail, e.g. ops@popcube.xyz; or set traefik.tls: default for Traefik's default self-signed certificate",
    ]);
    expect(issuesOf(base({ docker: { host: "unix:///x" }, traefik: { tls: "selfsigned" } }))).toEqual([
      'swarmform:traefik.tls: must be acme (certificates from an ACME CA) or default (Traefik\'s default self-signed certificate); got "selfsigned"',
    ]);
    const acme = specOf(base({ docker: { host: "unix:///x" } }));
    expect(acme.traefik.tls).toBe("acme");
    expect(traefikArgs(acme)).toContain("--certificatesresolvers.letsencrypt.acme.tlschallenge=true");
  });
});

describe("label plan and placement messages (pure)", () => {
  it("adds wanted labels, removes only labels it set that still have its value, leaves others alone", () => {
    expect(
      ownedLabelChanges(
        { keep: "x", old: "1", changed: "theirs", same: "v" },
        { same: "v", new: "2" },
        { old: "1", changed: "mine", same: "v" },
      ),
    ).toEqual({ add: [["new", "2"]], rm: ["old"] });
    expect(ownedLabelChanges({ a: "1" }, {}, {})).toEqual({ add: [], rm: [] });
  });

  it("names the label, its config key, the candidates and both ways to set it", () => {
    const nodes: { hostname: string; role: "manager" | "worker"; labels: Record<string, string> }[] = [
      { hostname: "m1", role: "manager", labels: {} },
      { hostname: "w1", role: "worker", labels: { "swarmform.traefik": "true" } },
    ];
    const required = [
      { key: "traefik.placementLabel", label: "swarmform.traefik=true", managerOnly: true },
      { key: "registry.storageLabel", label: "swarmform.registry=true", managerOnly: false },
    ];
    expect(missingPlacements(nodes, required, "the swarm at unix:///s", "dev")).toEqual([
      'no manager of the swarm at unix:///s carries the node label swarmform.traefik=true (swarmform:traefik.placementLabel), so Traefik would stay pending. Label one manager (m1) in Pulumi.dev.yaml: swarmform:nodes: { labels: { <node>: { swarmform.traefik: "true" } } }, or by hand: docker node update --label-add swarmform.traefik=true <node>',
      'no node of the swarm at unix:///s carries the node label swarmform.registry=true (swarmform:registry.storageLabel), so the registry would stay pending. Label one node (m1, w1) in Pulumi.dev.yaml: swarmform:nodes: { labels: { <node>: { swarmform.registry: "true" } } }, or by hand: docker node update --label-add swarmform.registry=true <node>',
    ]);
    const ok = [
      {
        hostname: "m1",
        role: "manager" as const,
        labels: { "swarmform.traefik": "true", "swarmform.registry": "true" },
      },
    ];
    expect(missingPlacements(ok, required, "x")).toEqual([]);
  });

  it("destroy leaves a swarm only if Swarmform initialised it, and that swarm is still there", () => {
    const s = { swarmId: "S", currentSwarmId: "S", localNodeState: "active" };
    expect(localTeardown({ ...s, initialised: true })).toBe("leave");
    expect(localTeardown({ ...s, initialised: false })).toBe("remove-labels");
    expect(localTeardown({ ...s, initialised: true, currentSwarmId: "OTHER" })).toBe("remove-labels");
    expect(localTeardown({ ...s, initialised: true, localNodeState: "inactive" })).toBe("nothing");
  });
});

describe("summary output", () => {
  it("says where Traefik, the dashboard, the registry and Prometheus are", () => {
    const file = readPulumiStackFile(path.join(ROOT, "Pulumi.local.yaml"));
    const spec = loadClusterSpec({ project: "swarmform", stack: "local", ...file, rootDir: ROOT, env: {} });
    const text = clusterSummary(spec);
    expect(text).toContain("Traefik:    https://popcube.localhost");
    expect(text).toContain("dashboard:  https://traefik.popcube.localhost/dashboard/");
    expect(text).toContain("registry:   registry.popcube.localhost:5000");
    expect(text).toContain("Prometheus: https://prometheus.popcube.localhost");
    expect(text).toContain("self-signed");
  });
});
