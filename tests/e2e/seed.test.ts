// The seed's behaviours across real hosts: a 3-node swarm formed with plain docker commands over the SSH
// transport, an overlay network, and the popcube api service. Needs root (see tests/testbed/testbed.ts).
// IPVS is missing here, so services use endpoint_mode dnsrr and tasks.<service> instead of VIPs.

import bcrypt from "bcryptjs";
import * as crypto from "crypto";
import { closeAllTransports } from "../../components/hosts/transport";
import { startTestbed, Testbed } from "../testbed/testbed";
import { formSwarm, run, waitUntil } from "../testbed/swarm";

jest.setTimeout(300000);

const NAME = "e2e-seed";
const IMAGE = "popcube/api:1";
const NET = "popcube_net";
const API = "popcube_api";
const WEB = "popcube_web";
let tb: Testbed;
let manager: string;

/** An httpd task that answers `<text> on <node hostname>`. */
const httpd = (text: string) =>
  `sh -c 'mkdir -p /www && echo "${text} on $NODE" > /www/index.html && exec httpd -f -p 80 -h /www'`;

async function runningTasks(service: string): Promise<{ id: string; node: string }[]> {
  const out = await run(
    tb,
    manager,
    `docker service ps ${service} --filter desired-state=running --format '{{.ID}} {{.Node}} {{.CurrentState}}'`,
  );
  return out
    .split("\n")
    .filter((l) => / Running /.test(l + " "))
    .map((l) => ({ id: l.split(" ")[0], node: l.split(" ")[1] }));
}

async function waitForReplicas(service: string, n: number): Promise<{ id: string; node: string }[]> {
  return waitUntil(`${service} ${n}/${n} running`, 120000, async () => {
    const tasks = await runningTasks(service);
    return tasks.length === n ? tasks : undefined;
  });
}

function ipv4s(text: string): string[] {
  return [...text.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})\b/g)].map((m) => m[1]);
}

beforeAll(async () => {
  tb = await startTestbed({ hosts: 3, name: NAME });
  await tb.importBusybox(IMAGE);
  manager = await formSwarm(tb, 1);
  await run(tb, manager, `docker network create -d overlay --attachable ${NET}`);
  const common = `--network ${NET} --endpoint-mode dnsrr --no-resolve-image --env NODE={{.Node.Hostname}} --stop-grace-period 2s`;
  await run(
    tb,
    manager,
    `docker service create -d --name ${API} ${common} --replicas 3 ${IMAGE} ${httpd("api")}`,
  );
  await run(
    tb,
    manager,
    `docker service create -d --name ${WEB} ${common} --replicas 1 --constraint node.hostname==h1 ${IMAGE} ${httpd("web")}`,
  );
  await waitForReplicas(API, 3);
  await waitForReplicas(WEB, 1);
});

afterAll(async () => {
  await closeAllTransports();
  await tb?.down();
});

describe("seed behaviours on a 3-host swarm", () => {
  it("formed a swarm of the three hosts", async () => {
    const nodes = await run(tb, manager, "docker node ls --format '{{.Hostname}} {{.Status}}'");
    expect(nodes.trim().split("\n").sort()).toEqual(["h1 Ready", "h2 Ready", "h3 Ready"]);
  });

  it("resolves tasks.popcube_api to every replica's address, from every host", async () => {
    const ids = (await runningTasks(API)).map((t) => t.id).join(" ");
    const format = `{{range .NetworksAttachments}}{{if eq .Network.Spec.Name "${NET}"}}{{range .Addresses}}{{.}} {{end}}{{end}}{{end}}`;
    const expected = ipv4s(await run(tb, manager, `docker inspect --format '${format}' ${ids}`)).sort();
    expect(expected).toHaveLength(3);
    for (const h of tb.hosts) {
      const answer = await waitUntil(`tasks.${API} from ${h.name}`, 60000, async () => {
        const r = await tb.exec(h.name, `docker run --rm --network ${NET} ${IMAGE} nslookup tasks.${API}`);
        const found = ipv4s(r.stdout.slice(r.stdout.indexOf("Name:"))).sort();
        return found.length === expected.length ? found : undefined;
      });
      expect(answer).toEqual(expected);
    }
  });

  it("lets a task on one host reach a task of another service on another host by service name", async () => {
    const apiTask = (await runningTasks(API)).find((t) => t.node !== "h1");
    expect(apiTask).toBeDefined();
    const container = (
      await run(
        tb,
        apiTask!.node,
        `docker ps -q --filter label=com.docker.swarm.service.name=${API} | head -1`,
      )
    ).trim();
    expect(container).not.toBe("");
    expect(await run(tb, apiTask!.node, `docker exec ${container} wget -qO- http://${WEB}/`)).toBe(
      "web on h1\n",
    );
    // And back: the web task on h1 reaches the api by its name (dnsrr: any replica answers).
    const web = (
      await run(tb, "h1", `docker ps -q --filter label=com.docker.swarm.service.name=${WEB}`)
    ).trim();
    expect(await run(tb, "h1", `docker exec ${web} wget -qO- http://${API}/`)).toMatch(/^api on h[123]\n$/);
  });

  it("spreads the api over the hosts when scaled to 5", async () => {
    await run(tb, manager, `docker service scale -d ${API}=5`);
    const tasks = await waitForReplicas(API, 5);
    const perNode = new Map<string, number>();
    for (const t of tasks) perNode.set(t.node, (perNode.get(t.node) ?? 0) + 1);
    expect([...perNode.keys()].sort()).toEqual(["h1", "h2", "h3"]);
    expect(Math.max(...perNode.values())).toBeLessThanOrEqual(2);
  });

  it("rolls out a container label with parallelism 2, never below 3 running tasks", async () => {
    await run(
      tb,
      manager,
      `docker service update -d --update-parallelism 2 --update-delay 0s --update-order stop-first ` +
        `--update-failure-action pause --container-label-add xyz.popcube.org=maxime ${API}`,
    );
    const samples: { state: string; running: number }[] = [];
    await waitUntil(
      "rolling update completed",
      180000,
      async () => {
        const out = await run(
          tb,
          manager,
          `docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' ${API}; ` +
            `docker service ps ${API} --format '{{.CurrentState}}'`,
        );
        const [state, ...tasks] = out.trim().split("\n");
        samples.push({ state, running: tasks.filter((t) => t.startsWith("Running")).length });
        if (state === "paused" || state.startsWith("rollback")) throw new Error(`update ${state}`);
        return state === "completed" ? true : undefined;
      },
      200,
    );
    expect(samples.some((s) => s.state === "updating")).toBe(true);
    expect(Math.min(...samples.map((s) => s.running))).toBeGreaterThanOrEqual(3);
    const labelled = await Promise.all(
      tb.hosts.map((h) =>
        run(
          tb,
          h.name,
          `docker ps -q --filter label=com.docker.swarm.service.name=${API} --filter label=xyz.popcube.org=maxime`,
        ),
      ),
    );
    expect(labelled.flatMap((o) => o.split("\n").filter(Boolean))).toHaveLength(5);
  });
});

describe("a private registry with auth on the swarm", () => {
  const REGISTRY = "popcube_registry";
  const user = "popcube";
  const password = crypto.randomBytes(12).toString("hex");
  let registry: string;

  beforeAll(async () => {
    // tests/support/images.ts (the Debian docker-registry binary in an imported image) builds into the engine
    // named by DOCKER_HOST when it is loaded: point it at h1, then put DOCKER_HOST back.
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${tb.hosts[0].dockerSocket}`;
    try {
      jest.isolateModules(() => {
        const images = jest.requireActual("../support/images") as typeof import("../support/images");
        images.buildImage("registry", ["swarmform/registry:test"]);
      });
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    registry = `${tb.hosts[0].address}:5000`;
  });

  it("serves the api image to every host, only after login", async () => {
    await run(
      tb,
      manager,
      "docker config create registry_htpasswd -",
      `${user}:${bcrypt.hashSync(password, 10)}\n`,
    );
    await run(
      tb,
      manager,
      `docker service create -d --name ${REGISTRY} --no-resolve-image --constraint node.hostname==h1 ` +
        `--publish mode=host,target=5000,published=5000 --config source=registry_htpasswd,target=/auth/htpasswd ` +
        `--env REGISTRY_AUTH=htpasswd --env REGISTRY_AUTH_HTPASSWD_REALM=popcube ` +
        `--env REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd swarmform/registry:test`,
    );
    await waitUntil("registry answering 401 from h2", 60000, async () => {
      const r = await tb.exec("h2", `busybox wget -q -O- http://${registry}/v2/ 2>&1`);
      return /401/.test(r.stdout) ? true : undefined;
    });
    const ref = `${registry}/popcube/api:2`;
    await run(tb, "h1", `docker tag ${IMAGE} ${ref}`);
    await run(tb, "h1", `docker login -u ${user} --password-stdin ${registry}`, password);
    await run(tb, "h1", `docker push ${ref}`);
    await run(tb, "h1", `docker rmi ${ref}`);
    for (const h of tb.hosts) {
      if (h.name !== "h1") {
        const anonymous = await tb.exec(h.name, `docker pull ${ref}`);
        expect(anonymous.code).not.toBe(0);
        expect(anonymous.stderr).toMatch(/no basic auth credentials|unauthorized/i);
        const wrong = await tb.exec(h.name, `docker login -u ${user} --password-stdin ${registry}`, "wrong");
        expect(wrong.code).not.toBe(0);
        await run(tb, h.name, `docker login -u ${user} --password-stdin ${registry}`, password);
      }
      await run(tb, h.name, `docker pull ${ref}`);
    }
  });

  it("rolls the api onto the registry image with the manager's credentials", async () => {
    const ref = `${registry}/popcube/api:2`;
    for (const h of tb.hosts) await run(tb, h.name, `docker rmi ${ref}`);
    await run(
      tb,
      manager,
      `docker service update -d --with-registry-auth --update-parallelism 2 --update-order stop-first --image ${ref} ${API}`,
    );
    await waitUntil("update to the registry image completed", 180000, async () => {
      const state = (
        await run(tb, manager, `docker service inspect --format '{{.UpdateStatus.State}}' ${API}`)
      ).trim();
      if (state === "paused" || state.startsWith("rollback")) throw new Error(`update ${state}`);
      return state === "completed" ? true : undefined;
    });
    const tasks = await waitForReplicas(API, 5);
    expect(new Set(tasks.map((t) => t.node))).toEqual(new Set(["h1", "h2", "h3"]));
    const image = (
      await run(
        tb,
        manager,
        `docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' ${API}`,
      )
    ).trim();
    expect(image.startsWith(`${ref}@sha256:`)).toBe(true);
    for (const h of tb.hosts) {
      expect(await run(tb, h.name, `docker image ls -q ${registry}/popcube/api`)).not.toBe("");
    }
  });
});
