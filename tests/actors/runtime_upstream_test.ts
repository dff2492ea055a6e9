// The runtime on the provider the configuration builds: a worker pool calling the mock upstream over real HTTP.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import { DEFAULT_CONFIG } from "../../actors/config.ts";
import type { LlmAttempted, TroupeEvent, UsageRecorded } from "../../actors/events.ts";
import { createRuntime } from "../../actors/runtime.ts";
import { llmFromSettings, type LlmSettings } from "../../adapters/llm/from_config.ts";
import type { MockLlm } from "../../adapters/llm/mock_llm.ts";
import { startMockUpstream } from "../../scripts/mock_upstream.ts";
import { eventually } from "../_helpers/eventually.ts";
import { validateEvent } from "../../actors/validate_event.ts";
import { fixture, serveFixture } from "../adapters/llm/_fixtures.ts";

function settings(baseUrl: string, extra: Partial<LlmSettings> = {}): LlmSettings {
  return {
    ...DEFAULT_CONFIG,
    llmBaseUrl: baseUrl,
    llmModel: "mock-model",
    llmApiKey: "sk-test-never-shown",
    llmWorkers: 1,
    ...extra,
  };
}

Deno.test("a configured upstream answers through the pool, and every attempt is an event", async () => {
  await using upstream = startMockUpstream();
  const { provider, pool } = llmFromSettings(settings(upstream.url));
  assert(pool !== null);
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const reply = await runtime.send({ session: "s1", content: "hello upstream" });
  assertEquals(reply.status, "completed");
  assertEquals(reply.text, "hello upstream");
  await eventually("the usage event", () => events.some((e) => e.type === "usage.recorded"));
  const attempts = events.filter((e): e is LlmAttempted => e.type === "llm.attempted");
  assertEquals(attempts.length, 1);
  assertEquals(attempts[0]!.outcome, "completed");
  assertEquals(attempts[0]!.status, 200);
  assertEquals(attempts[0]!.run, reply.runId);
  const usage = events.find((e): e is UsageRecorded => e.type === "usage.recorded")!;
  assertEquals(usage.source, "reported");
  assertEquals(usage.status, "completed");
  assertEquals(upstream.stats().requests, 1);
  assert(!JSON.stringify(events).includes("sk-test-never-shown"));
});

Deno.test("a superseded run's upstream stream is closed, and its usage is recorded as estimated", async () => {
  // Slow tokens: the first run is mid-stream when the second message supersedes it.
  await using upstream = startMockUpstream({ tokensPerSecond: 5 });
  const { provider } = llmFromSettings(settings(upstream.url));
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const first = runtime.stream({ session: "s1", content: "one two three four five six seven" });
  const delta = await first.next();
  assertEquals(delta.value?.type, "delta");
  const second = runtime.send({ session: "s1", content: "eight" });
  const rest: string[] = [];
  for await (const event of first) rest.push(event.type);
  assertEquals(rest.at(-1), "reply");
  assertEquals((await second).status, "completed");
  await eventually(
    "the upstream to see the abort",
    () => upstream.stats().aborts === 1 && upstream.stats().openConnections === 0,
  );
  await eventually(
    "two usage events",
    () => events.filter((e) => e.type === "usage.recorded").length === 2,
  );
  const usages = events.filter((e): e is UsageRecorded => e.type === "usage.recorded");
  const cancelled = usages.find((u) => u.status === "cancelled")!;
  assertEquals(cancelled.source, "estimated");
  assert(cancelled.outputTokens >= 1, "the streamed text counts");
  const attempts = events.filter((e): e is LlmAttempted => e.type === "llm.attempted");
  assertEquals(attempts.map((a) => a.outcome).sort(), ["cancelled", "completed"]);
});

Deno.test("a call the upstream refused on every attempt records no tokens: error statuses cost nothing", async () => {
  await using upstream = startMockUpstream({ errorRate: 1 });
  const { provider } = llmFromSettings(settings(upstream.url, { llmRetries: 2 }));
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const reply = await runtime.send({ session: "s1", content: "a prompt of several tokens" });
  assertEquals(reply.status, "failed");
  await eventually("the usage event", () => events.some((e) => e.type === "usage.recorded"));
  const attempts = events.filter((e): e is LlmAttempted => e.type === "llm.attempted");
  assertEquals(attempts.map((a) => [a.outcome, a.status]), [
    ["failed", 500],
    ["failed", 500],
    ["failed", 500],
  ]);
  const usages = events.filter((e): e is UsageRecorded => e.type === "usage.recorded");
  assertEquals(usages.length, 1, "the failed call is still on record");
  assertEquals(
    [usages[0]!.status, usages[0]!.inputTokens, usages[0]!.outputTokens],
    ["failed", 0, 0],
  );
});

Deno.test("a run refused by a full pool records no usage: nothing reached the upstream", async () => {
  await using upstream = startMockUpstream({ hangRate: 1 });
  const { provider } = llmFromSettings(
    settings(upstream.url, { llmWorkerConcurrency: 1, llmQueueBound: 0 }),
  );
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const hung = runtime.send({ session: "holder", content: "never answered" });
  await eventually("the holder's call upstream", () => upstream.stats().requests === 1);
  const refused = await runtime.send({ session: "refused", content: "no room" });
  assertEquals([refused.status, refused.error?.code], ["failed", "pool_saturated"]);
  await runtime.cancel({ session: "holder" });
  assertEquals((await hung).status, "cancelled");
  await eventually(
    "the holder's usage",
    () => events.some((e) => e.type === "usage.recorded" && e.session === "holder"),
  );
  assertEquals(
    events.filter((e) => e.type === "usage.recorded" && e.session === "refused"),
    [],
  );
  assertEquals(upstream.stats().requests, 1);
});

Deno.test("a 500 is retried by the resilient wrapper and the run completes", async () => {
  await using upstream = startMockUpstream({ errorRate: 0.5, seed: 3 });
  const { provider } = llmFromSettings(settings(upstream.url, { llmRetries: 5 }));
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const replies = await Promise.all(
    Array.from({ length: 6 }, (_, i) => runtime.send({ session: `s${i}`, content: `m${i}` })),
  );
  assert(replies.every((r) => r.status === "completed"), JSON.stringify(replies));
  await eventually(
    "six usage events",
    () => events.filter((e) => e.type === "usage.recorded").length === 6,
  );
  const attempts = events.filter((e): e is LlmAttempted => e.type === "llm.attempted");
  const failed = attempts.filter((a) => a.outcome === "failed");
  assert(failed.length > 0, "the seeded error rate fails some first attempts");
  assert(failed.every((a) => a.status === 500 && a.retryInMs !== null));
  assertEquals(attempts.length, upstream.stats().requests);
});

Deno.test("createRuntime without a provider takes the upstream from TROUPE_LLM_*", async () => {
  await using upstream = startMockUpstream();
  Deno.env.set("TROUPE_LLM_BASE_URL", upstream.url);
  Deno.env.set("TROUPE_LLM_MODEL", "mock-model");
  Deno.env.set("TROUPE_LLM_WORKERS", "1");
  try {
    await using runtime = createRuntime();
    const reply = await runtime.send({ session: "s1", content: "from the environment" });
    assertEquals(reply.text, "from the environment");
    assertEquals(upstream.stats().requests, 1);
  } finally {
    for (const name of ["TROUPE_LLM_BASE_URL", "TROUPE_LLM_MODEL", "TROUPE_LLM_WORKERS"]) {
      Deno.env.delete(name);
    }
  }
});

Deno.test("without an upstream the embedded mock answers and keeps no request log", async () => {
  const { provider, pool } = llmFromSettings(DEFAULT_CONFIG);
  assertEquals(pool, null);
  const mock = provider as MockLlm;
  const completion = await mock.complete(
    { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hi" }] },
    { signal: new AbortController().signal },
  );
  assertEquals(completion.text, "hi");
  assertEquals(mock.stats.calls, 1);
  assertEquals(mock.requests.length, 0, "no one can read it, so it holds no prompts");
});

Deno.test("createRuntime refuses a bad TROUPE_LLM_* value, naming the variable", () => {
  Deno.env.set("TROUPE_LLM_BASE_URL", "not a url");
  try {
    assertThrows(() => createRuntime(), (error: unknown) => {
      assert(error instanceof InvalidInputError);
      assertEquals(error.field, "TROUPE_LLM_BASE_URL");
      return true;
    });
  } finally {
    Deno.env.delete("TROUPE_LLM_BASE_URL");
  }
});

Deno.test("TROUPE_LLM_MAX_REPLY_BYTES reaches the workers: a reply past it fails once, without retries", async () => {
  await using upstream = startMockUpstream();
  const { provider } = llmFromSettings(settings(upstream.url, { llmMaxReplyBytes: 1024 }));
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  const small = await runtime.send({ session: "s1", content: "short" });
  assertEquals(small.status, "completed");
  const big = await runtime.send({ session: "s2", content: "word ".repeat(1000) });
  assertEquals(big.status, "failed");
  assert(big.error?.message.includes("maxReplyBytes"), big.error?.message);
  assertEquals(big.error?.retryable, false);
  assertEquals(upstream.stats().requests, 2, "the oversized reply was not asked for again");
  await eventually(
    "the failed attempt's event",
    () => events.some((e) => e.type === "llm.attempted" && e.outcome === "failed"),
  );
});

Deno.test("TROUPE_LLM_MAX_TOKENS_PARAMETER reaches the workers: the cap goes out under that name", async () => {
  await using upstream = serveFixture({
    body: await fixture("openai_chat_completion.json"),
    headers: { "content-type": "application/json" },
  });
  for (const parameter of ["max_completion_tokens", "max_tokens"] as const) {
    const { provider } = llmFromSettings(
      settings(upstream.url, { llmMaxTokensParameter: parameter }),
    );
    await using runtime = createRuntime({ llm: provider });
    const reply = await runtime.send({ session: "s", content: "hi", options: { maxTokens: 9 } });
    assertEquals(reply.status, "completed");
    const body = upstream.requests.at(-1)!.body;
    assertEquals(
      [body.max_completion_tokens, body.max_tokens],
      parameter === "max_tokens" ? [undefined, 9] : [9, undefined],
    );
  }
});

Deno.test("an upstream reply with an empty model and an absurd count still gets a storable usage record", async () => {
  await using upstream = serveFixture({
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      object: "chat.completion",
      model: "",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1e300, completion_tokens: 2 },
    }),
  });
  const { provider } = llmFromSettings(settings(upstream.url));
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm: provider });
  runtime.subscribe((event) => events.push(event));
  assertEquals((await runtime.send({ session: "s1", content: "hello" })).status, "completed");
  await eventually("the usage event", () => events.some((e) => e.type === "usage.recorded"));
  const usage = events.find((e): e is UsageRecorded => e.type === "usage.recorded")!;
  assertEquals(validateEvent(usage), { ok: true, event: usage }, "the persister would store it");
  assertEquals(usage.model, "mock-model", "the model asked for");
  assert(usage.inputTokens < 1e15, `a count beyond reason is not taken: ${usage.inputTokens}`);
});
