// Maps every error a request can meet to its HTTP status, headers and JSON body: the one place that does.

import { errorText, logLine } from "../../actors/log.ts";
import {
  InvalidInputError,
  OverloadedError,
  ProviderError,
  ShutdownError,
  UnsupportedError,
} from "../../actors/errors.ts";
import type { ReplyError } from "../../actors/reply.ts";
import { jsonResponse } from "./_json_response.ts";
import { HttpError } from "./errors.ts";

/** The JSON body of every error response. */
export interface ErrorBody {
  /** What went wrong. */
  error: {
    /** Stable machine-readable code, e.g. `"invalid_input"`. */
    code: string;
    /** For people. */
    message: string;
    /** The offending field, when one is to blame. */
    field?: string;
  };
}

/** How to answer a request that failed. */
export interface ErrorDescription {
  /** The HTTP status. */
  status: number;
  /** Extra headers (`Retry-After`, `Allow`). */
  headers: Record<string, string>;
  /** The JSON body. */
  body: ErrorBody;
}

// A restarting or draining node is usually back, or replaced, within seconds.
const SHUTDOWN_RETRY_AFTER_SECONDS = 5;

/**
 * `Retry-After` for a run that failed because the server was full or stopping (its
 * worker pool saturated, overloaded, shutting down), not because the provider failed:
 * the same message should go through a few seconds later. `undefined` for any other failure.
 *
 * @example
 * ```ts
 * import { retryAfterOfFailure } from "./error_response.ts";
 *
 * console.assert(retryAfterOfFailure({ code: "pool_saturated", message: "", retryable: true }) === "5");
 * console.assert(retryAfterOfFailure({ code: "provider_error", message: "", retryable: true }) === undefined);
 * ```
 */
export function retryAfterOfFailure(error: ReplyError | undefined): string | undefined {
  const code = error?.code;
  return code === "pool_saturated" || code === "overloaded" || code === "shutting_down"
    ? String(SHUTDOWN_RETRY_AFTER_SECONDS)
    : undefined;
}

/**
 * Describe how to answer a failed request. An error Troupe does not expect
 * becomes a 500 that says nothing of its internals; `onUnexpected` receives
 * it so it is logged, never swallowed (by default as a JSON line on stderr).
 *
 * @example
 * ```ts
 * import { describeError } from "./error_response.ts";
 * import { OverloadedError } from "../../actors/errors.ts";
 *
 * const { status, headers, body } = describeError(new OverloadedError("all slots busy", 1500));
 * console.assert(status === 503 && headers["retry-after"] === "2");
 * console.assert(body.error.code === "overloaded");
 * ```
 */
export function describeError(
  error: unknown,
  onUnexpected: (error: unknown) => void = logUnexpected,
): ErrorDescription {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      headers: { ...error.headers },
      body: { error: { code: error.code, message: error.message } },
    };
  }
  if (error instanceof InvalidInputError) {
    return {
      status: 400,
      headers: {},
      body: { error: { code: error.code, message: error.message, field: error.field } },
    };
  }
  if (error instanceof OverloadedError) {
    const seconds = Number.isFinite(error.retryAfterMs)
      ? Math.max(0, Math.ceil(error.retryAfterMs / 1000))
      : SHUTDOWN_RETRY_AFTER_SECONDS;
    return {
      status: 503,
      headers: { "retry-after": String(seconds) },
      body: { error: { code: error.code, message: error.message } },
    };
  }
  if (error instanceof ShutdownError) {
    return {
      status: 503,
      headers: { "retry-after": String(SHUTDOWN_RETRY_AFTER_SECONDS) },
      body: { error: { code: error.code, message: error.message } },
    };
  }
  if (error instanceof UnsupportedError) {
    return {
      status: 501,
      headers: {},
      body: { error: { code: error.code, message: error.message } },
    };
  }
  if (error instanceof ProviderError) {
    return {
      status: 502,
      headers: {},
      body: { error: { code: error.code, message: error.message } },
    };
  }
  onUnexpected(error);
  return {
    status: 500,
    headers: {},
    body: { error: { code: "internal_error", message: "Internal server error" } },
  };
}

/**
 * Answer a failed request: {@linkcode describeError} as a JSON response.
 *
 * @example
 * ```ts
 * import { errorResponse } from "./error_response.ts";
 * import { InvalidInputError } from "../../actors/errors.ts";
 *
 * const response = errorResponse(new InvalidInputError("content", "Cannot send: content is empty"));
 * const body = await response.json();
 * console.assert(response.status === 400 && body.error.field === "content");
 * ```
 */
export function errorResponse(
  error: unknown,
  onUnexpected?: (error: unknown) => void,
): Response {
  const { status, headers, body } = describeError(error, onUnexpected);
  return jsonResponse(status, body, headers);
}

function logUnexpected(error: unknown): void {
  logLine("error", "unexpected error", { error: errorText(error) });
}
