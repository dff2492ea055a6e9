// The persister machine: batches deliveries from the bus, writes them in one transaction, then acks.

import { assign, enqueueActions, type ErrorActorEvent, fromPromise, setup } from "xstate";
import type { Delivery, EventStore } from "./ports.ts";
import { backoffDelay, writeBatch, type WriteInput, type WriteOutput } from "./persister_write.ts";
export { backoffDelay, writeBatch, type WriteInput, type WriteOutput } from "./persister_write.ts";

/** What the persister machine is started with. */
export interface PersisterMachineInput {
  /** Where the default `write` actor writes events and dead letters. */
  store: EventStore;
  /** Milliseconds since the epoch: the age of a batch and the time of a dead letter. */
  now: () => number;
  /** A number in [0, 1): the jitter of a retry delay. */
  random: () => number;
  /** Write as soon as this many deliveries are buffered. */
  batchSize: number;
  /**
   * The most deliveries one write takes (at least `batchSize`): when more are
   * buffered because the last write took long, the next write takes up to
   * this many, so the fixed cost of a write is shared by more events exactly
   * when writes fall behind. `batchSize` when absent.
   */
  maxBatchSize?: number;
  /** Write a partial batch once its first delivery has waited this long, in ms. */
  maxAgeMs: number;
  /** Ask the puller to pause once this many deliveries are held (buffered or being written). */
  maxBuffered: number;
  /** The ceiling of the first retry delay, in ms. */
  minBackoffMs: number;
  /** The largest retry delay, in ms. */
  maxBackoffMs: number;
}

/** The machine's memory. */
export interface PersisterContext extends PersisterMachineInput {
  /** Deliveries waiting for the next batch, oldest first. */
  buffer: Delivery[];
  /** When the oldest buffered delivery arrived, or `null` when the buffer is empty. */
  oldestAt: number | null;
  /** The batch being written or waiting to be retried; empty between writes. */
  batch: Delivery[];
  /** Consecutive failed writes of the current batch. */
  failures: number;
  /** The delay before the next retry, in ms. */
  backoffMs: number;
  /** True while the puller should not pull. */
  paused: boolean;
  /** True once a stop was asked for: write what is held, then stop. */
  stopping: boolean;
  /** Events that were new to the store. */
  written: number;
  /** Deliveries that failed validation and went to dead letters. */
  deadLettered: number;
  /** Writes retried after a failure. */
  retries: number;
  /** The last write or ack failure, or `null`. */
  lastError: unknown;
}

/** A batch of deliveries from the consumer group. */
export interface DeliveriesReceivedEvent {
  /** What happened: `deliveries.received`. */
  type: "deliveries.received";
  /** The deliveries, in the order the bus handed them over. */
  deliveries: readonly Delivery[];
}

/** Stop: write and ack everything held, then reach the final state. */
export interface PersisterStopEvent {
  /** What happened: `persister.stop`. */
  type: "persister.stop";
}

/** Every event the persister machine accepts. */
export type PersisterMachineEvent = DeliveriesReceivedEvent | PersisterStopEvent;

/** What the persister machine tells its owner. */
export type PersisterEmitted =
  | { type: "persister.paused"; buffered: number }
  | { type: "persister.resumed"; buffered: number }
  | { type: "persister.written"; written: number; deadLettered: number; acked: number }
  | {
    type: "persister.failed";
    phase: "write" | "ack";
    error: unknown;
    failures: number;
    retryInMs: number | null;
  };

function held(context: PersisterContext, buffered = context.buffer.length): number {
  return buffered + context.batch.length;
}

/**
 * The persister machine. States: `collecting` (`idle` with an empty buffer,
 * `aging` once a delivery waits), `writing` (the invoked `write` actor
 * validates, writes and acks one batch), `backoff` (a failed write keeps its
 * batch and waits an exponential, jittered delay before writing it again;
 * nothing is acked or dropped), `draining` (after `persister.stop`: write
 * what is held) and the final `stopped`.
 *
 * A batch is written when `batchSize` deliveries are buffered or when the
 * oldest has waited `maxAgeMs`; it takes up to `maxBatchSize` of them.
 * Deliveries keep arriving while a batch is written. Backpressure: once
 * `maxBuffered` deliveries are held the context
 * flag `paused` turns on and `persister.paused` is emitted; the puller must
 * stop pulling until `persister.resumed`. The default `write` actor is
 * {@linkcode writeBatch} on the input's store; tests replace it with
 * `.provide({ actors: { write } })`.
 *
 * @example Persisting two events with a batch size of two
 * ```ts
 * import assert from "node:assert/strict";
 * import { createActor, toPromise } from "xstate";
 * import type { Delivery, EventStore } from "./ports.ts";
 * import { persisterMachine } from "./persister_machine.ts";
 *
 * const stored: string[] = [];
 * const store: EventStore = {
 *   writeEvents: (events) => { stored.push(...events.map((e) => e.id)); return Promise.resolve(events.length); },
 *   writeDeadLetters: () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 * };
 * const delivery = (id: string): Delivery => ({
 *   data: { id, type: "session.activated", ts: 1, org: "o", session: "s", historyLength: 0 },
 *   attempt: 1, ack: () => Promise.resolve(), nak: () => {},
 * });
 * const actor = createActor(persisterMachine, {
 *   input: {
 *     store, now: () => 0, random: () => 0,
 *     batchSize: 2, maxAgeMs: 50, maxBuffered: 10, minBackoffMs: 10, maxBackoffMs: 100,
 *   },
 * }).start();
 * actor.send({ type: "deliveries.received", deliveries: [delivery("a"), delivery("b")] });
 * actor.send({ type: "persister.stop" });
 * await toPromise(actor);
 * assert.deepEqual(stored, ["a", "b"]);
 * assert.equal(actor.getSnapshot().context.written, 2);
 * ```
 */
export const persisterMachine = setup({
  types: {} as {
    context: PersisterContext;
    input: PersisterMachineInput;
    events: PersisterMachineEvent;
    emitted: PersisterEmitted;
  },
  actors: {
    write: fromPromise<WriteOutput, WriteInput>(({ input, signal }) => writeBatch(input, signal)),
  },
  delays: {
    // The age of a batch counts from its oldest delivery, even one that arrived during a write.
    maxAge: ({ context }) =>
      Math.max(0, context.maxAgeMs - (context.now() - (context.oldestAt ?? context.now()))),
    backoff: ({ context }) => context.backoffMs,
  },
  guards: {
    hasBuffered: ({ context }) => context.buffer.length > 0,
    isBatchFull: ({ context }) => context.buffer.length >= context.batchSize,
    isStopping: ({ context }) => context.stopping,
  },
  actions: {
    /** Buffer the received deliveries; pause the puller when the bound is reached. */
    bufferDeliveries: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "deliveries.received" || event.deliveries.length === 0) return;
      const buffer = [...context.buffer, ...event.deliveries];
      const paused = held(context, buffer.length) >= context.maxBuffered;
      enqueue.assign({ buffer, oldestAt: context.oldestAt ?? context.now(), paused });
      if (paused && !context.paused) {
        enqueue.emit({ type: "persister.paused", buffered: held(context, buffer.length) });
      }
    }),
    /** Move up to `maxBatchSize` buffered deliveries into the batch to write. */
    takeBatch: assign(({ context }) => {
      const most = Math.max(context.batchSize, context.maxBatchSize ?? context.batchSize);
      const rest = context.buffer.slice(most);
      return {
        batch: context.buffer.slice(0, most),
        buffer: rest,
        // The rest arrived after the oldest: its timer fires no later than theirs would.
        oldestAt: rest.length > 0 ? context.oldestAt : null,
      };
    }),
    /** The batch is committed and acked: count it, and resume the puller if it was paused. */
    recordWrite: enqueueActions(({ context, enqueue }, output: WriteOutput) => {
      const paused = context.buffer.length >= context.maxBuffered;
      enqueue.assign({
        batch: [],
        failures: 0,
        paused,
        written: context.written + output.written,
        deadLettered: context.deadLettered + output.deadLettered,
      });
      enqueue.emit({
        type: "persister.written",
        written: output.written,
        deadLettered: output.deadLettered,
        acked: output.acked,
      });
      if (output.ackErrors.length > 0) {
        const error = new AggregateError(
          output.ackErrors,
          `Cannot acknowledge ${output.ackErrors.length} of ${context.batch.length} deliveries: the bus will deliver them again`,
        );
        enqueue.assign({ lastError: error });
        enqueue.emit({
          type: "persister.failed",
          phase: "ack",
          error,
          failures: 0,
          retryInMs: null,
        });
      }
      if (context.paused && !paused) {
        enqueue.emit({ type: "persister.resumed", buffered: context.buffer.length });
      }
    }),
    /** The write failed: keep the batch, plan the retry. */
    planRetry: enqueueActions(({ context, enqueue }, error: unknown) => {
      const failures = context.failures + 1;
      const backoffMs = backoffDelay(
        failures,
        context.minBackoffMs,
        context.maxBackoffMs,
        context.random(),
      );
      enqueue.assign({ failures, backoffMs, lastError: error });
      enqueue.emit({
        type: "persister.failed",
        phase: "write",
        error,
        failures,
        retryInMs: backoffMs,
      });
    }),
    /** Count the retry that starts now. */
    countRetry: assign({ retries: ({ context }) => context.retries + 1 }),
    /** Remember that a stop was asked for. */
    markStopping: assign({ stopping: true }),
  },
}).createMachine({
  id: "persister",
  context: ({ input }) => ({
    ...input,
    buffer: [],
    oldestAt: null,
    batch: [],
    failures: 0,
    backoffMs: 0,
    paused: false,
    stopping: false,
    written: 0,
    deadLettered: 0,
    retries: 0,
    lastError: null,
  }),
  initial: "collecting",
  on: {
    "deliveries.received": { actions: "bufferDeliveries" },
    "persister.stop": { actions: "markStopping" },
  },
  states: {
    collecting: {
      initial: "idle",
      // Checked after every event: a full buffer is written at once.
      always: { guard: "isBatchFull", target: "writing", actions: "takeBatch" },
      on: {
        "persister.stop": { target: "draining", actions: "markStopping" },
      },
      states: {
        idle: {
          always: { guard: "hasBuffered", target: "aging" },
        },
        aging: {
          after: { maxAge: { target: "#persister.writing", actions: "takeBatch" } },
        },
      },
    },
    writing: {
      invoke: {
        src: "write",
        input: ({ context }) => ({
          store: context.store,
          deliveries: context.batch,
          now: context.now,
        }),
        onDone: [
          {
            guard: "isStopping",
            target: "draining",
            actions: { type: "recordWrite", params: ({ event }) => event.output },
          },
          {
            target: "collecting",
            actions: { type: "recordWrite", params: ({ event }) => event.output },
          },
        ],
        onError: {
          target: "backoff",
          actions: {
            type: "planRetry",
            params: ({ event }: { event: ErrorActorEvent }) => event.error,
          },
        },
      },
    },
    backoff: {
      after: { backoff: { target: "writing", actions: "countRetry" } },
    },
    draining: {
      always: [
        { guard: "hasBuffered", target: "writing", actions: "takeBatch" },
        { target: "stopped" },
      ],
    },
    stopped: { type: "final" },
  },
});
