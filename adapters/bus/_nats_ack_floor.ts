// Waits for consumer groups' ack floors to reach a stream sequence: one poll per group serves every wait.

import { delay } from "@std/async";

/**
 * Reads a group's ack floor: the stream sequence at and below which it has
 * acknowledged every message. `Infinity` when nobody in this process will ack
 * (nothing to wait for); `null` when it cannot be read now (try again).
 */
export type ReadAckFloor = (group: string) => Promise<number | null>;

/** Waits on the ack floors of consumer groups. */
export interface AckFloorWaits {
  /**
   * Resolve with `true` once `group` has acknowledged every message up to the
   * stream sequence `seq`, or with `false` after `timeoutMs` or on `stop()`.
   */
  reach(group: string, seq: number, timeoutMs: number): Promise<boolean>;
  /** End every wait (with `false`) and stop polling. */
  stop(): void;
}

interface Wait {
  seq: number;
  finish(reached: boolean): void;
}

/**
 * Makes the waits. A group is polled every `pollMs` while someone waits on
 * it, once for all of them, so that a hundred concurrent reads of one's own
 * writes cost one consumer-info request per poll, not a hundred.
 *
 * @example
 * ```ts
 * import { ackFloorWaits } from "./_nats_ack_floor.ts";
 *
 * let floor = 3;
 * const waits = ackFloorWaits(() => Promise.resolve(floor++), 1);
 * console.assert(await waits.reach("persisters", 5, 1_000));
 * waits.stop();
 * ```
 */
export function ackFloorWaits(read: ReadAckFloor, pollMs: number): AckFloorWaits {
  const groups = new Map<string, Set<Wait>>();
  const stopping = new AbortController();

  async function poll(group: string, waits: Set<Wait>): Promise<void> {
    try {
      while (waits.size > 0 && !stopping.signal.aborted) {
        const floor = await read(group).catch(() => null);
        if (floor !== null) {
          for (const wait of [...waits]) if (wait.seq <= floor) wait.finish(true);
        }
        if (waits.size > 0) await delay(pollMs, { signal: stopping.signal }).catch(() => {});
      }
    } finally {
      // Synchronously after the last check: a wait added later starts a new poll.
      if (groups.get(group) === waits) groups.delete(group);
    }
  }

  function reach(group: string, seq: number, timeoutMs: number): Promise<boolean> {
    if (stopping.signal.aborted) return Promise.resolve(false);
    const polled = groups.get(group);
    const waits = polled ?? new Set<Wait>();
    if (polled === undefined) groups.set(group, waits);
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const wait: Wait = {
      seq,
      finish(reached) {
        if (!waits.delete(wait)) return;
        clearTimeout(timer);
        resolve(reached);
      },
    };
    const timer = setTimeout(() => wait.finish(false), timeoutMs);
    waits.add(wait);
    // Started once the wait is in: a poll ends as soon as it finds no wait.
    if (polled === undefined) void poll(group, waits);
    return promise;
  }

  function stop(): void {
    stopping.abort();
    for (const waits of groups.values()) for (const wait of [...waits]) wait.finish(false);
  }

  return { reach, stop };
}
