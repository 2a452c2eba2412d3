// What this proves (on the real dockerd, swarm mode): the Compose keys of issue 7, imported from our
// real-shapes stack files and mapped by AppStack/serviceArgs onto @pulumi/docker Service inputs (captured
// under mocks), are accepted by the engine and come back in its own view of each service: log driver,
// hostname template, DNS config, extra hosts, working dir, read-only root, init, capabilities, sysctls,
// stop signal and grace period, network aliases, max replicas per node, generic resources, and the volume
// driver options. Tasks are not waited for: the images are not pullable here, only the specs are compared.
import * as path from "path";
import * as docker from "@pulumi/docker";
import Docker from "dockerode";
import { parseStackFile } from "../../components/config/compose";
import { AppStack } from "../../components/workloads/AppStack";
import { apply, CapturedLike, removeAll } from "../support/applier";
import { requireSwarm } from "../support/dockerd";
import { runMocked } from "../support/mocks";

jest.setTimeout(180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- engine JSON, asserted field by field below
type EngineJson = any;

const DIR = path.resolve(__dirname, "../fixtures/stacks/real-shapes");
const FILES = ["ci-runner.yml", "search.yml", "storage.yml"];

let engine: Docker;
let capture: CapturedLike[] = [];

beforeAll(async () => {
  engine = await requireSwarm();
  const stacks = FILES.map((f) => {
    const r = parseStackFile(path.join(DIR, f), { vars: {}, stackName: `i7-${f.split(".")[0]}` });
    if (!r.stack) throw new Error(r.issues.map((i) => i.message).join("\n"));
    return r.stack;
  });
  const run = await runMocked(
    () => {
      const provider = new docker.Provider("engine", { host: "unix:///var/run/docker.sock" });
      stacks.forEach((stack) => new AppStack(stack.name, { stack, provider, platformNetworkIds: {} }));
      return {};
    },
    { project: "swarmform", stack: "i7" },
  );
  capture = run.resources as unknown as CapturedLike[];
  await removeAll(engine, capture);
  await apply(engine, capture);
});

afterAll(async () => {
  if (engine) await removeAll(engine, capture);
});

async function spec(name: string): Promise<EngineJson> {
  return ((await engine.getService(name).inspect()) as { Spec: EngineJson }).Spec;
}

test("ci-runner: init, stop signal and grace period, extra hosts, DNS, capabilities, a generic resource", async () => {
  const s = await spec("i7-ci-runner_runner");
  const cs = s.TaskTemplate.ContainerSpec;
  expect(cs.Init).toBe(true);
  expect(cs.StopSignal).toBe("SIGQUIT");
  expect(cs.StopGracePeriod).toBe(2 * 3600 * 1e9);
  expect(cs.Hosts).toEqual(["10.10.0.5 forge.internal", "10.10.0.6 registry.internal"]);
  expect(cs.DNSConfig).toEqual({
    Nameservers: ["10.10.0.2", "1.1.1.1"],
    Search: ["internal"],
    Options: ["ndots:2"],
  });
  expect(cs.CapabilityAdd).toEqual(["SYS_ADMIN"]);
  expect(s.TaskTemplate.Resources.Reservations.GenericResources).toEqual([
    { DiscreteResourceSpec: { Kind: "NVIDIA-GPU", Value: 1 } },
  ]);
  expect(s.Mode).toEqual({ Global: {} });
});

test("search: working dir, sysctls, capabilities, read-only root, a GELF log driver", async () => {
  const search = (await spec("i7-search_search")).TaskTemplate.ContainerSpec;
  expect(search.Dir).toBe("/usr/share/opensearch");
  expect(search.User).toBe("1000:1000");
  expect(search.Sysctls).toEqual({ "net.core.somaxconn": "1024", "net.ipv4.tcp_keepalive_time": "600" });
  expect(search.CapabilityAdd).toEqual(["IPC_LOCK"]);
  const shipper = await spec("i7-search_shipper");
  expect(shipper.TaskTemplate.ContainerSpec.ReadOnly).toBe(true);
  expect(shipper.TaskTemplate.ContainerSpec.CapabilityDrop).toEqual(["ALL"]);
  expect(shipper.TaskTemplate.LogDriver).toEqual({
    Name: "gelf",
    Options: { "gelf-address": "udp://10.10.0.30:12201", tag: "shipper/{{.Name}}" },
  });
});

test("storage: hostname template, aliases, max replicas per node, dnsrr, volume driver options", async () => {
  const s = await spec("i7-storage_minio");
  const cs = s.TaskTemplate.ContainerSpec;
  expect(cs.Hostname).toBe("minio{{.Task.Slot}}");
  expect(s.TaskTemplate.Placement.MaxReplicas).toBe(1);
  expect(s.EndpointSpec.Mode).toBe("dnsrr");
  const storageNet = (await engine.getNetwork("i7-storage_storage").inspect()) as EngineJson;
  const attached = s.TaskTemplate.Networks.find((n: EngineJson) => n.Target === storageNet.Id);
  expect(attached.Aliases).toEqual(["s3", "objects.internal"]);
  expect(cs.Mounts[0]).toEqual({
    Type: "volume",
    Source: "minio-export",
    Target: "/export",
    VolumeOptions: {
      Labels: { backup: "nightly", "com.docker.stack.namespace": "i7-storage" },
      DriverConfig: {
        Name: "local",
        Options: { type: "nfs", o: "addr=10.10.0.20,nfsvers=4,rw", device: ":/srv/minio" },
      },
    },
  });
});
