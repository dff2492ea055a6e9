// The errors the bus adapters raise or report: a stable `code`, the cause, and the event when one is concerned.

import { errorText, logLine } from "../../actors/log.ts";
import type { TroupeEvent } from "../../actors/events.ts";

/** Stable machine-readable codes of {@linkcode BusError}. */
export type BusErrorCode =
  | "connect_failed"
  | "disconnected"
  | "publish_failed"
  | "consume_failed"
  | "undelivered"
  | "closed";

/** Options of {@linkcode BusError}. */
export interface BusErrorOptions {
  /**
   * The underlying error.
   * @default {undefined}
   */
  cause?: unknown;
  /**
   * How many events were left undelivered, for `"undelivered"`.
   * @default {0}
   */
  undelivered?: number;
}

/**
 * An error of a bus adapter: it could not connect, lost its connection
 * (reported, then reconnected), a publish or a pull failed (reported, then
 * retried), or it was closed with events undelivered. `code`
 * is stable and lower-case, like `TroupeError`'s.
 *
 * @example Telling an undelivered close apart
 * ```ts
 * import { BusError } from "./errors.ts";
 *
 * const error: unknown = new BusError("undelivered", "Cannot close: 3 events undelivered", {
 *   undelivered: 3,
 * });
 * if (error instanceof BusError) console.assert(error.code === "undelivered");
 * ```
 */
export class BusError extends Error {
  /** Stable machine-readable code. */
  readonly code: BusErrorCode;
  /** How many events were left undelivered (`"undelivered"`), else 0. */
  readonly undelivered: number;

  /** Make an error with a code, a message and what caused it. */
  constructor(code: BusErrorCode, message: string, options: BusErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.name = "BusError";
    this.code = code;
    this.undelivered = options.undelivered ?? 0;
  }
}

/** Where a bus reports what it cannot throw; `event` is set when one event is concerned. */
export type BusErrorHandler = (error: unknown, event?: TroupeEvent) => void;

/**
 * The default error handler of the buses: one JSON line on stderr with the
 * org and session of the event when there is one.
 *
 * @example
 * ```ts
 * import { logBusError } from "./errors.ts";
 *
 * const onError: (error: unknown) => void = logBusError;
 * console.assert(typeof onError === "function");
 * ```
 */
export function logBusError(error: unknown, event?: TroupeEvent): void {
  logLine("error", "event bus error", {
    code: error instanceof BusError ? error.code : undefined,
    type: event?.type,
    org: event?.org,
    session: event?.session,
    error: errorText(error),
  });
}
