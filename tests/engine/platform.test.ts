// What this proves (on the real dockerd, swarm mode, one node): the `dev` stack's docker resources, exactly as
// the program registers them (captured by a mock run of index.ts with Pulumi.dev.yaml), work on a real engine.
// Applied through the Engine API (tests/support/applier.ts), every service reaches its desired running tasks
// (replicated: N; global: one per node), and the engine reports the program's service labels (Traefik labels
// and com.docker.stack.namespace included) and container labels; configs and secrets are mounted with the
// program's content; tasks are attached to the program's networks and `tasks.<service>` DNS answers with them;
// host-mode published ports answer on the host; Prometheus (real) discovers the swarm with the program's config.
//
// Real vs stand-in:
// - registry: Debian's docker-registry (distribution 2.8.2) as `registry:2.8.3`.
// - prometheus, node-exporter: Debian's binaries (prometheus 2.42, node_exporter 1.5) under the program's tags.
// - STAND-IN (busybox, tests/images/standin): Traefik (not packaged anywhere reachable: its labels are checked
//   against Traefik's own reference in tests/unit), cAdvisor, and the application images (api, database,
//   website) that live in a private registry. The stand-in stays up whatever it is asked to run, serves HTTP
//   on the ports the services' healthchecks and Traefik labels name, and answers healthcheck commands such as
//   `mysqladmin ping`. It proves scheduling, labels, mounts, networks and ports, not the application itself.
import Docker from "dockerode";
import * as net from "net";
import { existsSync, mkdirSync } from "fs";
import {
  apply,
  Applied,
  bindSourcesOf,
  CapturedLike,
  constraintsOf,
  containerSpecOf,
  hostPortsOf,
  imagesOf,
  labelsOf,
  removeAll,
  services,
  standinNeeds,
  TYPES,
  waitConverged,
} from "../support/applier";
import { dockerCli, labelNodeFor, requireSwarm, waitFor } from "../support/dockerd";
import { buildImagesFor, imageKind } from "../support/images";
import { runProgram, TEST_SSH_PRIVATE_KEY } from "../support/mocks";

jest.setTimeout(300_000);

let docker: Docker;
let resources: readonly CapturedLike[];
let applied: Applied;
let svcs: CapturedLike[];

/** Fails (instead of letting a task wait forever) when a host-mode port is already taken on this host. */
async function requirePortFree(port: number, service: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", (e) =>
      reject(
        new Error(`port ${port} is in use on this host; ${service} publishes it in host mode (${e.message})`),
      ),
    );
    srv.listen(port, "0.0.0.0", () => srv.close(() => resolve()));
  });
}

/** Fails early when this one node cannot hold the CPU/memory the services reserve (tasks would stay pending). */
async function requireReservations(): Promise<void> {
  const info = await docker.info();
  let cpus = 0;
  let mem = 0;
  for (const s of svcs) {
    const mode = s.inputs.mode as { global?: boolean; replicated?: { replicas?: number } } | undefined;
    const n = mode?.global ? 1 : (mode?.replicated?.replicas ?? 1);
    const r = (
      s.inputs.taskSpec as { resources?: { reservation?: { nanoCpus?: number; memoryBytes?: number } } }
    ).resources?.reservation;
    cpus += n * (r?.nanoCpus ?? 0);
    mem += n * (r?.memoryBytes ?? 0);
  }
  if (cpus > info.NCPU * 1e9 || mem > info.MemTotal) {
    throw new Error(
      `the dev stack reserves ${cpus / 1e9} CPUs and ${Math.round(mem / 2 ** 20)} MiB; this node has ` +
        `${info.NCPU} CPUs and ${Math.round(info.MemTotal / 2 ** 20)} MiB: run the engine tests on a bigger machine`,
    );
  }
}

/** One running container of a service on this node. */
async function containerOf(service: string): Promise<Docker.ContainerInfo> {
  const cs = await docker.listContainers({
    filters: { label: [`com.docker.swarm.service.name=${service}`] },
  });
  if (cs.length === 0) throw new Error(`no running container for ${service}`);
  return cs[0];
}

function execIn(containerId: string, cmd: string): string {
  return dockerCli(["exec", containerId, "sh", "-c", cmd]);
}

function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => {
      sock.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
    });
    let data = "";
    sock.setTimeout(10_000, () => sock.destroy(new Error(`timeout on 127.0.0.1:${port}`)));
    sock.on("data", (d) => (data += d.toString()));
    sock.on("error", reject);
    sock.on("end", () => {
      const m = /^HTTP\/1\.\d (\d{3})/.exec(data);
      if (!m) return reject(new Error(`127.0.0.1:${port} answered no HTTP: ${data.slice(0, 200)}`));
      resolve({ status: Number(m[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

beforeAll(async () => {
  docker = await requireSwarm();
  // Dev pins its app images by digest (swarmform:images). A stand-in built here cannot carry those digests, so
  // this run drops the pins and deploys the stack file's tags; what a pin does to the image reference is proven
  // in tests/unit/environments.test.ts.
  const run = await runProgram({
    stackFile: "Pulumi.dev.yaml",
    secrets: { sshPrivateKey: TEST_SSH_PRIVATE_KEY },
    config: { images: {} },
  });
  resources = run.resources;
  svcs = services(resources);
  await removeAll(docker, resources);

  // Images under the exact references the program uses.
  const images = imagesOf(resources);
  buildImagesFor(
    images,
    standinNeeds(svcs.filter((s) => imageKind(String(containerSpecOf(s).image)) === "standin")),
  );

  // What the program's placement and mounts expect of a node.
  await labelNodeFor(docker, constraintsOf(resources));
  for (const src of bindSourcesOf(resources)) {
    if (!existsSync(src)) {
      // e.g. /dev/disk (cAdvisor) exists on any host with udev, but not in a CI container.
      console.warn(`creating bind mount source ${src}, missing on this host`);
      mkdirSync(src, { recursive: true });
    }
  }
  for (const { service, port } of hostPortsOf(resources)) await requirePortFree(port, service);
  await requireReservations();

  applied = await apply(docker, resources);
});

afterAll(async () => {
  if (docker && resources) await removeAll(docker, resources);
});

test("the dev stack registers docker resources the applier creates, nothing else docker-typed", () => {
  expect(applied.services.map((s) => s.name).sort()).toEqual(svcs.map((s) => String(s.inputs.name)).sort());
  expect(applied.networks.length).toBeGreaterThan(0);
  // Non-docker resources (components, provider, random passwords) are the only ones skipped.
  expect(applied.skipped.every((s) => !s.startsWith("docker:"))).toBe(true);
});

test("every service reaches its desired running tasks (replicated: N, global: one per node)", async () => {
  await waitConverged(
    docker,
    svcs.map((s) => String(s.inputs.name)),
    180_000,
  );
  for (const s of svcs) {
    const mode = s.inputs.mode as { global?: boolean; replicated?: { replicas?: number } } | undefined;
    const running = (
      await docker.listTasks({ filters: { service: [String(s.inputs.name)], "desired-state": ["running"] } })
    ).filter((t: { Status: { State: string } }) => t.Status.State === "running").length;
    const nodes = (await docker.listNodes()).length;
    expect({ service: s.inputs.name, running }).toEqual({
      service: s.inputs.name,
      running: mode?.global ? nodes : (mode?.replicated?.replicas ?? 1),
    });
  }
});

test("services carry the program's labels, and their containers the program's container labels", async () => {
  for (const s of svcs) {
    const name = String(s.inputs.name);
    const want = labelsOf(s.inputs.labels);
    const got = ((await docker.getService(name).inspect()) as { Spec: { Labels: Record<string, string> } })
      .Spec.Labels;
    expect({ name, labels: got }).toEqual({ name, labels: want });
    expect(got["com.docker.stack.namespace"]).toBeTruthy();

    const wantContainer = labelsOf(containerSpecOf(s).labels);
    expect(wantContainer["com.docker.stack.namespace"]).toBe(got["com.docker.stack.namespace"]);
    const c = await containerOf(name);
    expect({ name, labels: c.Labels }).toEqual({ name, labels: expect.objectContaining(wantContainer) });
  }
  // The routed services carry Traefik labels on the service (where Traefik's swarm provider reads them).
  const routed = svcs.filter((s) => labelsOf(s.inputs.labels)["traefik.enable"] === "true");
  expect(routed.length).toBeGreaterThan(0);
  for (const s of routed) {
    const got = (
      (await docker.getService(String(s.inputs.name)).inspect()) as {
        Spec: { Labels: Record<string, string> };
      }
    ).Spec.Labels;
    expect(Object.keys(got).some((k) => /^traefik\.http\.(routers|services)\./.test(k))).toBe(true);
  }
});

test("configs and secrets are mounted in the tasks with the program's content", async () => {
  const data = new Map(
    resources
      .filter((r) => r.type === TYPES.config || r.type === TYPES.secret)
      .map((r) => [r.id, Buffer.from(String(r.inputs.data), "base64").toString()] as const),
  );
  let checked = 0;
  for (const s of svcs) {
    const cs = containerSpecOf(s);
    const refs = [
      ...((cs.configs as { configId: string; fileName: string }[]) ?? []).map((c) => [
        c.configId,
        c.fileName,
      ]),
      ...((cs.secrets as { secretId: string; fileName: string }[]) ?? []).map((c) => [
        c.secretId,
        c.fileName.startsWith("/") ? c.fileName : `/run/secrets/${c.fileName}`,
      ]),
    ];
    if (refs.length === 0) continue;
    const c = await containerOf(String(s.inputs.name));
    for (const [id, file] of refs) {
      expect(data.has(id)).toBe(true);
      expect({ file, content: execIn(c.Id, `cat '${file}'`) }).toEqual({ file, content: data.get(id) });
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(0);
});

test("tasks are attached to the program's networks, and tasks.<service> DNS answers with their addresses", async () => {
  const netName = new Map(
    resources.filter((r) => r.type === TYPES.network).map((r) => [r.id, String(r.inputs.name)] as const),
  );
  const addresses = new Map<string, string[]>();
  for (const s of svcs) {
    const name = String(s.inputs.name);
    const want = (
      (s.inputs.taskSpec as { networksAdvanceds?: { id?: string; name?: string }[] }).networksAdvanceds ?? []
    )
      .map((n) => (n.id !== undefined ? netName.get(n.id) : n.name))
      .sort();
    const tasks = (await docker.listTasks({
      filters: { service: [name], "desired-state": ["running"] },
    })) as {
      NetworksAttachments?: { Network: { Spec: { Name: string } }; Addresses: string[] }[];
    }[];
    expect(tasks.length).toBeGreaterThan(0);
    for (const t of tasks) {
      const got = (t.NetworksAttachments ?? [])
        .map((a) => a.Network.Spec.Name)
        .filter((n) => n !== "ingress");
      expect({ name, networks: got.sort() }).toEqual({ name, networks: want });
      for (const a of t.NetworksAttachments ?? []) {
        const key = `${name}@${a.Network.Spec.Name}`;
        addresses.set(key, [...(addresses.get(key) ?? []), ...a.Addresses.map((x) => x.split("/")[0])]);
      }
    }
  }
  // From one task on a network, `tasks.<svc>` resolves to exactly the addresses of that service's tasks there
  // (service VIPs do not answer on this host: no IPVS; task DNS does).
  const multi = svcs
    .map((s) => String(s.inputs.name))
    .flatMap((n) => [...addresses.keys()].filter((k) => k.startsWith(`${n}@`)))
    .sort((a, b) => (addresses.get(b)?.length ?? 0) - (addresses.get(a)?.length ?? 0))[0];
  const [svcName, network] = multi.split("@");
  const peer = svcs.find(
    (s) => String(s.inputs.name) !== svcName && addresses.has(`${String(s.inputs.name)}@${network}`),
  );
  expect(peer).toBeDefined();
  const c = await containerOf(String(peer!.inputs.name));
  const out = execIn(c.Id, `nslookup tasks.${svcName} 2>&1 || true`);
  const resolved = [...out.matchAll(/^Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]);
  expect(resolved.length).toBeGreaterThan(0);
  expect({ name: `tasks.${svcName}`, resolved: resolved.sort() }).toEqual({
    name: `tasks.${svcName}`,
    resolved: [...(addresses.get(multi) ?? [])].sort(),
  });
});

test("host-mode published ports answer on this host (node-exporter is the real one)", async () => {
  const ports = hostPortsOf(resources);
  expect(ports.length).toBeGreaterThan(0);
  for (const { service, port } of ports) {
    const res = await waitFor(
      `HTTP on 127.0.0.1:${port} (${service})`,
      () => httpGet(port).catch(() => undefined),
      30_000,
    );
    expect({ service, port, ok: res.status < 500 }).toEqual({ service, port, ok: true });
  }
  const exporter = svcs.find((s) => imageKind(String(containerSpecOf(s).image)) === "node-exporter");
  expect(exporter).toBeDefined();
  const exporterPort = ports.find((p) => p.service === exporter!.inputs.name);
  expect(exporterPort).toBeDefined();
  const metrics = await httpGet(exporterPort!.port, "/metrics");
  expect(metrics.status).toBe(200);
  expect(metrics.body).toMatch(/^node_cpu_seconds_total\{/m);
});

test("Prometheus (real) runs with the program's config and discovers the swarm's nodes and tasks", async () => {
  const prom = svcs.find((s) => imageKind(String(containerSpecOf(s).image)) === "prometheus");
  expect(prom).toBeDefined();
  const c = await containerOf(String(prom!.inputs.name));
  const get = (path: string) => execIn(c.Id, `wget -q -O - http://localhost:9090${path} 2>&1 || true`);
  expect(get("/-/ready")).toMatch(/Ready/);
  const exporterName = svcs.find((s) => imageKind(String(containerSpecOf(s).image)) === "node-exporter")!
    .inputs.name;
  const targets = await waitFor(
    "Prometheus to discover swarm nodes and the node-exporter task",
    async () => {
      const body = JSON.parse(get("/api/v1/targets")) as {
        data: { activeTargets: { scrapePool: string; discoveredLabels: Record<string, string> }[] };
      };
      const t = body.data.activeTargets;
      const pools = new Set(t.map((x) => x.scrapePool));
      const sawExporter = t.some((x) => x.discoveredLabels.__meta_dockerswarm_service_name === exporterName);
      return pools.has("swarm-nodes") && sawExporter ? t : undefined;
    },
    60_000,
    async () => get("/api/v1/targets").slice(0, 2000),
  );
  const node = targets.find((x) => x.scrapePool === "swarm-nodes")!;
  const info = await docker.info();
  expect(node.discoveredLabels.__meta_dockerswarm_node_id).toBe(info.Swarm.NodeID);
});
