// A bound on concurrent `docker swarm join`s, per swarm, shared by every SwarmNode in one process.
//
// Under `pulumi up` every SwarmNode is its own resource, and the engine runs their creates concurrently
// (up to --parallel) in ONE dynamic-provider process. Each join makes the leader issue a node certificate
// and append to the raft log; past a few concurrent joins they only queue there (and a join that waits too
// long on the CA times out). The slots live on globalThis (looked up at call time), so that every copy of the
// provider's code one process runs (each resource's stored bundle may differ, after an upgrade) shares them.

/** Default of nodes.swarm.maxParallelJoins. See docs/benchmarks and BENCHMARKS.md for why 10. */
export const DEFAULT_MAX_PARALLEL_JOINS = 10;

interface Slots {
  active: number;
  waiting: (() => void)[];
}

function slotsOf(swarm: string): Slots {
  const key = Symbol.for("swarmform.swarm.joinSlots");
  const g = globalThis as unknown as Record<symbol, Map<string, Slots> | undefined>;
  const all = (g[key] ??= new Map());
  let s = all.get(swarm);
  if (!s) {
    s = { active: 0, waiting: [] };
    all.set(swarm, s);
  }
  return s;
}

/** The bound to apply: an integer >= 1, else (unset, e.g. state written before the input existed) the default. */
export function joinLimitOf(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1
    ? value
    : DEFAULT_MAX_PARALLEL_JOINS;
}

/** Why `value` is not a valid bound, or undefined when it is (unset is valid: the default applies). */
export function joinLimitProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === "number" && Number.isInteger(value) && value >= 1
    ? undefined
    : `maxParallelJoins must be an integer >= 1, got ${JSON.stringify(value)}`;
}

/**
 * Runs `fn` once fewer than `limit` joins into swarm `swarm` run in this process; waiters go first come,
 * first served. `limit` is read as joinLimitOf does.
 */
export async function withJoinSlot<T>(swarm: string, limit: unknown, fn: () => Promise<T>): Promise<T> {
  const max = joinLimitOf(limit);
  const s = slotsOf(swarm);
  while (s.active >= max) await new Promise<void>((resolve) => s.waiting.push(resolve));
  s.active++;
  try {
    return await fn();
  } finally {
    s.active--;
    // Wake every waiter: each re-checks against its own limit, in arrival order.
    const waiting = s.waiting.splice(0);
    for (const w of waiting) w();
  }
}

/** Joins running now in this process for `swarm` (for tests and diagnostics). */
export function activeJoins(swarm: string): number {
  return slotsOf(swarm).active;
}
