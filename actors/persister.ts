// Runs a persister: a supervised pull loop over a bus consumer group feeding the persister machine.

import { createActor, toPromise } from "xstate";
import { systemClock } from "./clock.ts";
import type { Clock, Delivery, EventBus, EventStore } from "./ports.ts";
import { backoffDelay, persisterMachine } from "./persister_machine.ts";

/** Where a failure reported to `onError` happened. */
export interface PersisterFailure {
  /** `consume`: the bus failed; `write`: the store failed; `ack`: an acknowledgement failed. */
  phase: "consume" | "write" | "ack";
  /** Consecutive failures of this kind so far (0 for an ack failure, which is not retried). */
  failures: number;
  /** When the next attempt starts, in ms, or `null` when nothing is retried. */
  retryInMs: number | null;
}

/** Options for {@linkcode startPersister}. */
export interface PersisterOptions {
  /** The bus to consume from; it must implement `consume`. */
  bus: EventBus;
  /** Where events and dead letters are written. The persister does not close it. */
  store: EventStore;
  /**
   * The consumer group: persisters of one group share the work.
   *
   * @default {"persisters"}
   */
  group?: string;
  /**
   * Write as soon as this many events are buffered; also the size of a pull.
   *
   * @default {500}
   */
  batchSize?: number;
  /**
   * The most events one write takes, at least `batchSize`: after a slow
   * write, the events that came in meanwhile go in one transaction, up to
   * this many, rather than in `batchSize` pieces each paying a whole write.
   *
   * @default {4 * batchSize}
   */
  maxBatchSize?: number;
  /**
   * Write a partial batch once its oldest event has waited this long, in ms.
   *
   * @default {50}
   */
  maxAgeMs?: number;
  /**
   * Stop pulling while this many events are held; at least `batchSize`.
   * A pull already under way may add up to `batchSize - 1` more.
   *
   * @default {5_000}
   */
  maxBuffered?: number;
  /**
   * The ceiling of the first retry delay after a failed write or consume, in ms.
   *
   * @default {50}
   */
  minBackoffMs?: number;
  /**
   * The largest retry delay, in ms; at least `minBackoffMs`.
   *
   * @default {5_000}
   */
  maxBackoffMs?: number;
  /**
   * Time and timers: batch ages, retry delays, dead-letter times.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * A number in [0, 1) for the jitter of retry delays.
   *
   * @default {Math.random}
   */
  random?: () => number;
  /** Told about every failure; the persister retries on its own. */
  onError?: (error: unknown, failure: PersisterFailure) => void;
}

/** What a persister has done so far. */
export interface PersisterStats {
  /** Events held: buffered or being written. */
  buffered: number;
  /** Events that were new to the store. */
  written: number;
  /** Events kept as dead letters. */
  deadLettered: number;
  /** Writes retried after a failure. */
  retries: number;
  /** Subscriptions renewed after the bus failed. */
  resubscribes: number;
  /** The last failure of any kind, or `null`. */
  lastError: unknown;
}

/** Options for {@linkcode Persister.close}. */
export interface PersisterCloseOptions {
  /**
   * Give up draining when it aborts: the held events are not acknowledged
   * (each is nak'ed) and the bus delivers them again to another persister.
   */
  signal?: AbortSignal;
}

/** A running persister. */
export interface Persister extends AsyncDisposable {
  /** What it has done so far. */
  stats(): PersisterStats;
  /**
   * Stop pulling, write and acknowledge everything held, then resolve. While
   * the store fails, the drain keeps retrying; an aborted `signal` gives up.
   * Rejects only if the persister itself broke.
   */
  close(options?: PersisterCloseOptions): Promise<void>;
}

function checkCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot start the persister: ${name} must be an integer of at least ${min}, current value is ${value}`,
    );
  }
}

/** Resolve after `ms` on the clock, or at once when the signal aborts. */
function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Start a persister: pull batches from the bus's consumer group `group`,
 * feed them to the {@linkcode persisterMachine} that writes them to the
 * store in transactions and acknowledges each event only after its batch
 * committed. The pull loop is supervised: after the bus fails it subscribes
 * again with exponential backoff. It stops pulling while the machine holds
 * `maxBuffered` events. `close()` stops pulling, drains and resolves; the
 * bus and the store stay open (their owner closes them).
 *
 * @example Persisting events from a bus with a one-event consumer group
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Delivery, EventBus, EventStore } from "./ports.ts";
 * import type { TroupeEvent } from "./events.ts";
 * import { startPersister } from "./persister.ts";
 *
 * const event: TroupeEvent = {
 *   id: "e1", type: "session.activated", ts: 1, org: "o", session: "s", historyLength: 0,
 * };
 * const acked = Promise.withResolvers<void>();
 * const bus: EventBus = {
 *   publish: () => {},
 *   subscribe: () => () => {},
 *   async *consume(_group, { signal }) {
 *     const delivery: Delivery = {
 *       data: event, attempt: 1, ack: () => Promise.resolve(acked.resolve()), nak: () => {},
 *     };
 *     yield [delivery];
 *     await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
 *   },
 *   flush: () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 * };
 * const stored: TroupeEvent[] = [];
 * const store: EventStore = {
 *   writeEvents: (events) => { stored.push(...events); return Promise.resolve(events.length); },
 *   writeDeadLetters: () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 * };
 * const persister = startPersister({ bus, store, batchSize: 1 });
 * await acked.promise;
 * await persister.close();
 * assert.deepEqual(stored, [event]);
 * assert.equal(persister.stats().written, 1);
 * ```
 */
export function startPersister(options: PersisterOptions): Persister {
  const {
    bus,
    store,
    group = "persisters",
    batchSize = 500,
    maxBatchSize = 4 * batchSize,
    maxAgeMs = 50,
    maxBuffered = 5_000,
    minBackoffMs = 50,
    maxBackoffMs = 5_000,
    clock = systemClock,
    random = Math.random,
    onError,
  } = options;
  if (typeof bus?.consume !== "function") {
    throw new TypeError(
      "Cannot start the persister: the bus has no consume(), so it cannot deliver events to a consumer group; use a bus with durable consumption (memory or NATS)",
    );
  }
  if (typeof store?.writeEvents !== "function") {
    throw new TypeError(
      `Cannot start the persister: store must be an EventStore with writeEvents(), current value is ${typeof store}`,
    );
  }
  if (typeof group !== "string" || group.length === 0) {
    throw new RangeError(
      `Cannot start the persister: group must be a non-empty string, current value is ${
        JSON.stringify(group)
      }`,
    );
  }
  checkCount("batchSize", batchSize, 1);
  checkCount("maxBatchSize", maxBatchSize, batchSize);
  checkCount("maxAgeMs", maxAgeMs, 0);
  checkCount("maxBuffered", maxBuffered, batchSize);
  checkCount("minBackoffMs", minBackoffMs, 1);
  checkCount("maxBackoffMs", maxBackoffMs, minBackoffMs);
  const consume = bus.consume.bind(bus);

  const actor = createActor(persisterMachine, {
    clock,
    input: {
      store,
      now: () => clock.now(),
      random,
      batchSize,
      maxBatchSize,
      maxAgeMs,
      maxBuffered,
      minBackoffMs,
      maxBackoffMs,
    },
  });
  const pulling = new AbortController();
  const signal = pulling.signal;
  let resubscribes = 0;
  let lastError: unknown = null;

  function report(error: unknown, failure: PersisterFailure): void {
    lastError = error;
    onError?.(error, failure);
  }
  actor.on("persister.failed", (event) => {
    report(event.error, {
      phase: event.phase,
      failures: event.failures,
      retryInMs: event.retryInMs,
    });
  });
  // Resolves when the machine reaches `stopped`; rejects if it failed. Pulling stops either way.
  const finished = toPromise(actor);
  finished.catch(() => pulling.abort());
  actor.start();

  /** Resolve once the machine has room again, or pulling stops. */
  function flowing(): Promise<void> {
    if (!actor.getSnapshot().context.paused || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        resumed.unsubscribe();
        signal.removeEventListener("abort", done);
        resolve();
      };
      const resumed = actor.on("persister.resumed", done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Resolve with the iterator's next step, or `null` when pulling stops first. */
  function nextOrStop(
    iterator: AsyncIterator<Delivery[]>,
  ): Promise<IteratorResult<Delivery[]> | null> {
    const step = iterator.next();
    return new Promise((resolve, reject) => {
      let stopped = false;
      const stop = () => {
        stopped = true;
        resolve(null);
      };
      signal.addEventListener("abort", stop, { once: true });
      step.then(
        (result) => {
          signal.removeEventListener("abort", stop);
          // A batch that arrives after the stop is handed back at once for another consumer.
          if (stopped && !result.done) { for (const delivery of result.value) delivery.nak(); }
          else resolve(result);
        },
        (error) => {
          signal.removeEventListener("abort", stop);
          if (!stopped) reject(error);
        },
      );
    });
  }

  async function pullOnce(): Promise<void> {
    const iterator = consume(group, { signal, batchSize, maxWaitMs: maxAgeMs })[
      Symbol.asyncIterator
    ]();
    try {
      while (!signal.aborted) {
        await flowing();
        if (signal.aborted) return;
        const step = await nextOrStop(iterator);
        if (step === null) return;
        if (step.done) {
          throw new Error(
            `Cannot persist events: the bus ended the consumption of group "${group}" before the persister stopped`,
          );
        }
        if (step.value.length > 0) {
          actor.send({ type: "deliveries.received", deliveries: step.value });
        }
      }
    } finally {
      // Not awaited: an iterator stuck in a pull must not hold up the stop.
      iterator.return?.().catch(() => {});
    }
  }

  async function pullLoop(): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await pullOnce();
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        const retryInMs = backoffDelay(failures, minBackoffMs, maxBackoffMs, random());
        report(error, { phase: "consume", failures, retryInMs });
        await pause(clock, retryInMs, signal);
        if (!signal.aborted) resubscribes++;
      }
    }
  }
  const loop = pullLoop();

  let closing: Promise<void> | null = null;
  async function drain(giveUp: AbortSignal | undefined): Promise<void> {
    pulling.abort();
    await loop;
    // Giving up hands every held event back to the bus; stopping the actor aborts the write.
    const abandon = () => {
      const { buffer, batch } = actor.getSnapshot().context;
      actor.stop();
      for (const delivery of [...batch, ...buffer]) delivery.nak();
    };
    giveUp?.addEventListener("abort", abandon, { once: true });
    try {
      if (giveUp?.aborted) abandon();
      else actor.send({ type: "persister.stop" });
      await finished;
    } finally {
      giveUp?.removeEventListener("abort", abandon);
    }
  }
  function close(closeOptions: PersisterCloseOptions = {}): Promise<void> {
    closing ??= drain(closeOptions.signal);
    return closing;
  }

  return {
    stats() {
      const context = actor.getSnapshot().context;
      return {
        buffered: context.buffer.length + context.batch.length,
        written: context.written,
        deadLettered: context.deadLettered,
        retries: context.retries,
        resubscribes,
        lastError,
      };
    },
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}
