// The NATS bus's background publisher: a queue, a window of unacknowledged publishes, retries until acked.

import type { TroupeEvent } from "../../actors/events.ts";
import { backoffDelay } from "../../actors/persister_write.ts";
import { BusError, type BusErrorHandler } from "./errors.ts";
import { watermarkWaits } from "./_watermark_waits.ts";

/** Sends one serialised event; resolves with its stream sequence once the stream acknowledged it. */
export type SendFn = (subject: string, payload: string, msgID: string) => Promise<number>;

/**
 * The rejection of a send whose ack was lost with its connection (NATS
 * reconnected before the stream answered). Not a failure: the publisher sends
 * the event again at once, and the stream drops the copy if it stored the first.
 *
 * @example
 * ```ts
 * import { AckLostError } from "./_nats_publisher.ts";
 *
 * const error: unknown = new AckLostError();
 * console.assert(error instanceof AckLostError);
 * ```
 */
export class AckLostError extends Error {
  /** Make one; the message says what happened. */
  constructor() {
    super("Cannot wait for the stream's ack: the connection to NATS was re-established first");
    this.name = "AckLostError";
  }
}

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
  /**
   * The highest stream sequence acknowledged so far (0 before the first ack).
   * Once `flush()` resolved, every event enqueued before it is at or below it.
   */
  streamSeq(): number;
  /**
   * The connection is back: send every event waiting out a backoff now, and
   * start its backoff over. An outage grows the backoff to seconds; without
   * this, the events would reach the stream that long after the server did.
   */
  retryNow(): void;
  /** Stop retrying; pending flushes reject. Returns how many events stay unacked. */
  stop(): number;
}

interface Item {
  seq: number;
  event: TroupeEvent;
  subject: string;
  payload: string;
  /** Failed sends so far. */
  failures: number;
}

/** The delay before the next attempt of an event that failed `failures` times: 100 ms doubling to 5 s, half of it random. */
function backoff(failures: number): number {
  return backoffDelay(failures, 100, 5_000, 0.5 * Math.random());
}

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
  // Events waiting out a backoff, by their timer.
  const retries = new Map<ReturnType<typeof setTimeout>, Item>();
  let nextSeq = 0;
  // The oldest event not yet acked (`nextSeq` when all are): every sequence below it is acked.
  let oldest = 0;
  let failing = false;
  let streamSeq = 0;
  const waiters = watermarkWaits();

  function backlog(): number {
    return queue.length - head + inFlight.size;
  }

  function isQueued(seq: number): boolean {
    return head < queue.length && seq >= queue[head]!.seq;
  }

  function settleWaiters(): void {
    // Acks come back out of order: move past every sequence acked since.
    while (oldest < nextSeq && !inFlight.has(oldest) && !isQueued(oldest)) oldest++;
    waiters.reached(oldest);
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

  // Each event is sent until the stream acks it, holding its slot in the window meanwhile;
  // a failed send is retried after a backoff. Written with callbacks rather than a retry
  // loop per event: on the happy path an event costs one promise.
  function deliver(item: Item): void {
    send(item.subject, item.payload, String(item.event.id)).then(
      (seq) => acked(item, seq),
      (error) => failed(item, error),
    );
  }

  function acked(item: Item, seq: number): void {
    failing = false;
    if (seq > streamSeq) streamSeq = seq;
    inFlight.delete(item.seq);
    settleWaiters();
    pump();
  }

  function failed(item: Item, error: unknown): void {
    if (stopping.signal.aborted) return;
    if (error instanceof AckLostError) {
      item.failures = 0;
      deliver(item);
      return;
    }
    report(error, item.event);
    const timer = setTimeout(() => {
      retries.delete(timer);
      if (!stopping.signal.aborted) deliver(item);
    }, backoff(++item.failures));
    retries.set(timer, item);
  }

  function retryNow(): void {
    if (stopping.signal.aborted) return;
    const waiting = [...retries];
    retries.clear();
    for (const [timer, item] of waiting) {
      clearTimeout(timer);
      item.failures = 0;
      deliver(item);
    }
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
    queue.push({ seq: nextSeq++, event, subject: subjectOf(event), payload, failures: 0 });
    pump();
  }

  function flush(): Promise<void> {
    if (stopping.signal.aborted && backlog() > 0) {
      return Promise.reject(undelivered("flush"));
    }
    const target = nextSeq - 1;
    if (target < oldest) return Promise.resolve();
    return waiters.wait(target);
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
    for (const timer of retries.keys()) clearTimeout(timer);
    retries.clear();
    waiters.rejectAll(undelivered("flush"));
    return backlog();
  }

  return { enqueue, backlog, flush, streamSeq: () => streamSeq, retryNow, stop };
}
