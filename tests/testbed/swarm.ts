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

/**
 * Testbeds taken in turn for benchmarks that form a swarm from nothing again and again. A released testbed leaves
 * its swarm in the background (Testbed.leaveSwarm), which takes about 5 s on a dockerd that has been in a swarm
 * before, mostly spent waiting on dockerd's own timeouts: while one testbed leaves, the bench measures on the other.
 * So that a leave's own work (about the first 2 s) does not land in a measurement, `next` also waits until every
 * leave has run for `quietMs`.
 */
export class TestbedRelay {
  private turn = 0;
  private readonly leaving = new Map<Testbed, { started: number; done: Promise<unknown> }>();

  constructor(
    private readonly beds: readonly Testbed[],
    private readonly quietMs = 3000,
  ) {}

  /** The next testbed in turn, out of any swarm, once every leave has run for `quietMs`. */
  async next(): Promise<Testbed> {
    const tb = this.beds[this.turn++ % this.beds.length];
    await this.leaving.get(tb)?.done;
    this.leaving.delete(tb);
    const quietAt = Math.max(0, ...[...this.leaving.values()].map((l) => l.started + this.quietMs));
    if (quietAt > Date.now()) await new Promise((r) => setTimeout(r, quietAt - Date.now()));
    return tb;
  }

  /** Starts `tb` leaving its swarm; a failure is thrown by the `next` (or `settle`) that waits for it. */
  release(tb: Testbed): void {
    const done = tb.leaveSwarm().catch((err: unknown) => {
      throw new Error(`testbed ${tb.name}: ${(err as Error).message}`);
    });
    done.catch(() => undefined); // reported when awaited, not as an unhandled rejection
    this.leaving.set(tb, { started: Date.now(), done });
  }

  /** Waits until every released testbed has left its swarm. */
  async settle(): Promise<void> {
    await Promise.all([...this.leaving.values()].map((l) => l.done));
    this.leaving.clear();
  }
}
