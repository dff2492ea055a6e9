// `delay`: a promise that resolves after a number of milliseconds unless a signal aborts it first.

/** Options for {@linkcode delay}. */
export interface DelayOptions {
  /**
   * Aborting this signal rejects the delay at once with the signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Whether the pending timer keeps the process alive. With `false` the
   * process may exit while the delay is still pending.
   *
   * @default {true}
   */
  persistent?: boolean;
}

// setTimeout takes a signed 32-bit delay; longer waits are chained below it.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolve after `ms` milliseconds.
 *
 * If `options.signal` is aborted first (or already is), the promise rejects
 * with the signal's reason, which is a `DOMException` named `"AbortError"`
 * when `abort()` was called without one. Either way the timer is cleared and
 * the abort listener removed.
 *
 * @param ms How long to wait, in milliseconds; negative or `NaN` means 0.
 * @param options Cancellation and persistence.
 * @returns A promise that resolves to `undefined` once the time has passed.
 *
 * @example Waiting, and giving up early
 * ```ts
 * import { delay } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * await delay(1);
 *
 * const controller = new AbortController();
 * const waiting = delay(60_000, { signal: controller.signal });
 * controller.abort(new Error("no longer needed"));
 * await assert.rejects(waiting, { message: "no longer needed" });
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, persistent = true } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const wanted = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    const startedAt = wanted > MAX_TIMER_MS ? Date.now() : 0;
    const arm = (wait: number) => {
      if (wait > MAX_TIMER_MS) {
        timer = setTimeout(() => arm(wanted - (Date.now() - startedAt)), MAX_TIMER_MS);
      } else {
        timer = setTimeout(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, wait);
      }
      if (!persistent) Deno.unrefTimer(timer);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    arm(wanted);
  });
}
