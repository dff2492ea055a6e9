// The typed errors of Troupe: one base class with a stable `code`, a few domain classes.

/** Stable machine-readable error codes. */
export type TroupeErrorCode =
  | "invalid_input"
  | "overloaded"
  | "shutting_down"
  | "provider_error"
  | "cancelled"
  | "pool_saturated"
  | "worker_crashed"
  | "unsupported";

/** Options shared by every Troupe error. */
export interface TroupeErrorOptions {
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The base of every error Troupe throws or reports. `code` is stable across
 * versions; `message` is for people.
 *
 * @example Telling Troupe's errors apart
 * ```ts
 * import { InvalidInputError, TroupeError } from "./errors.ts";
 *
 * const error: unknown = new InvalidInputError("content", "Cannot send: content is empty");
 * if (error instanceof TroupeError) console.assert(error.code === "invalid_input");
 * ```
 */
export class TroupeError extends Error {
  /** Stable machine-readable code. */
  readonly code: TroupeErrorCode;
  /** Whether trying the same thing again later may succeed. */
  readonly retryable: boolean;

  /** Make an error with a code, a message and whether a retry may help. */
  constructor(
    code: TroupeErrorCode,
    message: string,
    retryable: boolean,
    options: TroupeErrorOptions = {},
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.name = "TroupeError";
    this.code = code;
    this.retryable = retryable;
  }
}

/**
 * Input was refused before anything ran. `field` names the offending field.
 *
 * @example
 * ```ts
 * import { InvalidInputError } from "./errors.ts";
 *
 * const error = new InvalidInputError("policy", 'Cannot send: policy is "later"');
 * console.assert(error.field === "policy");
 * ```
 */
export class InvalidInputError extends TroupeError {
  /** The offending field, e.g. `"content"`. */
  readonly field: string;

  /** Make an error naming the field that is wrong. */
  constructor(field: string, message: string) {
    super("invalid_input", message, false);
    this.name = "InvalidInputError";
    this.field = field;
  }
}

/**
 * Every session slot holds a session with work in flight; try again after `retryAfterMs`.
 *
 * @example
 * ```ts
 * import { OverloadedError } from "./errors.ts";
 *
 * const error = new OverloadedError("Cannot activate a session: all 10 slots are busy", 1000);
 * console.assert(error.retryable && error.retryAfterMs === 1000);
 * ```
 */
export class OverloadedError extends TroupeError {
  /** A hint for when a retry is likely to find a free slot. */
  readonly retryAfterMs: number;

  /** Make an overload error with a retry hint. */
  constructor(message: string, retryAfterMs: number) {
    super("overloaded", message, true);
    this.name = "OverloadedError";
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The runtime is shutting down: it accepts no new message, and runs still in
 * flight when the grace period ends fail with this error.
 *
 * @example
 * ```ts
 * import { ShutdownError } from "./errors.ts";
 *
 * console.assert(new ShutdownError().code === "shutting_down");
 * ```
 */
export class ShutdownError extends TroupeError {
  /** Make a shutdown error. */
  constructor(message = "The runtime is shutting down") {
    super("shutting_down", message, true);
    this.name = "ShutdownError";
  }
}

/**
 * An LLM provider failed. `retryable` says whether the same call may succeed
 * later; `retryAfterMs` is the upstream's hint (`Retry-After`) of how long to wait first.
 *
 * @example
 * ```ts
 * import { ProviderError } from "./errors.ts";
 *
 * const error = new ProviderError("Upstream answered 429", {
 *   retryable: true,
 *   status: 429,
 *   retryAfterMs: 2000,
 * });
 * console.assert(error.retryable && error.status === 429 && error.retryAfterMs === 2000);
 * ```
 */
export class ProviderError extends TroupeError {
  /** The upstream HTTP status, when there was one. */
  readonly status: number | undefined;
  /** How long the upstream asked to wait before trying again, when it said. */
  readonly retryAfterMs: number | undefined;

  /** Make a provider error. */
  constructor(
    message: string,
    options: { retryable?: boolean; status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(
      "provider_error",
      message,
      options.retryable ?? false,
      "cause" in options ? { cause: options.cause } : {},
    );
    this.name = "ProviderError";
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * A run was stopped on purpose (superseded, cancelled). Used as the abort
 * reason of the run's signal, so a provider that rejects with the reason
 * rejects with this.
 *
 * @example
 * ```ts
 * import { CancelledError } from "./errors.ts";
 *
 * const controller = new AbortController();
 * controller.abort(new CancelledError("Run superseded"));
 * console.assert(controller.signal.reason instanceof CancelledError);
 * ```
 */
export class CancelledError extends TroupeError {
  /** Make a cancellation error. */
  constructor(message = "The run was cancelled") {
    super("cancelled", message, false);
    this.name = "CancelledError";
  }
}

/**
 * A worker pool is full: every worker is at its concurrency bound and the
 * queue is at its bound. Nothing was started; try again after `retryAfterMs`.
 *
 * @example
 * ```ts
 * import { PoolSaturatedError } from "./errors.ts";
 *
 * const error = new PoolSaturatedError("Cannot call the llm pool: 64 calls queued", 100);
 * console.assert(error.code === "pool_saturated" && error.retryable);
 * ```
 */
export class PoolSaturatedError extends TroupeError {
  /** A hint for when a retry is likely to find room. */
  readonly retryAfterMs: number;

  /** Make a saturation error with a retry hint. */
  constructor(message: string, retryAfterMs: number) {
    super("pool_saturated", message, true);
    this.name = "PoolSaturatedError";
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The worker running a call died (an uncaught error, `terminate()`, out of
 * memory) before the call finished. The pool replaced it; the same call may
 * succeed on another worker, so the error is retryable.
 *
 * @example
 * ```ts
 * import { WorkerCrashedError } from "./errors.ts";
 *
 * const error = new WorkerCrashedError("Worker 2 of the llm pool died: out of memory");
 * console.assert(error.code === "worker_crashed" && error.retryable);
 * ```
 */
export class WorkerCrashedError extends TroupeError {
  /** Make a worker-crash error. */
  constructor(message: string, options: TroupeErrorOptions = {}) {
    super("worker_crashed", message, true, options);
    this.name = "WorkerCrashedError";
  }
}

/**
 * The runtime was asked for something its adapters cannot do, e.g. usage
 * totals from a store that keeps no events. Configuration, not input, must change.
 *
 * @example
 * ```ts
 * import { UnsupportedError } from "./errors.ts";
 *
 * const error = new UnsupportedError("Cannot read usage: the store keeps no events");
 * console.assert(error.code === "unsupported" && !error.retryable);
 * ```
 */
export class UnsupportedError extends TroupeError {
  /** Make an error saying what is not supported and what would make it so. */
  constructor(message: string) {
    super("unsupported", message, false);
    this.name = "UnsupportedError";
  }
}
