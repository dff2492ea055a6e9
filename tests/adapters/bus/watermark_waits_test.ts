// The waits on an acknowledgement watermark shared by the memory group and the NATS publisher.

import assert from "node:assert/strict";
import { watermarkWaits } from "../../../adapters/bus/_watermark_waits.ts";
import { settledYet } from "../../_helpers/settled_yet.ts";

Deno.test("watermark waits: a move releases exactly the waits whose target it passed", async () => {
  const waits = watermarkWaits();
  const [a, b, c] = [waits.wait(0), waits.wait(2), waits.wait(2)];
  waits.reached(2);
  assert.deepEqual([await settledYet(a), await settledYet(b), await settledYet(c)], [
    true,
    false,
    false,
  ]);
  assert.equal(waits.open(), true);
  waits.reached(3);
  await Promise.all([b, c]);
  assert.equal(waits.open(), false);
  const d = waits.wait(5);
  waits.reached(4);
  assert.equal(await settledYet(d), false, "still works after the queue emptied");
  waits.reached(6);
  await d;
});

Deno.test("watermark waits: resolveAll and rejectAll end every open wait", async () => {
  const waits = watermarkWaits();
  const resolved = [waits.wait(1), waits.wait(7)];
  waits.resolveAll();
  await Promise.all(resolved);
  const error = new Error("closed");
  const rejected = [waits.wait(8), waits.wait(9)];
  waits.rejectAll(error);
  for (const wait of rejected) await assert.rejects(wait, error);
  assert.equal(waits.open(), false);
});
