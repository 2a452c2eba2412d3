// Helpers for tests on the testbed: form a swarm with plain docker commands over the transport, and poll.

import { ExecResult } from "../../components/hosts/transport";
import { Testbed } from "./testbed";

/** Runs a command on a testbed host and throws (naming host, command and stderr) unless it exits 0. */
export async function run(tb: Testbed, host: string, command: string, stdin?: string): Promise<string> {
  const r: ExecResult = await tb.exec(host, command, stdin);
  if (r.code !== 0)
    throw new Error(`${host}: \`${command}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not reached after ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Forms a swarm: the first `managers` hosts are managers (h1 initialises), the rest join as workers, in parallel.
 * Returns the manager host name.
 */
export async function formSwarm(tb: Testbed, managers = 1): Promise<string> {
  const [first, ...others] = tb.hosts;
  await run(tb, first.name, `docker swarm init --advertise-addr ${first.address}`);
  const managerToken = (await run(tb, first.name, "docker swarm join-token -q manager")).trim();
  const workerToken = (await run(tb, first.name, "docker swarm join-token -q worker")).trim();
  await Promise.all(
    others.map((h, i) =>
      run(
        tb,
        h.name,
        `docker swarm join --advertise-addr ${h.address} --token ${i + 1 < managers ? managerToken : workerToken} ${first.address}:2377`,
      ),
    ),
  );
  await waitUntil(`all ${tb.hosts.length} nodes ready`, 60000, async () => {
    const out = await run(tb, first.name, "docker node ls --format '{{.Hostname}} {{.Status}}'");
    const ready = out.split("\n").filter((l) => l.endsWith(" Ready")).length;
    return ready === tb.hosts.length ? true : undefined;
  });
  return first.name;
}
