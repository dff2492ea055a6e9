// The NATS bus's background publisher: a queue, a window of unacknowledged publishes, retries until acked.

import { retry } from "@std/async";
import type { TroupeEvent } from "../../actors/events.ts";
import { BusError, type BusErrorHandler } from "./errors.ts";

/** Sends one serialised event and resolves once the stream acknowledged it. */
export type SendFn = (subject: string, payload: string, msgID: string) => Promise<unknown>;

/** What the publisher needs. */
export interface PublisherOptions {
  /** Publishes and awaits the stream's ack; rejects on timeout, no responders, disconnect. */
  send: SendFn;
  /** The subject of an event. */
  subjectOf: (event: TroupeEvent) => string;
  /** At most this many publishes awaiting their ack at once. */
  maxInFlight: number;
  /** Where failures are reported (once per streak of failures). */
  onError: BusErrorHandler;
}

/** The queue of events to publish. */
export interface Publisher {
  /** Queue an event; never throws. */
  enqueue(event: TroupeEvent): void;
  /** Events queued or awaiting their ack. */
  backlog(): number;
  /** Resolves once every event enqueued so far is acked; rejects if stopped first. */
  flush(): Promise<void>;
  /** Stop retrying; pending flushes reject. Returns how many events stay unacked. */
  stop(): number;
}

interface Item {
  seq: number;
  event: TroupeEvent;
  subject: string;
  payload: string;
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

// Backoff between attempts of one event: 100 ms doubling to 5 s, half of it random.
const RETRY = { minTimeout: 100, maxTimeout: 5_000, multiplier: 2, jitter: 0.5 } as const;

/**
 * Makes a publisher. Events leave the queue in order, up to `maxInFlight` at a
 * time; each one is retried with backoff until the stream acks it, holding its
 * slot, so an outage stops the queue from draining instead of losing events.
 * Ack order may differ from publish order; the event id is the message id, so
 * a retry of an event the stream already stored is dropped by the server.
 */
export function publisher(options: PublisherOptions): Publisher {
  const { send, subjectOf, maxInFlight, onError } = options;
  const stopping = new AbortController();
  let queue: Item[] = [];
  let head = 0;
  const inFlight = new Set<number>();
  let nextSeq = 0;
  let failing = false;
  let waiters: Waiter[] = [];

  function backlog(): number {
    return queue.length - head + inFlight.size;
  }

  /** The sequence of the oldest event not yet acked (`nextSeq` when all are). */
  function oldestUnacked(): number {
    let oldest = head < queue.length ? queue[head]!.seq : nextSeq;
    for (const seq of inFlight) if (seq < oldest) oldest = seq;
    return oldest;
  }

  function settleWaiters(): void {
    if (waiters.length === 0) return;
    const oldest = oldestUnacked();
    const still: Waiter[] = [];
    for (const waiter of waiters) {
      if (waiter.target < oldest) waiter.resolve();
      else still.push(waiter);
    }
    waiters = still;
  }

  function report(error: unknown, event: TroupeEvent): void {
    if (failing || stopping.signal.aborted) return;
    failing = true;
    onError(
      new BusError(
        "publish_failed",
        `Cannot publish event ${event.id} yet: retrying until the stream acknowledges it ` +
          `(${backlog()} events waiting)`,
        { cause: error },
      ),
      event,
    );
  }

  async function deliver(item: Item): Promise<void> {
    try {
      await retry(async () => {
        try {
          await send(item.subject, item.payload, String(item.event.id));
        } catch (error) {
          report(error, item.event);
          throw error;
        }
      }, { ...RETRY, maxAttempts: Number.MAX_SAFE_INTEGER, signal: stopping.signal });
    } catch {
      return; // stopped: the event stays counted as unacked
    }
    failing = false;
    inFlight.delete(item.seq);
    settleWaiters();
    pump();
  }

  function pump(): void {
    while (inFlight.size < maxInFlight && head < queue.length && !stopping.signal.aborted) {
      const item = queue[head++]!;
      inFlight.add(item.seq);
      deliver(item);
    }
    if (head > 1_024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  function enqueue(event: TroupeEvent): void {
    let payload: string;
    try {
      payload = JSON.stringify(event);
    } catch (error) {
      onError(
        new BusError("publish_failed", `Cannot publish event ${event.id}: it is not JSON`, {
          cause: error,
        }),
        event,
      );
      return;
    }
    queue.push({ seq: nextSeq++, event, subject: subjectOf(event), payload });
    pump();
  }

  function flush(): Promise<void> {
    if (stopping.signal.aborted && backlog() > 0) {
      return Promise.reject(undelivered("flush"));
    }
    const target = nextSeq - 1;
    if (target < oldestUnacked()) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    waiters.push({ target, resolve, reject });
    return promise;
  }

  function undelivered(what: string): BusError {
    const count = backlog();
    return new BusError(
      "undelivered",
      `Cannot ${what}: the bus was closed with ${count} events not acknowledged by the stream`,
      { undelivered: count },
    );
  }

  function stop(): number {
    stopping.abort();
    const error = undelivered("flush");
    for (const waiter of waiters) waiter.reject(error);
    waiters = [];
    return backlog();
  }

  return { enqueue, backlog, flush, stop };
}
