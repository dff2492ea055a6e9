// The OpenAI-compatible routes: POST /v1/chat/completions (streaming and not) and GET /v1/models.

import { systemClock } from "../../actors/clock.ts";
import { InvalidInputError } from "../../actors/errors.ts";
import type { Clock } from "../../actors/ports.ts";
import type { Runtime } from "../../actors/runtime.ts";
import { NEW_SESSION, type SendInput } from "../../actors/reply.ts";
import { checkId } from "../../actors/validate.ts";
import { jsonResponse } from "./_json_response.ts";
import { readChatCompletionRequest } from "./_openai_request.ts";
import { openAiChunks } from "./_openai_stream.ts";
import { chatCompletion, type CompletionMeta, openAiError, replyError } from "./_openai_wire.ts";
import { describeError } from "./error_response.ts";
import { DEFAULT_BODY_TIMEOUT_MS, readJsonObject, requireJson } from "./read_json.ts";
import type { Route, RouteContext } from "./route.ts";
import { sseResponse } from "./sse.ts";

/** What {@linkcode openAiRoutes} serves from. */
export interface OpenAiRoutesOptions {
  /** The runtime every call talks to. */
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
   * The model ids `GET /v1/models` lists. A call may name any model: Troupe
   * answers with its configured provider and says which model answered.
   * @default {["troupe"]}
   */
  models?: readonly string[];
  /**
   * Time, for the `created` field.
   * @default {systemClock}
   */
  clock?: Pick<Clock, "now">;
  /**
   * Receives an error Troupe does not expect (the client sees a bare `internal_error`).
   * @default {describeError's default: a JSON line on stderr}
   */
  onError?: (error: unknown, request: Request) => void;
}

/** The header that names the session of a call; without it a call is a session of its own. */
export const SESSION_HEADER = "x-session-id";

/** The header whose value is a call's message id: the same key, the same outcome. */
export const IDEMPOTENCY_HEADER = "idempotency-key";

/** The one-shot session of an Idempotency-Key: 32 hex digits of its SHA-256. */
async function digestOf(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  let hex = "";
  for (const byte of new Uint8Array(digest, 0, 16)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/**
 * The OpenAI-compatible routes, for the handler's route table, so that any
 * OpenAI client library can use Troupe as its base URL.
 *
 * `POST /v1/chat/completions`: the body's `messages` are the conversation;
 * its trailing user turns are the session's new message, ordered and
 * superseded by the session actor like any other, and the run's prompt is the
 * conversation sent (not the stored history). The session comes from the
 * `X-Session-Id` header; without it the call is a one-shot session of its
 * own. The answer is a `chat.completion`, or with `stream: true` server-sent
 * `chat.completion.chunk`s ending in `data: [DONE]` (and a usage chunk first
 * with `stream_options.include_usage`). A call whose message a newer call
 * superseded gets 409 with `error.code = "superseded"` and
 * `error.superseded_by` naming the run that answers it; a stream ends with
 * that error as its last event. Errors carry OpenAI's `type` and `param` too.
 *
 * `GET /v1/models` lists {@linkcode OpenAiRoutesOptions.models}.
 *
 * @example A call answered by the mock LLM
 * ```ts
 * import { openAiRoutes } from "./openai_routes.ts";
 * import { createRuntime } from "../../actors/runtime.ts";
 *
 * await using runtime = createRuntime();
 * const [completions] = openAiRoutes({ runtime });
 * const request = new Request("http://localhost/v1/chat/completions", {
 *   method: "POST",
 *   headers: { "content-type": "application/json", "x-session-id": "s1" },
 *   body: JSON.stringify({ model: "any", messages: [{ role: "user", content: "hello" }] }),
 * });
 * const response = await completions!.methods.POST!({
 *   request, url: new URL(request.url), params: [], org: "default",
 * });
 * const body = await response.json();
 * console.assert(body.object === "chat.completion" && body.choices[0].message.content === "hello");
 * ```
 */
export function openAiRoutes(options: OpenAiRoutesOptions): Route[] {
  const {
    runtime,
    maxBodyBytes = 1_048_576,
    bodyTimeoutMs = DEFAULT_BODY_TIMEOUT_MS,
    models = ["troupe"],
    clock = systemClock,
    onError,
  } = options;
  const listedAt = Math.floor(clock.now() / 1000);
  const modelList = {
    object: "list",
    data: models.map((id) => ({ id, object: "model", created: listedAt, owned_by: "troupe" })),
  };

  async function completions({ request, org }: RouteContext): Promise<Response> {
    const report = onError === undefined ? undefined : (error: unknown) => onError(error, request);
    try {
      return await complete(request, org, report);
    } catch (error) {
      let unexpected = false;
      const description = describeError(openAiField(error), () => unexpected = true);
      // The handler reports what Troupe did not expect (once) and answers its plain 500.
      if (unexpected) throw error;
      const { status, headers, body } = openAiError(description);
      return jsonResponse(status, body, headers);
    }
  }

  async function complete(
    request: Request,
    org: string,
    report: ((error: unknown) => void) | undefined,
  ): Promise<Response> {
    requireJson(request);
    const header = request.headers.get(SESSION_HEADER);
    // An Idempotency-Key is the message's id: a client that sends the call again (a timeout,
    // a dropped connection) gets the first outcome instead of a new message superseding it.
    // Without X-Session-Id, the one-shot session is named after the key, so that the retry
    // finds it.
    const idempotencyKey = request.headers.get(IDEMPOTENCY_HEADER);
    const id = idempotencyKey === null
      ? undefined
      : checkId("Idempotency-Key", idempotencyKey, "complete the chat");
    const session = header !== null
      ? checkId("X-Session-Id", header, "complete the chat")
      : id === undefined
      ? `oneshot-${crypto.randomUUID()}`
      : `oneshot-${await digestOf(id)}`;
    const call = readChatCompletionRequest(
      await readJsonObject(request, maxBodyBytes, bodyTimeoutMs),
    );
    const meta: CompletionMeta = {
      id: `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`,
      created: Math.floor(clock.now() / 1000),
      model: call.model,
    };
    const input: SendInput & { [NEW_SESSION]?: boolean } = {
      org,
      session,
      content: call.content,
      context: call.context,
    };
    if (id !== undefined) input.id = id;
    // A one-shot session's id was made here, so the store holds nothing under it.
    const fresh = header === null && id === undefined;
    if (fresh) input[NEW_SESSION] = true;
    if (Object.keys(call.options).length > 0) input.options = call.options;
    const headers = { [SESSION_HEADER]: session };
    // A one-shot session's answer has no other reader: a client that goes away before it
    // cancels the run (its upstream call and slot), where a named session's run goes on
    // to its history. The listener is gone before the response ends: Deno also aborts
    // the signal of a request answered in full.
    // (A cancel refused because the runtime shuts down changes nothing: shutdown aborts runs.)
    // Deno 2.9.6 does not abort the signal of a client that leaves when the request's body did
    // not fit in the server's first read (~1 KB): a non-streaming call then runs to its end
    // (measured: .scratch/h1/oneshot_nonstream_abort_big.ts; docs/api.md says so).
    // A call with an Idempotency-Key may come back for its outcome: its run goes on.
    const abandon = fresh ? () => void runtime.cancel({ org, session }).catch(() => {}) : null;
    if (abandon !== null) request.signal.addEventListener("abort", abandon, { once: true });
    const unwatch = () => {
      if (abandon !== null) request.signal.removeEventListener("abort", abandon);
    };

    if (!call.stream) {
      let reply;
      try {
        reply = await runtime.send(input);
      } finally {
        unwatch();
      }
      if (reply.status === "completed") {
        return jsonResponse(200, chatCompletion(meta, reply), {
          ...headers,
          "x-troupe-run-id": reply.runId,
        });
      }
      const refused = replyError(reply);
      return jsonResponse(refused.status, refused.body, {
        ...headers,
        ...refused.headers,
        "x-troupe-run-id": reply.runId,
      });
    }
    // Wait for the first event so that a refusal (bad input, overload) still gets its status.
    const events = runtime.stream(input);
    let first;
    try {
      first = await events.next();
    } catch (error) {
      unwatch();
      throw error;
    }
    const chunks = openAiChunks(meta, first, events, {
      includeUsage: call.includeUsage,
      onUnexpected: report,
    });
    return sseResponse(abandon === null ? chunks : watched(chunks, unwatch, abandon), { headers });
  }

  function listModels(): Promise<Response> {
    return Promise.resolve(jsonResponse(200, modelList));
  }

  return [
    { path: /^\/v1\/chat\/completions$/, methods: { POST: completions } },
    { path: /^\/v1\/models$/, methods: { GET: listModels } },
  ];
}

/**
 * `source`, calling `ended` once it is read to its end, and `ended` then
 * `abandoned` if the reader stops before (the client went away).
 */
function watched<T>(
  source: AsyncIterator<T>,
  ended: () => void,
  abandoned: () => void,
): AsyncIterator<T> {
  return {
    async next() {
      const result = await source.next();
      if (result.done) ended();
      return result;
    },
    async return() {
      ended();
      abandoned();
      return await source.return?.() ?? { done: true, value: undefined };
    },
  };
}

/** The runtime names the fields of what it was given; a client named them in its messages. */
function openAiField(error: unknown): unknown {
  if (!(error instanceof InvalidInputError)) return error;
  const field = error.field === "content"
    ? "messages"
    : /^context\[\d+\]/.test(error.field)
    ? error.field.replace(/^context/, "messages")
    : null;
  if (field === null) return error;
  return new InvalidInputError(field, error.message.replace(/\bcontext\[/g, "messages["));
}
