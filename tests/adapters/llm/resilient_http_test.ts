// Tests the resilience wrapper around the real provider over real HTTP: Retry-After, 400, deadline, fallbacks, streaming.

import assert from "node:assert/strict";
import { ProviderError } from "../../../actors/errors.ts";
import type { LlmAttempt, LlmRequest, Usage } from "../../../actors/ports.ts";
import { openAiCompatible } from "../../../adapters/llm/openai_compatible.ts";
import { resilient, type ResilientOptions } from "../../../adapters/llm/resilient.ts";
import { startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { manualClock } from "../../_helpers/manual_clock.ts";
import { serveFixture } from "./_fixtures.ts";

const REQUEST: LlmRequest = {
  org: "o",
  session: "s",
  run: "r",
  messages: [{ role: "user", content: "one two three four" }],
};

function provider(url: string, headers: Record<string, string>, name = "openai-compatible") {
  return openAiCompatible({ baseUrl: url, model: "primary-model", headers, name });
}

function start(
  llm: Parameters<typeof resilient>[0],
  options: ResilientOptions,
  { streaming = true } = {},
) {
  const attempts: LlmAttempt[] = [];
  const usages: Usage[] = [];
  const deltas: string[] = [];
  const result = resilient(llm, options).complete(REQUEST, {
    signal: new AbortController().signal,
    onAttempt: (attempt) => attempts.push(attempt),
    onUsage: (usage) => usages.push(usage),
    ...(streaming ? { onDelta: (text: string) => deltas.push(text) } : {}),
  });
  result.catch(() => {});
  return { result, attempts, usages, deltas };
}

function failTimes(n: number, scenario: string, key = crypto.randomUUID()) {
  return {
    "x-mock-scenario": scenario,
    "x-mock-fail-times": String(n),
    "x-mock-request-key": key,
  };
}

Deno.test("a 429 is retried no sooner than its Retry-After, then answers", async () => {
  await using upstream = startMockUpstream();
  const clock = manualClock();
  const headers = { ...failTimes(2, "429"), "x-mock-retry-after": "3" };
  const { result, attempts, usages } = start(provider(upstream.url, headers), {
    clock,
    random: () => 0,
  });
  for (const n of [1, 2]) {
    await eventually(
      `the wait after attempt ${n}`,
      () => attempts.length === n && clock.pending === 2,
    );
    assert.equal(attempts[n - 1]!.retryInMs, 3000, "the hint is the floor of a zero draw");
    await clock.advance(2999);
    assert.equal(upstream.stats().requests, n, "no retry before Retry-After");
    await clock.advance(1);
  }
  const completion = await result;
  assert.equal(completion.text, "one two three four");
  assert.deepEqual(upstream.stats().byScenario, { "429": 2, ok: 1 });
  assert.deepEqual(attempts.map((a) => [a.attempt, a.status, a.outcome]), [
    [1, 429, "failed"],
    [2, 429, "failed"],
    [3, 200, "completed"],
  ]);
  assert.equal(usages.length, 1, "the refused attempts cost nothing");
});

Deno.test("a 400 is not retried", async () => {
  await using upstream = startMockUpstream();
  const { result, attempts } = start(provider(upstream.url, { "x-mock-scenario": "400" }), {
    minDelayMs: 0,
  });
  await assert.rejects(result, (error: ProviderError) => error.status === 400 && !error.retryable);
  assert.equal(upstream.stats().requests, 1);
  assert.equal(attempts.length, 1);
});

Deno.test("the deadline aborts a hanging upstream request", async () => {
  await using upstream = startMockUpstream();
  const clock = manualClock();
  const { result, attempts } = start(provider(upstream.url, { "x-mock-scenario": "hang" }), {
    clock,
    deadlineMs: 5000,
  });
  await eventually("the request to arrive", () => upstream.stats().requests === 1);
  await clock.advance(5000);
  await assert.rejects(result, (error: ProviderError) => /deadline of 5000 ms/.test(error.message));
  await eventually("the upstream to see the abort", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
  assert.equal(attempts[0]!.code, "deadline_exceeded");
});

Deno.test("a failing model falls back to another model of the same upstream", async () => {
  await using upstream = startMockUpstream();
  const { result, attempts } = start(provider(upstream.url, failTimes(1, "500")), {
    retries: 0,
    fallback: [{ model: "fallback-model" }],
  });
  const completion = await result;
  assert.equal(completion.model, "fallback-model");
  assert.deepEqual(attempts.map((a) => [a.model, a.status]), [
    ["primary-model", 500],
    ["fallback-model", 200],
  ]);
});

Deno.test("a failing provider falls back to another provider", async () => {
  await using broken = startMockUpstream();
  await using healthy = startMockUpstream({ model: "healthy-model" });
  const primary = provider(broken.url, { "x-mock-scenario": "500" }, "broken");
  const secondary = openAiCompatible({
    baseUrl: healthy.url,
    model: "healthy-model",
    name: "healthy",
  });
  const { result, attempts } = start(primary, { retries: 1, minDelayMs: 0, fallback: [secondary] });
  assert.equal((await result).text, "one two three four");
  assert.equal(broken.stats().requests, 2);
  assert.equal(healthy.stats().requests, 1);
  assert.deepEqual(attempts.map((a) => a.provider), ["broken", "broken", "healthy"]);
});

Deno.test("a stream cut after text reached the caller is not retried; without a caller stream it is", async () => {
  await using upstream = startMockUpstream();
  const streamed = start(provider(upstream.url, failTimes(1, "drop")), { minDelayMs: 0 });
  await assert.rejects(streamed.result, (error: ProviderError) => error.retryable);
  assert.deepEqual(streamed.deltas, ["one ", "two "], "the caller keeps what it had, once");
  assert.equal(upstream.stats().requests, 1);
  assert.equal(streamed.attempts[0]!.retryInMs, null);
  upstream.resetStats();
  const whole = start(provider(upstream.url, failTimes(1, "drop")), { minDelayMs: 0 }, {
    streaming: false,
  });
  assert.equal((await whole.result).text, "one two three four");
  assert.equal(upstream.stats().requests, 2);
  assert.equal(whole.usages.length, 2, "the cut attempt cost tokens too");
});

Deno.test("each attempt's id goes upstream as X-Request-Id", async () => {
  await using server = serveFixture({
    body: '{"error":{"message":"down"}}',
    status: 503,
    headers: { "content-type": "application/json" },
  });
  const { result, attempts } = start(provider(server.url, {}), { retries: 2, minDelayMs: 0 });
  await assert.rejects(result, (error: ProviderError) => error.status === 503);
  const sent = server.requests.map((r) => r.headers.get("x-request-id"));
  assert.equal(sent.length, 3);
  assert.deepEqual(sent, attempts.map((a) => a.request));
  assert.equal(new Set(sent).size, 3);
});
