// OpenAI chat completion wire objects for the mock upstream: bodies, SSE chunks, usage dialects, errors.

/** Whose field names a reply's token usage is written with. */
export type UsageDialect = "openai" | "anthropic" | "gemini" | "none";

/** Token counts of one exchange, before a dialect names them. */
export interface TokenCounts {
  /** Tokens of every message sent, cached ones included. */
  prompt: number;
  /** Tokens of the visible reply, reasoning excluded. */
  completion: number;
  /** Prompt tokens served from a cache. */
  cached: number;
  /** Hidden reasoning tokens. */
  reasoning: number;
}

/** What every object of one reply shares. */
export interface ReplyHead {
  /** `chatcmpl-...`, the same in every chunk of a stream. */
  id: string;
  /** Unix seconds. */
  created: number;
  /** The model the reply claims. */
  model: string;
}

/** A JSON object of the wire format. */
export type WireObject = Record<string, unknown>;

/**
 * Count tokens the mock's way: one per four UTF-16 code units, rounded up
 * (the same estimate as `estimateTokens` in `actors/usage.ts`).
 *
 * @example
 * ```ts
 * import { countTokens } from "./_mock_upstream_wire.ts";
 *
 * console.assert(countTokens("hello") === 2);
 * ```
 */
export function countTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Split a reply into the pieces a stream sends: words with the whitespace
 * that follows them (leading whitespace stays with the first word). Joined,
 * the pieces give the text back.
 *
 * @example
 * ```ts
 * import { splitTokens } from "./_mock_upstream_wire.ts";
 *
 * console.assert(splitTokens("hi there").join("|") === "hi |there");
 * ```
 */
export function splitTokens(text: string): string[] {
  const words = text.match(/\s*\S+\s*/g);
  if (words !== null) return words;
  return text === "" ? [] : [text];
}

/**
 * The usage fields of a reply in a dialect, to spread into a body or the
 * last chunk: OpenAI `usage` (prompt counts include cached tokens,
 * completion counts include reasoning), Anthropic `usage` (input excludes
 * cache reads, output includes thinking), Gemini `usageMetadata` (candidates
 * exclude thoughts), or nothing.
 *
 * @example
 * ```ts
 * import { usageFields } from "./_mock_upstream_wire.ts";
 *
 * const fields = usageFields({ prompt: 3, completion: 2, cached: 1, reasoning: 0 }, "anthropic");
 * console.assert(JSON.stringify(fields).includes('"input_tokens":2'));
 * ```
 */
export function usageFields(counts: TokenCounts, dialect: UsageDialect): WireObject {
  const { prompt, completion, cached, reasoning } = counts;
  switch (dialect) {
    case "openai":
      return {
        usage: {
          prompt_tokens: prompt,
          completion_tokens: completion + reasoning,
          total_tokens: prompt + completion + reasoning,
          prompt_tokens_details: { cached_tokens: cached },
          completion_tokens_details: { reasoning_tokens: reasoning },
        },
      };
    case "anthropic":
      return {
        usage: {
          input_tokens: prompt - cached,
          output_tokens: completion + reasoning,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: cached,
        },
      };
    case "gemini":
      return {
        usageMetadata: {
          promptTokenCount: prompt,
          candidatesTokenCount: completion,
          totalTokenCount: prompt + completion + reasoning,
          cachedContentTokenCount: cached,
          thoughtsTokenCount: reasoning,
        },
      };
    case "none":
      return {};
  }
}

/**
 * A non-streaming `chat.completion` body.
 *
 * @example
 * ```ts
 * import { completionBody } from "./_mock_upstream_wire.ts";
 *
 * const body = completionBody({ id: "chatcmpl-1", created: 0, model: "m" }, "hi", {});
 * console.assert(body.object === "chat.completion");
 * ```
 */
export function completionBody(
  head: ReplyHead,
  content: string,
  usage: WireObject,
  finishReason = "stop",
): WireObject {
  return {
    ...head,
    object: "chat.completion",
    choices: [{
      index: 0,
      message: { role: "assistant", content },
      logprobs: null,
      finish_reason: finishReason,
    }],
    ...usage,
  };
}

/**
 * The `data:` lines of a streamed reply, in order: a role chunk, one chunk
 * per piece, a chunk with `finish_reason`, the usage chunk (`choices: []`)
 * when `usage` has fields, then `[DONE]`. When the usage sits under a `usage`
 * key, every other chunk carries `usage: null`, as OpenAI's do.
 *
 * @example
 * ```ts
 * import { streamEvents } from "./_mock_upstream_wire.ts";
 *
 * const events = streamEvents({ id: "chatcmpl-1", created: 0, model: "m" }, ["hi"], {});
 * console.assert(events.at(-1) === "data: [DONE]\n\n");
 * ```
 */
export function streamEvents(
  head: ReplyHead,
  pieces: string[],
  usage: WireObject,
  finishReason = "stop",
): string[] {
  const hasUsage = Object.keys(usage).length > 0;
  const extra = "usage" in usage ? { usage: null } : {};
  const chunk = (delta: WireObject, finishReason: string | null) =>
    sse({
      ...head,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...extra,
    });
  return [
    chunk({ role: "assistant", content: "" }, null),
    ...pieces.map((piece) => chunk({ content: piece }, null)),
    chunk({}, finishReason),
    ...(hasUsage ? [sse({ ...head, object: "chat.completion.chunk", choices: [], ...usage })] : []),
    "data: [DONE]\n\n",
  ];
}

function sse(data: WireObject): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

/**
 * An OpenAI-style error response: `{ error: { message, type, param, code } }`.
 *
 * @example
 * ```ts
 * import { errorResponse } from "./_mock_upstream_wire.ts";
 *
 * const response = errorResponse(404, "No such route", "invalid_request_error", "unknown_url");
 * console.assert(response.status === 404);
 * await response.body?.cancel();
 * ```
 */
export function errorResponse(
  status: number,
  message: string,
  type: string,
  code: string,
  headers: HeadersInit = {},
): Response {
  return jsonResponse({ error: { message, type, param: null, code } }, status, headers);
}

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * import { jsonResponse } from "./_mock_upstream_wire.ts";
 *
 * const response = jsonResponse({ ok: true });
 * console.assert((await response.json()).ok === true);
 * ```
 */
export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return Response.json(body, { status, headers });
}
