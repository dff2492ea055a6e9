// `retry`: call a function until it succeeds, backing off exponentially with jitter between attempts.

import { delay } from "./delay.ts";

/**
 * Thrown by {@linkcode retry} when every allowed attempt failed. `cause` is the
 * error of the last attempt.
 *
 * @example Reading the last failure
 * ```ts
 * import { RetryError } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * const error = new RetryError(new Error("503"), 3);
 * assert.equal(error.name, "RetryError");
 * assert.equal(error.message, "Retrying exceeded the maxAttempts (3).");
 * assert.equal((error.cause as Error).message, "503");
 * ```
 */
export class RetryError extends Error {
  /**
   * Make the error for a retry that ran out of attempts.
   *
   * @param cause What the last attempt threw.
   * @param attempts How many attempts were made.
   */
  constructor(cause: unknown, attempts: number) {
    super(`Retrying exceeded the maxAttempts (${attempts}).`, { cause });
    this.name = "RetryError";
  }
}

/** Options for {@linkcode retry}. */
export interface RetryOptions {
  /**
   * The factor the backoff grows by after each failed attempt. Must be a
   * finite number `>= 1`.
   *
   * @default {2}
   */
  multiplier?: number;
  /**
   * The longest backoff between two attempts, in milliseconds. Must be `> 0`.
   *
   * @default {60000}
   */
  maxTimeout?: number;
  /**
   * How many times `fn` is called at most. Must be a positive integer.
   *
   * @default {5}
   */
  maxAttempts?: number;
  /**
   * The backoff before the second attempt, in milliseconds; later ones grow by
   * `multiplier`. Must be `>= 0` and `<= maxTimeout`.
   *
   * @default {1000}
   */
  minTimeout?: number;
  /**
   * How much randomness to take off each backoff, from `0` (always wait the
   * full backoff) to `1` (wait anywhere between 0 and the full backoff).
   *
   * @default {1}
   */
  jitter?: number;
  /**
   * Decides whether a thrown value is worth another attempt; when it returns
   * `false` that value is rethrown at once, not wrapped in a `RetryError`.
   *
   * @default {() => true}
   */
  isRetriable?: (err: unknown) => boolean;
  /**
   * Aborting this signal stops retrying: it is checked before each attempt and
   * interrupts the wait between attempts, rejecting with the signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Call `fn` up to `maxAttempts` times, until it returns without throwing.
 *
 * Before attempt `n + 1` (counting from 0) it waits
 * `min(maxTimeout, minTimeout * multiplier ** n) * (1 - jitter * Math.random())`
 * milliseconds: with the defaults that is a random wait of up to 1s, 2s, 4s
 * and 8s. When the attempts run out it throws a {@linkcode RetryError} whose
 * `cause` is the last error.
 *
 * @typeParam T What `fn` returns or resolves to.
 * @param fn The (possibly asynchronous) function to call.
 * @param options Backoff, attempt limit, error filter and cancellation.
 * @returns What the first successful call of `fn` returned.
 * @throws {RetryError} When `maxAttempts` calls all failed.
 * @throws {RangeError} When an option is out of range, before `fn` is called.
 * @throws {unknown} What `fn` threw, when `isRetriable` refuses it.
 * @throws {unknown} `options.signal.reason` when the signal aborts.
 *
 * @example Retrying a flaky call
 * ```ts
 * import { retry } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const answer = await retry(() => {
 *   calls++;
 *   if (calls < 3) throw new Error("flaky");
 *   return "ok";
 * }, { minTimeout: 1, maxTimeout: 5 });
 * assert.equal(answer, "ok");
 * assert.equal(calls, 3);
 * ```
 *
 * @example Retrying only errors that may go away
 * ```ts
 * import { retry } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * class HttpError extends Error {
 *   constructor(readonly status: number) {
 *     super(`HTTP ${status}`);
 *   }
 * }
 *
 * const request = (): Promise<string> => Promise.reject(new HttpError(404));
 * await assert.rejects(
 *   retry(request, {
 *     minTimeout: 1,
 *     isRetriable: (err) => err instanceof HttpError && err.status >= 500,
 *   }),
 *   HttpError,
 * );
 * ```
 */
export async function retry<T>(
  fn: (() => Promise<T>) | (() => T),
  options: RetryOptions = {},
): Promise<T> {
  const {
    multiplier = 2,
    maxTimeout = 60000,
    maxAttempts = 5,
    minTimeout = 1000,
    jitter = 1,
    isRetriable = () => true,
    signal,
  } = options;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry as 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
    );
  }
  if (!Number.isFinite(multiplier) || multiplier < 1) {
    throw new RangeError(
      `Cannot retry as 'multiplier' must be a finite number >= 1: current value is ${multiplier}`,
    );
  }
  if (!(maxTimeout > 0)) {
    throw new RangeError(
      `Cannot retry as 'maxTimeout' must be a positive number: current value is ${maxTimeout}`,
    );
  }
  if (!(minTimeout >= 0)) {
    throw new RangeError(
      `Cannot retry as 'minTimeout' must be >= 0: current value is ${minTimeout}`,
    );
  }
  if (minTimeout > maxTimeout) {
    throw new RangeError(
      `Cannot retry as 'minTimeout' must be <= 'maxTimeout': current values are ${minTimeout} and ${maxTimeout}`,
    );
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(
      `Cannot retry as 'jitter' must be between 0 and 1: current value is ${jitter}`,
    );
  }

  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (error) {
      if (!isRetriable(error)) throw error;
      if (attempt + 1 >= maxAttempts) throw new RetryError(error, maxAttempts);
      const backoff = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
      await delay(backoff * (1 - jitter * Math.random()), signal ? { signal } : {});
    }
  }
}
