// Reads an OpenAI chat completions request: the caller's conversation, its new message, and how to answer.

import { InvalidInputError } from "../../actors/errors.ts";
import { checkLlmOption, WIRE_NAMES, type WireOption } from "../../actors/llm_options.ts";
import type { ChatMessage, LlmOptions } from "../../actors/ports.ts";

/** What Troupe takes from a `POST /v1/chat/completions` body. */
export interface ChatCompletionRequest {
  /** The model the caller named (echoed back; Troupe answers with its configured provider). */
  model: string;
  /** The messages before the trailing user turns: the run's conversation. */
  context: ChatMessage[];
  /** The trailing user turns, joined: the session's new message. */
  content: string;
  /** Answer as server-sent chunks. */
  stream: boolean;
  /** End a stream with a usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** The sampling and format parameters, passed on to the provider. */
  options: LlmOptions;
}

// Joins trailing user turns into one message; a newline join also lets a merged
// run see that a resent earlier message is already there (see buildPrompt).
const TURN_JOIN = "\n\n";

/**
 * Read a chat completions body. `messages` must end with one or more user
 * turns: they become the session's new message (joined by a blank line) and
 * everything before them is the conversation the run answers from.
 * `developer` turns count as `system`. Tool calls, several choices (`n` > 1)
 * and non-text content parts are refused with a 400 naming the field.
 * The sampling and format parameters go on to the provider: `max_tokens`
 * (or `max_completion_tokens`), `temperature`, `top_p`, `stop`, `seed`,
 * `presence_penalty`, `frequency_penalty`, `response_format` and
 * `reasoning_effort`. Log probabilities and audio output, which the reply
 * would lack, are refused. `model` is echoed back (the configured provider
 * answers); other OpenAI parameters (`user`, `store`, `metadata`, ...) are
 * accepted and not used.
 */
export function readChatCompletionRequest(body: Record<string, unknown>): ChatCompletionRequest {
  const model = body.model;
  if (typeof model !== "string" || model.trim() === "") {
    throw invalid("model", `model must be a non-empty string, current value is ${show(model)}`);
  }
  const stream = optionalBoolean(body, "stream");
  const includeUsage = streamOptions(body.stream_options);
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw invalid("n", `n must be 1 (one choice per call), current value is ${show(body.n)}`);
  }
  refuseUnrelayed(body);
  for (const field of ["tools", "functions"]) {
    const value = body[field];
    if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0)) {
      throw invalid(field, `${field} are not supported by Troupe; send the request without them`);
    }
  }

  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalid(
      "messages",
      `messages must be a non-empty array of { role, content }, current value is ${
        Array.isArray(messages) ? "an empty array" : show(messages)
      }`,
    );
  }
  const turns = messages.map(readMessage);
  let start = turns.length;
  while (start > 0 && turns[start - 1]!.role === "user") start--;
  if (start === turns.length) {
    throw invalid(
      "messages",
      `the last message must be from the user, current last role is ${
        JSON.stringify(turns[turns.length - 1]!.role)
      }`,
    );
  }
  const said = turns.slice(start).map((turn) => turn.content).filter((text) => text.trim() !== "");
  if (said.length === 0) {
    throw invalid(`messages[${turns.length - 1}].content`, "the last user message is empty");
  }
  return {
    model,
    context: turns.slice(0, start),
    content: said.join(TURN_JOIN),
    stream,
    includeUsage,
    options: providerOptions(body),
  };
}

/** The OpenAI parameters Troupe passes on, checked; `null` counts as absent. */
function providerOptions(body: Record<string, unknown>): LlmOptions {
  const options: Record<string, unknown> = {};
  for (const field of ["max_completion_tokens", "max_tokens"]) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const maxTokens = checkLlmOption("maxTokens", field, value, ACTION, true);
    // The newer name wins when a client sends both.
    options.maxTokens ??= maxTokens;
  }
  for (const key of Object.keys(WIRE_NAMES) as WireOption[]) {
    if (key === "maxTokens") continue;
    const field = WIRE_NAMES[key];
    const value = body[field];
    if (value === undefined || value === null) continue;
    // An empty `stop` list asks for nothing, as `null` does.
    if (key === "stop" && Array.isArray(value) && value.length === 0) continue;
    options[key] = checkLlmOption(key, field, value, ACTION, true);
  }
  return options as LlmOptions;
}

/**
 * Parameters that ask for something Troupe's reply would silently lack:
 * refused, as tools are, rather than answered without it.
 */
function refuseUnrelayed(body: Record<string, unknown>): void {
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) {
    throw invalid(
      "logprobs",
      "logprobs are not supported by Troupe; send the request without them",
    );
  }
  if (body.top_logprobs !== undefined && body.top_logprobs !== null) {
    throw invalid(
      "top_logprobs",
      "top_logprobs are not supported by Troupe; send the request without them",
    );
  }
  if (body.audio !== undefined && body.audio !== null) {
    throw invalid("audio", "audio output is not supported by Troupe; ask for text only");
  }
  const modalities = body.modalities;
  if (
    modalities !== undefined && modalities !== null &&
    !(Array.isArray(modalities) && modalities.every((m) => m === "text"))
  ) {
    throw invalid("modalities", 'modalities must be ["text"]: Troupe answers with text only');
  }
}

function readMessage(value: unknown, i: number): ChatMessage {
  const field = `messages[${i}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(
      field,
      `${field} must be an object { role, content }, current value is ${show(value)}`,
    );
  }
  const message = value as Record<string, unknown>;
  const role = message.role;
  if (role === "tool" || role === "function") {
    throw invalid(
      `${field}.role`,
      `${field}.role ${JSON.stringify(role)} is not supported: Troupe runs no tools`,
    );
  }
  if (role !== "system" && role !== "developer" && role !== "user" && role !== "assistant") {
    throw invalid(
      `${field}.role`,
      `${field}.role must be one of system, developer, user, assistant, current value is ${
        show(role)
      }`,
    );
  }
  const toolCalls = message.tool_calls;
  if (
    toolCalls !== undefined && toolCalls !== null &&
    !(Array.isArray(toolCalls) && toolCalls.length === 0)
  ) {
    throw invalid(
      `${field}.tool_calls`,
      `${field}.tool_calls are not supported: Troupe runs no tools`,
    );
  }
  return {
    role: role === "developer" ? "system" : role,
    content: readContent(message.content, `${field}.content`, role === "assistant"),
  };
}

function readContent(value: unknown, field: string, mayBeNull: boolean): string {
  if (typeof value === "string") return value;
  if ((value === null || value === undefined) && mayBeNull) return "";
  if (!Array.isArray(value)) {
    throw invalid(
      field,
      `${field} must be a string or an array of text parts, current value is ${show(value)}`,
    );
  }
  let text = "";
  value.forEach((part: unknown, j) => {
    const partField = `${field}[${j}]`;
    const { type, text: partText } =
      (typeof part === "object" && part !== null ? part : {}) as Record<
        string,
        unknown
      >;
    if (type !== "text" || typeof partText !== "string") {
      throw invalid(
        `${partField}.type`,
        `${partField} must be { type: "text", text }: Troupe takes text only, current type is ${
          show(type)
        }`,
      );
    }
    text += partText;
  });
  return text;
}

function optionalBoolean(body: Record<string, unknown>, field: string): boolean {
  const value = body[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") {
    throw invalid(field, `${field} must be true or false, current value is ${show(value)}`);
  }
  return value;
}

function streamOptions(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalid(
      "stream_options",
      `stream_options must be an object such as { "include_usage": true }, current value is ${
        show(value)
      }`,
    );
  }
  const include = (value as Record<string, unknown>).include_usage;
  if (include === undefined || include === null) return false;
  if (typeof include !== "boolean") {
    throw invalid(
      "stream_options.include_usage",
      `stream_options.include_usage must be true or false, current value is ${show(include)}`,
    );
  }
  return include;
}

/** What every refusal of this body says it could not do. */
const ACTION = "complete the chat";

function invalid(field: string, problem: string): InvalidInputError {
  return new InvalidInputError(field, `Cannot ${ACTION}: ${problem}`);
}

function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return value === null ? "null" : typeof value;
}
