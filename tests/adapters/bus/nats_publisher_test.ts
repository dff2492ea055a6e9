// Proves the NATS bus's publish queue: bounded window, out-of-order acks, flush points, retries and stop.

import assert from "node:assert/strict";
import fc from "fast-check";
import type { TroupeEvent } from "../../../actors/events.ts";
import { AckLostError, publisher, type SendFn } from "../../../adapters/bus/_nats_publisher.ts";
import { BusError } from "../../../adapters/bus/errors.ts";
import { eventually } from "../../_helpers/eventually.ts";

function event(n: number): TroupeEvent {
  return {
    id: `e${n}`,
    type: "session.activated",
    ts: n,
    org: "o",
    session: "s",
    historyLength: 0,
  };
}

/**
 * A send whose acks the test gives one by one, in any order. The stream numbers
 * the events in the order they were sent, as a stream does on receipt.
 */
function scriptedSend() {
  const pending = new Map<
    string,
    { seq: number; resolve: (seq: number) => void; reject: (error: Error) => void }
  >();
  const sent: string[] = [];
  const send: SendFn = (_subject, _payload, msgID) => {
    sent.push(msgID);
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    pending.set(msgID, { seq: sent.length, resolve, reject });
    return promise;
  };
  return { send, pending, sent };
}

Deno.test("publisher: whatever order the acks come in, a flush resolves exactly when what it covers is acked", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
      fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
      async (count, maxInFlight, picks, flushAfter) => {
        const { send, pending, sent } = scriptedSend();
        const queue = publisher({ send, subjectOf: () => "s", maxInFlight, onError: () => {} });
        const flushes: { covers: number; done: boolean }[] = [];
        for (let n = 0; n < count; n++) {
          queue.enqueue(event(n));
          if (flushAfter[n]) {
            const flush = { covers: n + 1, done: false };
            queue.flush().then(() => flush.done = true);
            flushes.push(flush);
          }
        }
        const acked = new Set<number>();
        const seqOf = new Map<number, number>();
        for (let step = 0; pending.size > 0; step++) {
          assert.ok(pending.size <= maxInFlight, `${pending.size} in flight, over ${maxInFlight}`);
          const ids = [...pending.keys()];
          const id = ids[picks[step % picks.length]! % ids.length]!;
          const { seq, resolve } = pending.get(id)!;
          resolve(seq);
          pending.delete(id);
          acked.add(Number(id.slice(1)));
          seqOf.set(Number(id.slice(1)), seq);
          // Let the ack's promise reactions run (ack, flush waiters, the flags: a few hops).
          for (let hop = 0; hop < 10; hop++) await null;
          for (const flush of flushes) {
            const covered = Array.from({ length: flush.covers }, (_, n) => n).every((n) =>
              acked.has(n)
            );
            assert.equal(flush.done, covered, `flush of ${flush.covers}`);
            if (flush.done) {
              // What a flush covers is at or below the stream sequence read after it.
              for (let n = 0; n < flush.covers; n++) assert.ok(seqOf.get(n)! <= queue.streamSeq());
            }
          }
          assert.equal(queue.streamSeq(), Math.max(...seqOf.values()), "the highest acked");
          assert.equal(queue.backlog(), count - acked.size);
        }
        assert.deepEqual([...sent].sort(), Array.from({ length: count }, (_, n) => `e${n}`).sort());
        await queue.flush();
        assert.equal(queue.stop(), 0);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("publisher: a failed send is reported once and retried until acked", async () => {
  const errors: unknown[] = [];
  let attempts = 0;
  const queue = publisher({
    send: () => ++attempts < 3 ? Promise.reject(new Error("no ack")) : Promise.resolve(1),
    subjectOf: () => "s",
    maxInFlight: 4,
    onError: (error) => errors.push(error),
  });
  queue.enqueue(event(1));
  await queue.flush();
  assert.equal(attempts, 3);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof BusError && errors[0].code === "publish_failed");
  assert.equal(queue.stop(), 0);
});

Deno.test("publisher: a send whose ack was lost with its connection goes again at once, unreported", async () => {
  const errors: unknown[] = [];
  const attempts: string[] = [];
  const queue = publisher({
    send: (_subject, _payload, msgID) => {
      attempts.push(msgID);
      return attempts.length === 1 ? Promise.reject(new AckLostError()) : Promise.resolve(7);
    },
    subjectOf: () => "s",
    maxInFlight: 4,
    onError: (error) => errors.push(error),
  });
  queue.enqueue(event(1));
  // The resend follows the rejection's own microtask: no backoff timer is involved.
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(attempts, ["e1", "e1"]);
  await queue.flush();
  assert.equal(queue.streamSeq(), 7);
  assert.deepEqual(errors, [], "a lost ack is no failure");
  assert.equal(queue.stop(), 0);
});

Deno.test("publisher: retryNow() sends the events waiting out a backoff at once", async () => {
  const errors: unknown[] = [];
  let attempts = 0;
  const queue = publisher({
    send: () => ++attempts === 1 ? Promise.reject(new Error("no responders")) : Promise.resolve(1),
    subjectOf: () => "s",
    maxInFlight: 4,
    onError: (error) => errors.push(error),
  });
  queue.enqueue(event(1));
  await eventually("the failure to be handled", () => errors.length === 1);
  assert.equal(attempts, 1, "waiting out its backoff");
  queue.retryNow();
  assert.equal(attempts, 2, "sent again within retryNow(), not when the backoff ends");
  await queue.flush();
  queue.retryNow();
  assert.equal(attempts, 2, "nothing waits a backoff any more");
  assert.equal(queue.stop(), 0);
});

Deno.test("publisher: stop() counts what is unacked and rejects waiting flushes", async () => {
  let attempts = 0;
  const queue = publisher({
    send: () => {
      attempts++;
      return Promise.reject(new Error("down"));
    },
    subjectOf: () => "s",
    maxInFlight: 1,
    onError: () => {},
  });
  queue.enqueue(event(1));
  queue.enqueue(event(2));
  const flushed = queue.flush();
  await eventually("a retry to go out", () => attempts >= 2, 10_000);
  assert.equal(queue.stop(), 2);
  await assert.rejects(
    flushed,
    (error) => error instanceof BusError && error.code === "undelivered",
  );
});
