// The wait before a retry: exponential backoff with full jitter, never shorter than the upstream's hint.

/** How {@linkcode retryDelay} grows and is bounded. */
export interface BackoffOptions {
  /** The cap of the first retry's wait, in ms; each later cap doubles. */
  minDelayMs: number;
  /** The largest cap, in ms. */
  maxDelayMs: number;
  /** A uniform draw in [0, 1). */
  random: () => number;
}

/**
 * The wait before retry number `retry` (1 for the first retry): a uniform
 * draw between 0 and `min(maxDelayMs, minDelayMs * 2 ** (retry - 1))` ("full
 * jitter", which spreads the retries of many callers best), raised to the
 * upstream's `Retry-After` hint when there is one: a hint is a floor, even
 * above `maxDelayMs`.
 *
 * @param retry Which retry this is, from 1.
 * @param hintMs The upstream's hint, if any.
 * @param options Growth, bound and randomness.
 * @returns The wait in ms, a whole number.
 *
 * @example
 * ```ts
 * import { retryDelay } from "./_backoff.ts";
 *
 * const options = { minDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 };
 * console.assert(retryDelay(1, undefined, options) === 50);
 * console.assert(retryDelay(3, undefined, options) === 200);
 * console.assert(retryDelay(9, undefined, options) === 500);
 * console.assert(retryDelay(1, 2000, options) === 2000);
 * ```
 */
export function retryDelay(
  retry: number,
  hintMs: number | undefined,
  options: BackoffOptions,
): number {
  const cap = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** (retry - 1));
  const drawn = Math.floor(Math.min(Math.max(options.random(), 0), 1) * cap);
  return Math.max(drawn, Math.ceil(hintMs ?? 0));
}
