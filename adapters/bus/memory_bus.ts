// The in-process event bus: the embedded default, delivering to subscribers off the publisher's stack.

import type { TroupeEvent } from "../../actors/events.ts";
import type { EventBus, Unsubscribe } from "../../actors/ports.ts";

/** Options of {@linkcode memoryBus}. */
export interface MemoryBusOptions {
  /**
   * Called when a subscriber throws; the other subscribers still get the event.
   * @default {writes a JSON line to stderr}
   */
  onError?: (error: unknown, event: TroupeEvent) => void;
}

function logSubscriberError(error: unknown, event: TroupeEvent): void {
  console.error(JSON.stringify({
    level: "error",
    msg: "event subscriber failed",
    type: event.type,
    org: event.org,
    session: event.session,
    error: error instanceof Error ? error.message : String(error),
  }));
}

/**
 * An in-process bus. `publish` only appends to a buffer; the buffer is handed
 * to subscribers in one go on the next microtask, so a slow subscriber never
 * runs inside a session actor's transition. Events published while nobody is
 * subscribed are dropped: persistence subscribes before the first message.
 *
 * @example
 * ```ts
 * import { memoryBus } from "./memory_bus.ts";
 *
 * await using bus = memoryBus();
 * const seen: string[] = [];
 * bus.subscribe((event) => seen.push(event.type));
 * bus.publish({ id: "1", ts: 0, org: "o", session: "s", type: "session.activated", historyLength: 0 });
 * await bus.flush();
 * console.assert(seen[0] === "session.activated");
 * ```
 */
export function memoryBus(options: MemoryBusOptions = {}): EventBus & AsyncDisposable {
  const { onError = logSubscriberError } = options;
  const handlers = new Set<(event: TroupeEvent) => void>();
  let buffer: TroupeEvent[] = [];
  let scheduled = false;
  let closed = false;

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

  function publish(event: TroupeEvent): void {
    if (closed || handlers.size === 0) return;
    buffer.push(event);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(deliver);
    }
  }

  function subscribe(handler: (event: TroupeEvent) => void): Unsubscribe {
    handlers.add(handler);
    return () => handlers.delete(handler);
  }

  function flush(): Promise<void> {
    if (buffer.length > 0) deliver();
    return Promise.resolve();
  }

  async function close(): Promise<void> {
    await flush();
    closed = true;
    handlers.clear();
  }

  return { publish, subscribe, flush, close, [Symbol.asyncDispose]: close };
}
