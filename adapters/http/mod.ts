/**
 * The HTTP adapter: Troupe's API as a fetch handler, the one place errors
 * become responses, and a server-sent events writer.
 *
 * @example
 * ```ts
 * import { createHandler } from "./mod.ts";
 * import { createRuntime } from "../../actors/runtime.ts";
 *
 * await using runtime = createRuntime();
 * const response = await createHandler({ runtime })(new Request("http://localhost/healthz"));
 * console.assert((await response.json()).status === "ok");
 * ```
 *
 * @module
 */
export { createHandler, type Handler, type HandlerDeps } from "./handler.ts";
export {
  describeError,
  type ErrorBody,
  type ErrorDescription,
  errorResponse,
} from "./error_response.ts";
export { HttpError, type HttpErrorOptions } from "./errors.ts";
export { readJsonObject } from "./read_json.ts";
export { formatSseEvent, type SseEvent, sseResponse } from "./sse.ts";
