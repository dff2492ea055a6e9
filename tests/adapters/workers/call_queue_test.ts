// The pool's FIFO queue and duration histogram, against simple models.

import assert from "node:assert/strict";
import fc from "fast-check";
import { CallQueue } from "../../../adapters/workers/_call_queue.ts";
import { histogram } from "../../../adapters/workers/_histogram.ts";

interface Entry {
  removed: boolean;
  n: number;
}

Deno.test("property: the queue hands out live entries in arrival order and counts only those", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("push" as const) }),
    fc.record({ kind: fc.constant("shift" as const) }),
    fc.record({ kind: fc.constant("remove" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("drain" as const) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
    const queue = new CallQueue<Entry>();
    let model: Entry[] = [];
    let next = 0;
    for (const o of ops) {
      if (o.kind === "push") {
        const entry = { removed: false, n: next++ };
        queue.push(entry);
        model.push(entry);
      } else if (o.kind === "shift") {
        assert.equal(queue.shift(), model.shift());
      } else if (o.kind === "remove" && model.length > 0) {
        const entry = model[o.at % model.length]!;
        queue.remove(entry);
        queue.remove(entry); // twice is once
        model = model.filter((e) => e !== entry);
      } else if (o.kind === "drain") {
        assert.deepEqual(queue.drain(), model);
        model = [];
      }
      assert.equal(queue.size, model.length);
      // Removed entries (each holding a caller's request) are let go, not kept until a turn.
      assert.ok(queue.held <= 2 * queue.size + 32, `${queue.held} held for ${queue.size} live`);
    }
    if (model.length === 0) assert.equal(queue.held, 0);
  }));
});

Deno.test("a queue whose waiting calls are all aborted holds none of them", () => {
  const queue = new CallQueue<Entry>();
  for (let round = 0; round < 100; round++) {
    const entries = Array.from({ length: 10 }, (_, n) => ({ removed: false, n }));
    for (const entry of entries) queue.push(entry);
    for (const entry of entries) queue.remove(entry);
    assert.equal(queue.held, 0, `round ${round}`);
  }
  assert.equal(queue.shift(), undefined);
});

Deno.test("the histogram counts each duration in its bucket, cumulatively", () => {
  const h = histogram();
  for (const ms of [0.5, 1, 3, 40_000]) h.observe(ms);
  const snap = h.snapshot();
  assert.equal(snap.count, 4);
  assert.equal(snap.sum, 40_004.5);
  assert.equal(snap.le[0], 1);
  assert.equal(snap.counts[0], 2);
  assert.equal(snap.counts[1], 3);
  assert.equal(snap.counts.at(-2), 3);
  assert.equal(snap.counts.at(-1), 4);
  assert.equal(snap.le.at(-1), Infinity);
});
