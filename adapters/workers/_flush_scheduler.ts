// When to send a batch: at the end of this tick, or, within a run of callbacks, once that run is over.

/** Schedules one flush at a time; see {@linkcode flushScheduler}. */
export interface FlushScheduler {
  /** Ask for a flush; several asks before it runs make one flush. */
  soon(): void;
  /** Call at the start of every flush. */
  flushing(): void;
  /** Release the channel it uses. */
  close(): void;
}

/**
 * Decide when `flush` runs. A lone ask flushes at the end of the current
 * tick (a microtask), so a single call pays no delay. But the event loop
 * often runs many callbacks back to back (a thousand timers expiring
 * together, a burst of I/O completions), each followed by its own microtasks:
 * flushing in each would send one message per callback. So every flush also
 * posts a marker to itself on a `MessageChannel`; the marker's task runs only
 * after the callbacks already due, and until it has run, a new ask waits for
 * it, and everything those callbacks produce leaves in one batch. The marker
 * costs a message, so it is posted only while `busy()` says more work is
 * under way (other calls in flight): a lone call, one after another, never
 * pays for it.
 */
export function flushScheduler(flush: () => void, busy: () => boolean): FlushScheduler {
  let pending = false;
  let deferred = false;
  let sameRun = false;
  let channel: MessageChannel | undefined;
  const marker = () => {
    sameRun = false;
    if (deferred) {
      deferred = false;
      flush();
    }
  };
  return {
    soon() {
      if (pending) return;
      pending = true;
      if (sameRun) deferred = true;
      else queueMicrotask(flush);
    },
    flushing() {
      pending = false;
      deferred = false;
      if (sameRun || !busy()) return;
      sameRun = true;
      if (channel === undefined) {
        channel = new MessageChannel();
        channel.port1.onmessage = marker;
      }
      channel.port2.postMessage(0);
    },
    close() {
      channel?.port1.close();
      channel?.port2.close();
      channel = undefined;
    },
  };
}
