// The errors the HTTP adapter itself raises: a request that never reached the runtime.

/** Options of {@linkcode HttpError}. */
export interface HttpErrorOptions {
  /**
   * Headers the error response carries, e.g. `Allow` for a 405.
   * @default {{}}
   */
  headers?: Record<string, string>;
  /**
   * The underlying error.
   * @default {undefined}
   */
  cause?: unknown;
}

/**
 * A request refused by the HTTP layer (bad JSON, a body too large, an unknown
 * route). `code` is stable and lower-case, like `TroupeError`'s.
 *
 * @example
 * ```ts
 * import { HttpError } from "./errors.ts";
 *
 * const error = new HttpError(404, "not_found", "Cannot route GET /nope: no such route");
 * console.assert(error.status === 404 && error.code === "not_found");
 * ```
 */
export class HttpError extends Error {
  /** The HTTP status to answer with. */
  readonly status: number;
  /** Stable machine-readable code, e.g. `"invalid_json"`. */
  readonly code: string;
  /** Headers the error response carries. */
  readonly headers: Readonly<Record<string, string>>;

  /** Make an error with the status and code to answer with. */
  constructor(status: number, code: string, message: string, options: HttpErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = { ...options.headers };
  }
}
