// The error the test harness throws when a real service cannot be found, started or stopped.

/**
 * Thrown when a service the integration tests need is missing, does not
 * start, or does not stop. The message says what to do; `cause` carries the
 * underlying error when there is one.
 *
 * @example Tell a harness failure from an assertion failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { HarnessError } from "./harness_error.ts";
 *
 * const error = new HarnessError("Cannot start nats-server: not installed");
 * assert.equal(error.name, "HarnessError");
 * assert.ok(error instanceof Error);
 * ```
 */
export class HarnessError extends Error {
  /**
   * Creates the error.
   *
   * @param message What failed and what to do about it.
   * @param options The underlying `cause`, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HarnessError";
  }
}
