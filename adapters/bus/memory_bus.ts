// The in-process event bus: the embedded default, delivering to subscribers off the publisher's stack.

import { systemClock } from "../../actors/clock.ts";
import type { TroupeEvent } from "../../actors/events.ts";
import type { Clock, ConsumeOptions, Delivery, EventBus } from "../../actors/ports.ts";
import { checkConsumeOptions } from "./_check_consume.ts";
import { fanOut } from "./_fan_out.ts";
import { type MemoryGroup, memoryGroup } from "./_memory_group.ts";
import { logBusError } from "./errors.ts";

/** Options of {@linkcode memoryBus}. */
export interface MemoryBusOptions {
  /**
   * Called when a subscriber throws; the other subscribers still get the event.
   * @default {writes a JSON line to stderr}
   */
  onError?: (error: unknown, event: TroupeEvent) => void;
  /**
   * Consumer groups that keep every event from the moment the bus is made.
   * A group not listed here starts keeping events at its first `consume`.
   * @default {[]}
   */
  groups?: string[];
  /**
   * `saturated()` turns true once a group's unacknowledged backlog reaches
   * this many events. Nothing is dropped past it.
   * @default {10_000}
   */
  maxBuffered?: number;
  /**
   * The timers behind `maxWaitMs` and nak delays.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * An in-process bus. `publish` only appends to a buffer; the buffer is handed
 * to subscribers in one go on the next microtask, so a slow subscriber never
 * runs inside a session actor's transition. Events published while nobody is
 * subscribed are dropped for subscribers.
 *
 * Consumer groups (`consume`) keep events for persisters: a group listed in
 * `groups` keeps every event published since the bus was made, any other
 * group every event published since its first `consume` call. Events are
 * handed out in batches and kept until acked; a nak hands the event out again
 * after its delay with a higher `attempt`. Nothing survives the process, and
 * an event handed out that is neither acked nor nak'd is never redelivered.
 * `saturated()` is true while a group's backlog is at `maxBuffered`.
 * `flush()` and `persisted()` wait until every group that has a member
 * consuming has acknowledged the events published before the call (in
 * memory, "delivered" means persisted), and not for later ones, so they end
 * under a steady load. While one waits, the groups hand over their batches
 * without waiting for `maxWaitMs`. `flush()` also delivers to subscribers.
 *
 * @example Observing events
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
 *
 * @example Consuming as a persister group
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryBus } from "./memory_bus.ts";
 *
 * await using bus = memoryBus({ groups: ["usage"] });
 * bus.publish({ id: "1", ts: 0, org: "o", session: "s", type: "session.activated", historyLength: 0 });
 * const controller = new AbortController();
 * for await (const batch of bus.consume!("usage", { signal: controller.signal, batchSize: 100, maxWaitMs: 0 })) {
 *   assert.equal(batch.length, 1);
 *   await batch[0]!.ack();
 *   controller.abort();
 * }
 * ```
 */
export function memoryBus(options: MemoryBusOptions = {}): EventBus & AsyncDisposable {
  const { onError = logBusError, groups: initial = [], maxBuffered = 10_000, clock = systemClock } =
    options;
  if (!Number.isInteger(maxBuffered) || maxBuffered < 1) {
    throw new RangeError(
      `Cannot create the memory bus: maxBuffered must be a positive integer, current value is ${maxBuffered}`,
    );
  }
  const fan = fanOut(onError);
  const groups = new Map<string, MemoryGroup>();
  for (const name of initial) groups.set(name, memoryGroup(clock));
  let closed = false;

  function publish(event: TroupeEvent): void {
    if (closed) return;
    fan.publish(event);
    for (const group of groups.values()) group.push(event);
  }

  function consume(name: string, consumeOptions: ConsumeOptions): AsyncIterable<Delivery[]> {
    checkConsumeOptions(consumeOptions);
    let group = groups.get(name);
    if (group === undefined) {
      group = memoryGroup(clock);
      if (closed) group.close();
      else groups.set(name, group);
    }
    return group.take(consumeOptions);
  }

  function saturated(): boolean {
    for (const group of groups.values()) if (group.backlog() >= maxBuffered) return true;
    return false;
  }

  /** Subscribers have every event, and consuming groups have acknowledged those published so far. */
  async function flush(): Promise<void> {
    fan.deliver();
    await persisted();
  }

  /** Every consuming group has acknowledged every event published so far; later ones are not waited for. */
  async function persisted(): Promise<void> {
    await Promise.all([...groups.values()].map((group) => group.persisted()));
  }

  /** Deliver to subscribers and end the groups; waiting for acks is `flush`'s job. */
  function close(): Promise<void> {
    fan.deliver();
    closed = true;
    fan.clear();
    for (const group of groups.values()) group.close();
    return Promise.resolve();
  }

  return {
    publish,
    subscribe: (handler) => fan.subscribe(handler),
    consume,
    saturated,
    flush,
    persisted,
    close,
    [Symbol.asyncDispose]: close,
  };
}
