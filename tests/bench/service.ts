// Benchmark: service convergence on the multi-host testbed (run as root). From an image change of the popcube
// api (stacks/popcube.yaml: 5 replicas, update_config parallelism 2, delay 10s, monitor 30s, start-first, and
// a healthcheck every 10s) until every task runs the new image; compared with what the configuration alone
// makes the engine wait, so that what is left is overhead.
//
//   npm run bench:service -- [--runs N]      (default 5 runs)
//
// What runs:
//  - The program (index.ts, stack `local`) is planned twice under mocks (tests/support/mocks.ts): once as the
//    stack file has it (API_TAG alpha-1.1.11), once with stackVariables.API_TAG=alpha-1.1.12. The captured
//    docker.Service inputs of `maxime_api` (and the networks and secret it refers to) are what this bench puts
//    on the swarm. The two plans must differ in the image only (checked).
//  - The Pulumi docker plugin cannot run here (no plugin download), so the captured inputs are applied with
//    tests/support/applier.ts, the project's stand-in for it: create through the Engine API, and for the image
//    change a service update with the re-planned spec (what the plugin's Update does: ServiceUpdate with the
//    whole new spec).
//  - The images are the project's stand-in (tests/support/images.ts, as `npm run images:local` builds them for
//    the local stack), built on this machine's engine and copied into every testbed host. The testbed's dockerds
//    run with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (TestbedOptions.preferLocalImages): the hosts are offline, and
//    without it every new task first tries to pull `swarmform.local/...` and waits about 17 s for DNS before it
//    falls back to the local image (seen in the hosts' dockerd logs), which is the machine's gap, not Swarm's
//    pace nor ours. On a cluster with its registry reachable, that pull is one manifest request.
//  - 5 testbed hosts (3 managers + 2 workers, formed with plain docker commands), the api deployed with its 5
//    replicas spread over the 5 hosts. Each run changes the image (alternating between the two plans) and
//    polls the manager every 200 ms until the 5 tasks that should run are running the new image and no task of
//    the old image is running.
//
// The configured floor, printed with the figures: Swarm's updater runs `parallelism` workers; each replaces
// one task, waits until the new task is RUNNING, then sleeps `delay` before taking the next. With a
// healthcheck, a task counts as RUNNING only once its container is healthy, and dockerd (20.10 here) runs the
// first probe one healthcheck `interval` after the start (start_period only forgives failures). So the last of
// the ceil(replicas / parallelism) tasks of a worker is running no earlier than
//   batches x interval + (batches - 1) x delay.
// `monitor` is not on that path: after the last task the updater sleeps `delay` once more and watches for
// failures for `monitor` before it marks the update completed (so "completed" comes >= delay + monitor later);
// this bench does not wait for that (the next run's update supersedes it).
//
// It prints figures only; it never asserts timings. It fails (exit 1) when a step does not do what it should.

import Docker from "dockerode";
import * as path from "path";
import { readPulumiStackFile } from "../../components/config/load";
import {
  apply,
  Applied,
  CapturedLike,
  containerSpecOf,
  durationNs,
  Resolver,
  serviceSpec,
  standinNeeds,
  TYPES,
  waitConverged,
} from "../support/applier";
import { buildImage } from "../support/images";
import { CapturedResource, ROOT_DIR, runProgram } from "../support/mocks";
import { formSwarm } from "../testbed/swarm";
import { startTestbed, Testbed } from "../testbed/testbed";
import { median, parseRuns } from "./stats";

const STACK_FILE = "Pulumi.local.yaml";
const SERVICE = "maxime_api";
const NEW_TAG = "alpha-1.1.12";
const POLL_MS = 200;
const CONVERGE_TIMEOUT_MS = 600_000;

/**
 * tests/support/mocks.ts loads the program inside `jest.isolateModules`. Outside jest, this does the same by
 * hand: modules first loaded while the program is required are dropped from the require cache afterwards, so
 * the next plan loads the program afresh.
 */
function installIsolateModules(): void {
  const g = globalThis as unknown as { jest?: { isolateModules(fn: () => void): void } };
  g.jest ??= {
    isolateModules(fn: () => void): void {
      const before = new Set(Object.keys(require.cache));
      try {
        fn();
      } finally {
        for (const k of Object.keys(require.cache)) if (!before.has(k)) delete require.cache[k];
      }
    },
  };
}

const sec = (ms: number) => (ms / 1000).toFixed(1);

/** The api service of one plan, and the networks, secrets and configs it refers to. */
interface Plan {
  readonly image: string;
  readonly service: CapturedLike;
  readonly resources: CapturedLike[];
}

async function plan(apiTag?: string): Promise<Plan> {
  const file = readPulumiStackFile(path.join(ROOT_DIR, STACK_FILE));
  const vars = (file.config.stackVariables ?? {}) as Record<string, string>;
  const run = await runProgram({
    stackFile: STACK_FILE,
    config: apiTag ? { stackVariables: { ...vars, API_TAG: apiTag } } : {},
  });
  const service = run.resources.find((r) => r.type === TYPES.service && r.inputs.name === SERVICE);
  if (!service) throw new Error(`the program (stack local) registers no docker.Service named ${SERVICE}`);
  const deps = new Set(service.dependencies);
  const kinds: string[] = [TYPES.network, TYPES.secret, TYPES.config, TYPES.volume];
  const refs = run.resources.filter((r: CapturedResource) => deps.has(r.urn) && kinds.includes(r.type));
  return { image: String(containerSpecOf(service).image), service, resources: [...refs, service] };
}

/** Mock ids and physical names of what `apply` created -> engine ids. */
function resolverOf(p: Plan, applied: Applied): Resolver {
  const ids = new Map<string, string>();
  for (const c of [...applied.networks, ...applied.secrets, ...applied.configs]) {
    const r = p.resources.find((x) => x.name === c.resource);
    if (r?.id) ids.set(r.id, c.id);
    ids.set(c.name, c.id);
  }
  const get = (ref: string, where: string, kind: string) => {
    const id = ids.get(ref);
    if (!id) throw new Error(`${where}: ${kind} ${ref} was not created by the first apply`);
    return id;
  };
  return {
    config: (ref, where) => get(ref, where, "config"),
    secret: (ref, where) => get(ref, where, "secret"),
    network: (ref, where) => get(ref, where, "network"),
  };
}

/**
 * Fails unless the two plans differ in the image reference only (it also appears in the service label
 * com.docker.stack.image, as `docker stack deploy` sets it).
 */
function requireImageOnlyChange(a: Plan, b: Plan): void {
  if (a.image === b.image) throw new Error(`API_TAG=${NEW_TAG} did not change the image of ${SERVICE}`);
  const same: Resolver = { config: (x) => x, secret: (x) => x, network: (x) => x };
  const specA = JSON.stringify(serviceSpec(a.service, same).spec);
  const specB = JSON.stringify(serviceSpec(b.service, same).spec).split(b.image).join(a.image);
  if (specA !== specB) throw new Error(`the two plans of ${SERVICE} differ in more than the image`);
  if (a.resources.length !== b.resources.length) throw new Error(`the two plans differ in their resources`);
  a.resources.forEach((x, i) => {
    if (x !== a.service && JSON.stringify(x.inputs) !== JSON.stringify(b.resources[i].inputs))
      throw new Error(`the two plans differ in ${x.type} ${x.name}`);
  });
}

/** The update policy and healthcheck the program set, and the floor they impose (see the header). */
function floorOf(service: CapturedLike) {
  const inputs = service.inputs as {
    mode?: { replicated?: { replicas?: number } };
    updateConfig?: { parallelism?: number; delay?: string; monitor?: string; order?: string };
  };
  const replicas = inputs.mode?.replicated?.replicas ?? 1;
  const uc = inputs.updateConfig ?? {};
  const parallelism = uc.parallelism ?? 1;
  const s = (d: string | undefined, what: string) => (d ? durationNs(d, what) / 1e6 : 0);
  const delayMs = s(uc.delay, "updateConfig.delay");
  const monitorMs = s(uc.monitor, "updateConfig.monitor");
  const hc = containerSpecOf(service).healthcheck as { interval?: string } | undefined;
  const intervalMs = s(hc?.interval, "healthcheck.interval");
  const batches = Math.ceil(replicas / (parallelism === 0 ? replicas : parallelism));
  return {
    replicas,
    parallelism,
    order: uc.order ?? "stop-first",
    delayMs,
    monitorMs,
    intervalMs,
    batches,
    delaysMs: (batches - 1) * delayMs,
    floorMs: (batches - 1) * delayMs + batches * intervalMs,
  };
}

interface Task {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Timestamp?: string };
  Spec: { ContainerSpec: { Image: string } };
}

/** Polls until `replicas` tasks run `image` and no task of another image runs; returns when each started. */
async function waitForImage(docker: Docker, image: string, replicas: number, t0: number) {
  const deadline = t0 + CONVERGE_TIMEOUT_MS;
  for (;;) {
    const tasks = (await docker.listTasks({ filters: { service: [SERVICE] } })) as Task[];
    const running = tasks.filter((t) => t.Status.State === "running");
    const fresh = running.filter((t) => t.Spec.ContainerSpec.Image === image && t.DesiredState === "running");
    if (fresh.length === replicas && running.length === replicas) {
      return {
        at: Date.now(),
        nodes: new Set(fresh.map((t) => t.NodeID)).size,
        // Tasks of the new image that failed (e.g. a healthcheck that timed out) and were replaced.
        failed: tasks.filter(
          (t) => t.Spec.ContainerSpec.Image === image && ["failed", "rejected"].includes(t.Status.State),
        ).length,
        // When each new task reached running, by the manager's clock (the same machine's clock).
        startedAt: fresh.map((t) => Date.parse(t.Status.Timestamp ?? "") - t0).sort((a, b) => a - b),
      };
    }
    // failure_action rollback (or pause): the update gave up, so the new image will not come.
    const svc = (await docker.getService(SERVICE).inspect()) as {
      UpdateStatus?: { State?: string; Message?: string };
    };
    const st = svc.UpdateStatus?.State ?? "";
    if (st.startsWith("rollback") || st === "paused")
      throw new Error(
        `the update of ${SERVICE} to ${image} ended in ${st}: ${svc.UpdateStatus?.Message ?? ""}`,
      );
    if (Date.now() > deadline) {
      const states = tasks.map((t) => `${t.Spec.ContainerSpec.Image} ${t.DesiredState}/${t.Status.State}`);
      throw new Error(`${SERVICE} did not converge on ${image} in ${CONVERGE_TIMEOUT_MS} ms: ${states}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2), "service");
  installIsolateModules();
  let tb: Testbed | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= tb ? tb.down().catch((e) => console.error(`testbed down: ${e}`)) : undefined);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping the testbed`);
      void Promise.resolve(cleanup()).finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    });
  }
  const tBench = Date.now();
  try {
    const tPlan = Date.now();
    const a = await plan();
    const b = await plan(NEW_TAG);
    console.log(`planned ${SERVICE} twice under mocks in ${Date.now() - tPlan} ms: ${a.image} -> ${b.image}`);
    requireImageOnlyChange(a, b);
    const f = floorOf(a.service);
    console.log(
      `${SERVICE}: ${f.replicas} replicas, update parallelism ${f.parallelism}, delay ${sec(f.delayMs)} s, ` +
        `monitor ${sec(f.monitorMs)} s, order ${f.order}, healthcheck interval ${sec(f.intervalMs)} s`,
    );

    // Images under the program's references, built here and copied into every host.
    const needs = standinNeeds([a.service]);
    buildImage("standin", [a.image, b.image], needs);

    const tStart = Date.now();
    tb = await startTestbed({ hosts: 5, name: "service", preferLocalImages: true });
    await formSwarm(tb, 3);
    for (const image of [a.image, b.image]) await tb.loadImage(image);
    console.log(`testbed: 5 hosts, swarm 3+2, images loaded in ${Date.now() - tStart} ms`);

    const docker = new Docker({ socketPath: tb.hosts[0].dockerSocket });
    const tApply = Date.now();
    const applied = await apply(docker, a.resources);
    await waitConverged(docker, [SERVICE], CONVERGE_TIMEOUT_MS, 1000);
    const first = await waitForImage(docker, a.image, f.replicas, tApply);
    if (first.nodes !== f.replicas)
      throw new Error(`the ${f.replicas} tasks of ${SERVICE} run on ${first.nodes} hosts, not spread`);
    console.log(`deployed ${SERVICE} (${a.image}) on ${first.nodes} hosts in ${Date.now() - tApply} ms`);
    const resolve = resolverOf(a, applied);

    const results: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const to = run % 2 === 1 ? b : a;
      const { spec } = serviceSpec(to.service, resolve);
      const current = (await docker.getService(SERVICE).inspect()) as { Version: { Index: number } };
      const t0 = Date.now();
      await docker.getService(SERVICE).update({ _query: { version: current.Version.Index }, _body: spec });
      const done = await waitForImage(docker, to.image, f.replicas, t0);
      const ms = done.at - t0;
      results.push(ms);
      console.log(
        `run ${run}/${runs}: -> ${to.image}: ${ms} ms; new tasks running at ` +
          `${done.startedAt.map(sec).join(", ")} s; on ${done.nodes} hosts; ${done.failed} failed tasks`,
      );
    }

    const over = results.map((ms) => ms - f.floorMs);
    const row = (label: string, xs: number[]) =>
      `| ${label} | ${sec(median(xs))} | ${sec(Math.min(...xs))} | ${sec(Math.max(...xs))} |`;
    console.log("");
    console.log(
      `Service convergence: ${SERVICE}, ${f.replicas} replicas on 5 hosts, image change (s, ${runs} runs)`,
    );
    console.log("| | median | min | max |");
    console.log("|---|---|---|---|");
    console.log(row("image change until every task runs the new image", results));
    console.log(
      `| configured floor: ${f.batches} x healthcheck interval ${sec(f.intervalMs)} + ${f.batches - 1} x ` +
        `update delay ${sec(f.delayMs)} | ${sec(f.floorMs)} | | |`,
    );
    console.log(
      `| (of which update delays alone: ${f.batches - 1} x ${sec(f.delayMs)}) | ${sec(f.delaysMs)} | | |`,
    );
    console.log(row("overhead (measured - floor)", over));
    console.log(
      `| measured / floor | ${(median(results) / f.floorMs).toFixed(2)} | ` +
        `${(Math.min(...results) / f.floorMs).toFixed(2)} | ${(Math.max(...results) / f.floorMs).toFixed(2)} |`,
    );
    console.log(
      `(update "completed" comes >= delay ${sec(f.delayMs)} + monitor ${sec(f.monitorMs)} s after the last ` +
        `task runs; not waited for)`,
    );
    console.log(`bench:service took ${sec(Date.now() - tBench)} s in all`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:service failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exit(1);
  },
);
