// A one-producer async queue: the runtime pushes stream events, the caller iterates them.

import type { StreamEvent } from "./reply.ts";

/** The producer side of a stream, and the iterator the caller holds. */
export interface StreamChannel {
  /** Queue an event for the reader. Ignored after `end`. */
  push(event: StreamEvent): void;
  /** No more events will come. */
  end(): void;
  /** Fail the stream (the reader's next step rejects). */
  fail(error: unknown): void;
  /** The reader's side. */
  readonly iterator: AsyncIterableIterator<StreamEvent>;
}

/**
 * Make a stream channel. Events are buffered until read, so a slow reader
 * never loses one; a reader that stops early (`break`) just stops receiving.
 *
 * @example
 * ```ts
 * import { streamChannel } from "./stream_channel.ts";
 *
 * const channel = streamChannel();
 * channel.push({ type: "delta", text: "hi" });
 * channel.end();
 * const seen = [];
 * for await (const event of channel.iterator) seen.push(event.type);
 * console.assert(seen.length === 1);
 * ```
 */
export function streamChannel(): StreamChannel {
  const buffer: StreamEvent[] = [];
  let done = false;
  let failure: { error: unknown } | null = null;
  // Readers waiting for an event, oldest first: `next()` may be called again before it settles.
  const waiting: { resolve(r: IteratorResult<StreamEvent>): void; reject(e: unknown): void }[] = [];

  function wake(): void {
    while (waiting.length > 0) {
      if (buffer.length > 0) waiting.shift()!.resolve({ value: buffer.shift()!, done: false });
      else if (failure !== null) waiting.shift()!.reject(failure.error);
      else if (done) waiting.shift()!.resolve({ value: undefined, done: true });
      else return;
    }
  }

  const iterator: AsyncIterableIterator<StreamEvent> = {
    next() {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        wake();
      });
    },
    return() {
      done = true;
      failure = null;
      buffer.length = 0;
      wake();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };

  return {
    push(event) {
      if (done) return;
      buffer.push(event);
      wake();
    },
    end() {
      done = true;
      wake();
    },
    fail(error) {
      if (done) return;
      failure = { error };
      done = true;
      wake();
    },
    iterator,
  };
}
