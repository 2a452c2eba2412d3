// What this proves (on the real dockerd, swarm mode): the private registry that the `dev` stack defines works,
// with the program's own auth. The registry is the REAL distribution registry (Debian's docker-registry
// 2.8.2, imported as the program's `registry:*` reference), run as the program's registry service: its
// captured env (REGISTRY_AUTH=htpasswd, realm, htpasswd path), its htpasswd secret (made by the program's
// bcrypt code path, components/workloads/content.ts) mounted where the env points, its volume, network and
// placement. Then, with the password the program exports:
//   `docker login` + `docker push` + `docker pull` succeed; an anonymous pull and a wrong password are refused
//   (401, with the program's realm); and the credentials the program gives app services for pulls (`auth`)
//   are accepted by the registry.
// The one change to the captured service: a host-mode published port 5000, so the host's docker can reach it.
// In the program, Traefik (not packaged here, so only a stand-in elsewhere) publishes :5000 and routes to it.
import Docker from "dockerode";
import {
  apply,
  CapturedLike,
  containerSpecOf,
  constraintsOf,
  removeAll,
  services,
  TYPES,
  waitConverged,
} from "../support/applier";
import { labelNodeFor, requireSwarm, waitFor } from "../support/dockerd";
import { buildImage, imageKind } from "../support/images";
import { runProgram, TEST_SSH_PRIVATE_KEY } from "../support/mocks";
import { dockerClient, registryGet } from "../support/registry";

jest.setTimeout(240_000);

const PORT = 5000;
const PUSHED = `127.0.0.1:${PORT}/swarmform-test/tiny:1`;

let docker: Docker;
let subset: CapturedLike[];
let registryName: string;
let user: string;
let password: string;
let realm: string;
let appAuth: { username: string; password: string }[];

beforeAll(async () => {
  docker = await requireSwarm();
  const run = await runProgram({
    stackFile: "Pulumi.dev.yaml",
    secrets: { sshPrivateKey: TEST_SSH_PRIVATE_KEY },
  });
  const registry = services(run.resources).find(
    (s) => imageKind(String(containerSpecOf(s).image)) === "registry",
  );
  if (!registry) throw new Error("the dev stack registers no registry service");
  registryName = String(registry.inputs.name);

  // The registry service and what it refers to (its networks and its htpasswd secret), as captured.
  const ts = registry.inputs.taskSpec as { networksAdvanceds?: { id?: string }[] };
  const cs = containerSpecOf(registry) as { secrets?: { secretId: string }[]; env?: Record<string, string> };
  const netIds = new Set((ts.networksAdvanceds ?? []).map((n) => n.id));
  const secretIds = new Set((cs.secrets ?? []).map((s) => s.secretId));
  const deps = run.resources.filter(
    (r) =>
      (r.type === TYPES.network && netIds.has(r.id)) ||
      (r.type === TYPES.secret && secretIds.has(r.id ?? "")),
  );
  const published: CapturedLike = {
    ...registry,
    inputs: {
      ...registry.inputs,
      endpointSpec: {
        ...(registry.inputs.endpointSpec as object),
        ports: [{ targetPort: PORT, publishedPort: PORT, protocol: "tcp", publishMode: "host" }],
      },
    },
  };
  subset = [...deps, published];

  const secret = deps.find((r) => r.type === TYPES.secret);
  if (!secret) throw new Error(`${registryName} mounts no secret: expected the htpasswd secret`);
  const htpasswd = Buffer.from(String(secret.inputs.data), "base64").toString();
  user = htpasswd.slice(0, htpasswd.indexOf(":"));
  password = String(run.outputs.registryPassword);
  realm = String(cs.env?.REGISTRY_AUTH_HTPASSWD_REALM);
  appAuth = services(run.resources)
    .map((s) => s.inputs.auth as { username: string; password: string } | undefined)
    .filter((a): a is { username: string; password: string } => a !== undefined);

  await removeAll(docker, subset);
  buildImage("registry", [String(containerSpecOf(registry).image)]);
  buildImage("standin", [PUSHED]);
  await labelNodeFor(docker, constraintsOf([registry]));
  await apply(docker, subset);
  await waitConverged(docker, [registryName], 120_000);
  await waitFor(
    "the registry to answer on 127.0.0.1:5000",
    () => registryGet(PORT, "/v2/").catch(() => undefined),
    60_000,
  );
});

afterAll(async () => {
  if (docker && subset) await removeAll(docker, subset);
});

test("the program's registry service runs the real registry with htpasswd auth from its env", async () => {
  const spec = (await docker.getService(registryName).inspect()) as {
    Spec: { TaskTemplate: { ContainerSpec: { Env?: string[]; Secrets?: { File: { Name: string } }[] } } };
  };
  const env = spec.Spec.TaskTemplate.ContainerSpec.Env ?? [];
  expect(env).toContain("REGISTRY_AUTH=htpasswd");
  const htpasswdPath = env.find((e) => e.startsWith("REGISTRY_AUTH_HTPASSWD_PATH="))?.split("=")[1];
  const mounted = (spec.Spec.TaskTemplate.ContainerSpec.Secrets ?? []).map(
    (x) => `/run/secrets/${x.File.Name}`,
  );
  expect(mounted).toContain(htpasswdPath);
  const anon = await registryGet(PORT, "/v2/");
  expect(anon.status).toBe(401);
  expect(anon.headers["www-authenticate"]).toBe(`Basic realm="${realm}"`);
  expect((await registryGet(PORT, "/v2/", user, password)).status).toBe(200);
  expect((await registryGet(PORT, "/v2/", user, `${password}x`)).status).toBe(401);
});

test("docker login, push and pull succeed with the program's credentials; anonymous pull is refused", async () => {
  const authed = dockerClient();
  const anon = dockerClient();
  try {
    expect(authed.run(["login", `127.0.0.1:${PORT}`, "-u", user, "--password-stdin"], password)).toMatch(
      /Login Succeeded/,
    );
    const id = authed.run(["image", "inspect", "--format", "{{.Id}}", PUSHED]).trim();
    authed.run(["push", PUSHED]);
    // The manifest is there, for an authenticated client only.
    expect((await registryGet(PORT, "/v2/swarmform-test/tiny/manifests/1", user, password)).status).toBe(200);
    expect((await registryGet(PORT, "/v2/swarmform-test/tiny/manifests/1")).status).toBe(401);

    authed.run(["image", "rm", PUSHED]);
    expect(() => anon.run(["pull", PUSHED])).toThrow(/no basic auth credentials|unauthorized|401/i);
    authed.run(["pull", PUSHED]);
    expect(authed.run(["image", "inspect", "--format", "{{.Id}}", PUSHED]).trim()).toBe(id);
  } finally {
    authed.dispose();
    anon.dispose();
  }
});

test("the pull credentials the program gives app services are accepted by the registry", async () => {
  expect(appAuth.length).toBeGreaterThan(0);
  for (const a of appAuth) {
    expect({
      user: a.username,
      status: (await registryGet(PORT, "/v2/", a.username, a.password)).status,
    }).toEqual({
      user: a.username,
      status: 200,
    });
  }
});
