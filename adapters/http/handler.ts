// The HTTP API as a plain fetch handler: routes /v1/sessions/..., /healthz and /readyz to the runtime.

import { InvalidInputError } from "../../actors/errors.ts";
import type { Policy } from "../../actors/events.ts";
import type { LlmOptions } from "../../actors/ports.ts";
import type { SendInput, StreamEvent } from "../../actors/reply.ts";
import type { Runtime } from "../../actors/runtime.ts";
import { jsonResponse } from "./_json_response.ts";
import type { ApiKeyAuth } from "./auth.ts";
import { describeError, errorResponse, retryAfterOfFailure } from "./error_response.ts";
import { HttpError } from "./errors.ts";
import { createMetrics, type Metrics, metricsRoute } from "./metrics.ts";
import { openAiRoutes } from "./openai_routes.ts";
import { openApiRoute } from "./openapi.ts";
import {
  type LimitOutcome,
  limitRequest,
  rateLimitHeaders,
  type RequestLimits,
} from "./rate_limit.ts";
import { DEFAULT_BODY_TIMEOUT_MS, readJsonObject, requireJson } from "./read_json.ts";
import type { Route, RouteContext } from "./route.ts";
import { pageQuery, sessionRoutes } from "./session_routes.ts";
import { type SseEvent, sseResponse } from "./sse.ts";

/** What {@linkcode createHandler} serves from. */
export interface HandlerDeps {
  /** The runtime every session route talks to. The caller owns it and closes it. */
  runtime: Runtime;
  /**
   * The largest request body accepted, in bytes; a larger one gets 413.
   * @default {1048576}
   */
  maxBodyBytes?: number;
  /**
   * How long a request body may take to arrive once its headers have, in ms; a body
   * still incomplete then gets 408 (a client trickling its body cannot hold a request).
   * @default {30000}
   */
  bodyTimeoutMs?: number;
  /**
   * Whether the server is shutting down; `/readyz` then answers 503.
   * @default {() => false}
   */
  isDraining?: () => boolean;
  /**
   * Maps a request's `Authorization: Bearer` key to its org; every route but
   * the open ones (health) then needs a valid key (401 otherwise).
   * @default {undefined} no auth: every caller is in org `"default"`
   */
  auth?: Pick<ApiKeyAuth, "authenticate">;
  /**
   * Per-org and per-session request limits. Every response of a limited route
   * carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a request over a
   * limit gets 429 with `Retry-After`.
   * @default {{}} no limits
   */
  rateLimits?: RequestLimits;
  /**
   * Counts every request (route, method, status, latency) for `GET /metrics`.
   * The caller owns it and closes it.
   * @default {createMetrics({ runtime, eventLoopSampleMs: 0 })} (no event-loop sampler)
   */
  metrics?: Metrics;
  /**
   * The model ids `GET /v1/models` lists.
   * @default {["troupe"]}
   */
  models?: readonly string[];
  /**
   * Receives every error answered with a 500, whose details the client never sees.
   * @default {describeError's default: a JSON line on stderr}
   */
  onError?: (error: unknown, request: Request) => void;
}

/** A fetch handler: a request in, a response out. */
export type Handler = (request: Request) => Promise<Response>;

// Without API keys every caller is in the default org, as are the open routes.
const ORG = "default";
// A session id the limiter counts by: the runtime refuses longer ones anyway.
const MAX_SESSION_KEY = 128;
const SEND_FIELDS = ["content", "id", "policy", "options"];

/**
 * Create the HTTP API as a fetch handler, for `Deno.serve` or for tests
 * that pass a `new Request(...)`.
 *
 * - `POST /v1/sessions/{session}/messages` with `{ content, id?, policy?, options? }`
 *   answers the Reply as JSON, or, with `Accept: text/event-stream`, a
 *   stream of `delta` events then one `reply` event.
 * - `GET /v1/sessions/{session}/messages?limit&before` answers `{ messages, next }`.
 * - `POST /v1/sessions/{session}/cancel` answers `{ cancelled }`.
 * - `GET /healthz` and `GET /readyz` report liveness and readiness.
 * - `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI-compatible
 *   routes (see `openAiRoutes`).
 * - `GET /metrics` (Prometheus text) and `GET /openapi.json` (this API's
 *   OpenAPI 3.1 document, built from the route table).
 *
 * Every error answers `{ error: { code, message, field? } }`.
 *
 * @example Send a message and read the reply
 * ```ts
 * import { createHandler } from "./handler.ts";
 * import { createRuntime } from "../../actors/runtime.ts";
 *
 * await using runtime = createRuntime();
 * const handler = createHandler({ runtime });
 * const response = await handler(
 *   new Request("http://localhost/v1/sessions/s1/messages", {
 *     method: "POST",
 *     headers: { "content-type": "application/json" },
 *     body: JSON.stringify({ content: "hello" }),
 *   }),
 * );
 * const reply = await response.json();
 * console.assert(response.status === 200 && reply.status === "completed" && reply.text === "hello");
 * ```
 */
export function createHandler(deps: HandlerDeps): Handler {
  const {
    runtime,
    maxBodyBytes = 1_048_576,
    bodyTimeoutMs = DEFAULT_BODY_TIMEOUT_MS,
    isDraining = () => false,
    onError,
    auth,
    rateLimits = {},
  } = deps;
  const metrics = deps.metrics ?? createMetrics({ runtime, eventLoopSampleMs: 0 });
  const report = (request: Request) =>
    onError === undefined ? undefined : (error: unknown) => onError(error, request);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new RangeError(
      `Cannot create the handler: maxBodyBytes must be a whole number >= 1, current value is ${maxBodyBytes}`,
    );
  }
  if (!Number.isInteger(bodyTimeoutMs) || bodyTimeoutMs < 1) {
    throw new RangeError(
      `Cannot create the handler: bodyTimeoutMs must be a whole number >= 1, current value is ${bodyTimeoutMs}`,
    );
  }

  const routes: Route[] = [
    { path: /^\/healthz$/, methods: { GET: health }, open: true },
    { path: /^\/readyz$/, methods: { GET: ready }, open: true },
    ...sessionRoutes(runtime),
    { path: /^\/v1\/sessions\/([^/]+)\/messages$/, methods: { GET: history, POST: send } },
    { path: /^\/v1\/sessions\/([^/]+)\/cancel$/, methods: { POST: cancel } },
    ...openAiRoutes({
      runtime,
      maxBodyBytes,
      bodyTimeoutMs,
      ...(deps.models === undefined ? {} : { models: deps.models }),
      ...(onError === undefined ? {} : { onError }),
    }),
    metricsRoute(metrics),
    openApiRoute(() => routes),
  ];

  function health(): Promise<Response> {
    return Promise.resolve(jsonResponse(200, { status: "ok" }));
  }

  function ready(): Promise<Response> {
    if (isDraining()) return Promise.resolve(jsonResponse(503, { status: "draining" }));
    return Promise.resolve(
      jsonResponse(200, { status: "ready", activeSessions: runtime.activeSessions }),
    );
  }

  async function send({ request, org, params }: RouteContext): Promise<Response> {
    requireJson(request);
    const input = sendInput(
      org,
      params[0]!,
      await readJsonObject(request, maxBodyBytes, bodyTimeoutMs),
    );
    if (!acceptsEventStream(request)) {
      const reply = await runtime.send(input);
      // A run refused for want of capacity says when to come back, as a 503 would.
      const retryAfter = reply.status === "failed" ? retryAfterOfFailure(reply.error) : undefined;
      return jsonResponse(
        200,
        reply,
        retryAfter === undefined ? {} : { "retry-after": retryAfter },
      );
    }
    // Wait for the first event so that a refusal (bad input, overload) still gets its status.
    const events = runtime.stream(input);
    const first = await events.next();
    return sseResponse(sseEvents(first, events, report(request)));
  }

  async function history({ url, org, params }: RouteContext): Promise<Response> {
    const page = await runtime.history({
      org,
      session: params[0]!,
      ...pageQuery(url, "before", "read history"),
    });
    return jsonResponse(200, page);
  }

  async function cancel({ org, params }: RouteContext): Promise<Response> {
    return jsonResponse(200, { cancelled: await runtime.cancel({ org, session: params[0]! }) });
  }

  function observed(
    route: Route | undefined,
    request: Request,
    startedAt: number,
    response: Response,
  ) {
    metrics.observeRequest(
      route ?? null,
      request.method,
      response.status,
      (performance.now() - startedAt) / 1000,
    );
    return response;
  }

  return async function handle(request: Request): Promise<Response> {
    const startedAt = performance.now();
    let route: Route | undefined;
    // Set once the caller is counted: every later response carries them, errors too.
    let limitHeaders: Record<string, string> | undefined;
    try {
      const url = new URL(request.url);
      let match: RegExpExecArray | null = null;
      for (const candidate of routes) {
        match = candidate.path.exec(url.pathname);
        if (match === null) continue;
        route = candidate;
        break;
      }
      const org = route?.open === true || auth === undefined ? ORG : auth.authenticate(request);
      const params = match?.slice(1).map((group) => decodeSegment(group ?? "")) ?? [];
      if (route?.open !== true) {
        const limited = limitRequest(rateLimits, org, limitedSession(request, url, params));
        if (limited !== null) {
          limitHeaders = rateLimitHeaders(limited.decision);
          if (!limited.decision.allowed) throw rateLimited(limited, limitHeaders);
        }
      }
      if (route === undefined) {
        throw new HttpError(
          404,
          "not_found",
          `Cannot ${request.method} ${url.pathname}: no such route`,
        );
      }
      const action = route.methods[request.method];
      if (action === undefined) {
        const allow = Object.keys(route.methods).join(", ");
        throw new HttpError(
          405,
          "method_not_allowed",
          `Cannot ${request.method} ${url.pathname}: the allowed methods are ${allow}`,
          { headers: { allow } },
        );
      }
      const response = withHeaders(await action({ request, url, params, org }), limitHeaders);
      return observed(route, request, startedAt, response);
    } catch (error) {
      const response = withHeaders(errorResponse(error, report(request)), limitHeaders);
      return observed(route, request, startedAt, response);
    }
  };
}

/**
 * The session a request is counted against: the one in a `/v1/sessions/{session}/...`
 * path, else its `X-Session-Id` header (the OpenAI-compatible route), else none.
 */
function limitedSession(request: Request, url: URL, params: string[]): string | undefined {
  if (params.length > 0 && url.pathname.startsWith("/v1/sessions/")) return params[0];
  const header = request.headers.get("x-session-id");
  return header !== null && header.length <= MAX_SESSION_KEY ? header : undefined;
}

function rateLimited(
  { decision, scope }: LimitOutcome,
  headers: Record<string, string>,
): HttpError {
  return new HttpError(
    429,
    "rate_limited",
    `Cannot accept the request: the ${scope}'s limit of ${decision.limit} requests per ${
      decision.windowMs / 1000
    } s is used up; retry in ${headers["retry-after"]} s`,
    { headers },
  );
}

/** The response with `headers` added (a copy when its headers cannot change). */
function withHeaders(response: Response, headers: Record<string, string> | undefined): Response {
  if (headers === undefined) return response;
  try {
    for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
    return copy;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidInputError(
      "session",
      `Cannot route the request: the session in the path is not valid percent-encoding, current value is ${
        JSON.stringify(segment)
      }`,
    );
  }
}

function sendInput(org: string, session: string, body: Record<string, unknown>): SendInput {
  for (const field of Object.keys(body)) {
    if (!SEND_FIELDS.includes(field)) {
      throw new InvalidInputError(
        field,
        `Cannot send: the body may hold only ${SEND_FIELDS.join(", ")}, current body has ${
          JSON.stringify(field)
        }`,
      );
    }
  }
  const { options } = body;
  if (typeof options === "object" && options !== null && "model" in options) {
    // The operator picks the upstream model (TROUPE_LLM_MODEL and its fallbacks); a caller
    // choosing one could run up a bill the operator never agreed to.
    throw new InvalidInputError(
      "options.model",
      "Cannot send: options.model cannot be set over HTTP; the server's model is set by TROUPE_LLM_MODEL",
    );
  }
  // The runtime checks the values and names the field that is wrong.
  return {
    org,
    session,
    content: body.content as SendInput["content"],
    ...(body.id === undefined ? {} : { id: body.id as string }),
    ...(body.policy === undefined ? {} : { policy: body.policy as Policy }),
    ...(body.options === undefined ? {} : { options: body.options as LlmOptions }),
  };
}

function acceptsEventStream(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  return accept.split(",").some((part) =>
    part.split(";")[0]?.trim().toLowerCase() === "text/event-stream"
  );
}

/** The runtime's stream as SSE: the first event already read, then the rest. */
function sseEvents(
  first: IteratorResult<StreamEvent>,
  rest: AsyncIterableIterator<StreamEvent>,
  onUnexpected: ((error: unknown) => void) | undefined,
): AsyncIterator<SseEvent> {
  let pending: IteratorResult<StreamEvent> | null = first;
  let ended = false;
  return {
    async next() {
      if (ended) return { done: true, value: undefined };
      try {
        const result = pending ?? await rest.next();
        pending = null;
        if (result.done) return { done: true, value: undefined };
        const event = result.value;
        return {
          done: false,
          value: event.type === "delta"
            ? { event: "delta", data: JSON.stringify({ text: event.text }) }
            : { event: "reply", data: JSON.stringify(event.reply) },
        };
      } catch (error) {
        // Headers are sent; the failure travels as the stream's last event.
        ended = true;
        const { body } = describeError(error, onUnexpected);
        return { done: false, value: { event: "error", data: JSON.stringify(body) } };
      }
    },
    async return() {
      ended = true;
      await rest.return?.();
      return { done: true, value: undefined };
    },
  };
}
