// OpenAI's chat completions wire format: completions, stream chunks, usage and errors, field for field.

import type { FinishReason, Usage } from "../../actors/ports.ts";
import type { Reply } from "../../actors/reply.ts";
import { type ErrorBody, type ErrorDescription, retryAfterOfFailure } from "./error_response.ts";

/** What every object of one call shares. */
export interface CompletionMeta {
  /** `chatcmpl-...`, the same on every chunk of a stream. */
  id: string;
  /** When the call arrived, in seconds since the epoch. */
  created: number;
  /** The model named in the body or that answered. */
  model: string;
}

/** OpenAI's `usage` object. */
export interface OpenAiUsage {
  /** Prompt tokens. */
  prompt_tokens: number;
  /** Generated tokens. */
  completion_tokens: number;
  /** Both. */
  total_tokens: number;
  /** Prompt tokens served from a cache. */
  prompt_tokens_details: { cached_tokens: number };
  /** Generated tokens spent on reasoning. */
  completion_tokens_details: { reasoning_tokens: number };
}

/** An error body as OpenAI's clients read it, keeping Troupe's `code`, `message` and `field`. */
export interface OpenAiErrorBody {
  /** What went wrong. */
  error: ErrorBody["error"] & {
    /** OpenAI's error class, e.g. `"invalid_request_error"`. */
    type: string;
    /** OpenAI's name for `field`, or `null`. */
    param: string | null;
    /** The run the message was part of (for `rejected`: the run in flight that refused it). */
    run?: string;
    /** The run that now answers the message (`superseded`). */
    superseded_by?: string;
  };
}

/** The `usage` object of a reply. */
export function openAiUsage(usage: Usage | undefined): OpenAiUsage {
  return {
    prompt_tokens: usage?.inputTokens ?? 0,
    completion_tokens: usage?.outputTokens ?? 0,
    total_tokens: usage?.totalTokens ?? 0,
    prompt_tokens_details: { cached_tokens: usage?.cachedTokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: usage?.reasoningTokens ?? 0 },
  };
}

/** OpenAI's finish reasons; a provider's `error` never reaches a completed reply, but reads as `stop`. */
export function openAiFinishReason(reason: FinishReason | undefined): string {
  return reason === undefined || reason === "error" ? "stop" : reason;
}

/** A whole `chat.completion` for a completed reply. */
export function chatCompletion(meta: CompletionMeta, reply: Reply): Record<string, unknown> {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: reply.model ?? meta.model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: reply.text, refusal: null },
      logprobs: null,
      finish_reason: openAiFinishReason(reply.finishReason),
    }],
    usage: openAiUsage(reply.usage),
  };
}

/** One `chat.completion.chunk`: a delta, a finish reason, or (with `choices: []`) the usage. */
export function chatCompletionChunk(
  meta: CompletionMeta,
  choice: { delta: Record<string, unknown>; finishReason: string | null } | null,
  usage: OpenAiUsage | null | undefined,
): Record<string, unknown> {
  const chunk: Record<string, unknown> = {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: choice === null
      ? []
      : [{ index: 0, delta: choice.delta, logprobs: null, finish_reason: choice.finishReason }],
  };
  // With include_usage every chunk has `usage`, null until the last one.
  if (usage !== undefined) chunk.usage = usage;
  return chunk;
}

/** Add OpenAI's `type` and `param` to an error description, keeping its code, message and field. */
export function openAiError(description: ErrorDescription): {
  status: number;
  headers: Record<string, string>;
  body: OpenAiErrorBody;
} {
  const { status, headers, body } = description;
  return {
    status,
    headers,
    body: { error: { ...body.error, type: errorType(status), param: body.error.field ?? null } },
  };
}

// Retrying a refused or replaced message would send it again: a new run
// that supersedes the one answering it. OpenAI's clients obey this header.
const NO_RETRY = { "x-should-retry": "false" };

/** How to answer a reply that did not complete (superseded, rejected, cancelled, failed). */
export function replyError(reply: Reply): ErrorDescription & { body: OpenAiErrorBody } {
  const session = JSON.stringify(reply.session);
  switch (reply.status) {
    case "superseded":
      return conflict(
        "superseded",
        `The message was superseded by a newer one on session ${session}: run ${reply.supersededBy} answers both`,
        { run: reply.runId, superseded_by: reply.supersededBy ?? "" },
      );
    case "rejected":
      return conflict(
        "rejected",
        `The message was refused: session ${session} is busy with run ${reply.runId} and its policy refuses messages meanwhile`,
        { run: reply.runId },
      );
    case "cancelled":
      return conflict(
        "cancelled",
        `The message was cancelled on session ${session} before run ${reply.runId} answered it`,
        { run: reply.runId },
      );
    default: {
      const error = reply.error ??
        { code: "internal_error", message: "The run failed", retryable: false };
      const retryAfter = retryAfterOfFailure(error);
      // A provider's failure is a bad gateway; a failure of Troupe's own is a 500.
      const status = retryAfter !== undefined ? 503 : error.code === "internal_error" ? 500 : 502;
      return {
        status,
        headers: {
          "x-should-retry": String(error.retryable),
          ...(retryAfter !== undefined ? { "retry-after": retryAfter } : {}),
        },
        body: {
          error: {
            code: error.code,
            message: error.message,
            type: errorType(status),
            param: null,
            run: reply.runId,
          },
        },
      };
    }
  }
}

function conflict(
  code: string,
  message: string,
  runs: { run: string; superseded_by?: string },
): ErrorDescription & { body: OpenAiErrorBody } {
  return {
    status: 409,
    headers: { ...NO_RETRY },
    body: { error: { code, message, type: "conflict_error", param: null, ...runs } },
  };
}

function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}
