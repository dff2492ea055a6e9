// Errors across a worker boundary: encode to plain data, rebuild as the same typed class.

import * as Comlink from "comlink";
import {
  CancelledError,
  InvalidInputError,
  OverloadedError,
  PoolSaturatedError,
  ProviderError,
  ShutdownError,
  TroupeError,
  type TroupeErrorCode,
  WorkerCrashedError,
} from "../../actors/errors.ts";

/**
 * An error as plain, structured-cloneable data. Own data properties that are
 * primitives (`status`, `retryAfterMs`, `field`, `code`, ...) travel in
 * `props`; the cause travels encoded too.
 *
 * @example
 * ```ts
 * import type { WireError } from "./error_codec.ts";
 *
 * const wire: WireError = { name: "TypeError", message: "bad", props: {} };
 * console.assert(wire.name === "TypeError");
 * ```
 */
export interface WireError {
  /** The error's `name`, which picks the class it is rebuilt as. */
  name: string;
  /** The error's `message`. */
  message: string;
  /** The stack where it was thrown, inside the worker. */
  stack?: string;
  /** Own primitive properties besides name, message and stack. */
  props: Record<string, string | number | boolean | null>;
  /** The encoded cause, when there was one. */
  cause?: WireError;
  /** True when the original was a `DOMException` (`AbortError`, `TimeoutError`, ...). */
  dom?: boolean;
  /** True when the thrown value was not an `Error`: `message` is its text. */
  nonError?: boolean;
}

/** Rebuilds one error class from its wire form; see {@linkcode registerWireError}. */
export type ErrorReviver = (wire: WireError) => Error;

const MAX_CAUSE_DEPTH = 4;
const SKIPPED = new Set(["name", "message", "stack", "cause"]);

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

function str(value: unknown, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}

const revivers = new Map<string, ErrorReviver>([
  ["TroupeError", (w) =>
    new TroupeError(
      str(w.props.code, "provider_error") as TroupeErrorCode,
      w.message,
      w.props.retryable === true,
    )],
  ["InvalidInputError", (w) => new InvalidInputError(str(w.props.field, ""), w.message)],
  ["OverloadedError", (w) => new OverloadedError(w.message, num(w.props.retryAfterMs) ?? 0)],
  ["ShutdownError", (w) => new ShutdownError(w.message)],
  ["ProviderError", (w) => {
    const status = num(w.props.status);
    const retryAfterMs = num(w.props.retryAfterMs);
    return new ProviderError(w.message, {
      retryable: w.props.retryable === true,
      ...(status === undefined ? {} : { status }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }],
  ["CancelledError", (w) => new CancelledError(w.message)],
  ["PoolSaturatedError", (w) => new PoolSaturatedError(w.message, num(w.props.retryAfterMs) ?? 0)],
  ["WorkerCrashedError", (w) => new WorkerCrashedError(w.message)],
  ["TypeError", (w) => new TypeError(w.message)],
  ["RangeError", (w) => new RangeError(w.message)],
  ["SyntaxError", (w) => new SyntaxError(w.message)],
  ["ReferenceError", (w) => new ReferenceError(w.message)],
  ["EvalError", (w) => new EvalError(w.message)],
  ["URIError", (w) => new URIError(w.message)],
]);

/**
 * Teach {@linkcode decodeError} one more error class, by `name`. The classes
 * of `actors/errors.ts` and the built-in errors are known already; an adapter
 * with its own error class registers it in the main thread.
 *
 * @example
 * ```ts
 * import { decodeError, encodeError, registerWireError } from "./error_codec.ts";
 *
 * class QuotaError extends Error {
 *   override name = "QuotaError";
 * }
 * registerWireError("QuotaError", (wire) => new QuotaError(wire.message));
 * console.assert(decodeError(encodeError(new QuotaError("over"))) instanceof QuotaError);
 * ```
 */
export function registerWireError(name: string, revive: ErrorReviver): void {
  revivers.set(name, revive);
}

/**
 * Turn anything thrown into plain data that survives `postMessage`.
 *
 * @example
 * ```ts
 * import { encodeError } from "./error_codec.ts";
 * import { ProviderError } from "../../actors/errors.ts";
 *
 * const wire = encodeError(new ProviderError("Upstream answered 503", { status: 503 }));
 * console.assert(wire.name === "ProviderError" && wire.props.status === 503);
 * ```
 */
export function encodeError(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error) && !(error instanceof DOMException)) {
    return { name: "Error", message: String(error), props: {}, nonError: true };
  }
  const props: WireError["props"] = {};
  for (const key of Object.keys(error)) {
    if (SKIPPED.has(key)) continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    const kind = typeof value;
    if (value === null || kind === "string" || kind === "number" || kind === "boolean") {
      props[key] = value as string | number | boolean | null;
    }
  }
  const wire: WireError = { name: error.name, message: error.message, props };
  if (typeof error.stack === "string") wire.stack = error.stack;
  if (error instanceof DOMException) wire.dom = true;
  const cause = (error as Error).cause;
  if (cause !== undefined && depth < MAX_CAUSE_DEPTH) wire.cause = encodeError(cause, depth + 1);
  return wire;
}

/**
 * Rebuild an error from {@linkcode encodeError}'s data: the same class when
 * its name is known (every class of `actors/errors.ts`, the built-in errors,
 * `DOMException`s, and those given to {@linkcode registerWireError}); an
 * unknown error with a `code` and `retryable` comes back as a `TroupeError`,
 * anything else as an `Error`, both with the original name. Properties and cause come back too; the stack
 * is the one from inside the worker.
 *
 * @example
 * ```ts
 * import { decodeError, encodeError } from "./error_codec.ts";
 * import { ProviderError } from "../../actors/errors.ts";
 *
 * const error = decodeError(encodeError(new ProviderError("429", { retryable: true, status: 429 })));
 * console.assert(error instanceof ProviderError && error.retryable && error.status === 429);
 * ```
 */
export function decodeError(wire: WireError): Error {
  let error: Error;
  if (wire.dom) {
    error = new DOMException(wire.message, wire.name) as unknown as Error;
  } else {
    // An unknown member of the TroupeError family still comes back as a TroupeError.
    const troupeLike = typeof wire.props.code === "string" &&
      typeof wire.props.retryable === "boolean";
    const revive = revivers.get(wire.name) ??
      (troupeLike ? revivers.get("TroupeError") : undefined);
    error = revive ? revive(wire) : new Error(wire.message);
    if (error.name !== wire.name) {
      Object.defineProperty(error, "name", {
        value: wire.name,
        writable: true,
        configurable: true,
      });
    }
    for (const [key, value] of Object.entries(wire.props)) {
      // A class may define the property as a getter or read-only; keep its own value then.
      try {
        (error as unknown as Record<string, unknown>)[key] = value;
      } catch { /* read-only */ }
    }
  }
  if (wire.stack !== undefined) {
    Object.defineProperty(error, "stack", {
      value: wire.stack,
      writable: true,
      configurable: true,
    });
  }
  if (wire.cause !== undefined) {
    Object.defineProperty(error, "cause", {
      value: decodeError(wire.cause),
      writable: true,
      configurable: true,
    });
  }
  return error;
}

let installed = false;

/**
 * Make Comlink carry errors as {@linkcode encodeError} data, so that its
 * calls reject with the same typed classes (Comlink alone sends a plain
 * `Error` with name, message and stack). Idempotent; both sides of a
 * boundary must install it, as the pool and `exposeWorker` do.
 *
 * @example
 * ```ts
 * import { installComlinkErrors } from "./error_codec.ts";
 *
 * installComlinkErrors();
 * ```
 */
export function installComlinkErrors(): void {
  if (installed) return;
  installed = true;
  const original = Comlink.transferHandlers.get("throw")!;
  Comlink.transferHandlers.set("throw", {
    canHandle: original.canHandle,
    serialize: (thrown) => [encodeError((thrown as { value: unknown }).value), []],
    deserialize: (wire) => {
      throw decodeError(wire as WireError);
    },
  });
}
