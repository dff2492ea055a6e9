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

/**
 * The usage of two attempts of one call together: counts summed, `reported`
 * only when both were.
 *
 * @example
 * ```ts
 * import { addUsage, usageOf } from "./usage.ts";
 *
 * const both = addUsage(usageOf(10, 2, "reported"), usageOf(10, 5, "estimated"));
 * console.assert(both.totalTokens === 27 && both.source === "estimated");
 * ```
 */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    source: a.source === "reported" && b.source === "reported" ? "reported" : "estimated",
  };
}
