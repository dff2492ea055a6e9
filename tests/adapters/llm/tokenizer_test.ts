// Tests the token estimates: the o200k_base counts, the chat framing, special-token text.

import assert from "node:assert/strict";
import {
  estimatePromptTokens,
  estimateUsage,
  loadTokenizer,
} from "../../../adapters/llm/tokenizer.ts";

Deno.test("loadTokenizer counts o200k_base tokens and loads once", async () => {
  const [a, b] = await Promise.all([loadTokenizer(), loadTokenizer()]);
  assert.equal(a, b);
  assert.equal(a.encoding, "o200k_base");
  assert.equal(a.count(""), 0);
  assert.equal(a.count("hello world"), 2);
  // A real BPE, not a length rule: 39 characters of a repeated word are 10 tokens, not ceil(39 / 4).
  assert.equal(a.count("the ".repeat(10).trim()), 10);
  assert.ok(a.count("Grüße aus Köln 👋") > 4);
});

Deno.test("a tokenizer counts special-token text as plain text instead of throwing", async () => {
  const tokenizer = await loadTokenizer();
  assert.ok(tokenizer.count("before <|endoftext|> after") > 3);
});

Deno.test("estimatePromptTokens adds each message's framing and the reply's priming", async () => {
  const tokenizer = await loadTokenizer();
  const messages = [
    { role: "system" as const, content: "be brief" },
    { role: "user" as const, content: "hello world" },
  ];
  const content = tokenizer.count("be brief") + tokenizer.count("hello world");
  assert.equal(estimatePromptTokens(tokenizer, messages), content + 2 * 4 + 3);
  assert.equal(estimatePromptTokens(tokenizer, []), 3);
});

Deno.test("estimateUsage counts the prompt and the text received, marked estimated", async () => {
  const tokenizer = await loadTokenizer();
  const usage = estimateUsage(tokenizer, [{ role: "user", content: "hi" }], "hello world");
  assert.deepEqual(usage, {
    inputTokens: tokenizer.count("hi") + 7,
    outputTokens: 2,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: tokenizer.count("hi") + 9,
    source: "estimated",
  });
});
