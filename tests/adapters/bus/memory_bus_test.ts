// Runs the EventBus contract against the in-memory bus, plus what only the memory bus promises (groups too).

import assert from "node:assert/strict";
import type { TroupeEvent } from "../../../actors/events.ts";
import type { Delivery } from "../../../actors/ports.ts";
import { memoryBus } from "../../../adapters/bus/memory_bus.ts";
import { manualClock } from "../../_helpers/manual_clock.ts";
import { settledYet } from "../../_helpers/settled_yet.ts";
import { runBusContract } from "../../contracts/bus_contract.ts";

runBusContract({ name: "memory", create: memoryBus });

function activated(n: number): TroupeEvent {
  return {
    id: `e${n}`,
    ts: n,
    org: "o",
    session: "s",
    type: "session.activated",
    historyLength: n,
  };
}

Deno.test("memory bus: publish never runs a subscriber inside publish", async () => {
  await using bus = memoryBus();
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  bus.publish(activated(1));
  bus.publish(activated(2));
  assert.deepEqual(seen, []);
  await bus.flush();
  assert.deepEqual(seen, ["e1", "e2"]);
});

Deno.test("memory bus: delivers on its own after publish returns, without flush", async () => {
  await using bus = memoryBus();
  const delivered = Promise.withResolvers<TroupeEvent>();
  bus.subscribe((event) => delivered.resolve(event));
  bus.publish(activated(1));
  assert.deepEqual(await delivered.promise, activated(1));
});

Deno.test("memory bus: a subscriber that publishes does not run re-entrantly", async () => {
  await using bus = memoryBus();
  const trace: string[] = [];
  bus.subscribe((event) => {
    trace.push(`start ${event.id}`);
    if (event.id === "e1") bus.publish(activated(2));
    trace.push(`end ${event.id}`);
  });
  bus.publish(activated(1));
  await bus.flush();
  await bus.flush();
  assert.deepEqual(trace, ["start e1", "end e1", "start e2", "end e2"]);
});

Deno.test("memory bus: drops events published while nobody is subscribed", async () => {
  await using bus = memoryBus();
  bus.publish(activated(1));
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  bus.publish(activated(2));
  await bus.flush();
  assert.deepEqual(seen, ["e2"]);
});

Deno.test("memory bus: publish after close neither throws nor delivers", async () => {
  await using bus = memoryBus();
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  await bus.close();
  bus.publish(activated(1));
  await bus.flush();
  assert.deepEqual(seen, []);
});

/** Pulls the next batch of a consumption, or `undefined` once it ended. */
async function nextBatch(
  iterator: AsyncIterator<Delivery[]>,
): Promise<Delivery[] | undefined> {
  const result = await iterator.next();
  return result.done ? undefined : result.value;
}

function ids(batch: Delivery[] | undefined): string[] {
  return (batch ?? []).map((delivery) => (delivery.data as TroupeEvent).id);
}

Deno.test("memory bus: a listed group keeps events published before its first consume", async () => {
  await using bus = memoryBus({ groups: ["usage"] });
  for (let n = 1; n <= 5; n++) bus.publish(activated(n));
  const controller = new AbortController();
  const batches = bus.consume!("usage", { signal: controller.signal, batchSize: 2, maxWaitMs: 0 })
    [Symbol.asyncIterator]();
  assert.deepEqual(ids(await nextBatch(batches)), ["e1", "e2"]);
  assert.deepEqual(ids(await nextBatch(batches)), ["e3", "e4"]);
  const last = await nextBatch(batches);
  assert.deepEqual(ids(last), ["e5"]);
  assert.equal(last![0]!.attempt, 1);
  controller.abort();
  assert.equal(await nextBatch(batches), undefined);
});

Deno.test("memory bus: an unlisted group keeps events from its first consume on", async () => {
  await using bus = memoryBus();
  bus.publish(activated(1));
  const controller = new AbortController();
  const batches = bus.consume!("late", { signal: controller.signal, batchSize: 10, maxWaitMs: 0 })
    [Symbol.asyncIterator]();
  bus.publish(activated(2));
  assert.deepEqual(ids(await nextBatch(batches)), ["e2"]);
  controller.abort();
});

Deno.test("memory bus: each event of a group goes to one member only", async () => {
  await using bus = memoryBus({ groups: ["g"] });
  for (let n = 1; n <= 4; n++) bus.publish(activated(n));
  const controller = new AbortController();
  const options = { signal: controller.signal, batchSize: 2, maxWaitMs: 0 };
  const a = bus.consume!("g", options)[Symbol.asyncIterator]();
  const b = bus.consume!("g", options)[Symbol.asyncIterator]();
  const seen = [...ids(await nextBatch(a)), ...ids(await nextBatch(b))];
  assert.deepEqual(seen.sort(), ["e1", "e2", "e3", "e4"]);
  controller.abort();
});

Deno.test("memory bus: a partial batch is handed over maxWaitMs after its first event", async () => {
  const clock = manualClock();
  await using bus = memoryBus({ groups: ["g"], clock });
  const controller = new AbortController();
  const batches = bus.consume!("g", { signal: controller.signal, batchSize: 10, maxWaitMs: 50 })
    [Symbol.asyncIterator]();
  bus.publish(activated(1));
  const next = nextBatch(batches);
  await clock.settle();
  assert.equal(await settledYet(next), false);
  await clock.advance(50);
  assert.deepEqual(ids(await next), ["e1"]);
  controller.abort();
});

Deno.test("memory bus: a nak'd event comes again after its delay with a higher attempt", async () => {
  const clock = manualClock();
  await using bus = memoryBus({ groups: ["g"], clock });
  bus.publish(activated(1));
  const controller = new AbortController();
  const batches = bus.consume!("g", { signal: controller.signal, batchSize: 10, maxWaitMs: 0 })
    [Symbol.asyncIterator]();
  const first = await nextBatch(batches);
  first![0]!.nak(100);
  const again = nextBatch(batches);
  await clock.advance(99);
  assert.equal(await settledYet(again), false);
  await clock.advance(1);
  const second = await again;
  assert.deepEqual(ids(second), ["e1"]);
  assert.equal(second![0]!.attempt, 2);
  await second![0]!.ack();
  controller.abort();
});

Deno.test("memory bus: saturated() while a group's unacked backlog is at maxBuffered", async () => {
  await using bus = memoryBus({ groups: ["g"], maxBuffered: 3 });
  bus.publish(activated(1));
  bus.publish(activated(2));
  assert.equal(bus.saturated!(), false);
  bus.publish(activated(3));
  assert.equal(bus.saturated!(), true);
  const controller = new AbortController();
  const batches = bus.consume!("g", { signal: controller.signal, batchSize: 10, maxWaitMs: 0 })
    [Symbol.asyncIterator]();
  const batch = await nextBatch(batches);
  assert.equal(bus.saturated!(), true, "handed out is not acknowledged");
  await batch![0]!.ack();
  assert.equal(bus.saturated!(), false);
  controller.abort();
});

Deno.test("memory bus: consume ends when its signal aborts or the bus closes", async () => {
  await using bus = memoryBus();
  const controller = new AbortController();
  const aborted = nextBatch(
    bus.consume!("a", { signal: controller.signal, batchSize: 10, maxWaitMs: 0 })
      [Symbol.asyncIterator](),
  );
  controller.abort();
  assert.equal(await aborted, undefined);
  const open = new AbortController();
  const closing = nextBatch(
    bus.consume!("b", { signal: open.signal, batchSize: 10, maxWaitMs: 0 })[Symbol.asyncIterator](),
  );
  await bus.close();
  assert.equal(await closing, undefined);
});

Deno.test("memory bus: consume refuses a batch size that is not a positive integer", () => {
  const bus = memoryBus();
  const signal = new AbortController().signal;
  assert.throws(() => bus.consume!("g", { signal, batchSize: 0, maxWaitMs: 0 }), RangeError);
  assert.throws(() => bus.consume!("g", { signal, batchSize: 1, maxWaitMs: -1 }), RangeError);
});

Deno.test("memoryBus flush waits until a consuming group has acknowledged every event", async () => {
  await using bus = memoryBus({ groups: ["persisters"] });
  const controller = new AbortController();
  const acked: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const consumer = (async () => {
    for await (
      const batch of bus.consume!("persisters", {
        signal: controller.signal,
        batchSize: 10,
        maxWaitMs: 0,
      })
    ) {
      await gate;
      for (const delivery of batch) {
        acked.push((delivery.data as { id: string }).id);
        await delivery.ack();
      }
    }
  })();
  bus.publish({
    id: "a",
    ts: 0,
    org: "o",
    session: "s",
    type: "session.activated",
    historyLength: 0,
  });
  bus.publish({
    id: "b",
    ts: 0,
    org: "o",
    session: "s",
    type: "session.activated",
    historyLength: 0,
  });
  const flushing = bus.flush();
  assert.equal(await settledYet(flushing), false, "flush waits for the group");
  release();
  await flushing;
  assert.deepEqual(acked, ["a", "b"]);
  controller.abort();
  await consumer;
  bus.publish({
    id: "c",
    ts: 0,
    org: "o",
    session: "s",
    type: "session.activated",
    historyLength: 0,
  });
  await bus.flush(); // no member consumes any more: flush does not hang
});

/** A memory bus on a manual clock with group "g" and one consumption of it (batches of 10). */
function consumedGroup(maxWaitMs: number) {
  const clock = manualClock();
  const bus = memoryBus({ groups: ["g"], clock });
  const controller = new AbortController();
  const batches = bus.consume!("g", { signal: controller.signal, batchSize: 10, maxWaitMs })
    [Symbol.asyncIterator]();
  return {
    clock,
    bus,
    batches,
    async [Symbol.asyncDispose]() {
      controller.abort();
      await bus.close();
    },
  };
}

Deno.test("memory bus: persisted() waits for the events published before it, not later ones", async () => {
  await using group = consumedGroup(0);
  const { bus, batches } = group;
  const next = nextBatch(batches); // a member is consuming from here on
  bus.publish(activated(1));
  bus.publish(activated(2));
  const first = bus.persisted!();
  bus.publish(activated(3));
  const batch = (await next)!;
  assert.deepEqual(ids(batch), ["e1", "e2", "e3"]);
  await batch[0]!.ack();
  assert.equal(await settledYet(first), false, "e2 is not acknowledged yet");
  // Acknowledged out of order: e3 first, then e2 completes the events before the wait.
  await batch[2]!.ack();
  assert.equal(await settledYet(first), false);
  const second = bus.persisted!();
  await batch[1]!.ack();
  assert.equal(await settledYet(first), true, "e3 was published after the wait began");
  assert.equal(await settledYet(second), true, "e1 to e3 are all acknowledged");
});

Deno.test("memory bus: persisted() counts a nak'd event as unstored until its redelivery is acked", async () => {
  await using group = consumedGroup(0);
  const { clock, bus, batches } = group;
  const next = nextBatch(batches);
  bus.publish(activated(1));
  bus.publish(activated(2));
  const waiting = bus.persisted!();
  const batch = (await next)!;
  batch[0]!.nak(10);
  await batch[1]!.ack();
  await clock.advance(10);
  const again = (await nextBatch(batches))!;
  assert.deepEqual(ids(again), ["e1"]);
  assert.equal(await settledYet(waiting), false);
  await again[0]!.ack();
  await waiting;
});

Deno.test("memory bus: persisted() hands a partial batch over at once instead of after maxWaitMs", async () => {
  await using group = consumedGroup(50);
  const { clock, bus, batches } = group;
  bus.publish(activated(1));
  const next = nextBatch(batches);
  await clock.settle();
  assert.equal(await settledYet(next), false, "a partial batch waits for maxWaitMs");
  const waiting = bus.persisted!();
  const batch = (await next)!;
  assert.deepEqual(ids(batch), ["e1"]);
  await batch[0]!.ack();
  await waiting;
});

Deno.test("memory bus: persisted() does not hang without a consuming member, or after close", async () => {
  const bus = memoryBus({ groups: ["g"] });
  bus.publish(activated(1));
  await bus.persisted!(); // nobody consumes: nothing would ever acknowledge it
  const controller = new AbortController();
  const batches = bus.consume!("g", { signal: controller.signal, batchSize: 10, maxWaitMs: 0 })
    [Symbol.asyncIterator]();
  assert.deepEqual(ids(await nextBatch(batches)), ["e1"]);
  const whileConsumed = bus.persisted!();
  assert.equal(await settledYet(whileConsumed), false);
  await bus.close();
  await whileConsumed;
});
