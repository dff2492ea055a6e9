// Tests reading usage from vendor fixtures: OpenAI, Anthropic-style and Gemini field names.

import assert from "node:assert/strict";
import { readUsage } from "../../../adapters/llm/_usage_dialects.ts";
import { fixtureJson } from "./_fixtures.ts";

Deno.test("readUsage reads OpenAI usage with cached prompt tokens", async () => {
  const usage = readUsage(await fixtureJson("openai_chat_completion.json"));
  assert.deepEqual(usage, {
    inputTokens: 1117,
    outputTokens: 46,
    cachedTokens: 1024,
    reasoningTokens: 0,
    totalTokens: 1163,
    source: "reported",
  });
});

Deno.test("readUsage reads OpenAI reasoning tokens, which completion tokens include", async () => {
  const usage = readUsage(await fixtureJson("openai_reasoning_completion.json"));
  assert.deepEqual(usage, {
    inputTokens: 27,
    outputTokens: 230,
    cachedTokens: 0,
    reasoningTokens: 192,
    totalTokens: 257,
    source: "reported",
  });
});

Deno.test("readUsage adds Anthropic cache reads and writes to the input tokens", async () => {
  const usage = readUsage(await fixtureJson("anthropic_usage_completion.json"));
  // input_tokens 21 excludes cache_read_input_tokens 3000 and cache_creation_input_tokens 1200.
  assert.deepEqual(usage, {
    inputTokens: 4221,
    outputTokens: 393,
    cachedTokens: 3000,
    reasoningTokens: 0,
    totalTokens: 4614,
    source: "reported",
  });
});

Deno.test("readUsage reads Gemini usageMetadata, counting thoughts as output", async () => {
  const usage = readUsage(await fixtureJson("gemini_usage_completion.json"));
  // candidatesTokenCount 61 excludes thoughtsTokenCount 473; totalTokenCount is 2152 + 61 + 473.
  assert.deepEqual(usage, {
    inputTokens: 2152,
    outputTokens: 534,
    cachedTokens: 2048,
    reasoningTokens: 473,
    totalTokens: 2686,
    source: "reported",
  });
});

Deno.test("readUsage finds nothing in a chunk whose usage is null or absent", () => {
  assert.equal(readUsage({ choices: [], usage: null }), undefined);
  assert.equal(readUsage({ choices: [] }), undefined);
  assert.equal(readUsage({ usage: {} }), undefined);
  assert.equal(readUsage({ usageMetadata: {} }), undefined);
  assert.equal(readUsage("not an object"), undefined);
});

Deno.test("readUsage fills what a partial usage object leaves out", () => {
  assert.deepEqual(readUsage({ usage: { prompt_tokens: 5 } }), {
    inputTokens: 5,
    outputTokens: 0,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: 5,
    source: "reported",
  });
  const gemini = readUsage({ usageMetadata: { promptTokenCount: 8, totalTokenCount: 15 } });
  assert.equal(
    gemini?.outputTokens,
    7,
    "output is the total less the prompt when candidates are missing",
  );
  const negative = readUsage({ usage: { prompt_tokens: -3, completion_tokens: 2 } });
  assert.equal(negative?.inputTokens, 0, "a count that is not a count is left out");
});
