// The errors the SQL store raises itself: a database it cannot open, a store used after close, a failed background checkpoint.

/** Stable machine-readable codes of {@linkcode StoreError}. */
export type StoreErrorCode = "invalid_url" | "open_failed" | "closed" | "checkpoint_failed";

/**
 * The SQL store could not be opened, was used after `close()`, or (reported,
 * not thrown) could not checkpoint its SQLite WAL in the background. `code` is
 * stable; `message` names the database with any password redacted; `cause`
 * carries the driver's or the migrator's error.
 *
 * @example
 * ```ts
 * import { StoreError } from "./errors.ts";
 *
 * const error = new StoreError("closed", "Cannot read history: the store is closed");
 * console.assert(error.code === "closed" && error.name === "StoreError");
 * ```
 */
export class StoreError extends Error {
  /** Stable machine-readable code. */
  readonly code: StoreErrorCode;

  /** Make an error with a code, a message and optionally its cause. */
  constructor(code: StoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.name = "StoreError";
    this.code = code;
  }
}
