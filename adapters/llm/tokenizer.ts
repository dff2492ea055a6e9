// Token counts for text no upstream counted, with a real BPE tokenizer loaded on first use.

import type { ChatMessage, Usage } from "../../actors/ports.ts";
import { usageOf } from "../../actors/usage.ts";

/** Counts tokens; {@linkcode loadTokenizer} makes one. */
export interface Tokenizer {
  /** The encoding's name, e.g. `"o200k_base"`. */
  readonly encoding: string;
  /** How many tokens `text` encodes to. Special-token text such as `<|endoftext|>` counts as plain text. */
  count(text: string): number;
}

/** Tokens every chat message costs beyond its content (`<|start|>`, the role, `<|message|>`, `<|end|>`). */
const TOKENS_PER_MESSAGE = 4;
/** Tokens that prime the reply (`<|start|>assistant<|message|>`). */
const TOKENS_PER_REPLY = 3;

let loading: Promise<Tokenizer> | undefined;

/**
 * Load the tokenizer once per thread (later calls share the first load):
 * OpenAI's `o200k_base` encoding (GPT-4o and later) from
 * [`gpt-tokenizer`](https://www.npmjs.com/package/gpt-tokenizer), pure
 * JavaScript with its ranks bundled, so it works offline and inside a Web
 * Worker. Other vendors' tokenizers differ, so for them the count is an
 * estimate, and usage built from it says so.
 *
 * Measured here: loading takes ≈ 0.2 s and ≈ 35 MB of heap (hence the lazy
 * load: a worker that never estimates never pays), counting runs at ≈ 9 MB
 * of text a second. `js-tiktoken` with the same ranks took ≈ 1.3 s, ≈ 110 MB
 * and counted at half the speed.
 *
 * @returns The tokenizer.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 *
 * const tokenizer = await loadTokenizer();
 * console.assert(tokenizer.count("hello world") === 2);
 * ```
 */
export function loadTokenizer(): Promise<Tokenizer> {
  loading ??= import("gpt-tokenizer/encoding/o200k_base").then((encoding) => {
    const options = { disallowedSpecial: new Set<string>() };
    return {
      encoding: "o200k_base",
      count: (text: string) => text === "" ? 0 : encoding.countTokens(text, options),
    };
  }, (error) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

/**
 * Estimate the prompt tokens of a conversation as a chat model sees it: each
 * message's content plus the few tokens of its framing, plus the reply's priming.
 *
 * @param tokenizer A loaded tokenizer.
 * @param messages The conversation.
 * @returns The estimated prompt tokens.
 *
 * @example
 * ```ts
 * import { estimatePromptTokens, loadTokenizer } from "./tokenizer.ts";
 *
 * const tokens = estimatePromptTokens(await loadTokenizer(), [{ role: "user", content: "hello world" }]);
 * console.assert(tokens === 2 + 4 + 3);
 * ```
 */
export function estimatePromptTokens(tokenizer: Tokenizer, messages: ChatMessage[]): number {
  let total = TOKENS_PER_REPLY;
  for (const message of messages) total += TOKENS_PER_MESSAGE + tokenizer.count(message.content);
  return total;
}

/**
 * Estimate the usage of a call the upstream did not count (it reported
 * nothing, or the stream was cancelled or cut): the prompt as
 * {@linkcode estimatePromptTokens} counts it, and the text generated so far.
 *
 * @param tokenizer A loaded tokenizer.
 * @param messages The conversation sent.
 * @param output The text received.
 * @returns The usage, marked `estimated`.
 *
 * @example
 * ```ts
 * import { estimateUsage, loadTokenizer } from "./tokenizer.ts";
 *
 * const usage = estimateUsage(await loadTokenizer(), [{ role: "user", content: "hi" }], "hello world");
 * console.assert(usage.outputTokens === 2 && usage.source === "estimated");
 * ```
 */
export function estimateUsage(
  tokenizer: Tokenizer,
  messages: ChatMessage[],
  output: string,
): Usage {
  return usageOf(estimatePromptTokens(tokenizer, messages), tokenizer.count(output), "estimated");
}
