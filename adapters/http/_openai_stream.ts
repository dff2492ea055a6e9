// Turns the runtime's stream of a reply into OpenAI's stream of chat.completion.chunk events.

import type { StreamEvent } from "../../actors/reply.ts";
import { describeError } from "./error_response.ts";
import {
  chatCompletionChunk,
  type CompletionMeta,
  openAiError,
  openAiFinishReason,
  openAiUsage,
  replyError,
} from "./_openai_wire.ts";
import type { SseEvent } from "./sse.ts";

/** Options of {@linkcode openAiChunks}. */
export interface OpenAiChunksOptions {
  /** End with a usage chunk (`stream_options.include_usage`); every chunk then has `usage`. */
  includeUsage: boolean;
  /** Receives an error Troupe does not expect, which the client sees only as `internal_error`. */
  onUnexpected?: ((error: unknown) => void) | undefined;
}

/**
 * The runtime's stream (its first event already read) as OpenAI chunks: a
 * first chunk with the role, one per delta, one with the finish reason, the
 * usage chunk when asked for, then `[DONE]`. A reply that did not complete
 * (superseded, rejected, cancelled, failed) or a failure ends the stream with
 * `data: {"error": {...}}` and no `[DONE]`, which OpenAI's clients raise as
 * an error carrying the same `code` a non-streaming call gets.
 */
export function openAiChunks(
  meta: CompletionMeta,
  first: IteratorResult<StreamEvent>,
  rest: AsyncIterator<StreamEvent>,
  options: OpenAiChunksOptions,
): AsyncIterator<SseEvent> {
  const { includeUsage, onUnexpected } = options;
  const usageField = includeUsage ? null : undefined;
  const frames: SseEvent[] = [];
  let pending: IteratorResult<StreamEvent> | null = first;
  let finished = false;
  let started = false;
  let streamed = 0;

  const data = (value: unknown): SseEvent => ({ data: JSON.stringify(value) });
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    data(chatCompletionChunk(meta, { delta, finishReason }, usageField));

  function start(): void {
    if (started) return;
    started = true;
    frames.push(chunk({ role: "assistant", content: "", refusal: null }));
  }

  function translate(event: StreamEvent): void {
    if (event.type === "delta") {
      start();
      streamed += event.text.length;
      frames.push(chunk({ content: event.text }));
      return;
    }
    finished = true;
    const { reply } = event;
    if (reply.status !== "completed") {
      frames.push(data(replyError(reply).body));
      return;
    }
    start();
    // A reply settled without deltas (a provider that does not stream) still sends its text.
    if (reply.text.length > streamed) frames.push(chunk({ content: reply.text.slice(streamed) }));
    frames.push(chunk({}, openAiFinishReason(reply.finishReason)));
    if (includeUsage) frames.push(data(chatCompletionChunk(meta, null, openAiUsage(reply.usage))));
    frames.push({ data: "[DONE]" });
  }

  return {
    async next() {
      while (frames.length === 0) {
        if (finished) return { done: true, value: undefined };
        try {
          const result = pending ?? await rest.next();
          pending = null;
          // Ended by `return()` (the client went away) while this read waited: a plain end.
          if (finished) return { done: true, value: undefined };
          if (result.done) {
            // The runtime always ends with a reply; an end without one is a failure.
            throw new Error("The reply stream ended without a reply");
          }
          translate(result.value);
        } catch (error) {
          // Headers are sent; the failure travels as the stream's last event.
          finished = true;
          frames.push(data(openAiError(describeError(error, onUnexpected)).body));
        }
      }
      return { done: false, value: frames.shift()! };
    },
    async return() {
      finished = true;
      frames.length = 0;
      await rest.return?.();
      return { done: true, value: undefined };
    },
  };
}
