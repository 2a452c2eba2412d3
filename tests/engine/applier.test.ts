// What this proves (on the real dockerd, swarm mode): the test applier used by platform.test.ts and
// registry.test.ts is itself trustworthy. From a small hand-written capture in the exact shape of
// tests/support/mocks.ts (@pulumi/docker input shapes), it creates a network, volume, config, secret and a
// service, and the engine's own view (`inspect`) carries every field the capture set: labels, env, args,
// mounts, config/secret references (resolved from mock ids to engine ids, file mode 0444 by default),
// networks, placement, resources, restart/update/rollback policies, healthcheck and host-mode ports. The
// task runs and sees the config and secret content. A field the applier does not map makes it throw.
import Docker from "dockerode";
import { apply, CapturedLike, removeAll, serviceSpec, TYPES, waitConverged } from "../support/applier";
import { dockerCli, requireSwarm } from "../support/dockerd";
import { buildImage } from "../support/images";

jest.setTimeout(180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- engine JSON, asserted field by field below
type EngineJson = any;

const P = "swarmform-applier-test";
const IMAGE = "swarmform-test/standin:applier";
const b64 = (s: string) => Buffer.from(s).toString("base64");

const capture: CapturedLike[] = [
  { type: "swarmform:workloads:Platform", name: "platform", inputs: {} },
  {
    type: TYPES.network,
    name: "net",
    id: "net-id",
    inputs: {
      name: `${P}_net`,
      driver: "overlay",
      attachable: true,
      ipamConfigs: [{ subnet: "10.231.7.0/24" }],
      labels: [{ label: "com.docker.stack.namespace", value: P }],
    },
  },
  { type: TYPES.volume, name: "vol", id: "vol-id", inputs: { name: `${P}_data`, driver: "local" } },
  {
    type: TYPES.config,
    name: "conf",
    id: "conf-id",
    inputs: { name: `${P}_conf-abc`, data: b64("hello config\n"), labels: [{ label: "k", value: "v" }] },
  },
  { type: TYPES.secret, name: "sec", id: "sec-id", inputs: { name: `${P}_sec-abc`, data: b64("s3cret\n") } },
  {
    type: TYPES.service,
    name: "svc",
    id: "svc-id",
    inputs: {
      name: `${P}_svc`,
      labels: [
        { label: "com.docker.stack.namespace", value: P },
        { label: "traefik.enable", value: "true" },
      ],
      mode: { replicated: { replicas: 2 } },
      taskSpec: {
        containerSpec: {
          image: IMAGE,
          args: ["--flag=1"],
          env: { A: "1", B: "two words" },
          labels: [{ label: "com.docker.stack.namespace", value: P }],
          mounts: [{ type: "volume", source: `${P}_data`, target: "/data", readOnly: false }],
          configs: [{ configId: "conf-id", configName: `${P}_conf-abc`, fileName: "/etc/app/conf" }],
          secrets: [
            { secretId: "sec-id", secretName: `${P}_sec-abc`, fileName: "app-secret", fileMode: 0o400 },
          ],
          healthcheck: {
            tests: ["CMD", "/standin", "healthcheck"],
            interval: "2s",
            timeout: "1s",
            retries: 3,
          },
        },
        networksAdvanceds: [{ id: "net-id" }],
        placement: { constraints: ["node.role==manager"], prefs: ["spread=node.id"] },
        resources: { limits: { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000 } },
        restartPolicy: { condition: "any", delay: "1s", maxAttempts: 5, window: "1m30s" },
      },
      updateConfig: { parallelism: 1, delay: "5s", order: "start-first", failureAction: "rollback" },
      rollbackConfig: { parallelism: 1, maxFailureRatio: "0.5" },
      endpointSpec: {
        mode: "vip",
        ports: [{ targetPort: 8080, publishedPort: 18080, protocol: "tcp", publishMode: "host" }],
      },
    },
  },
];

let docker: Docker;

beforeAll(async () => {
  docker = await requireSwarm();
  await removeAll(docker, capture);
  buildImage("standin", [IMAGE]);
});

afterAll(async () => {
  if (docker) await removeAll(docker, capture);
});

test("an input field the applier does not map makes it throw, naming the field", () => {
  const svc = capture.find((r) => r.type === TYPES.service)!;
  const odd = { ...svc, inputs: { ...svc.inputs, frobnicate: true } };
  const res = { config: (x: string) => x, secret: (x: string) => x, network: (x: string) => x };
  expect(() => serviceSpec(odd, res)).toThrow(/does not map "frobnicate"/);
  const ts = svc.inputs.taskSpec as Record<string, unknown>;
  const cs = ts.containerSpec as Record<string, unknown>;
  const deep = {
    ...svc,
    inputs: { ...svc.inputs, taskSpec: { ...ts, containerSpec: { ...cs, tty: true } } },
  };
  expect(() => serviceSpec(deep, res)).toThrow(/containerSpec: the test applier does not map "tty"/);
});

test("applies the capture; the engine's spec carries every field, and the tasks run", async () => {
  const applied = await apply(docker, capture);
  expect(applied.skipped).toEqual(["swarmform:workloads:Platform platform"]);
  expect(applied.services.map((s) => s.name)).toEqual([`${P}_svc`]);

  const svc = (await docker.getService(`${P}_svc`).inspect()) as { Spec: EngineJson };
  const spec = svc.Spec;
  expect(spec.Labels).toEqual({ "com.docker.stack.namespace": P, "traefik.enable": "true" });
  expect(spec.Mode).toEqual({ Replicated: { Replicas: 2 } });
  const cs = spec.TaskTemplate.ContainerSpec;
  expect(cs.Image).toBe(IMAGE);
  expect(cs.Args).toEqual(["--flag=1"]);
  expect(cs.Env.sort()).toEqual(["A=1", "B=two words"]);
  expect(cs.Labels).toEqual({ "com.docker.stack.namespace": P });
  // ReadOnly false is the Engine default and is not echoed back.
  expect(cs.Mounts).toEqual([{ Type: "volume", Source: `${P}_data`, Target: "/data" }]);
  const configId = applied.configs[0].id;
  const secretId = applied.secrets[0].id;
  expect(configId).not.toBe("conf-id");
  expect(cs.Configs).toEqual([
    {
      File: { Name: "/etc/app/conf", UID: "0", GID: "0", Mode: 0o444 },
      ConfigID: configId,
      ConfigName: `${P}_conf-abc`,
    },
  ]);
  expect(cs.Secrets).toEqual([
    {
      File: { Name: "app-secret", UID: "0", GID: "0", Mode: 0o400 },
      SecretID: secretId,
      SecretName: `${P}_sec-abc`,
    },
  ]);
  expect(cs.Healthcheck).toEqual({
    Test: ["CMD", "/standin", "healthcheck"],
    Interval: 2e9,
    Timeout: 1e9,
    Retries: 3,
  });
  expect(spec.TaskTemplate.Networks).toEqual([{ Target: applied.networks[0].id }]);
  expect(spec.TaskTemplate.Placement).toEqual({
    Constraints: ["node.role==manager"],
    Preferences: [{ Spread: { SpreadDescriptor: "node.id" } }],
  });
  expect(spec.TaskTemplate.Resources.Limits).toEqual({
    NanoCPUs: 500_000_000,
    MemoryBytes: 64 * 1024 * 1024,
  });
  expect(spec.TaskTemplate.RestartPolicy).toEqual({
    Condition: "any",
    Delay: 1e9,
    MaxAttempts: 5,
    Window: 90e9,
  });
  expect(spec.UpdateConfig).toMatchObject({
    Parallelism: 1,
    Delay: 5e9,
    Order: "start-first",
    FailureAction: "rollback",
  });
  expect(spec.RollbackConfig).toMatchObject({ Parallelism: 1, MaxFailureRatio: 0.5 });
  expect(spec.EndpointSpec).toEqual({
    Mode: "vip",
    Ports: [{ Protocol: "tcp", TargetPort: 8080, PublishedPort: 18080, PublishMode: "host" }],
  });

  const net = (await docker.getNetwork(`${P}_net`).inspect()) as EngineJson;
  expect(net.Driver).toBe("overlay");
  expect(net.Attachable).toBe(true);
  expect(net.IPAM.Config).toEqual([expect.objectContaining({ Subnet: "10.231.7.0/24" })]);
  expect(net.Labels).toEqual({ "com.docker.stack.namespace": P });

  // Two replicas, but one node and a host-mode port: only one task can hold port 18080 on this node.
  // So the engine itself tells us the published port is real: one task runs, the other waits.
  await expect(waitConverged(docker, [`${P}_svc`], 8_000)).rejects.toThrow(/1\/2 running/);
  const now = (await docker.getService(`${P}_svc`).inspect()) as EngineJson;
  await docker
    .getService(`${P}_svc`)
    .update({ ...now.Spec, version: now.Version.Index, Mode: { Replicated: { Replicas: 1 } } });
  await waitConverged(docker, [`${P}_svc`], 60_000);

  // The task sees the config and the secret, with their content and modes.
  const [c] = await docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${P}_svc`] } });
  const exec = (cmd: string) => dockerCli(["exec", c.Id, "sh", "-c", cmd]).trim();
  expect(exec("cat /etc/app/conf")).toBe("hello config");
  expect(exec("cat /run/secrets/app-secret")).toBe("s3cret");
  expect(exec("stat -c %a /run/secrets/app-secret 2>/dev/null || ls -l /run/secrets/app-secret")).toMatch(
    /^(400|-r--------)/,
  );
  expect(exec("echo $B")).toBe("two words");
});
