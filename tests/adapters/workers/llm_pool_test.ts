// The LLM pool over real workers and real HTTP against the mock upstream.

import assert from "node:assert/strict";
import {
  CancelledError,
  PoolSaturatedError,
  ProviderError,
  ShutdownError,
  WorkerCrashedError,
} from "../../../actors/errors.ts";
import type { LlmAttempt, LlmRequest, Usage } from "../../../actors/ports.ts";
import { resilient } from "../../../adapters/llm/resilient.ts";
import { llmPool, type LlmPoolOptions } from "../../../adapters/workers/llm_pool.ts";
import { type MockUpstream, startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { eventually } from "../../_helpers/eventually.ts";

const API_KEY = "sk-test-secret-1234567890";

function request(content: string, run = "r1"): LlmRequest {
  return { org: "acme", session: "s1", run, messages: [{ role: "user", content }] };
}

// Deno.serve (under the mock upstream) misses a client's FIN for some request sizes: the
// client closes (FIN-WAIT-2) but the server socket stays in CLOSE-WAIT and its request
// signal never aborts, on the main thread as in a worker. The requests of the tests that
// count closed connections with the x-mock-fail-times headers hit that size with an API
// key, so those go without one (`apiKey: null`).
function upstreamPool(
  upstream: MockUpstream,
  headers: Record<string, string> = {},
  options: Partial<LlmPoolOptions> = {},
  stream = true,
  apiKey: string | null = API_KEY,
) {
  return llmPool({
    provider: {
      kind: "openai-compatible",
      options: {
        baseUrl: upstream.url,
        ...(apiKey === null ? {} : { apiKey }),
        model: "mock-model",
        headers,
        stream,
      },
    },
    size: 1,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected the call to fail");
}

Deno.test("a mock-spec call runs in a worker and streams its text back", async () => {
  await using llm = llmPool({ provider: { kind: "mock", options: { model: "echo" } }, size: 2 });
  assert.equal(llm.name, "mock");
  assert.equal(llm.model, "echo");
  const deltas: string[] = [];
  const completion = await llm.complete(request("hello from a worker"), {
    signal: new AbortController().signal,
    onDelta: (text) => deltas.push(text),
  });
  assert.equal(completion.text, "hello from a worker");
  assert.equal(completion.model, "echo");
  assert.equal(deltas.join(""), "hello from a worker");
  assert.equal(completion.usage.source, "reported");
  assert.equal(llm.stats().completed, 1);
});

Deno.test("openai-compatible: a streamed call over real HTTP returns text, usage and attempt reports", async () => {
  await using upstream = startMockUpstream();
  await using llm = upstreamPool(upstream);
  const words = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ");
  const deltas: string[] = [];
  const attempts: LlmAttempt[] = [];
  const usages: Usage[] = [];
  let settled = false;
  const completion = await llm.complete(request(words), {
    signal: new AbortController().signal,
    onDelta: (text) => deltas.push(settled ? "late" : text),
    onAttempt: (attempt) => attempts.push(attempt),
    onUsage: (usage) => usages.push(usage),
  }).finally(() => (settled = true));
  assert.equal(completion.text, words);
  assert.equal(deltas.join(""), words, "every delta arrives, in order, before the call settles");
  // 300 tokens were sent at once: they cross the boundary in a few batches, not one message each.
  assert.ok(deltas.length < 300, `${deltas.length} deltas for 300 tokens`);
  assert.equal(completion.usage.source, "reported");
  assert.equal(completion.usage.outputTokens, Math.ceil(words.length / 4));
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.outcome, "completed");
  assert.equal(attempts[0]!.status, 200);
  assert.deepEqual(usages, [completion.usage]);
  assert.equal(upstream.stats().completed, 1);
});

Deno.test("openai-compatible: a non-streamed call over real HTTP", async () => {
  await using upstream = startMockUpstream();
  await using llm = upstreamPool(upstream, {}, {}, false);
  const completion = await llm.complete(request("plain json"), {
    signal: new AbortController().signal,
  });
  assert.equal(completion.text, "plain json");
  assert.equal(completion.usage.source, "reported");
});

Deno.test("a prompt of history entries reaches the upstream turn for turn: role and content, nothing lost", async () => {
  await using upstream = startMockUpstream();
  await using llm = upstreamPool(upstream, {}, {}, false);
  // A session's prompt is its history entries as they are, extra fields included.
  const turns = [
    { role: "system", content: "be brief" },
    { id: "m1", role: "user", content: 'quotes " and \\ backslashes', ts: 1 },
    { id: "r1", role: "assistant", content: "émoji 👋 and\nnew lines", ts: 2, answered: ["m1"] },
    { id: "m2", role: "user", content: "the last turn \u2028", ts: 3 },
  ];
  const completion = await llm.complete(
    { org: "acme", session: "s1", run: "r2", messages: turns as LlmRequest["messages"] },
    { signal: new AbortController().signal },
  );
  assert.equal(completion.text, "the last turn \u2028");
  // The mock counts ceil(length / 4) tokens per turn it was sent.
  const expected = turns.reduce((n, t) => n + Math.ceil(t.content.length / 4), 0);
  assert.equal(completion.usage.inputTokens, expected);
});

Deno.test("aborting the caller's signal aborts the fetch in the worker: the upstream sees its connection close", async () => {
  await using upstream = startMockUpstream();
  await using llm = upstreamPool(upstream, { "x-mock-scenario": "hang" });
  const controller = new AbortController();
  const call = rejection(llm.complete(request("hang"), { signal: controller.signal }));
  await eventually(
    "the upstream to hold the request",
    () => upstream.stats().openConnections === 1,
  );
  const reason = new CancelledError("Run r1 superseded by r2");
  controller.abort(reason);
  assert.equal(await call, reason);
  await eventually("the upstream to see the abort", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
  await eventually("the worker to confirm the cancel", () => llm.stats().inFlight === 0);
});

Deno.test("upstream errors come back as ProviderError with status, retryable and retryAfterMs", async () => {
  await using upstream = startMockUpstream();
  {
    await using llm = upstreamPool(upstream, {
      "x-mock-scenario": "429",
      "x-mock-retry-after": "2",
    });
    const error = await rejection(
      llm.complete(request("x"), { signal: AbortSignal.timeout(30_000) }),
    );
    assert.ok(error instanceof ProviderError);
    assert.equal(error.status, 429);
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 2000);
    assert.ok(!error.message.includes(API_KEY));
  }
  {
    await using llm = upstreamPool(upstream, { "x-mock-scenario": "400" });
    const error = await rejection(
      llm.complete(request("x"), { signal: AbortSignal.timeout(30_000) }),
    );
    assert.ok(error instanceof ProviderError);
    assert.equal(error.status, 400);
    assert.equal(error.retryable, false);
  }
});

Deno.test("a worker killed mid-call closes its upstream request, fails the call typed, and the next call succeeds", async () => {
  await using upstream = startMockUpstream();
  // The first request with this key hangs; later ones answer.
  await using llm = upstreamPool(
    upstream,
    {
      "x-mock-scenario": "hang",
      "x-mock-fail-times": "1",
      "x-mock-request-key": "kill-test",
    },
    {},
    true,
    null,
  );
  const call = rejection(llm.complete(request("first"), { signal: AbortSignal.timeout(30_000) }));
  await eventually(
    "the upstream to hold the request",
    () => upstream.stats().openConnections === 1,
  );
  llm.terminateWorker(0, "killed by the test");
  const error = await call;
  assert.ok(error instanceof WorkerCrashedError && error.retryable);
  await eventually(
    "the upstream to see the connection close",
    () => upstream.stats().openConnections === 0,
  );
  const next = await llm.complete(request("second"), { signal: AbortSignal.timeout(30_000) });
  assert.equal(next.text, "second");
  assert.equal(llm.stats().crashes, 1);
});

Deno.test("resilient() around the pool retries a call whose worker died", async () => {
  await using upstream = startMockUpstream();
  await using pool = upstreamPool(upstream, {
    "x-mock-scenario": "hang",
    "x-mock-fail-times": "1",
    "x-mock-request-key": "retry-test",
  });
  const llm = resilient(pool, { minDelayMs: 1 });
  const attempts: string[] = [];
  const call = llm.complete(request("retried"), {
    signal: AbortSignal.timeout(30_000),
    onAttempt: (attempt) => attempts.push(`${attempt.outcome}:${attempt.code}`),
  });
  await eventually(
    "the upstream to hold the request",
    () => upstream.stats().openConnections === 1,
  );
  pool.terminateWorker(0);
  const completion = await call;
  assert.equal(completion.text, "retried");
  assert.deepEqual(attempts, ["failed:worker_crashed", "completed:null"]);
});

Deno.test("a full pool refuses with PoolSaturatedError", async () => {
  await using llm = llmPool({
    provider: { kind: "mock", options: { latencyMs: 60_000 } },
    size: 1,
    concurrency: 1,
    queueBound: 0,
  });
  const controller = new AbortController();
  const first = rejection(llm.complete(request("a"), { signal: controller.signal }));
  const error = await rejection(llm.complete(request("b"), { signal: controller.signal }));
  assert.ok(error instanceof PoolSaturatedError && error.retryable);
  controller.abort(new CancelledError());
  assert.ok(await first instanceof CancelledError);
});

Deno.test("close() fails calls in flight with ShutdownError and closes their upstream requests", async () => {
  await using upstream = startMockUpstream();
  const llm = upstreamPool(upstream, { "x-mock-scenario": "hang" });
  const call = rejection(llm.complete(request("x"), { signal: AbortSignal.timeout(30_000) }));
  await eventually(
    "the upstream to hold the request",
    () => upstream.stats().openConnections === 1,
  );
  await llm.close();
  assert.ok(await call instanceof ShutdownError);
  await eventually(
    "the upstream to see the connection close",
    () => upstream.stats().openConnections === 0,
  );
});

Deno.test("a bad provider spec fails at once, naming the field, without the API key", () => {
  // @ts-expect-error: not a kind.
  assert.throws(() => llmPool({ provider: { kind: "claude" } }), /kind must be "mock" or/);
  assert.throws(
    () => llmPool({ provider: { kind: "mock", options: { latencyMs: -1 } } }),
    RangeError,
  );
  assert.throws(
    () =>
      llmPool({
        provider: {
          kind: "openai-compatible",
          options: { baseUrl: "ftp://x", apiKey: API_KEY, model: "m" },
        },
      }),
    (error: Error) => error instanceof TypeError && !error.message.includes(API_KEY),
  );
  assert.throws(
    () =>
      llmPool({
        provider: {
          kind: "openai-compatible",
          // @ts-expect-error: fetch cannot travel to a worker.
          options: { baseUrl: "http://127.0.0.1:1/v1", model: "m", fetch },
        },
      }),
    /fetch is a function/,
  );
});
