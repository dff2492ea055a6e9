// Unique, time-ordered ids (UUIDv7, RFC 9562 §6.2 method 1) made fast enough for the hot path.

import type { Clock } from "./ports.ts";

/**
 * Makes ids. `now` is the caller's reading of the same clock, when it has one
 * at hand (an event stamped with a time gets an id of that time); without it
 * the generator reads the clock itself.
 */
export type IdGenerator = (now?: number) => string;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const HEX1 = Array.from({ length: 16 }, (_, i) => i.toString(16));
// Twelve counter bits and the dash after them: an id is then six pieces, not ten.
const HEX3_DASH = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, "0") + "-");
const COUNTER_BITS = 30;
const COUNTER_LIMIT = 2 ** COUNTER_BITS;

/**
 * Make a UUIDv7 generator. Ids are strictly increasing as strings within one
 * generator, even when the clock stands still or steps back: a 30-bit counter
 * (seeded at random each millisecond) sits under the 48-bit timestamp, and 44
 * random bits (drawn each millisecond) make ids of different processes differ.
 *
 * A library UUIDv7 (`npm:uuid`) costs ≈ 1.6 µs an id here; a message makes
 * six ids (message, run, four events), a third of the budget of the session
 * hot path, so Troupe draws randomness once per millisecond instead of once
 * per id.
 *
 * @param clock The time source; ids follow `clock.now()`.
 * @returns A function that returns a new id on each call.
 *
 * @example
 * ```ts
 * import { idGenerator } from "./ids.ts";
 *
 * const nextId = idGenerator({ now: Date.now });
 * const a = nextId();
 * const b = nextId();
 * console.assert(a < b && /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/.test(a));
 * ```
 */
export function idGenerator(clock: Pick<Clock, "now">): IdGenerator {
  let lastMs = -1;
  let prefix = "";
  let tail = "";
  let counter = 0;
  const random = new Uint8Array(10);

  function reseed(ms: number): void {
    lastMs = ms;
    crypto.getRandomValues(random);
    // Start the counter in its lower half so a millisecond has room for 2^29 ids.
    counter = ((random[0]! << 21) | (random[1]! << 13) | (random[2]! << 5) | (random[3]! >> 3)) >>>
      0;
    const hex = ms.toString(16).padStart(12, "0");
    prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`;
    tail = (HEX[random[4]!]! + HEX[random[5]!]! + HEX[random[6]!]! + HEX[random[7]!]! +
      HEX[random[8]!]! + HEX[random[9]!]!).slice(1);
  }

  return function nextId(at?: number): string {
    const now = Math.floor(Math.max(at ?? clock.now(), 0));
    if (now > lastMs) reseed(now);
    else if (++counter >= COUNTER_LIMIT) reseed(lastMs + 1);
    const c = counter;
    // rand_a: counter bits 29-18; variant 10 and bits 17-16; bits 15-4; bits 3-0 then rand_b.
    return prefix + HEX3_DASH[(c >>> 18) & 0xfff]! + HEX1[8 | ((c >>> 16) & 0x3)]! +
      HEX3_DASH[(c >>> 4) & 0xfff]! + HEX1[c & 0xf]! + tail;
  };
}
