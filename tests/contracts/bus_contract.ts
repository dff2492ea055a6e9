// The contract every `EventBus` implementation passes: ordered fan-out, unsubscribe, flush, close.

import assert from "node:assert/strict";
import { delay } from "@std/async";
import type { TroupeEvent } from "../../actors/events.ts";
import type { EventBus } from "../../actors/ports.ts";

/** What the contract hands to `create`: where a bus reports a subscriber that threw. */
export interface BusContractHooks {
  /** Receives the error a subscriber threw and the event it was handling. */
  onError: (error: unknown, event: TroupeEvent) => void;
}

/** What {@linkcode runBusContract} needs to know about one implementation. */
export interface BusContractOptions {
  /** Prefixes every test name, e.g. `"memory"` or `"nats"`. */
  name: string;
  /** Make a fresh bus that reports subscriber errors to `hooks.onError`; each test closes it. */
  create: (
    hooks: BusContractHooks,
  ) => Promise<EventBus & AsyncDisposable> | (EventBus & AsyncDisposable);
}

/** A valid event numbered `n`, so that order and identity are easy to check. */
function eventOf(n: number, session = "s"): TroupeEvent {
  return {
    id: `e${n}`,
    ts: 1_700_000_000_000 + n,
    org: "o",
    session,
    type: "message.received",
    message: `m${n}`,
    policy: "merge",
    length: n,
  };
}

function eventsOf(from: number, to: number): TroupeEvent[] {
  return Array.from({ length: to - from }, (_, i) => eventOf(from + i));
}

/**
 * Register the `EventBus` contract as `Deno.test` cases named `"<name> bus: …"`.
 *
 * @example
 * ```ts ignore
 * import { memoryBus } from "../../adapters/bus/memory_bus.ts";
 * import { runBusContract } from "./bus_contract.ts";
 *
 * runBusContract({ name: "memory", create: memoryBus });
 * ```
 */
export function runBusContract({ name, create }: BusContractOptions): void {
  function test(
    title: string,
    fn: (bus: EventBus, errors: Array<{ error: unknown; event: TroupeEvent }>) => Promise<void>,
  ): void {
    Deno.test(`${name} bus: ${title}`, async () => {
      const errors: Array<{ error: unknown; event: TroupeEvent }> = [];
      await using bus = await create({ onError: (error, event) => errors.push({ error, event }) });
      await fn(bus, errors);
    });
  }

  test("delivers every event published after subscribing, in publish order", async (bus) => {
    const seen: TroupeEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    const events = eventsOf(0, 200);
    for (const event of events) bus.publish(event);
    await bus.flush();
    assert.deepEqual(seen, events);
  });

  test("keeps publish order across events of different sessions", async (bus) => {
    const seen: string[] = [];
    bus.subscribe((event) => seen.push(event.id));
    const events = Array.from({ length: 30 }, (_, n) => eventOf(n, `s${n % 3}`));
    for (const event of events) bus.publish(event);
    await bus.flush();
    assert.deepEqual(seen, events.map((e) => e.id));
  });

  test("delivers every event to each of several subscribers", async (bus) => {
    const seen: TroupeEvent[][] = [[], [], []];
    for (const list of seen) bus.subscribe((event) => list.push(event));
    const events = eventsOf(0, 50);
    for (const event of events) bus.publish(event);
    await bus.flush();
    for (const list of seen) assert.deepEqual(list, events);
  });

  test("stops delivering to a subscriber once it unsubscribes, and only to that one", async (bus) => {
    const leaving: TroupeEvent[] = [];
    const staying: TroupeEvent[] = [];
    const unsubscribe = bus.subscribe((event) => leaving.push(event));
    bus.subscribe((event) => staying.push(event));
    for (const event of eventsOf(0, 5)) bus.publish(event);
    await bus.flush();
    unsubscribe();
    for (const event of eventsOf(5, 10)) bus.publish(event);
    await bus.flush();
    assert.deepEqual(leaving, eventsOf(0, 5));
    assert.deepEqual(staying, eventsOf(0, 10));
  });

  test("flush() resolves only after everything published before it was delivered", async (bus) => {
    const seen: TroupeEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    for (let round = 0; round < 5; round++) {
      const events = eventsOf(round * 10, round * 10 + 10);
      for (const event of events) bus.publish(event);
      await bus.flush();
      assert.deepEqual(seen.slice(-10), events, `round ${round}`);
      assert.equal(seen.length, (round + 1) * 10);
    }
  });

  test(
    "flush() ends under a steady stream of events, once a consuming group acked those before it",
    async (bus) => {
      if (bus.consume === undefined) return; // a bus without groups: the test above is the contract
      // A persister-like member: batches of up to 100, each acked after a 5 ms "write".
      const controller = new AbortController();
      const acked = new Set<string>();
      const consuming = (async () => {
        const options = { signal: controller.signal, batchSize: 100, maxWaitMs: 20 };
        for await (const batch of bus.consume!("steady", options)) {
          await delay(5);
          for (const delivery of batch) {
            acked.add((delivery.data as TroupeEvent).id);
            await delivery.ack();
          }
        }
      })();
      // An event every millisecond, so the group always holds some, for at most 5,000 events.
      const cap = 5_000;
      let published = 0;
      const publishing = (async () => {
        while (published < cap && !controller.signal.aborted) {
          bus.publish(eventOf(published++, "load"));
          await delay(1);
        }
      })();
      try {
        await delay(100);
        for (let round = 0; round < 3; round++) {
          const mine = eventOf(cap + round, "mine");
          bus.publish(mine);
          const before = published;
          await bus.flush();
          assert.ok(acked.has(mine.id), `round ${round}: the group acked the event before flush()`);
          for (let n = 0; n < before; n++) assert.ok(acked.has(`e${n}`), `round ${round}: e${n}`);
          assert.ok(published < cap, `round ${round}: flush() waited for the stream to stop`);
        }
      } finally {
        controller.abort();
        await publishing;
        await consuming;
      }
    },
  );

  test("flush() with nothing published resolves", async (bus) => {
    bus.subscribe(() => {});
    await bus.flush();
    await bus.flush();
  });

  test(
    "a throwing subscriber does not stop the others, and its error is reported",
    async (bus, errors) => {
      const boom = new Error("subscriber failed");
      const before: TroupeEvent[] = [];
      const after: TroupeEvent[] = [];
      bus.subscribe((event) => before.push(event));
      bus.subscribe(() => {
        throw boom;
      });
      bus.subscribe((event) => after.push(event));
      const events = eventsOf(0, 5);
      for (const event of events) bus.publish(event);
      await bus.flush();
      assert.deepEqual(before, events);
      assert.deepEqual(after, events);
      assert.deepEqual(errors, events.map((event) => ({ error: boom, event })));
    },
  );

  test("close() delivers everything published before it", async (bus) => {
    const seen: TroupeEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    const events = eventsOf(0, 20);
    for (const event of events) bus.publish(event);
    await bus.close();
    assert.deepEqual(seen, events);
  });

  test("close() twice is harmless", async (bus) => {
    await bus.close();
    await bus.close();
  });
}
