// One consumer group of the memory bus: a queue of events handed out in batches and kept until acked.

import type { TroupeEvent } from "../../actors/events.ts";
import type { Clock, ConsumeOptions, Delivery } from "../../actors/ports.ts";
import { watermarkWaits } from "./_watermark_waits.ts";

/** The events a group has yet to see acknowledged. */
export interface MemoryGroup {
  /** Keep an event for the group. */
  push(event: TroupeEvent): void;
  /** Events ready, handed out and unacked, or waiting for a nak's delay. */
  backlog(): number;
  /**
   * Resolve once every event pushed before this call is acknowledged (later
   * ones are not waited for), or no member is consuming, or it closed. While
   * such a wait is open, batches are handed over without waiting for
   * `maxWaitMs`.
   */
  persisted(): Promise<void>;
  /** Hand out batches to one member until the signal aborts or the group closes. */
  take(options: ConsumeOptions): AsyncGenerator<Delivery[]>;
  /** End every member's iteration and cancel nak timers. */
  close(): void;
}

interface Pending {
  event: TroupeEvent;
  attempt: number;
  /** Its place in push order, kept across redeliveries. */
  seq: number;
}

/**
 * Makes a group. Members share one queue, so each event goes to one member;
 * a batch is handed over once it holds `batchSize` events or `maxWaitMs`
 * after the first one was ready. A nak puts the event back after its delay
 * with the attempt raised; an event handed out and never settled stays
 * counted in the backlog (the memory bus has no crash recovery).
 */
export function memoryGroup(clock: Clock): MemoryGroup {
  let ready: Pending[] = [];
  let head = 0;
  let outstanding = 0;
  let members = 0;
  let closed = false;
  const wakers = new Set<() => void>();
  const timers = new Set<unknown>();
  // The acknowledgement watermark: every sequence below `oldest` is acked. Acks that
  // come ahead of it (a nak'd event redelivered later) wait in `ackedAhead`.
  let nextSeq = 0;
  let oldest = 0;
  const ackedAhead = new Set<number>();
  const waits = watermarkWaits();

  function readyCount(): number {
    return ready.length - head;
  }

  function wake(): void {
    for (const waker of [...wakers]) waker();
  }

  function push(event: TroupeEvent): void {
    if (closed) return;
    ready.push({ event, attempt: 1, seq: nextSeq++ });
    wake();
  }

  /** Move the watermark past `seq`, now acked, and release the waits it meets. */
  function acknowledged(seq: number): void {
    if (seq !== oldest) {
      ackedAhead.add(seq);
      return;
    }
    oldest++;
    while (ackedAhead.delete(oldest)) oldest++;
    waits.reached(oldest);
  }

  /** Resolve once `enough()` holds, the time is up, the signal aborts or the group closes. */
  function waitFor(enough: () => boolean, signal: AbortSignal, ms?: number): Promise<void> {
    if (enough() || closed || signal.aborted || (ms !== undefined && ms <= 0)) {
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    let timer: unknown;
    const done = () => {
      wakers.delete(check);
      signal.removeEventListener("abort", done);
      if (timer !== undefined) clock.clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (enough() || closed) done();
    };
    wakers.add(check);
    signal.addEventListener("abort", done, { once: true });
    if (ms !== undefined) timer = clock.setTimeout(done, ms);
    return promise;
  }

  function delivery(pending: Pending): Delivery {
    let settled = false;
    return {
      data: pending.event,
      attempt: pending.attempt,
      ack() {
        if (!settled) {
          settled = true;
          outstanding--;
          acknowledged(pending.seq);
          wake();
        }
        return Promise.resolve();
      },
      nak(delayMs = 0) {
        if (settled) return;
        settled = true;
        const again = () => {
          timers.delete(timer);
          outstanding--;
          if (closed) return;
          ready.push({ event: pending.event, attempt: pending.attempt + 1, seq: pending.seq });
          wake();
        };
        const timer = clock.setTimeout(again, Math.max(0, delayMs));
        timers.add(timer);
      },
    };
  }

  async function* take(options: ConsumeOptions): AsyncGenerator<Delivery[]> {
    const { signal, batchSize, maxWaitMs } = options;
    members++;
    try {
      yield* batches(signal, batchSize, maxWaitMs);
    } finally {
      members--;
      // Nothing will acknowledge what the waits are for.
      if (members === 0) waits.resolveAll();
      wake();
    }
  }

  async function* batches(
    signal: AbortSignal,
    batchSize: number,
    maxWaitMs: number,
  ): AsyncGenerator<Delivery[]> {
    while (!signal.aborted && !closed) {
      await waitFor(() => readyCount() > 0, signal);
      if (signal.aborted || closed) return;
      // Someone waits for what is ready to be stored: hand it over now.
      await waitFor(() => readyCount() >= batchSize || waits.open(), signal, maxWaitMs);
      if (signal.aborted || closed) return;
      const count = Math.min(batchSize, readyCount());
      if (count === 0) continue; // another member took them
      const batch = ready.slice(head, head + count);
      head += count;
      if (head > 1_024 && head * 2 > ready.length) {
        ready = ready.slice(head);
        head = 0;
      }
      outstanding += count;
      yield batch.map(delivery);
    }
  }

  function close(): void {
    closed = true;
    for (const timer of timers) clock.clearTimeout(timer);
    timers.clear();
    waits.resolveAll();
    wake();
  }

  function persisted(): Promise<void> {
    const target = nextSeq - 1;
    if (target < oldest || members === 0 || closed) return Promise.resolve();
    const waited = waits.wait(target);
    wake();
    return waited;
  }

  return { push, backlog: () => readyCount() + outstanding, persisted, take, close };
}
