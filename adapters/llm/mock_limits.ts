// How both mocks (mockLlm and the mock upstream) cut a reply to a call's stop sequences and token cap.

/** What a mock's reply became under a call's limits. */
export interface LimitedReply {
  /** The reply, cut. */
  text: string;
  /** `length` when the token cap cut it, else `stop`. */
  finishReason: "stop" | "length";
}

/**
 * Cut a mock's reply as an upstream would: before the first of the `stop`
 * sequences, then to `maxTokens` tokens of four characters each (the mocks'
 * token count), in which case the finish reason is `length`.
 *
 * @example
 * ```ts
 * import { limitReply } from "./mock_limits.ts";
 *
 * console.assert(limitReply("one two three", { stop: [" three"] }).text === "one two");
 * const capped = limitReply("one two three", { maxTokens: 2 });
 * console.assert(capped.text === "one two " && capped.finishReason === "length");
 * ```
 */
export function limitReply(
  text: string,
  limits: { maxTokens?: number | undefined; stop?: string[] | undefined },
): LimitedReply {
  let end = text.length;
  for (const sequence of limits.stop ?? []) {
    const at = text.indexOf(sequence);
    if (at !== -1 && at < end) end = at;
  }
  const { maxTokens } = limits;
  if (maxTokens !== undefined && Math.ceil(end / 4) > maxTokens) {
    return { text: text.slice(0, maxTokens * 4), finishReason: "length" };
  }
  return { text: text.slice(0, end), finishReason: "stop" };
}
