// The system clock: real time for the runtime; tests inject their own `Clock`.

import type { Clock } from "./ports.ts";

/**
 * The wall clock and the global timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 *
 * const id = systemClock.setTimeout(() => {}, 10);
 * systemClock.clearTimeout(id);
 * console.assert(systemClock.now() > 0);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as number),
};

/**
 * Resolve after `ms` on `clock`, or reject with the signal's reason as soon
 * as it aborts (at once if it already has). Like `delay` of `@std/async`,
 * but on an injected clock, so tests drive it with a manual one.
 *
 * @example
 * ```ts
 * import { sleep, systemClock } from "./clock.ts";
 *
 * const controller = new AbortController();
 * const slept = sleep(systemClock, 60_000, controller.signal);
 * controller.abort(new Error("stop"));
 * await slept.catch((error) => console.assert(error.message === "stop"));
 * ```
 */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
