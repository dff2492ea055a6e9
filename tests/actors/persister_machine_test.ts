// Unit tests of the persister machine: the real machine, a fake write or store, a manual clock.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createActor, fromPromise, toPromise } from "xstate";
import type { TroupeEvent } from "../../actors/events.ts";
import type { DeadLetter, Delivery, EventStore } from "../../actors/ports.ts";
import {
  type PersisterEmitted,
  persisterMachine,
  type PersisterMachineInput,
  type WriteInput,
  type WriteOutput,
} from "../../actors/persister_machine.ts";
import { manualClock } from "../_helpers/manual_clock.ts";

function event(id: string): TroupeEvent {
  return { id, type: "session.activated", ts: 1, org: "o", session: "s", historyLength: 0 };
}

interface Probe {
  delivery: Delivery;
  acks: number;
  naks: number;
}

/** A delivery that counts its acks; `log` records each ack in order with the store's writes. */
function probe(data: unknown, log: string[] = []): Probe {
  const self: Probe = {
    acks: 0,
    naks: 0,
    delivery: {
      data,
      attempt: 1,
      ack: () => {
        self.acks++;
        log.push(`ack ${(data as { id?: string }).id}`);
        return Promise.resolve();
      },
      nak: () => {
        self.naks++;
      },
    },
  };
  return self;
}

/** A store in memory: keyed by id, all-or-nothing, failing the next `failures` writes. */
function memoryStore(log: string[] = []) {
  const events = new Map<string, TroupeEvent>();
  const letters: DeadLetter[] = [];
  const store: EventStore & { failures: number } = {
    failures: 0,
    writeEvents(batch) {
      if (store.failures > 0) {
        store.failures--;
        log.push("write failed");
        return Promise.reject(new Error("database is locked"));
      }
      const fresh = batch.filter((e) => !events.has(e.id));
      for (const e of fresh) events.set(e.id, e);
      log.push(`write ${batch.map((e) => e.id).join(",")}`);
      return Promise.resolve(fresh.length);
    },
    writeDeadLetters(more) {
      letters.push(...more);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return { store, events, letters };
}

interface PendingWrite {
  deliveries: readonly Delivery[];
  finish(): void;
  fail(error: unknown): void;
}

/** A write actor that waits until the test finishes or fails it; it never acks. */
function fakeWrite(writes: PendingWrite[]) {
  return fromPromise<WriteOutput, WriteInput>(({ input }) =>
    new Promise<WriteOutput>((resolve, reject) => {
      writes.push({
        deliveries: input.deliveries,
        finish: () =>
          resolve({ written: input.deliveries.length, deadLettered: 0, acked: 0, ackErrors: [] }),
        fail: reject,
      });
    })
  );
}

function start(
  overrides: Partial<PersisterMachineInput> & { writes?: PendingWrite[] } = {},
) {
  const clock = manualClock();
  const { writes, ...input } = overrides;
  const machine = writes === undefined
    ? persisterMachine
    : persisterMachine.provide({ actors: { write: fakeWrite(writes) } });
  const emitted: PersisterEmitted[] = [];
  const actor = createActor(machine, {
    clock,
    input: {
      store: memoryStore().store,
      now: clock.now,
      random: () => 0,
      batchSize: 3,
      maxAgeMs: 50,
      maxBuffered: 100,
      minBackoffMs: 10,
      maxBackoffMs: 1_000,
      ...input,
    },
  });
  actor.on("*", (e) => emitted.push(e));
  actor.start();
  const send = (...probes: Probe[]) =>
    actor.send({ type: "deliveries.received", deliveries: probes.map((p) => p.delivery) });
  const state = () => JSON.stringify(actor.getSnapshot().value);
  return { actor, clock, emitted, send, state };
}

function ids(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((d) => (d.data as TroupeEvent).id);
}

Deno.test("a full batch is written at once; the rest waits for the next batch", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, send, state } = start({ writes, batchSize: 3 });
  send(probe(event("a")), probe(event("b")));
  await clock.settle();
  assertEquals(writes.length, 0);
  send(probe(event("c")), probe(event("d")));
  await clock.settle();
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b", "c"]]);
  assertEquals(state(), '"writing"');
  assertEquals(actor.getSnapshot().context.buffer.length, 1);

  writes[0]!.finish();
  await clock.settle();
  assertEquals(state(), '{"collecting":"aging"}');
  assertEquals(actor.getSnapshot().context.written, 3);
  actor.stop();
});

Deno.test("deliveries that pile up during a slow write go in the next one, up to maxBatchSize", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, send } = start({ writes, batchSize: 2, maxBatchSize: 5 });
  send(probe(event("a")), probe(event("b")));
  await clock.settle();
  for (const id of ["c", "d", "e", "f", "g", "h", "i"]) send(probe(event(id)));
  await clock.settle();
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"]]);
  writes[0]!.finish();
  await clock.settle();
  assertEquals(ids(writes[1]!.deliveries), ["c", "d", "e", "f", "g"]);
  writes[1]!.finish();
  await clock.settle();
  assertEquals(ids(writes[2]!.deliveries), ["h", "i"]);
  writes[2]!.finish();
  await clock.settle();
  assertEquals(actor.getSnapshot().context.written, 9);
  actor.stop();
});

Deno.test("a partial batch is written once its oldest delivery is maxAgeMs old", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, send } = start({ writes, batchSize: 10, maxAgeMs: 50 });
  send(probe(event("a")));
  await clock.advance(30);
  send(probe(event("b")));
  await clock.advance(19);
  assertEquals(writes.length, 0);
  await clock.advance(1);
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"]]);

  // A delivery that arrives during a write ages from its arrival, not from the write's end.
  send(probe(event("c")));
  await clock.advance(40);
  writes[0]!.finish();
  await clock.advance(9);
  assertEquals(writes.length, 1);
  await clock.advance(1);
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"], ["c"]]);
  actor.stop();
});

Deno.test("a failed write keeps its batch, retries with growing backoff, and acks only after the write", async () => {
  const log: string[] = [];
  const { store, events } = memoryStore(log);
  store.failures = 4;
  const { actor, clock, emitted, send, state } = start({
    store,
    batchSize: 2,
    minBackoffMs: 10,
    maxBackoffMs: 35,
  });
  const probes = [probe(event("a"), log), probe(event("b"), log)];
  send(...probes);
  await clock.settle();
  assertEquals(state(), '"backoff"');

  const delays: number[] = [];
  for (let attempt = 1; attempt <= 4; attempt++) {
    const { backoffMs } = actor.getSnapshot().context;
    delays.push(backoffMs);
    await clock.advance(backoffMs - 1);
    assertEquals(log.length, attempt, "no retry before the delay is over");
    await clock.advance(1);
  }
  assertEquals(delays, [10, 20, 35, 35]);
  assertEquals(log, [
    "write failed",
    "write failed",
    "write failed",
    "write failed",
    "write a,b",
    "ack a",
    "ack b",
  ]);
  assertEquals(probes.map((p) => [p.acks, p.naks]), [[1, 0], [1, 0]]);
  assertEquals([...events.keys()], ["a", "b"]);
  assertEquals(state(), '{"collecting":"idle"}');
  const { retries, failures, lastError } = actor.getSnapshot().context;
  assertEquals([retries, failures], [4, 0]);
  assert(lastError instanceof Error && lastError.message === "database is locked");
  assertEquals(
    emitted.filter((e) => e.type === "persister.failed").map((e) => e.retryInMs),
    [10, 20, 35, 35],
  );
  actor.stop();
});

Deno.test("backoff delays are jittered below their ceiling", async () => {
  const { store } = memoryStore();
  store.failures = 1;
  const { actor, clock, send } = start({ store, batchSize: 1, random: () => 0.75 });
  send(probe(event("a")));
  await clock.settle();
  // Full jitter: the ceiling is 10 ms, the delay (1 - 0.75) of it.
  assertEquals(actor.getSnapshot().context.backoffMs, 3);
  actor.stop();
});

Deno.test("invalid events go to dead letters and are acked with the batch", async () => {
  const log: string[] = [];
  const { store, events, letters } = memoryStore(log);
  const { actor, clock, emitted, send } = start({ store, batchSize: 4 });
  const probes = [
    probe(event("a"), log),
    probe({ ...event("b"), historyLength: -1 }, log),
    probe("not an event", log),
    probe(event("a"), log),
  ];
  send(...probes);
  await clock.settle();

  assertEquals([...events.keys()], ["a"]);
  assertEquals(letters.map(({ id, reason, ts }) => ({ id, reason, ts })), [
    {
      id: "b",
      reason:
        "session.activated: historyLength must be a non-negative integer, current value is -1",
      ts: clock.now(),
    },
    {
      id: null,
      reason: 'event must be an object, current value is "not an event"',
      ts: clock.now(),
    },
  ]);
  assertEquals(letters[1]!.data, '"not an event"');
  assertEquals(probes.map((p) => p.acks), [1, 1, 1, 1]);
  assertEquals(log, ["write a", "ack a", "ack b", "ack undefined", "ack a"]);
  const { written, deadLettered } = actor.getSnapshot().context;
  assertEquals([written, deadLettered], [1, 2]);
  assertEquals(emitted.filter((e) => e.type === "persister.written"), [
    { type: "persister.written", written: 1, deadLettered: 2, acked: 4 },
  ]);
  actor.stop();
});

Deno.test("a failed ack is reported and not retried: the bus delivers it again", async () => {
  const { store, events } = memoryStore();
  const { actor, clock, emitted, send } = start({ store, batchSize: 1 });
  const broken = probe(event("a"));
  broken.delivery.ack = () => Promise.reject(new Error("connection closed"));
  send(broken);
  await clock.settle();
  assertEquals([...events.keys()], ["a"]);
  const failed = emitted.find((e) => e.type === "persister.failed");
  assert(failed !== undefined && failed.phase === "ack" && failed.retryInMs === null);
  assert(failed.error instanceof AggregateError);
  assertEquals(actor.getSnapshot().context.retries, 0);
  actor.stop();
});

Deno.test("stop drains: everything buffered is written and acked, then the machine stops", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, send } = start({ writes, batchSize: 2, maxAgeMs: 1_000 });
  send(probe(event("a")), probe(event("b")), probe(event("c")));
  await clock.settle();
  assertEquals(writes.length, 1);
  actor.send({ type: "persister.stop" });
  // Deliveries already pulled when the stop came are written too.
  send(probe(event("d")), probe(event("e")));
  const done = toPromise(actor);
  for (let i = 0; i < 3; i++) {
    await clock.settle();
    writes[i]!.finish();
  }
  await done;
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"], ["c", "d"], ["e"]]);
  assertEquals(actor.getSnapshot().status, "done");
  assertEquals(actor.getSnapshot().context.written, 5);
  assertEquals(clock.pending, 0);
});

Deno.test("stop while collecting writes the partial batch without waiting for its age", async () => {
  const { store, events } = memoryStore();
  const { actor, clock, send } = start({ store, batchSize: 10, maxAgeMs: 1_000 });
  send(probe(event("a")));
  actor.send({ type: "persister.stop" });
  await toPromise(actor);
  assertEquals([...events.keys()], ["a"]);
  assertEquals(clock.pending, 0);
});

Deno.test("a stop during backoff still writes the batch once the store recovers", async () => {
  const { store, events } = memoryStore();
  store.failures = 2;
  const { actor, clock, send, state } = start({ store, batchSize: 5 });
  send(probe(event("a")));
  actor.send({ type: "persister.stop" });
  await clock.settle();
  assertEquals(state(), '"backoff"');
  await clock.advance(10);
  await clock.advance(20);
  await toPromise(actor);
  assertEquals([...events.keys()], ["a"]);
});

Deno.test("backpressure: a full buffer pauses the puller and the drained buffer resumes it", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, emitted, send } = start({ writes, batchSize: 2, maxBuffered: 4 });
  const paused = () => actor.getSnapshot().context.paused;
  send(probe(event("a")), probe(event("b")));
  await clock.settle();
  assertEquals([writes.length, paused()], [1, false]);
  send(probe(event("c")));
  assertEquals(paused(), false);
  send(probe(event("d")));
  // Two in the batch being written, two buffered: the bound is reached.
  assert(paused());
  assertEquals(emitted.filter((e) => e.type !== "persister.written"), [
    { type: "persister.paused", buffered: 4 },
  ]);

  writes[0]!.finish();
  await clock.settle();
  assertEquals(paused(), false);
  assertEquals(emitted.at(-1), { type: "persister.resumed", buffered: 2 });
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"], ["c", "d"]]);
  actor.stop();
});

Deno.test("backpressure holds while a failing write keeps its batch", async () => {
  const writes: PendingWrite[] = [];
  const { actor, clock, send, state } = start({ writes, batchSize: 2, maxBuffered: 2 });
  send(probe(event("a")), probe(event("b")));
  await clock.settle();
  writes[0]!.fail(new Error("disk full"));
  await clock.settle();
  assertEquals(state(), '"backoff"');
  assert(actor.getSnapshot().context.paused);
  await clock.advance(10);
  assertEquals(writes.map((w) => ids(w.deliveries)), [["a", "b"], ["a", "b"]]);
  writes[1]!.finish();
  await clock.settle();
  assertEquals(actor.getSnapshot().context.paused, false);
  actor.stop();
});
