// In-process fan-out shared by the buses: buffers events and hands them to subscribers on the next microtask.

import type { TroupeEvent } from "../../actors/events.ts";
import type { Unsubscribe } from "../../actors/ports.ts";

/** The local half of a bus: subscribers of this process. */
export interface FanOut {
  /** Buffer an event for the subscribers; dropped when nobody is subscribed. */
  publish(event: TroupeEvent): void;
  /** Add a subscriber. */
  subscribe(handler: (event: TroupeEvent) => void): Unsubscribe;
  /** Deliver what is buffered now, synchronously. */
  deliver(): void;
  /** Forget every subscriber. */
  clear(): void;
}

/**
 * Makes a fan-out. `publish` only appends to a buffer; the buffer goes to the
 * subscribers in one go on the next microtask, so a slow subscriber never runs
 * inside a session actor's transition, and one that throws is reported to
 * `onError` without stopping the others.
 */
export function fanOut(onError: (error: unknown, event: TroupeEvent) => void): FanOut {
  const handlers = new Set<(event: TroupeEvent) => void>();
  let buffer: TroupeEvent[] = [];
  let scheduled = false;

  function deliver(): void {
    scheduled = false;
    const events = buffer;
    buffer = [];
    for (const event of events) {
      for (const handler of handlers) {
        try {
          handler(event);
        } catch (error) {
          onError(error, event);
        }
      }
    }
  }

  return {
    publish(event) {
      if (handlers.size === 0) return;
      buffer.push(event);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(() => {
          if (scheduled) deliver();
        });
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    deliver() {
      if (buffer.length > 0) deliver();
    },
    clear() {
      handlers.clear();
      buffer = [];
    },
  };
}
