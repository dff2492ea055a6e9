// Tests of startPersister over a small at-least-once bus and a store keyed by id: no loss, no duplicate.

import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import fc from "fast-check";
import type { TroupeEvent } from "../../actors/events.ts";
import type {
  ConsumeOptions,
  DeadLetter,
  Delivery,
  EventBus,
  EventStore,
} from "../../actors/ports.ts";
import { type Persister, type PersisterOptions, startPersister } from "../../actors/persister.ts";
import { type ManualClock, manualClock } from "../_helpers/manual_clock.ts";

function event(id: string): TroupeEvent {
  return { id, type: "session.activated", ts: 1, org: "o", session: "s", historyLength: 0 };
}

interface Entry {
  data: unknown;
  state: "ready" | "inflight" | "acked";
  attempts: number;
  /** Bumped on every delivery and crash: an ack or nak of an older delivery does nothing. */
  token: number;
}

/**
 * A durable consumer group in memory, at least once: a delivery stays in
 * flight until acked (stored for good) or nak'ed (ready again). `crash()`
 * drops the consumers' connections: every delivery in flight is ready again,
 * acks of the old deliveries do nothing, and open consumptions throw.
 */
function fakeBus() {
  const entries: Entry[] = [];
  let generation = 0;
  let wake = Promise.withResolvers<void>();
  function notify(): void {
    wake.resolve();
    wake = Promise.withResolvers<void>();
  }
  function deliver(entry: Entry): Delivery {
    entry.state = "inflight";
    entry.attempts++;
    const token = ++entry.token;
    const live = () => entry.token === token && entry.state === "inflight";
    return {
      data: entry.data,
      attempt: entry.attempts,
      ack() {
        if (live()) entry.state = "acked";
        return Promise.resolve();
      },
      nak() {
        if (!live()) return;
        entry.state = "ready";
        notify();
      },
    };
  }
  async function* consumption(from: number, options: ConsumeOptions) {
    const { signal, batchSize } = options;
    const aborted = new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true })
    );
    while (!signal.aborted) {
      if (from !== generation) {
        throw new Error("Cannot consume: the connection to the bus was lost");
      }
      const ready = entries.filter((e) => e.state === "ready").slice(0, batchSize);
      if (ready.length > 0) yield ready.map(deliver);
      else await Promise.race([wake.promise, aborted]);
    }
  }
  const bus = {
    consumers: 0,
    publish(data: unknown): void {
      entries.push({ data: structuredClone(data), state: "ready", attempts: 0, token: 0 });
      notify();
    },
    subscribe: () => () => {},
    consume(_group: string, options: ConsumeOptions): AsyncIterable<Delivery[]> {
      bus.consumers++;
      return consumption(generation, options);
    },
    crash(): void {
      generation++;
      for (const entry of entries) {
        if (entry.state !== "inflight") continue;
        entry.state = "ready";
        entry.token++;
      }
      notify();
    },
    count: (state: Entry["state"]) => entries.filter((e) => e.state === state).length,
    allAcked: () => entries.every((e) => e.state === "acked"),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  } satisfies EventBus & Record<string, unknown>;
  return bus;
}

/**
 * An event store in memory that behaves like the SQL one: one transaction
 * per batch (all or nothing), `ON CONFLICT (id) DO NOTHING`, and a switch
 * that makes the next writes fail. Hooks run inside the transaction, before
 * and after the commit, so a test can crash the consumer at those points.
 */
function fakeStore() {
  const rows: TroupeEvent[] = [];
  const ids = new Set<string>();
  const letters: DeadLetter[] = [];
  const store = {
    rows,
    letters,
    failNext: 0,
    beforeCommit: null as (() => void) | null,
    afterCommit: null as (() => void) | null,
    async writeEvents(events: TroupeEvent[]): Promise<number> {
      await Promise.resolve();
      if (store.failNext > 0) {
        store.failNext--;
        throw new Error("Cannot write events: the database is unavailable");
      }
      store.beforeCommit?.();
      const fresh = new Map<string, TroupeEvent>();
      for (const e of events) if (!ids.has(e.id) && !fresh.has(e.id)) fresh.set(e.id, e);
      for (const [id, e] of fresh) {
        ids.add(id);
        rows.push(structuredClone(e));
      }
      store.afterCommit?.();
      return fresh.size;
    },
    async writeDeadLetters(more: DeadLetter[]): Promise<void> {
      await Promise.resolve();
      letters.push(...more);
    },
    close: () => Promise.resolve(),
  } satisfies EventStore & Record<string, unknown>;
  return store;
}

/** Advance the clock in steps until `condition` holds; fail after `steps` steps. */
async function until(
  clock: ManualClock,
  condition: () => boolean,
  what: string,
  steps = 2_000,
): Promise<void> {
  for (let i = 0; i < steps; i++) {
    if (condition()) return;
    await clock.advance(10);
  }
  throw new Error(`Timed out after ${steps} clock steps waiting for ${what}`);
}

function setup(overrides: Partial<PersisterOptions> = {}) {
  const clock = manualClock();
  const bus = fakeBus();
  const store = fakeStore();
  const errors: string[] = [];
  const options: PersisterOptions = {
    bus,
    store,
    clock,
    random: () => 0,
    batchSize: 3,
    maxAgeMs: 5,
    maxBuffered: 6,
    minBackoffMs: 10,
    maxBackoffMs: 80,
    onError: (error, { phase }) => errors.push(`${phase}: ${(error as Error).message}`),
    ...overrides,
  };
  return { clock, bus, store, errors, options };
}

Deno.test("startPersister refuses bad options with a message naming the option", () => {
  const { options } = setup();
  throws(
    () => startPersister({ ...options, batchSize: 0 }),
    new RangeError(
      "Cannot start the persister: batchSize must be an integer of at least 1, current value is 0",
    ),
  );
  throws(() => startPersister({ ...options, maxAgeMs: Number.NaN }), RangeError);
  throws(
    () => startPersister({ ...options, batchSize: 10, maxBuffered: 5 }),
    /maxBuffered must be an integer of at least 10, current value is 5/,
  );
  throws(
    () => startPersister({ ...options, batchSize: 10, maxBatchSize: 5 }),
    /maxBatchSize must be an integer of at least 10, current value is 5/,
  );
  throws(() => startPersister({ ...options, minBackoffMs: 100, maxBackoffMs: 10 }), RangeError);
  throws(() => startPersister({ ...options, group: "" }), /group must be a non-empty string/);
  const { consume: _, ...withoutConsume } = fakeBus();
  throws(
    () => startPersister({ ...options, bus: withoutConsume }),
    (error: unknown) =>
      error instanceof TypeError && error.message.includes("the bus has no consume()"),
  );
});

Deno.test("the fake store behaves like the port: one transaction, ON CONFLICT DO NOTHING", async () => {
  const store = fakeStore();
  assertEquals(await store.writeEvents([event("a"), event("b"), event("a")]), 2);
  assertEquals(await store.writeEvents([event("b"), event("c")]), 1);
  store.failNext = 1;
  await rejects(store.writeEvents([event("d")]), /database is unavailable/);
  assertEquals(store.rows.map((e) => e.id), ["a", "b", "c"]);
});

Deno.test("published events are written in batches and acked only after the commit", async () => {
  const { clock, bus, store, options } = setup();
  let ackedAtCommit = -1;
  store.afterCommit = () => {
    ackedAtCommit = bus.count("acked");
  };
  const persister = startPersister(options);
  for (const id of ["a", "b", "c"]) bus.publish(event(id));
  await until(clock, () => bus.allAcked(), "three acks");
  assertEquals(ackedAtCommit, 0);
  assertEquals(store.rows.map((e) => e.id), ["a", "b", "c"]);

  bus.publish(event("d"));
  await until(clock, () => bus.allAcked(), "the partial batch written by age");
  await persister.close();
  assertEquals(store.rows.map((e) => e.id), ["a", "b", "c", "d"]);
  assertEquals(persister.stats(), {
    buffered: 0,
    written: 4,
    deadLettered: 0,
    retries: 0,
    resubscribes: 0,
    lastError: null,
  });
});

Deno.test("invalid events are dead-lettered and acked so they never block the stream", async () => {
  const { clock, bus, store, options } = setup();
  await using persister = startPersister(options);
  bus.publish({ id: "bad", type: "usage.recorded", ts: 1, org: "o", session: "s" });
  bus.publish(event("good"));
  await until(clock, () => bus.allAcked(), "both acked");
  assertEquals(store.rows.map((e) => e.id), ["good"]);
  assertEquals(store.letters.map((l) => [l.id, l.reason]), [
    ["bad", "usage.recorded: run must be a non-empty string, current value is missing"],
  ]);
  assertEquals(persister.stats().deadLettered, 1);
});

Deno.test("a failed write is retried with backoff; nothing is acked before it commits", async () => {
  const { clock, bus, store, errors, options } = setup();
  store.failNext = 3;
  await using persister = startPersister(options);
  for (const id of ["a", "b", "c"]) bus.publish(event(id));
  await until(clock, () => errors.length === 3, "three failed writes");
  assertEquals(bus.count("acked"), 0);
  assertEquals(store.rows.length, 0);
  await until(clock, () => bus.allAcked(), "the retried batch acked");
  assertEquals(store.rows.map((e) => e.id), ["a", "b", "c"]);
  const stats = persister.stats();
  assertEquals([stats.retries, stats.written], [3, 3]);
  assert(stats.lastError instanceof Error);
  assertEquals(errors, Array(3).fill("write: Cannot write events: the database is unavailable"));
});

Deno.test("after the bus fails the persister subscribes again and redelivered events are stored once", async () => {
  const { clock, bus, store, errors, options } = setup();
  let crashed = false;
  store.afterCommit = () => {
    // The commit happened but the acks will come too late: the bus delivers the batch again.
    if (!crashed) bus.crash();
    crashed = true;
  };
  await using persister = startPersister(options);
  for (const id of ["a", "b", "c"]) bus.publish(event(id));
  await until(clock, () => bus.allAcked(), "the redelivered batch acked");
  assertEquals(store.rows.map((e) => e.id), ["a", "b", "c"]);
  assertEquals(bus.consumers, 2);
  assertEquals(persister.stats().resubscribes, 1);
  assertEquals(persister.stats().written, 3);
  assertEquals(errors, ["consume: Cannot consume: the connection to the bus was lost"]);
});

Deno.test("a full buffer stops the pulling until the store catches up", async () => {
  const { clock, bus, store, options } = setup({ batchSize: 2, maxBuffered: 4 });
  store.failNext = 1_000;
  await using persister = startPersister(options);
  for (let i = 0; i < 20; i++) bus.publish(event(`e${i}`));
  await clock.advance(200);
  assertEquals(bus.count("inflight"), 4);
  assertEquals(persister.stats().buffered, 4);
  store.failNext = 0;
  await until(clock, () => bus.allAcked(), "every event acked");
  assertEquals(store.rows.length, 20);
});

Deno.test("close stops pulling, drains what is held and is idempotent", async () => {
  const { clock, bus, store, options } = setup({ batchSize: 10, maxAgeMs: 1_000, maxBuffered: 20 });
  const persister = startPersister(options);
  bus.publish(event("a"));
  bus.publish(event("b"));
  await clock.settle();
  assertEquals(persister.stats().buffered, 2);
  const closing = persister.close();
  assert(persister.close() === closing);
  await closing;
  assertEquals(store.rows.map((e) => e.id), ["a", "b"]);
  assert(bus.allAcked());
  bus.publish(event("c"));
  await clock.advance(2_000);
  assertEquals(bus.count("ready"), 1);
  assertEquals(clock.pending, 0);
});

Deno.test("close with an aborted signal gives up: held events go back to the bus", async () => {
  const { clock, bus, store, options } = setup({ batchSize: 10, maxAgeMs: 1_000, maxBuffered: 20 });
  store.failNext = 1;
  const persister = startPersister(options);
  bus.publish(event("a"));
  await clock.settle();
  await persister.close({ signal: AbortSignal.abort() });
  assertEquals(bus.count("ready"), 1);
  assertEquals(store.rows.length, 0);
  assertEquals(clock.pending, 0);
});

Deno.test("close does not wait for a bus that ignores the signal; a late batch goes back", async () => {
  const { clock, options } = setup();
  const late = Promise.withResolvers<IteratorResult<Delivery[]>>();
  let naks = 0;
  const stubborn: EventBus = {
    publish: () => {},
    subscribe: () => () => {},
    consume: () => ({
      [Symbol.asyncIterator]: () => ({ next: () => late.promise }),
    }),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const persister = startPersister({ ...options, bus: stubborn });
  await clock.settle();
  await persister.close();
  const delivery: Delivery = {
    data: event("a"),
    attempt: 1,
    ack: () => Promise.reject(new Error("must not be acked")),
    nak: () => void naks++,
  };
  late.resolve({ done: false, value: [delivery] });
  await late.promise;
  await Promise.resolve();
  assertEquals(naks, 1);
  assertEquals(persister.stats().buffered, 0);
});

type Step =
  | { kind: "publish"; count: number; invalid: boolean }
  | { kind: "advance"; ms: number }
  | { kind: "failWrites"; count: number }
  | { kind: "dropConnection" }
  | { kind: "crash"; at: "beforeWrite" | "afterWrite" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("publish"),
      count: fc.integer({ min: 1, max: 5 }),
      invalid: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("advance"), ms: fc.integer({ min: 0, max: 60 }) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("failWrites"),
      count: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant("dropConnection") }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("crash"),
      at: fc.constantFrom("beforeWrite" as const, "afterWrite" as const),
    }),
    weight: 1,
  },
);

Deno.test("property: whatever fails and crashes, every published event is stored exactly once", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 40, size: "max" }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      async (steps, batchSize, slack, jitter) => {
        const { clock, bus, store, options } = setup({
          batchSize,
          maxBuffered: batchSize * slack,
          random: () => jitter,
          onError: () => {},
        });
        const published = new Set<string>();
        const invalid = new Set<string>();
        const closings: Promise<void>[] = [];
        let persister: Persister = startPersister(options);
        // A consumer crash: its connection drops (deliveries in flight come back) and the
        // process is gone (its actor stops; a write already sent may still commit).
        function crash(): void {
          bus.crash();
          closings.push(persister.close({ signal: AbortSignal.abort() }));
          persister = startPersister(options);
        }
        for (const s of steps) {
          if (s.kind === "publish") {
            for (let i = 0; i < s.count; i++) {
              const id = `e${published.size + invalid.size}`;
              if (s.invalid && i === 0) {
                invalid.add(id);
                bus.publish({ ...event(id), historyLength: "many" });
              } else {
                published.add(id);
                bus.publish(event(id));
              }
            }
          } else if (s.kind === "advance") await clock.advance(s.ms);
          else if (s.kind === "failWrites") store.failNext += s.count;
          else if (s.kind === "dropConnection") bus.crash();
          else if (s.at === "beforeWrite") {
            store.beforeCommit = () => {
              store.beforeCommit = null;
              crash();
              throw new Error("Cannot write events: the consumer crashed");
            };
          } else {
            store.afterCommit = () => {
              store.afterCommit = null;
              crash();
            };
          }
          await clock.settle();
        }
        store.failNext = 0;
        store.beforeCommit = null;
        store.afterCommit = null;
        await until(clock, () => bus.allAcked(), "every delivery acked");
        await persister.close();
        await Promise.all(closings);

        const stored = store.rows.map((e) => e.id);
        assertEquals(new Set(stored), published, "no event lost");
        assertEquals(stored.length, published.size, "no event stored twice");
        assertEquals(new Set(store.letters.map((l) => l.id)), invalid);
        assertEquals(clock.pending, 0);
      },
    ),
    { numRuns: 150 },
  );
});
