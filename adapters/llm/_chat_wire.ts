// The OpenAI chat completions wire format: the request body, a whole response body, and stream chunks folded into one reply.

import { WIRE_NAMES, type WireOption, wireValue } from "../../actors/llm_options.ts";
import type { FinishReason, LlmRequest, Usage } from "../../actors/ports.ts";
import { readUsage } from "./_usage_dialects.ts";

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The names an OpenAI-compatible upstream may read a cap on generated tokens under. */
export type MaxTokensParameter = "max_tokens" | "max_completion_tokens";

/** Every {@linkcode MaxTokensParameter}, in the order error messages list them. */
export const MAX_TOKENS_PARAMETERS: readonly MaxTokensParameter[] = [
  "max_tokens",
  "max_completion_tokens",
];

/**
 * The JSON body of `POST /chat/completions`. A stream asks for the usage
 * chunk (`stream_options.include_usage`). Each option the request carries
 * goes out under its wire name (`topP` as `top_p`, ...); `maxTokens` goes out
 * as `maxTokensParameter`: `max_tokens`, which every compatible server reads,
 * unless the upstream asks for `max_completion_tokens`.
 *
 * @example
 * ```ts
 * import { chatBody } from "./_chat_wire.ts";
 *
 * const body = chatBody({ org: "o", session: "s", run: "r", messages: [] }, "gpt-4o", true);
 * console.assert(JSON.stringify(body.stream_options) === '{"include_usage":true}');
 * ```
 */
export function chatBody(
  request: LlmRequest,
  model: string,
  stream: boolean,
  maxTokensParameter: MaxTokensParameter = "max_tokens",
): Fields {
  const body: Fields = {
    model,
    messages: request.messages.map(({ role, content }) => ({ role, content })),
    stream,
  };
  if (stream) body.stream_options = { include_usage: true };
  const options = request.options;
  if (options === undefined) return body;
  for (const key of Object.keys(WIRE_NAMES) as WireOption[]) {
    const value = options[key];
    if (value === undefined) continue;
    body[key === "maxTokens" ? maxTokensParameter : WIRE_NAMES[key]] = wireValue(key, value);
  }
  return body;
}

const FINISH: Record<string, FinishReason> = {
  stop: "stop",
  length: "length",
  content_filter: "content_filter",
  tool_calls: "tool_calls",
  function_call: "tool_calls",
  // Anthropic and Gemini names, as some proxies pass them through.
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  safety: "content_filter",
  refusal: "content_filter",
  error: "error",
};

/**
 * Troupe's finish reason for a wire `finish_reason` (OpenAI's, or Anthropic's
 * and Gemini's names as proxies pass them); `undefined` when none was given.
 * An unknown reason counts as `stop`: the reply ended normally as far as Troupe can tell.
 *
 * @example
 * ```ts
 * import { finishReason } from "./_chat_wire.ts";
 *
 * console.assert(finishReason("MAX_TOKENS") === "length" && finishReason(null) === undefined);
 * ```
 */
export function finishReason(value: unknown): FinishReason | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  return FINISH[value.toLowerCase()] ?? "stop";
}

/** One reply as read from the wire. */
export interface WireReply {
  /** The generated text. */
  text: string;
  /** Why it ended, when the upstream said. */
  finishReason: FinishReason | undefined;
  /** The model the upstream named. */
  model: string | undefined;
  /** The usage it reported. */
  usage: Usage | undefined;
}

/** Text of a message's `content`: a string, or the `text` parts of an array. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const part of content) {
    if (isObject(part) && typeof part.text === "string") text += part.text;
  }
  return text;
}

/** The upstream's error inside a 200 body or chunk (`{ "error": { "message" } }`), if any. */
export function embeddedError(body: Fields): string | undefined {
  const { error } = body;
  if (error === undefined || error === null) return undefined;
  if (typeof error === "string") return error;
  if (isObject(error) && typeof error.message === "string") return error.message;
  return JSON.stringify(error);
}

/**
 * Read a whole (non-streaming) `chat.completion` body: the first choice's
 * message, its finish reason, the model and the usage. Throws a `TypeError`
 * naming what is missing when the body is not a chat completion.
 *
 * @example
 * ```ts
 * import { readCompletion } from "./_chat_wire.ts";
 *
 * const reply = readCompletion({
 *   model: "m",
 *   choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
 *   usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
 * });
 * console.assert(reply.text === "hi" && reply.usage?.totalTokens === 4);
 * ```
 */
export function readCompletion(body: unknown): WireReply {
  if (!isObject(body)) {
    throw new TypeError("Cannot read the chat completion: the body is not a JSON object");
  }
  const error = embeddedError(body);
  if (error !== undefined) throw new TypeError(`Cannot read the chat completion: ${error}`);
  const choices = Array.isArray(body.choices) ? body.choices : [];
  const choice = choices.find((c) => isObject(c) && (c.index ?? 0) === 0);
  if (!isObject(choice) || !isObject(choice.message)) {
    throw new TypeError("Cannot read the chat completion: choices[0].message is missing");
  }
  return {
    text: contentText(choice.message.content),
    finishReason: finishReason(choice.finish_reason),
    // An empty model names nothing (some servers send ""): the model asked for stands.
    model: typeof body.model === "string" && body.model !== "" ? body.model : undefined,
    usage: readUsage(body),
  };
}

/**
 * Folds the chunks of a streamed reply (`chat.completion.chunk`) into one
 * reply: the first choice's content deltas in order, the last finish
 * reason, the model and the last usage reported (the usage chunk has
 * `choices: []`; some servers send `choices: null`, or usage on every chunk).
 */
export interface ChunkFolder extends WireReply {
  /** Fold one parsed chunk in; returns the text it adds (`""` when none). */
  fold(chunk: unknown): string;
}

/**
 * Make an empty {@linkcode ChunkFolder}. A chunk that carries an `error`
 * object (some servers report a failure that way once streaming began)
 * throws a `TypeError` with its message.
 *
 * @example
 * ```ts
 * import { chunkFolder } from "./_chat_wire.ts";
 *
 * const folder = chunkFolder();
 * folder.fold({ model: "m", choices: [{ index: 0, delta: { content: "he" }, finish_reason: null }] });
 * folder.fold({ model: "m", choices: [{ index: 0, delta: { content: "y" }, finish_reason: "stop" }] });
 * folder.fold({ model: "m", choices: [], usage: { prompt_tokens: 2, completion_tokens: 1 } });
 * console.assert(folder.text === "hey" && folder.finishReason === "stop" && folder.usage?.totalTokens === 3);
 * ```
 */
export function chunkFolder(): ChunkFolder {
  let text = "";
  const folder: ChunkFolder = {
    get text() {
      return text;
    },
    finishReason: undefined,
    model: undefined,
    usage: undefined,
    fold(chunk) {
      if (!isObject(chunk)) return "";
      const error = embeddedError(chunk);
      if (error !== undefined) throw new TypeError(error);
      if (typeof chunk.model === "string" && chunk.model !== "") folder.model = chunk.model;
      const usage = readUsage(chunk);
      if (usage !== undefined) folder.usage = usage;
      if (!Array.isArray(chunk.choices)) return "";
      let added = "";
      for (const choice of chunk.choices) {
        if (!isObject(choice) || (choice.index ?? 0) !== 0) continue;
        if (isObject(choice.delta)) added += contentText(choice.delta.content);
        const reason = finishReason(choice.finish_reason);
        if (reason !== undefined) folder.finishReason = reason;
      }
      text += added;
      return added;
    },
  };
  return folder;
}
