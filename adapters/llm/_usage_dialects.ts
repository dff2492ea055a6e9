// Reads token usage from a response body or stream chunk, whichever vendor's field names it uses.

import type { Usage } from "../../actors/ports.ts";

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A count the upstream gave, or `undefined` when the field is absent, null or not a count. */
function count(fields: Fields | undefined, name: string): number | undefined {
  const value = fields?.[name];
  // Beyond a safe integer a count is garbage, and an event holding it could not be stored.
  return typeof value === "number" && value >= 0 && value <= Number.MAX_SAFE_INTEGER
    ? Math.round(value)
    : undefined;
}

function reported(
  input: number,
  output: number,
  cached: number,
  reasoning: number,
  total: number | undefined,
): Usage {
  return {
    inputTokens: input,
    outputTokens: output,
    cachedTokens: cached,
    reasoningTokens: reasoning,
    totalTokens: total ?? input + output,
    source: "reported",
  };
}

/**
 * OpenAI `usage`: `prompt_tokens` includes the cached ones
 * (`prompt_tokens_details.cached_tokens`), `completion_tokens` includes the
 * reasoning ones (`completion_tokens_details.reasoning_tokens`).
 */
function openAi(usage: Fields): Usage | undefined {
  const input = count(usage, "prompt_tokens");
  const output = count(usage, "completion_tokens");
  if (input === undefined && output === undefined) return undefined;
  const prompt = isObject(usage.prompt_tokens_details) ? usage.prompt_tokens_details : undefined;
  const completion = isObject(usage.completion_tokens_details)
    ? usage.completion_tokens_details
    : undefined;
  return reported(
    input ?? 0,
    output ?? 0,
    count(prompt, "cached_tokens") ?? 0,
    count(completion, "reasoning_tokens") ?? 0,
    count(usage, "total_tokens"),
  );
}

/**
 * Anthropic `usage`: `input_tokens` excludes the prompt tokens read from
 * (`cache_read_input_tokens`) or written to (`cache_creation_input_tokens`)
 * the cache, so Troupe's input is their sum; `output_tokens` includes
 * thinking, which Anthropic does not count apart.
 */
function anthropic(usage: Fields): Usage | undefined {
  const input = count(usage, "input_tokens");
  const output = count(usage, "output_tokens");
  if (input === undefined && output === undefined) return undefined;
  const cacheRead = count(usage, "cache_read_input_tokens") ?? 0;
  const cacheWrite = count(usage, "cache_creation_input_tokens") ?? 0;
  return reported((input ?? 0) + cacheRead + cacheWrite, output ?? 0, cacheRead, 0, undefined);
}

/**
 * Gemini `usageMetadata`: `promptTokenCount` includes `cachedContentTokenCount`,
 * `candidatesTokenCount` excludes `thoughtsTokenCount`, and tool-use prompts
 * (`toolUsePromptTokenCount`) are input too. Troupe's output counts thoughts,
 * as OpenAI's does, so the total stays input plus output.
 */
function gemini(metadata: Fields): Usage | undefined {
  const prompt = count(metadata, "promptTokenCount");
  const candidates = count(metadata, "candidatesTokenCount");
  const total = count(metadata, "totalTokenCount");
  if (prompt === undefined && candidates === undefined && total === undefined) return undefined;
  const thoughts = count(metadata, "thoughtsTokenCount") ?? 0;
  const input = (prompt ?? 0) + (count(metadata, "toolUsePromptTokenCount") ?? 0);
  const output = candidates === undefined && total !== undefined
    ? Math.max(0, total - input)
    : (candidates ?? 0) + thoughts;
  return reported(
    input,
    output,
    count(metadata, "cachedContentTokenCount") ?? 0,
    thoughts,
    total,
  );
}

/**
 * The token usage a chat completion body or stream chunk reports, in
 * Troupe's terms, or `undefined` when it reports none (no usage object, a
 * `null` one as in every OpenAI chunk but the last, or one without counts).
 * OpenAI, Anthropic and Gemini field names are all recognised; the dialect is
 * told by the names present.
 *
 * @param body A parsed JSON body or chunk.
 * @returns The usage, marked `reported`, or `undefined`.
 *
 * @example
 * ```ts
 * import { readUsage } from "./_usage_dialects.ts";
 *
 * const usage = readUsage({ usage: { input_tokens: 7, output_tokens: 3, cache_read_input_tokens: 5 } });
 * console.assert(usage?.inputTokens === 12 && usage.cachedTokens === 5 && usage.totalTokens === 15);
 * console.assert(readUsage({ usage: null }) === undefined);
 * ```
 */
export function readUsage(body: unknown): Usage | undefined {
  if (!isObject(body)) return undefined;
  const { usage, usageMetadata } = body;
  if (isObject(usage)) {
    if ("prompt_tokens" in usage || "completion_tokens" in usage) return openAi(usage);
    if ("input_tokens" in usage || "output_tokens" in usage) return anthropic(usage);
  }
  if (isObject(usageMetadata)) return gemini(usageMetadata);
  return undefined;
}
