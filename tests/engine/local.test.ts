// What this proves: the `local` node source (Pulumi.local.yaml) against a real dockerd that is NOT in swarm
// mode, started for this test (a one-host testbed: its own dockerd, data root and network namespace; the shared
// engine on /var/run/docker.sock is not touched).
// - The program runs under mocks with Pulumi.local.yaml (docker.host pointed at that dockerd); its LocalSwarm
//   resource's captured inputs, and its serialized provider (the `__provider` text Pulumi stores, evaluated as
//   the dynamic-provider host does), run against the engine: `swarm init`, the placement labels on the node.
// - With initSwarm false the same inputs fail with the config key named, and the engine stays out of swarm mode.
// - The docker resources of the same run are applied by the engine applier (tests/support/applier.ts): Traefik's
//   stand-in, the registry (Debian's docker-registry), monitoring (real Prometheus and node-exporter, cAdvisor
//   stand-in) and the popcube stack, whose swarmform.local/ images come from `npm run images:local`'s code,
//   reach their replica counts.
// - NodeLabels (source existing) on the same swarm: sets and removes only its own labels; a placement label on
//   no node fails `up` with the label, the config key and how to set it.
// - Destroy (services removed, then LocalSwarm's delete) returns the engine to non-swarm mode; an engine that
//   was a swarm before keeps its swarm and loses only the labels Swarmform set.
// Stand-ins: Traefik, cAdvisor and the popcube images (tests/images/standin), as in platform.test.ts. Traefik
// and Prometheus bind-mount the host's /var/run/docker.sock, which in the testbed is the shared engine's socket:
// so Prometheus' swarm discovery is not checked here (platform.test.ts does, on the shared engine).
import Docker from "dockerode";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { loadClusterSpec, readPulumiStackFile } from "../../components/config/load";
import { nodeLabelsProvider } from "../../components/swarm/nodeLabels";
import type * as ImagesLocal from "../../scripts/images-local";
import { LOCAL_PREFIX } from "../../scripts/images-local";
import {
  apply,
  bindSourcesOf,
  containerSpecOf,
  imagesOf,
  removeAll,
  services,
  standinNeeds,
  waitConverged,
} from "../support/applier";
import type * as Images from "../support/images";
import { CapturedResource, ROOT_DIR, runProgram } from "../support/mocks";
import { loadSerialized } from "../testbed/serialize";
import { startTestbed, Testbed } from "../testbed/testbed";

jest.setTimeout(600_000);

let tb: Testbed;
let d: Docker;
let dockerHost: string;
let resources: readonly CapturedResource[];
let localSwarm: CapturedResource;
let provider: pulumi.dynamic.ResourceProvider;
let inputs: Record<string, unknown>;
let created: { id: string; outs: Record<string, unknown> } | undefined;

async function swarmState(): Promise<{ state: string; nodeId: string; clusterId?: string }> {
  const info = await d.info();
  return { state: info.Swarm.LocalNodeState, nodeId: info.Swarm.NodeID, clusterId: info.Swarm.Cluster?.ID };
}

async function nodeLabels(): Promise<Record<string, string>> {
  const { nodeId } = await swarmState();
  const node = (await d.getNode(nodeId).inspect()) as { Spec: { Labels?: Record<string, string> } };
  return node.Spec.Labels ?? {};
}

beforeAll(async () => {
  tb = await startTestbed({ hosts: 1, name: "local-source" });
  const host = tb.hosts[0];
  dockerHost = `unix://${host.dockerSocket}`;
  d = new Docker({ socketPath: host.dockerSocket });

  const run = await runProgram({ stackFile: "Pulumi.local.yaml", config: { docker: { host: dockerHost } } });
  resources = run.resources;
  localSwarm = resources.find((r) => r.type === "pulumi-nodejs:dynamic/swarm:LocalSwarm")!;
  expect(localSwarm).toBeDefined();
  const { __provider, ...rest } = localSwarm.inputs;
  inputs = rest;
  // The provider as Pulumi stores it (serialized), evaluated as its dynamic-provider process does.
  provider = (loadSerialized(String(__provider)).handler as () => pulumi.dynamic.ResourceProvider)();

  // Images, built straight into the testbed's dockerd (the support code reads DOCKER_HOST when it loads):
  // the popcube ones through images:local's code, the platform ones as platform.test.ts builds them.
  const file = readPulumiStackFile(path.join(ROOT_DIR, "Pulumi.local.yaml"));
  const spec = loadClusterSpec({ project: "swarmform", stack: "local", ...file, rootDir: ROOT_DIR, env: {} });
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = dockerHost;
  try {
    jest.isolateModules(() => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { buildLocalImages } = require("../../scripts/images-local") as typeof ImagesLocal;
      const { buildImagesFor, imageKind } = require("../support/images") as typeof Images;
      /* eslint-enable @typescript-eslint/no-require-imports */
      expect(buildLocalImages(spec).length).toBe(3);
      const platform = imagesOf(resources).filter((i) => !i.startsWith(LOCAL_PREFIX));
      const standins = services(resources).filter((s) => {
        const image = String(containerSpecOf(s).image);
        return !image.startsWith(LOCAL_PREFIX) && imageKind(image) === "standin";
      });
      buildImagesFor(platform, standinNeeds(standins));
    });
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});

/**
 * Bind sources the platform services mount from the node. Traefik and Prometheus mount the node's
 * /var/run/docker.sock: when no engine serves that path on this machine, it is linked to the testbed's own
 * socket for the test (and unlinked after), so they reach the engine of the node they run on. Where an engine
 * does serve it (CI), it is left alone and they reach that engine: Prometheus' discovery is not checked here.
 */
let linkedSocket: string | undefined;
function provideBindSources(): void {
  for (const src of bindSourcesOf(resources)) {
    if (fs.existsSync(src)) continue;
    if (src === "/var/run/docker.sock") {
      fs.symlinkSync(tb.hosts[0].dockerSocket, src);
      linkedSocket = src;
    } else {
      // e.g. /dev/disk (cAdvisor) exists on any host with udev, but not in a CI container.
      console.warn(`creating bind mount source ${src}, missing on this host`);
      fs.mkdirSync(src, { recursive: true });
    }
  }
}

afterAll(async () => {
  if (linkedSocket) {
    const st = fs.lstatSync(linkedSocket, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() && fs.readlinkSync(linkedSocket) === tb.hosts[0].dockerSocket)
      fs.unlinkSync(linkedSocket);
  }
  if (d && resources) await removeAll(d, resources).catch(() => undefined);
  if (tb) await tb.down();
});

test("the local stack registers a LocalSwarm with swarm init allowed and the placement labels", () => {
  expect(inputs).toEqual(
    expect.objectContaining({
      dockerHost,
      initSwarm: true,
      labels: { "swarmform.traefik": "true", "swarmform.registry": "true" },
    }),
  );
  // Every docker resource waits for it.
  const dockerProvider = resources.find((r) => r.type === "pulumi:providers:docker")!;
  expect(dockerProvider.dependencies).toContain(localSwarm.urn);
});

test("an engine outside swarm mode with initSwarm false: an error naming the key, and no swarm", async () => {
  expect((await swarmState()).state).toBe("inactive");
  await expect(provider.create!({ ...inputs, initSwarm: false })).rejects.toThrow(
    /is not in swarm mode\. Set swarmform:nodes\.local\.initSwarm: true in Pulumi\.local\.yaml/,
  );
  expect((await swarmState()).state).toBe("inactive");
});

test("the program's inputs form a one-node swarm and label its node", async () => {
  created = (await provider.create!(inputs)) as { id: string; outs: Record<string, unknown> };
  const now = await swarmState();
  expect(now.state).toBe("active");
  expect(created.outs).toEqual(
    expect.objectContaining({ initialised: true, nodeId: now.nodeId, swarmId: now.clusterId }),
  );
  expect(await nodeLabels()).toEqual({ "swarmform.traefik": "true", "swarmform.registry": "true" });
  // A second run (read, diff) changes nothing.
  const read = await provider.read!(created.id, created.outs);
  const diff = await provider.diff!(created.id, read.props, inputs);
  expect(diff.changes).toBe(false);
});

test("NodeLabels (source existing) sets and removes its labels, and fails at up when a placement label is on no node", async () => {
  const { nodeId } = await swarmState();
  const hostname = ((await d.getNode(nodeId).inspect()) as { Description: { Hostname: string } }).Description
    .Hostname;
  const traefik = { key: "traefik.placementLabel", label: "swarmform.traefik=true", managerOnly: true };
  const first = { dockerHost, nodes: { [hostname]: { zone: "a" } }, required: [traefik], stack: "local" };
  const r = await nodeLabelsProvider.create!(first);
  expect(await nodeLabels()).toEqual(expect.objectContaining({ zone: "a", "swarmform.traefik": "true" }));
  const second = { ...first, nodes: { [hostname]: { zone: "b" } } };
  await nodeLabelsProvider.update!(r.id, r.outs, second);
  expect((await nodeLabels()).zone).toBe("b");
  await nodeLabelsProvider.delete!(r.id, second);
  expect(await nodeLabels()).toEqual({ "swarmform.traefik": "true", "swarmform.registry": "true" });

  const edge = { key: "traefik.placementLabel", label: "swarmform.edge=true", managerOnly: true };
  await expect(nodeLabelsProvider.create!({ ...first, nodes: {}, required: [edge] })).rejects.toThrow(
    `no manager of the swarm at ${dockerHost} carries the node label swarmform.edge=true (swarmform:traefik.placementLabel), ` +
      `so Traefik would stay pending. Label one manager (${hostname}) in Pulumi.local.yaml`,
  );
  await expect(nodeLabelsProvider.create!({ ...first, nodes: { nosuchnode: { a: "b" } } })).rejects.toThrow(
    `swarm node "nosuchnode" (swarmform:nodes.labels) is not in the swarm at ${dockerHost}; its nodes are: ${hostname}`,
  );
});

test("Traefik's stand-in, the registry, monitoring and the popcube services reach their replica counts", async () => {
  provideBindSources();
  const applied = await apply(d, resources);
  const names = applied.services.map((s) => s.name);
  expect(names).toEqual(expect.arrayContaining(["swarmform-local_traefik", "swarmform-local_registry"]));
  expect(names.filter((n) => n.startsWith("maxime_")).sort()).toEqual([
    "maxime_api",
    "maxime_database",
    "maxime_website",
  ]);
  await waitConverged(d, names, 400_000);
  for (const s of services(resources)) {
    const name = String(s.inputs.name);
    const mode = s.inputs.mode as { global?: boolean; replicated?: { replicas?: number } } | undefined;
    const running = (
      (await d.listTasks({ filters: { service: [name], "desired-state": ["running"] } })) as {
        Status: { State: string };
      }[]
    ).filter((t) => t.Status.State === "running").length;
    expect({ name, running }).toEqual({
      name,
      running: mode?.global ? 1 : (mode?.replicated?.replicas ?? 1),
    });
  }
  const api = (await d.getService("maxime_api").inspect()) as {
    Spec: { TaskTemplate: { ContainerSpec: { Image: string } } };
  };
  expect(api.Spec.TaskTemplate.ContainerSpec.Image).toMatch(/^swarmform\.local\/popcubeapi:/);
});

test("destroy returns the engine to non-swarm mode", async () => {
  await removeAll(d, resources);
  await provider.delete!(created!.id, created!.outs);
  expect((await swarmState()).state).toBe("inactive");
});

test("an engine that already was a swarm manager keeps its swarm; only Swarmform's labels go on destroy", async () => {
  await d.swarmInit({ ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1" });
  const before = await swarmState();
  const node = d.getNode(before.nodeId);
  const spec = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  await node.update({ version: spec.Version.Index, ...spec.Spec, Labels: { mine: "1" } });
  try {
    const r = (await provider.create!(inputs)) as { id: string; outs: Record<string, unknown> };
    expect(r.outs.initialised).toBe(false);
    expect(await nodeLabels()).toEqual({
      mine: "1",
      "swarmform.traefik": "true",
      "swarmform.registry": "true",
    });
    await provider.delete!(r.id, r.outs);
    expect(await swarmState()).toEqual(before);
    expect(await nodeLabels()).toEqual({ mine: "1" });
  } finally {
    await d.swarmLeave({ force: true });
  }
});
