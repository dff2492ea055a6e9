// Entry point of the local `@std/async` stand-in: re-exports each helper from its own file.

/**
 * A local stand-in for [`jsr:@std/async`](https://jsr.io/@std/async), the
 * Deno standard library's async helpers. JSR is unreachable from this
 * project's build machines, so the helpers Troupe needs are written here from
 * the documented behaviour of `@std/async` 1.x, with the same names,
 * signatures and errors:
 *
 * - {@linkcode delay}: resolve after a time, unless a signal aborts first.
 * - {@linkcode deadline}: reject with a `"TimeoutError"` when a promise is late.
 * - {@linkcode abortable}: make a promise or async iterable stop on abort.
 * - {@linkcode retry} and {@linkcode RetryError}: exponential backoff with jitter.
 * - {@linkcode pooledMap}: concurrency-limited, order-keeping async map.
 *
 * Code imports it as `"@std/async"`. Remapping the `@std/async` entry in
 * `deno.json` to `jsr:@std/async@^1` swaps in the real module with no other
 * change; the tests in `tests/lib/std_async_test.ts` only check documented
 * behaviour, so they pass against either.
 *
 * @example Retrying a call with a deadline on each attempt
 * ```ts
 * import { deadline, retry } from "@std/async";
 * import assert from "node:assert/strict";
 *
 * const answer = await retry(() => deadline(Promise.resolve(42), 1_000), { minTimeout: 1 });
 * assert.equal(answer, 42);
 * ```
 *
 * @module
 */

export { abortable } from "./abortable.ts";
export { deadline } from "./deadline.ts";
export type { DeadlineOptions } from "./deadline.ts";
export { delay } from "./delay.ts";
export type { DelayOptions } from "./delay.ts";
export { pooledMap } from "./pooled_map.ts";
export { retry, RetryError } from "./retry.ts";
export type { RetryOptions } from "./retry.ts";
