// A worker for the pool tests: cheap calls, slow and hanging calls, streams, typed failures, crashes.

import { exposeWorker, type WorkerCallContext } from "../../../adapters/workers/expose_worker.ts";
import { CancelledError, InvalidInputError, ProviderError } from "../../../actors/errors.ts";

/** A random id of this worker instance, to tell workers (and their replacements) apart. */
const instance = crypto.randomUUID();
let aborted = 0;
let lastReason = "";

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => {
      aborted++;
      lastReason = `${signal.reason?.constructor?.name}: ${signal.reason?.message}`;
      reject(signal.reason);
    }, { once: true });
  });
}

const handlers = {
  /** Returns its argument. */
  echo: (_ctx: WorkerCallContext, value: unknown) => value,
  /** Returns `value` after `ms`, from its own timer. */
  later: (_ctx: WorkerCallContext, value: unknown, ms: number) =>
    new Promise((resolve) => setTimeout(() => resolve(value), ms)),
  /** Which worker instance answered. */
  instance: () => instance,
  /** What the pool passed as `init`. */
  init: () => initValue,
  /** Never settles until cancelled; counts the cancellation. */
  hang: (ctx: WorkerCallContext) => untilAborted(ctx.signal),
  /** How many hangs of this worker were cancelled, and the class and message of the last reason. */
  aborted: () => ({ count: aborted, lastReason }),
  /** Emits each chunk, yielding to the event loop where `yields[i]` is true, then returns the count. */
  async stream(
    ctx: WorkerCallContext<string | { mark: number }>,
    chunks: string[],
    yields: boolean[],
  ) {
    for (let i = 0; i < chunks.length; i++) {
      ctx.emit(chunks[i]!);
      if (yields[i]) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    ctx.emit({ mark: chunks.length });
    return chunks.length;
  },
  /** Throws the named error. */
  fail(_ctx: WorkerCallContext, kind: string): never {
    switch (kind) {
      case "provider":
        throw new ProviderError("Upstream answered 429", { retryable: true, status: 429 });
      case "cancelled":
        throw new CancelledError("Run superseded");
      case "invalid":
        throw new InvalidInputError("messages", "Cannot complete: messages is empty");
      case "type":
        throw new TypeError("bad type", { cause: new RangeError("inner") });
      case "abort":
        throw new DOMException("The operation was aborted", "AbortError");
      case "custom": {
        const error = new Error("custom failure");
        error.name = "QuotaError";
        Object.assign(error, { limit: 5 });
        throw error;
      }
      default:
        throw "a string";
    }
  },
  /** Rejects after a tick, asynchronously. */
  async failLater(_ctx: WorkerCallContext) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    throw new ProviderError("Upstream answered 503", { retryable: true, status: 503 });
  },
  /** Throws an uncaught error on the next tick: the worker dies. */
  crash() {
    setTimeout(() => {
      throw new Error("boom");
    }, 0);
    return new Promise(() => {});
  },
  /** Closes the worker from inside: no error event, only the liveness ping notices. */
  exit() {
    setTimeout(() => self.close(), 0);
    return new Promise(() => {});
  },
  /** Returns something that cannot be cloned. */
  unclonable: () => () => 1,
};

let initValue: unknown;

/** The handlers this worker serves. */
export type TestHandlers = typeof handlers;

exposeWorker((init) => {
  initValue = init;
  if (init === "fail-init") throw new RangeError("Cannot start: init says fail");
  return handlers;
});
