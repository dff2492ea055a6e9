// What each route of the HTTP API does, keyed "METHOD /template": the operations of the OpenAPI document.

import { AUDIT_PAGE_SIZE, PAGE_SIZE } from "../../actors/validate.ts";

type Operation = Record<string, unknown>;

const schema = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string, description: string) => ({
  description,
  content: { "application/json": { schema: schema(name) } },
});
const sessionParam = {
  name: "session",
  in: "path",
  required: true,
  description: "The session id: 1–128 letters, digits, '.', '_', ':', '@' or '-'.",
  schema: { type: "string", pattern: "^[A-Za-z0-9._:@-]{1,128}$" },
};
const query = (name: string, description: string, type: Record<string, unknown>) => ({
  name,
  in: "query",
  required: false,
  description,
  schema: type,
});
const limitQuery = (what: string) =>
  query(
    "limit",
    `At most this many ${what} (1–${PAGE_SIZE.max}, default ${PAGE_SIZE.default}).`,
    { type: "integer", minimum: 1, maximum: PAGE_SIZE.max },
  );

/**
 * Every operation the API serves, keyed by method and path template. The
 * document lists the handler's route table; this says what each route does.
 * Error responses (400, 401, 404, 405, 408, 413, 415, 429, 503) are added by the
 * document builder from what the route is (authenticated, takes a body).
 */
export const OPERATIONS: Record<string, Operation> = {
  "GET /healthz": {
    operationId: "health",
    tags: ["health"],
    summary: "Liveness: the process answers.",
    responses: { "200": json("Health", '`{ "status": "ok" }`.') },
  },
  "GET /readyz": {
    operationId: "ready",
    tags: ["health"],
    summary: "Readiness: 503 while the server drains.",
    responses: {
      "200": json("Health", '`{ "status": "ready", "activeSessions": n }`.'),
      "503": json("Health", '`{ "status": "draining" }`: the server is shutting down.'),
    },
  },
  "GET /v1/sessions": {
    operationId: "listSessions",
    tags: ["sessions"],
    summary: "List the org's sessions that have history, by session id.",
    parameters: [
      limitQuery("sessions"),
      query("after", "The `next` cursor of the previous page.", { type: "string" }),
    ],
    responses: { "200": json("SessionPage", "A page of sessions.") },
  },
  "DELETE /v1/sessions/{session}": {
    operationId: "deleteSession",
    tags: ["sessions"],
    summary: "Delete a session: its run is cancelled, its history and state are gone.",
    description:
      "Idempotent: deleting a session that does not exist (or no longer) also answers 204. Usage records are kept.",
    parameters: [sessionParam],
    responses: { "204": { description: "Deleted (or there was nothing to delete)." } },
  },
  "GET /v1/sessions/{session}/events": {
    operationId: "readAuditTrail",
    tags: ["sessions"],
    summary:
      "Read a session's audit trail: its events as stored, newest page first (events in a page oldest first).",
    description:
      "Every event of the session, a deleted session's too (deletion keeps them). It first waits for the events emitted before the request to be stored; if they cannot be within 15 s (bus or database down) it answers 503 with Retry-After. 501 on a store that keeps no events.",
    parameters: [
      sessionParam,
      query(
        "limit",
        `At most this many events (1–${AUDIT_PAGE_SIZE.max}, default ${AUDIT_PAGE_SIZE.default}).`,
        { type: "integer", minimum: 1, maximum: AUDIT_PAGE_SIZE.max },
      ),
      query("before", "The `next` cursor of the previous page.", { type: "string" }),
    ],
    responses: {
      "200": json("AuditPage", "A page of events."),
      "501": json("Error", "The store keeps no events (give the server a SQL store)."),
    },
  },
  "GET /v1/sessions/{session}/messages": {
    operationId: "readHistory",
    tags: ["sessions"],
    summary: "Read a session's history, newest page first (entries in a page oldest first).",
    parameters: [
      sessionParam,
      limitQuery("entries"),
      query("before", "The `next` cursor of the previous page.", { type: "string" }),
    ],
    responses: { "200": json("HistoryPage", "A page of history.") },
  },
  "POST /v1/sessions/{session}/messages": {
    operationId: "sendMessage",
    tags: ["sessions"],
    summary: "Send a message to a session and receive its reply.",
    description:
      "The reply says how the message ended: `completed` with the answer, `superseded` (a newer message was folded into the run that answers it), `rejected`, `cancelled` or `failed`. With `Accept: text/event-stream` the answer streams as `delta` events (`{ text }`), then one `reply` event (the Reply), or an `error` event (the Error body) if it failed after the stream began.",
    parameters: [sessionParam],
    requestBody: {
      required: true,
      content: { "application/json": { schema: schema("SendMessage") } },
    },
    responses: {
      "200": {
        description: "The reply, or its stream.",
        content: {
          "application/json": { schema: schema("Reply") },
          "text/event-stream": {
            schema: {
              type: "string",
              description:
                "`event: delta` then `event: reply` (or `event: error`) server-sent events.",
            },
          },
        },
      },
      "502": json("Error", "The LLM provider failed."),
    },
  },
  "POST /v1/sessions/{session}/cancel": {
    operationId: "cancelSession",
    tags: ["sessions"],
    summary: "The stop button: abort the run in flight and drop the queued messages.",
    parameters: [sessionParam],
    responses: {
      "200": {
        description: "How many waiting callers were told `cancelled`.",
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["cancelled"],
              properties: { cancelled: { type: "integer", minimum: 0 } },
            },
          },
        },
      },
    },
  },
  "GET /v1/usage": {
    operationId: "readUsage",
    tags: ["usage"],
    summary: "Token totals of the org's LLM calls.",
    parameters: [
      query("from", "Only calls at or after this time: ms since the epoch or an ISO 8601 date.", {
        type: "string",
      }),
      query("to", "Only calls before this time: ms since the epoch or an ISO 8601 date.", {
        type: "string",
      }),
      query("group_by", "One row per session, per model, or one in all (default).", {
        type: "string",
        enum: ["session", "model", "none"],
      }),
    ],
    responses: {
      "200": json("UsageReport", "The totals."),
      "501": json("Error", "The store keeps no events (give the server a SQL store)."),
    },
  },
  "POST /v1/chat/completions": {
    operationId: "createChatCompletion",
    tags: ["openai"],
    summary: "OpenAI-compatible chat completions, streaming and not.",
    description:
      "Point any OpenAI client at Troupe. The session comes from `X-Session-Id` (without it the call is a one-shot session). The request's trailing user turns are the session's new message, ordered and superseded by the session actor like any other; the run answers from the messages sent, not the stored history. A call superseded by a newer call on the same session gets 409 with `error.code` `superseded` and `error.superseded_by`; a superseded stream ends with a `data: {\"error\": ...}` event saying the same, without `[DONE]`.",
    parameters: [{
      name: "X-Session-Id",
      in: "header",
      required: false,
      description: "The session; without it the call is a session of its own.",
      schema: { type: "string", pattern: "^[A-Za-z0-9._:@-]{1,128}$" },
    }, {
      name: "Idempotency-Key",
      in: "header",
      required: false,
      description:
        "The message's id: a call sent again with the same key gets the first call's outcome (waiting for it if it still runs) instead of a new message that supersedes it. Without X-Session-Id the key also names the one-shot session, and the run goes on when its client leaves.",
      schema: { type: "string", pattern: "^[A-Za-z0-9._:@-]{1,128}$" },
    }],
    requestBody: {
      required: true,
      content: { "application/json": { schema: schema("ChatCompletionRequest") } },
    },
    responses: {
      "200": {
        description: "The completion, or with `stream: true` its chunks then `data: [DONE]`.",
        content: {
          "application/json": { schema: schema("ChatCompletion") },
          "text/event-stream": {
            schema: {
              type: "string",
              description: "`data:` events, each a ChatCompletionChunk, then `data: [DONE]`.",
            },
          },
        },
      },
      "409": json(
        "OpenAiError",
        "The message did not complete: `superseded` (with `superseded_by`), `rejected` or `cancelled`. Carries `X-Should-Retry: false`.",
      ),
      "502": json("OpenAiError", "The LLM provider failed."),
    },
  },
  "GET /v1/models": {
    operationId: "listModels",
    tags: ["openai"],
    summary: "The models this server offers, in OpenAI's format.",
    responses: { "200": json("ModelList", "The models.") },
  },
  "GET /metrics": {
    operationId: "metrics",
    tags: ["operations"],
    summary: "Prometheus metrics in the text exposition format 0.0.4.",
    responses: {
      "200": {
        description:
          "Requests by route and status, latency histogram, active sessions, runs in flight, superseded runs, tokens, pool queue depth, persister lag, event-loop lag.",
        content: { "text/plain": { schema: { type: "string" } } },
      },
    },
  },
  "GET /openapi.json": {
    operationId: "openApi",
    tags: ["operations"],
    summary: "This document.",
    responses: {
      "200": {
        description: "The OpenAPI 3.1 document.",
        content: { "application/json": { schema: { type: "object" } } },
      },
    },
  },
};
