// Reaching the real Docker engine that the engine tests use, and making sure it is in swarm mode.
// Never skips: if the engine is missing, the error says what to install and how to start it.
import Docker from "dockerode";
import { execFileSync } from "child_process";
import { existsSync } from "fs";

/** The engine socket. `DOCKER_HOST=unix:///path` overrides it. */
export const DOCKER_SOCKET = (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(
  /^unix:\/\//,
  "",
);

const HOW_TO =
  "The engine tests need a running Docker engine on " +
  DOCKER_SOCKET +
  ". Install it with `apt-get install docker.io` (Debian), then start it as root with " +
  "`dockerd >/var/log/dockerd.log 2>&1 &` (or run `bash .ci/run`, which does both).";

/** A dockerode client for the engine socket. */
export function engine(): Docker {
  return new Docker({ socketPath: DOCKER_SOCKET });
}

/** Throws, with what to install/start, unless the engine answers a ping and the `docker` CLI exists. */
export async function requireEngine(): Promise<Docker> {
  if (!existsSync(DOCKER_SOCKET)) throw new Error(`no Docker engine socket at ${DOCKER_SOCKET}. ${HOW_TO}`);
  const d = engine();
  try {
    await d.ping();
  } catch (e) {
    throw new Error(
      `the Docker engine at ${DOCKER_SOCKET} does not answer (${(e as Error).message}). ${HOW_TO}`,
    );
  }
  try {
    execFileSync("docker", ["version", "--format", "{{.Client.Version}}"], { stdio: "pipe" });
  } catch (e) {
    throw new Error(`the docker CLI is missing or broken (${(e as Error).message}). ${HOW_TO}`);
  }
  return d;
}

/** The engine, in swarm mode: runs `docker swarm init --advertise-addr 127.0.0.1` if the swarm is inactive. */
export async function requireSwarm(): Promise<Docker> {
  const d = await requireEngine();
  const info = await d.info();
  const state: string = info.Swarm?.LocalNodeState ?? "inactive";
  if (state === "inactive") {
    await d.swarmInit({ ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1" });
  } else if (state !== "active") {
    throw new Error(`swarm state on ${DOCKER_SOCKET} is "${state}"; expected active or inactive`);
  }
  const after = await d.info();
  if (!after.Swarm?.ControlAvailable) {
    throw new Error(
      `the engine at ${DOCKER_SOCKET} is in a swarm but is not a manager; the engine tests need one`,
    );
  }
  return d;
}

/** Runs the docker CLI (against the same engine) and returns stdout; throws with stderr on failure. */
export function dockerCli(
  args: string[],
  opts: { input?: string | Buffer; timeoutMs?: number } = {},
): string {
  try {
    return execFileSync("docker", args, {
      input: opts.input,
      timeout: opts.timeoutMs ?? 120_000,
      env: { ...process.env, DOCKER_HOST: `unix://${DOCKER_SOCKET}` },
      stdio: ["pipe", "pipe", "pipe"],
    }).toString();
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(`docker ${args.join(" ")} failed: ${err.stderr?.toString() || err.message}`);
  }
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes; then throws with `describe()`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  describe: () => Promise<string> = async () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}. ${await describe()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Adds to the local node the labels that `node.labels.K==V` placement constraints ask for. Other constraints
 * must already hold on this one-node swarm (`node.role==manager`); anything else throws, so a test never
 * runs with a placement it cannot satisfy. Returns the labels added.
 */
export async function labelNodeFor(
  d: Docker,
  constraints: readonly string[],
): Promise<Record<string, string>> {
  const info = await d.info();
  const nodeId: string = info.Swarm.NodeID;
  const wanted: Record<string, string> = {};
  for (const c of constraints) {
    const label = /^node\.labels\.([^=!\s]+)\s*==\s*(.*)$/.exec(c.trim());
    if (label) {
      wanted[label[1]] = label[2].trim();
      continue;
    }
    if (/^node\.role\s*==\s*manager$/.test(c.trim())) continue;
    throw new Error(`placement constraint "${c}" cannot be satisfied by the test node; extend labelNodeFor`);
  }
  if (Object.keys(wanted).length === 0) return wanted;
  const node = d.getNode(nodeId);
  const current = (await node.inspect()) as {
    Version: { Index: number };
    Spec: { Labels?: Record<string, string> };
  };
  await node.update({
    version: current.Version.Index,
    ...current.Spec,
    Labels: { ...(current.Spec.Labels ?? {}), ...wanted },
  });
  return wanted;
}
