// One persister step: validate a batch, write it in one transaction with its dead letters, then ack.

import type { TroupeEvent } from "./events.ts";
import type { DeadLetter, Delivery, EventStore } from "./ports.ts";
import { validateEvent } from "./validate_event.ts";

/** What the `write` actor is given. */
export interface WriteInput {
  /** Where to write. */
  store: EventStore;
  /** The deliveries of the batch. */
  deliveries: readonly Delivery[];
  /** The time of dead letters. */
  now: () => number;
}

/** What the `write` actor reports once the batch is committed and acked. */
export interface WriteOutput {
  /** Events new to the store. */
  written: number;
  /** Deliveries kept as dead letters. */
  deadLettered: number;
  /** Deliveries acknowledged. */
  acked: number;
  /** Acks that failed: the bus delivers those again and the store ignores the copy. */
  ackErrors: unknown[];
}

/**
 * Write one batch: validate each delivery, write the valid events in one
 * transaction (an id seen twice in the batch is written once), keep the
 * invalid ones as dead letters, and only then acknowledge every delivery of
 * the batch, dead-lettered ones too, so bad data never blocks the stream.
 * If a write rejects, nothing is acknowledged and the promise rejects.
 *
 * @example Writing a batch to a store that keeps events in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DeadLetter, Delivery, EventStore } from "./ports.ts";
 * import { writeBatch } from "./persister_write.ts";
 *
 * const letters: DeadLetter[] = [];
 * const store: EventStore = {
 *   writeEvents: (events) => Promise.resolve(events.length),
 *   writeDeadLetters: (more) => { letters.push(...more); return Promise.resolve(); },
 *   close: () => Promise.resolve(),
 * };
 * let acked = 0;
 * const delivery = (data: unknown): Delivery => ({
 *   data, attempt: 1, ack: () => { acked++; return Promise.resolve(); }, nak: () => {},
 * });
 * const good = { id: "e1", type: "run.started", ts: 1, org: "o", session: "s", run: "r", messages: [] };
 * const output = await writeBatch(
 *   { store, deliveries: [delivery(good), delivery({ id: "e2" })], now: () => 0 },
 *   new AbortController().signal,
 * );
 * assert.deepEqual([output.written, output.deadLettered, acked, letters[0]?.id], [1, 1, 2, "e2"]);
 * ```
 */
export async function writeBatch(input: WriteInput, signal: AbortSignal): Promise<WriteOutput> {
  const { store, deliveries, now } = input;
  const events: TroupeEvent[] = [];
  const seen = new Set<string>();
  const letters: DeadLetter[] = [];
  for (const delivery of deliveries) {
    const result = validateEvent(delivery.data);
    if (!result.ok) {
      letters.push({
        id: result.id,
        data: serialise(delivery.data),
        reason: result.reason,
        ts: now(),
      });
    } else if (!seen.has(result.event.id)) {
      seen.add(result.event.id);
      events.push(result.event);
    }
  }
  signal.throwIfAborted();
  // Events first: a retry after a failed dead-letter write rewrites them as no-ops.
  const written = events.length > 0 ? await store.writeEvents(events) : 0;
  if (letters.length > 0) await store.writeDeadLetters(letters);
  // Committed: acknowledge even if the machine stopped meanwhile, so nothing is redelivered.
  const acks = await Promise.allSettled(deliveries.map((delivery) => delivery.ack()));
  const ackErrors = acks.flatMap((ack) => ack.status === "rejected" ? [ack.reason] : []);
  return {
    written,
    deadLettered: letters.length,
    acked: deliveries.length - ackErrors.length,
    ackErrors,
  };
}

function serialise(data: unknown): string {
  try {
    return JSON.stringify(data) ?? String(data);
  } catch {
    // Cyclic or BigInt data: keep what can be kept; the reason says what was wrong.
    return String(data);
  }
}

/**
 * The delay before retry number `failures` (1 for the first): exponential
 * backoff with full jitter, `ceiling * (1 - random)` where the ceiling starts
 * at `minMs`, doubles with each failure and stops at `maxMs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay } from "./persister_machine.ts";
 *
 * assert.equal(backoffDelay(1, 50, 5_000, 0), 50);
 * assert.equal(backoffDelay(3, 50, 5_000, 0), 200);
 * assert.equal(backoffDelay(30, 50, 5_000, 0.5), 2_500);
 * ```
 */
export function backoffDelay(
  failures: number,
  minMs: number,
  maxMs: number,
  random: number,
): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.max(1, Math.round(ceiling * (1 - random)));
}
