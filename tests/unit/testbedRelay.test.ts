// TestbedRelay (tests/testbed/swarm.ts), which the membership and engine benches use to let one testbed leave its
// swarm while the other is measured: turns, waiting for a testbed's own leave, the quiet time after any leave, and
// a failed leave. Stand-in testbeds: only leaveSwarm is called, and the test decides when it ends.
import { TestbedRelay } from "../testbed/swarm";
import type { Testbed } from "../testbed/testbed";

interface FakeBed {
  readonly tb: Testbed;
  leaves: number;
  /** Ends the current leave (with an error message, to fail it). */
  finish(error?: string): void;
}

function fakeBed(name: string): FakeBed {
  let end: ((error?: string) => void) | undefined;
  const bed: FakeBed = {
    leaves: 0,
    finish: (error) => end?.(error),
    tb: {
      name,
      leaveSwarm: () => {
        bed.leaves++;
        return new Promise<void>((resolve, reject) => {
          end = (error) => (error ? reject(new Error(error)) : resolve());
        });
      },
    } as unknown as Testbed,
  };
  return bed;
}

/** Whether `p` has settled within a few turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

test("turns alternate, and a testbed comes back only once its own leave has ended", async () => {
  const [a, b] = [fakeBed("a"), fakeBed("b")];
  const relay = new TestbedRelay([a.tb, b.tb], 0);
  expect(await relay.next()).toBe(a.tb);
  relay.release(a.tb);
  expect(await relay.next()).toBe(b.tb);
  relay.release(b.tb);
  const third = relay.next();
  expect(await settled(third)).toBe(false);
  a.finish();
  expect(await third).toBe(a.tb);
  expect([a.leaves, b.leaves]).toEqual([1, 1]);
  b.finish();
  await relay.settle();
});

test("next waits until every leave in progress has run for quietMs", async () => {
  const [a, b] = [fakeBed("a"), fakeBed("b")];
  const relay = new TestbedRelay([a.tb, b.tb], 300);
  await relay.next();
  const t0 = Date.now();
  relay.release(a.tb);
  expect(await relay.next()).toBe(b.tb);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  a.finish();
  await relay.settle();
});

test("a failed leave is thrown by the next that waits for it, naming the testbed", async () => {
  const [a, b] = [fakeBed("a"), fakeBed("b")];
  const relay = new TestbedRelay([a.tb, b.tb], 0);
  await relay.next();
  relay.release(a.tb);
  a.finish('h3 is still "active" after swarm leave --force');
  await relay.next();
  await expect(relay.next()).rejects.toThrow('testbed a: h3 is still "active" after swarm leave --force');
});
