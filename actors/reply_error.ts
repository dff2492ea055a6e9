// Turns any thrown value into the plain error description a Reply carries.

import { TroupeError } from "./errors.ts";
import type { ReplyError } from "./reply.ts";

/**
 * Describe a failure as plain data: Troupe's errors keep their code and
 * retryability; anything else becomes `internal_error`.
 *
 * @example
 * ```ts
 * import { toReplyError } from "./reply_error.ts";
 *
 * console.assert(toReplyError(new Error("boom")).code === "internal_error");
 * ```
 */
export function toReplyError(error: unknown): ReplyError {
  if (error instanceof TroupeError) {
    return { code: error.code, message: error.message, retryable: error.retryable };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: "internal_error", message, retryable: false };
}
