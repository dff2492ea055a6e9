// `pooledMap`: map an (async) iterable through an async function, at most `poolLimit` at a time, in order.

const MAPPING_FAILED = "Cannot complete the mapping as an error was thrown from an item";

type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Transform the items of an (async) iterable with `iteratorFn`, running at
 * most `poolLimit` calls at once, and yield the results in input order.
 *
 * Work starts as soon as `pooledMap` is called. Once a call rejects, no new
 * call starts; the calls already running may finish and their successes are
 * still yielded. After that the iterator throws an `AggregateError` whose
 * `errors` are the rejections among them.
 *
 * @typeParam T The input item type.
 * @typeParam R The output item type.
 * @param poolLimit How many calls may run at once; a positive integer.
 * @param array The items to map.
 * @param iteratorFn The async function applied to every item.
 * @returns An async iterator over the mapped values, in input order.
 * @throws {RangeError} When `poolLimit` is not a positive integer.
 *
 * @example Two at a time, in order
 * ```ts
 * import { delay, pooledMap } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * const results = pooledMap(2, [3, 1, 2], async (ms) => {
 *   await delay(ms);
 *   return ms * 10;
 * });
 * assert.deepEqual(await Array.fromAsync(results), [30, 10, 20]);
 * ```
 *
 * @example Failures are reported together
 * ```ts
 * import { pooledMap } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * const results = pooledMap(1, ["a", "b"], (item) => Promise.reject(new Error(item)));
 * await assert.rejects(Array.fromAsync(results), AggregateError);
 * ```
 */
export function pooledMap<T, R>(
  poolLimit: number,
  array: Iterable<T> | AsyncIterable<T>,
  iteratorFn: (data: T) => Promise<R>,
): AsyncIterableIterator<R> {
  if (!Number.isInteger(poolLimit) || poolLimit < 1) {
    throw new RangeError(
      `Cannot map as 'poolLimit' must be a positive integer: current value is ${poolLimit}`,
    );
  }

  // Results in input order; each settles when its call does.
  const queue: Promise<Settled<R>>[] = [];
  const errors: unknown[] = [];
  let failed = false;
  let finished = false;
  let consumerGone = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  function start(item: T): Promise<void> {
    const settled = new Promise<R>((resolve) => resolve(iteratorFn(item))).then(
      (value): Settled<R> => ({ ok: true, value }),
      (error: unknown): Settled<R> => {
        failed = true;
        errors.push(error);
        return { ok: false, error };
      },
    );
    queue.push(settled);
    notify();
    return settled.then(() => {});
  }

  async function feed(): Promise<void> {
    const running = new Set<Promise<void>>();
    try {
      for await (const item of array) {
        while (running.size >= poolLimit && !failed) await Promise.race(running);
        if (failed || consumerGone) break;
        const call = start(item);
        running.add(call);
        call.then(() => running.delete(call));
      }
    } catch (error) {
      // The source itself failed: report it alongside any failed calls.
      failed = true;
      errors.push(error);
    }
    await Promise.all(running);
    finished = true;
    notify();
  }

  async function* drain(): AsyncGenerator<R> {
    try {
      while (true) {
        const next = queue.shift();
        if (next) {
          const result = await next;
          if (result.ok) yield result.value;
        } else if (finished) {
          if (failed) throw new AggregateError(errors, MAPPING_FAILED);
          return;
        } else {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      }
    } finally {
      consumerGone = true;
    }
  }

  void feed();
  return drain();
}
