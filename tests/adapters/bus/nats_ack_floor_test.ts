// Tests the waits on consumer groups' ack floors that the NATS bus's flush() uses.

import assert from "node:assert/strict";
import { delay } from "@std/async";
import { ackFloorWaits, type ReadAckFloor } from "../../../adapters/bus/_nats_ack_floor.ts";

/** A read whose floor the test sets, counting the reads per group. */
function scriptedFloor(initial: number | null = 0) {
  let floor: number | null = initial;
  const reads = new Map<string, number>();
  const read: ReadAckFloor = (group) => {
    reads.set(group, (reads.get(group) ?? 0) + 1);
    return Promise.resolve(floor);
  };
  return {
    read,
    reads: (group: string) => reads.get(group) ?? 0,
    set: (value: number | null) => floor = value,
  };
}

Deno.test("ack floor waits: one poll serves every wait on a group, each released once the floor reaches its sequence", async () => {
  const floor = scriptedFloor(2);
  const waits = ackFloorWaits(floor.read, 1);
  try {
    const early = Array.from({ length: 20 }, () => waits.reach("g", 2, 10_000));
    const late = Array.from({ length: 20 }, () => waits.reach("g", 7, 10_000));
    const other = waits.reach("h", 1, 10_000);
    assert.deepEqual(await Promise.all(early), early.map(() => true));
    assert.equal(floor.reads("g"), 1, "one read for forty waits");
    await delay(20);
    assert.ok(floor.reads("g") > 1, "still polled while a wait is open");
    floor.set(7);
    assert.deepEqual(await Promise.all(late), late.map(() => true));
    assert.equal(await other, true);
    const idle = floor.reads("g");
    await delay(20);
    assert.equal(floor.reads("g"), idle, "no wait open: no polling");
    // A wait after the poll ended starts a new one.
    assert.equal(await waits.reach("g", 7, 10_000), true);
  } finally {
    waits.stop();
  }
});

Deno.test("ack floor waits: a floor that cannot be read is read again; one that never gets there times out with false", async () => {
  let failures = 0;
  const waits = ackFloorWaits(
    () => ++failures <= 2 ? Promise.reject(new Error("no info")) : Promise.resolve(5),
    1,
  );
  try {
    assert.equal(await waits.reach("g", 5, 10_000), true);
    assert.equal(failures, 3);
    assert.equal(await waits.reach("g", 6, 30), false, "the floor stays at 5");
  } finally {
    waits.stop();
  }
  const unknown = scriptedFloor(null);
  const later = ackFloorWaits(unknown.read, 1);
  try {
    assert.equal(await later.reach("g", 1, 30), false, "an unknown floor is no floor");
  } finally {
    later.stop();
  }
});

Deno.test("ack floor waits: Infinity (nobody here acks) releases every wait; stop() ends the others with false", async () => {
  const floor = scriptedFloor(Infinity);
  const waits = ackFloorWaits(floor.read, 1);
  assert.equal(await waits.reach("g", 1_000_000, 10_000), true);
  floor.set(0);
  const open = waits.reach("g", 1, 10_000);
  await delay(5);
  waits.stop();
  assert.equal(await open, false);
  const reads = floor.reads("g");
  await delay(10);
  assert.equal(floor.reads("g"), reads, "polling stopped");
  assert.equal(await waits.reach("g", 0, 10_000), false, "after stop() nothing is waited on");
});
