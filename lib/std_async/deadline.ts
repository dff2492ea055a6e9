// `deadline`: wait for a promise, but reject with a "TimeoutError" once a number of milliseconds pass.

import { abortable } from "./abortable.ts";

/** Options for {@linkcode deadline}. */
export interface DeadlineOptions {
  /**
   * Aborting this signal rejects the deadline at once with the signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Wait for `p`, but reject with a `DOMException` named `"TimeoutError"` if it
 * has not settled after `ms` milliseconds. `p` itself keeps running; only the
 * wait is abandoned. The timer is cleared as soon as the result is known.
 *
 * Prefer `AbortSignal.timeout(ms)` for APIs that accept a signal: it cancels
 * the work instead of only the wait.
 *
 * @typeParam T What `p` resolves to.
 * @param p The promise to wait for.
 * @param ms How long to wait, in milliseconds. At or above
 * `Number.MAX_SAFE_INTEGER` the deadline never expires.
 * @param options Cancellation.
 * @returns A promise that settles like `p` when `p` settles in time.
 * @throws {DOMException} Named `"TimeoutError"` when the time runs out.
 * @throws {unknown} `options.signal.reason` when the signal aborts first (a
 * `DOMException` named `"AbortError"` if `abort()` was called without one).
 *
 * @example Timing out a slow call
 * ```ts
 * import { deadline, delay } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await deadline(Promise.resolve("fast"), 1_000), "fast");
 *
 * const controller = new AbortController();
 * const slow = delay(60_000, { signal: controller.signal });
 * await assert.rejects(deadline(slow, 5), { name: "TimeoutError" });
 * controller.abort();
 * await assert.rejects(slow, { name: "AbortError" });
 * ```
 */
export function deadline<T>(p: Promise<T>, ms: number, options: DeadlineOptions = {}): Promise<T> {
  const { signal } = options;
  if (ms >= Number.MAX_SAFE_INTEGER) return signal ? abortable(p, signal) : p;
  const timeout = new AbortController();
  const timer = setTimeout(() => {
    timeout.abort(new DOMException("Signal timed out.", "TimeoutError"));
  }, ms);
  const stop = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
  return abortable(p, stop).finally(() => clearTimeout(timer));
}
