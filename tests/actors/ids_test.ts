// Tests the UUIDv7 generator: format, strict order whatever the clock does, uniqueness, timestamp.

import assert from "node:assert/strict";
import fc from "fast-check";
import { idGenerator } from "../../actors/ids.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const T0 = 1_700_000_000_000;

/** A clock that reads whatever the test last set. */
function settableClock(start: number): { now(): number; set(ms: number): void } {
  let ms = start;
  return { now: () => ms, set: (next) => ms = next };
}

function assertStrictlyIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (!(ids[i - 1]! < ids[i]!)) {
      assert.fail(`id ${i} is not greater than id ${i - 1}: ${ids[i - 1]} then ${ids[i]}`);
    }
  }
}

/** The 48-bit millisecond timestamp an id carries. */
function timestampOf(id: string): number {
  return parseInt(id.replace(/-/g, "").slice(0, 12), 16);
}

Deno.test("ids are UUIDv7: version nibble 7 and variant bits 10", () => {
  const nextId = idGenerator({ now: Date.now });
  for (let i = 0; i < 1_000; i++) {
    const id = nextId();
    assert.match(id, UUID_V7);
    assert.equal(id[14], "7");
    assert.equal(parseInt(id[19]!, 16) >> 2, 0b10);
  }
});

Deno.test("ids are strictly increasing as strings over 100,000 ids on the system clock", () => {
  const nextId = idGenerator({ now: Date.now });
  const ids = Array.from({ length: 100_000 }, nextId);
  assertStrictlyIncreasing(ids);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("ids keep increasing while the clock stands still", () => {
  const nextId = idGenerator({ now: () => T0 });
  const ids = Array.from({ length: 100_000 }, nextId);
  assertStrictlyIncreasing(ids);
  for (const id of ids) assert.match(id, UUID_V7);
});

Deno.test("ids keep increasing when the clock steps back", () => {
  const clock = settableClock(T0 + 10_000);
  const nextId = idGenerator(clock);
  const ids = [nextId(), nextId()];
  clock.set(T0);
  ids.push(nextId(), nextId());
  clock.set(T0 + 9_999);
  ids.push(nextId());
  clock.set(T0 + 10_001);
  ids.push(nextId());
  assertStrictlyIncreasing(ids);
});

Deno.test("ids keep increasing when the clock reads fractions, zero or negative values", () => {
  const readings = [T0 + 0.9, T0 + 0.1, T0 + 1.5, 0, -5, T0 + 2, T0 + 2.999, T0 + 3];
  const clock = settableClock(readings[0]!);
  const nextId = idGenerator(clock);
  const ids = readings.map((ms) => {
    clock.set(ms);
    return nextId();
  });
  assertStrictlyIncreasing(ids);
});

Deno.test("two generators on the same frozen clock never make the same id", () => {
  const clock = { now: () => T0 };
  const a = idGenerator(clock);
  const b = idGenerator(clock);
  const ids = new Set<string>();
  for (let i = 0; i < 50_000; i++) {
    ids.add(a());
    ids.add(b());
  }
  assert.equal(ids.size, 100_000);
});

Deno.test("the id's timestamp prefix is the clock's millisecond", () => {
  const clock = settableClock(0);
  const nextId = idGenerator(clock);
  for (const ms of [1, 255, T0, T0 + 1, T0 + 86_400_000, 2 ** 48 - 1]) {
    clock.set(ms);
    const id = nextId();
    assert.equal(timestampOf(id), ms);
    const hex = ms.toString(16).padStart(12, "0");
    assert.equal(id.slice(0, 13), `${hex.slice(0, 8)}-${hex.slice(8)}`);
  }
});

Deno.test("the id's timestamp is the clock's millisecond rounded down", () => {
  assert.equal(timestampOf(idGenerator({ now: () => T0 + 0.75 })()), T0);
});

Deno.test("ids are strictly increasing for any clock sequence, repeats and steps back included", () => {
  const step = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 5 }),
    fc.integer({ min: -5, max: -1 }),
    fc.integer({ min: -100_000, max: 100_000 }),
    fc.double({ min: -2, max: 2, noNaN: true }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.record({ step, count: fc.integer({ min: 1, max: 4 }) }), { maxLength: 200 }),
      (moves) => {
        const clock = settableClock(T0);
        const nextId = idGenerator(clock);
        const ids: string[] = [];
        for (const { step, count } of moves) {
          clock.set(clock.now() + step);
          for (let i = 0; i < count; i++) ids.push(nextId());
        }
        assertStrictlyIncreasing(ids);
        for (const id of ids) assert.match(id, UUID_V7);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("an id made with the caller's reading carries that time and leaves the clock unread", () => {
  let reads = 0;
  const nextId = idGenerator({
    now: () => {
      reads++;
      return T0;
    },
  });
  const ids = [nextId(T0 + 5), nextId(T0 + 5), nextId(T0 + 7), nextId(T0 + 1)];
  assert.equal(reads, 0);
  assert.deepEqual(ids.map(timestampOf), [T0 + 5, T0 + 5, T0 + 7, T0 + 7]);
  assertStrictlyIncreasing(ids);
  for (const id of ids) assert.match(id, UUID_V7);
  ids.push(nextId());
  assert.equal(reads, 1);
  assertStrictlyIncreasing(ids);
});
