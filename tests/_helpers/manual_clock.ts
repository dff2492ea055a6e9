// A clock that moves only when a test says so: deterministic timers for the runtime and the mock LLM.

import type { Clock } from "../../actors/ports.ts";

/** A clock a test advances by hand. */
export interface ManualClock extends Clock {
  /** Move time forward by `ms`, firing due timers in order and letting promises settle after each. */
  advance(ms: number): Promise<void>;
  /** Let pending promise callbacks run without moving time. */
  settle(): Promise<void>;
  /** How many timers are pending. */
  readonly pending: number;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Enough microtask turns for the runtime's longest promise chain (activation, reply, write). */
const SETTLE_TURNS = 64;

/**
 * Make a manual clock starting at `start` ms. Timers fire only inside
 * `advance`, in order of due time then creation; between two timers every
 * pending promise callback runs, so a test sees the same order every time.
 */
export function manualClock(start = 1_700_000_000_000): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, Timer>();

  async function settle(): Promise<void> {
    for (let i = 0; i < SETTLE_TURNS; i++) await Promise.resolve();
  }

  function due(limit: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of timers.values()) {
      if (timer.at > limit) continue;
      if (
        next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)
      ) {
        next = timer;
      }
    }
    return next;
  }

  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), seq: id, fn });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id as number);
    },
    async advance(ms) {
      const target = now + ms;
      await settle();
      for (let timer = due(target); timer !== undefined; timer = due(target)) {
        timers.delete(timer.seq);
        now = Math.max(now, timer.at);
        timer.fn();
        await settle();
      }
      now = target;
      await settle();
    },
    settle,
    get pending() {
      return timers.size;
    },
  };
}
