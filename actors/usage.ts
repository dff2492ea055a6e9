// Token accounting helpers shared by providers and the runtime.

import type { Usage } from "./ports.ts";

/**
 * A rough token count for text that no upstream counted: one token per four
 * characters, rounded up. A real tokenizer replaces this where it matters.
 *
 * @example
 * ```ts
 * import { estimateTokens } from "./usage.ts";
 *
 * console.assert(estimateTokens("abcdefgh") === 2);
 * ```
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Build a usage record from input and output counts.
 *
 * @example
 * ```ts
 * import { usageOf } from "./usage.ts";
 *
 * console.assert(usageOf(3, 4, "estimated").totalTokens === 7);
 * ```
 */
export function usageOf(
  inputTokens: number,
  outputTokens: number,
  source: Usage["source"],
): Usage {
  return {
    inputTokens,
    outputTokens,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: inputTokens + outputTokens,
    source,
  };
}
