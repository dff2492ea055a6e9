// Tests the pure helpers of the session machine that are not seen whole through it.

import assert from "node:assert/strict";
import fc from "fast-check";
import { appended } from "../../actors/_batch.ts";
import type { HistoryEntry } from "../../actors/ports.ts";

const entry = (n: number): HistoryEntry => ({ id: `e${n}`, role: "user", content: `${n}`, ts: n });

Deno.test("appended keeps the newest `limit` of history then entries, in order, and leaves its inputs alone", () => {
  fc.assert(
    fc.property(fc.nat(60), fc.nat(60), fc.nat(80), (had, added, limit) => {
      const history = Array.from({ length: had }, (_, i) => entry(i));
      const entries = Array.from({ length: added }, (_, i) => entry(had + i));
      const whole = [...history, ...entries];
      const result = appended(history, entries, limit);
      assert.deepEqual(result, whole.slice(Math.max(0, whole.length - limit)));
      assert.equal(history.length, had);
      assert.equal(entries.length, added);
      assert.notEqual(result, history);
    }),
  );
});
