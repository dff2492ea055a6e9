// `abortable`: make a promise or an async iterable give up, with the signal's reason, on abort.

/**
 * Make a promise abortable: the result settles like `p`, unless `signal` is
 * aborted first (or already is), in which case it rejects with
 * `signal.reason`. `p` itself keeps running; only the wait is abandoned.
 *
 * @typeParam T What `p` resolves to.
 * @param p The promise to wait for.
 * @param signal Aborting it rejects the returned promise.
 * @returns A promise that settles like `p` or rejects with `signal.reason`.
 * @throws {DOMException} `signal.reason`; a `DOMException` named
 * `"TimeoutError"` for `AbortSignal.timeout()`, or `"AbortError"` when
 * `abort()` was called without a reason.
 *
 * @example Giving up on a slow promise
 * ```ts
 * import { abortable, delay } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const slow = delay(60_000, { signal: controller.signal });
 * const waiting = abortable(slow, controller.signal);
 * controller.abort(new Error("the user left"));
 * await assert.rejects(waiting, { message: "the user left" });
 * await assert.rejects(slow);
 * ```
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T>;
/**
 * Make an async iterable abortable: the returned generator yields what `p`
 * yields until `signal` is aborted, then throws `signal.reason`. On abort or
 * an early `break`, the source iterator's `return()` is called.
 *
 * @typeParam T What `p` yields.
 * @param p The async iterable to read.
 * @param signal Aborting it ends the iteration with `signal.reason`.
 * @returns An async generator over the items of `p`.
 * @throws {DOMException} `signal.reason`, as for the promise overload.
 *
 * @example Stopping a stream part way
 * ```ts
 * import { abortable } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * async function* ticks() {
 *   for (let i = 0; ; i++) yield i;
 * }
 *
 * const controller = new AbortController();
 * const seen: number[] = [];
 * await assert.rejects(async () => {
 *   for await (const tick of abortable(ticks(), controller.signal)) {
 *     seen.push(tick);
 *     if (tick === 2) controller.abort(new Error("enough"));
 *   }
 * }, { message: "enough" });
 * assert.deepEqual(seen, [0, 1, 2]);
 * ```
 */
export function abortable<T>(p: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T>;
export function abortable<T>(
  p: Promise<T> | AsyncIterable<T>,
  signal: AbortSignal,
): Promise<T> | AsyncGenerator<T> {
  return p instanceof Promise ? abortablePromise(p, signal) : abortableIterable(p, signal);
}

function abortablePromise<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const aborted = Promise.withResolvers<never>();
  const onAbort = () => aborted.reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return Promise.race([aborted.promise, p]).finally(() => {
    signal.removeEventListener("abort", onAbort);
  });
}

async function* abortableIterable<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  signal.throwIfAborted();
  const aborted = Promise.withResolvers<never>();
  // The abort may land while the consumer holds a yielded item and never asks
  // again; mark the rejection handled so it cannot surface as unhandled.
  aborted.promise.catch(() => {});
  const onAbort = () => aborted.reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    while (true) {
      const step = iterator.next();
      // A step that loses the race to the abort may still reject later.
      step.catch(() => {});
      const result = await Promise.race([aborted.promise, step]);
      if (result.done) {
        exhausted = true;
        return;
      }
      yield result.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (!exhausted) {
      // After an abort the source may be stuck in a pending step; ask it to
      // close without waiting, so the abort is reported at once.
      const closing = close(iterator);
      if (signal.aborted) closing.catch(() => {});
      else await closing;
    }
  }
}

// An async function, so a `return()` that throws synchronously becomes a rejection.
async function close<T>(iterator: AsyncIterator<T>): Promise<void> {
  await iterator.return?.();
}
