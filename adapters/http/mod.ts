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
export {
  type KeySource,
  type ServerAccess,
  serverAccess,
  type ServerAccessOptions,
} from "./access.ts";
export {
  type ApiKeyAuth,
  apiKeyAuth,
  type ApiKeyRecord,
  generateApiKey,
  type GeneratedApiKey,
  hashApiKey,
} from "./auth.ts";
export { createHandler, type Handler, type HandlerDeps } from "./handler.ts";
export {
  describeError,
  type ErrorBody,
  type ErrorDescription,
  errorResponse,
} from "./error_response.ts";
export { HttpError, type HttpErrorOptions } from "./errors.ts";
export {
  createMetrics,
  type Metrics,
  type MetricsOptions,
  metricsRoute,
  type MetricsSource,
  type MsHistogram,
  type PoolMetrics,
  REQUEST_SECONDS_BUCKETS,
} from "./metrics.ts";
export {
  IDEMPOTENCY_HEADER,
  openAiRoutes,
  type OpenAiRoutesOptions,
  SESSION_HEADER,
} from "./openai_routes.ts";
export { openApiDocument, type OpenApiOptions, openApiRoute } from "./openapi.ts";
export {
  type LimitOutcome,
  limitRequest,
  RATE_LIMIT_ALGORITHMS,
  type RateDecision,
  type RateLimitAlgorithm,
  type RateLimiter,
  rateLimiter,
  type RateLimiterOptions,
  rateLimitHeaders,
  type RequestLimits,
} from "./rate_limit.ts";
export { readJsonObject, requireJson } from "./read_json.ts";
export { sessionRoutes } from "./session_routes.ts";
export type { Route, RouteAction, RouteContext } from "./route.ts";
export { formatSseEvent, type SseEvent, sseResponse } from "./sse.ts";
