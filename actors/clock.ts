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
