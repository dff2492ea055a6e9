// The HTTP API as a plain fetch handler: routes /v1/sessions/..., /healthz and /readyz to the runtime.

import { InvalidInputError } from "../../actors/errors.ts";
import type { Policy } from "../../actors/events.ts";
import type { SendInput, StreamEvent } from "../../actors/reply.ts";
import type { Runtime } from "../../actors/runtime.ts";
import { jsonResponse } from "./_json_response.ts";
import { describeError, errorResponse } from "./error_response.ts";
import { HttpError } from "./errors.ts";
import { readJsonObject } from "./read_json.ts";
import type { Route, RouteContext } from "./route.ts";
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
   * Whether the server is shutting down; `/readyz` then answers 503.
   * @default {() => false}
   */
  isDraining?: () => boolean;
  /**
   * Receives every error answered with a 500, whose details the client never sees.
   * @default {describeError's default: a JSON line on stderr}
   */
  onError?: (error: unknown, request: Request) => void;
}

/** A fetch handler: a request in, a response out. */
export type Handler = (request: Request) => Promise<Response>;

// Until API keys map callers to orgs, every caller is in the default org.
const ORG = "default";
const SEND_FIELDS = ["content", "id", "policy"];

/**
 * Create the HTTP API as a fetch handler, for `Deno.serve` or for tests
 * that pass a `new Request(...)`.
 *
 * - `POST /v1/sessions/{session}/messages` with `{ content, id?, policy? }`
 *   answers the Reply as JSON, or, with `Accept: text/event-stream`, a
 *   stream of `delta` events then one `reply` event.
 * - `GET /v1/sessions/{session}/messages?limit&before` answers `{ messages, next }`.
 * - `POST /v1/sessions/{session}/cancel` answers `{ cancelled }`.
 * - `GET /healthz` and `GET /readyz` report liveness and readiness.
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
  const { runtime, maxBodyBytes = 1_048_576, isDraining = () => false, onError } = deps;
  const report = (request: Request) =>
    onError === undefined ? undefined : (error: unknown) => onError(error, request);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new RangeError(
      `Cannot create the handler: maxBodyBytes must be a whole number >= 1, current value is ${maxBodyBytes}`,
    );
  }

  const routes: Route[] = [
    { path: /^\/healthz$/, methods: { GET: health } },
    { path: /^\/readyz$/, methods: { GET: ready } },
    { path: /^\/v1\/sessions\/([^/]+)\/messages$/, methods: { GET: history, POST: send } },
    { path: /^\/v1\/sessions\/([^/]+)\/cancel$/, methods: { POST: cancel } },
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
    const input = sendInput(org, params[0]!, await readJsonObject(request, maxBodyBytes));
    if (!acceptsEventStream(request)) return jsonResponse(200, await runtime.send(input));
    // Wait for the first event so that a refusal (bad input, overload) still gets its status.
    const events = runtime.stream(input);
    const first = await events.next();
    return sseResponse(sseEvents(first, events, report(request)));
  }

  async function history({ url, org, params }: RouteContext): Promise<Response> {
    const limit = url.searchParams.get("limit");
    const before = url.searchParams.get("before");
    const page = await runtime.history({
      org,
      session: params[0]!,
      ...(limit === null ? {} : { limit: wholeNumber("limit", limit) }),
      ...(before === null ? {} : { before }),
    });
    return jsonResponse(200, page);
  }

  async function cancel({ org, params }: RouteContext): Promise<Response> {
    return jsonResponse(200, { cancelled: await runtime.cancel({ org, session: params[0]! }) });
  }

  return async function handle(request: Request): Promise<Response> {
    try {
      const url = new URL(request.url);
      for (const route of routes) {
        const match = route.path.exec(url.pathname);
        if (match === null) continue;
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
        const params = match.slice(1).map((group) => decodeSegment(group ?? ""));
        return await action({ request, url, params, org: ORG });
      }
      throw new HttpError(
        404,
        "not_found",
        `Cannot ${request.method} ${url.pathname}: no such route`,
      );
    } catch (error) {
      return errorResponse(error, report(request));
    }
  };
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

function requireJson(request: Request): void {
  // Requiring JSON also makes a browser preflight a cross-site POST, which this server never allows.
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() ?? "";
  if (type !== "application/json" && !type.endsWith("+json")) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Cannot read the body: content-type must be application/json, current value is ${
        JSON.stringify(type)
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
  // The runtime checks the values and names the field that is wrong.
  return {
    org,
    session,
    content: body.content as SendInput["content"],
    ...(body.id === undefined ? {} : { id: body.id as string }),
    ...(body.policy === undefined ? {} : { policy: body.policy as Policy }),
  };
}

function wholeNumber(field: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new InvalidInputError(
      field,
      `Cannot read history: ${field} must be a whole number, current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  return Number(text);
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
