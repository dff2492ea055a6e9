// Tests the OpenAI-compatible provider over real HTTP against the mock upstream and fixture servers.

import assert from "node:assert/strict";
import { CancelledError, ProviderError } from "../../../actors/errors.ts";
import type { LlmAttempt, LlmRequest, Usage } from "../../../actors/ports.ts";
import { openAiCompatible } from "../../../adapters/llm/openai_compatible.ts";
import { estimateUsage, loadTokenizer } from "../../../adapters/llm/tokenizer.ts";
import { type MockUpstream, startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { fixture, serveFixture, silentUpstream } from "./_fixtures.ts";

const KEY = "sk-test-7f3a9c2e4b1d8f6a0e5c";

/** A system turn (8 chars, 2 mock tokens) and a user turn (27 chars, 7 mock tokens) the mock echoes. */
const REQUEST: LlmRequest = {
  org: "o",
  session: "s",
  run: "r",
  messages: [
    { role: "system", content: "be brief" },
    { role: "user", content: "one two three four five six" },
  ],
};
const REPLY = "one two three four five six";

interface Seen {
  deltas: string[];
  usages: Usage[];
  attempts: LlmAttempt[];
}

function call(
  upstream: MockUpstream | { url: string },
  headers: Record<string, string>,
  extra: {
    stream?: boolean;
    timeoutMs?: number;
    maxReplyBytes?: number;
    maxTokensParameter?: "max_tokens" | "max_completion_tokens";
    signal?: AbortSignal;
    request?: LlmRequest;
  } = {},
) {
  const llm = openAiCompatible({
    baseUrl: upstream.url,
    apiKey: KEY,
    model: "mock-model",
    headers,
    ...(extra.stream === undefined ? {} : { stream: extra.stream }),
    ...(extra.timeoutMs === undefined ? {} : { timeoutMs: extra.timeoutMs }),
    ...(extra.maxReplyBytes === undefined ? {} : { maxReplyBytes: extra.maxReplyBytes }),
    ...(extra.maxTokensParameter === undefined
      ? {}
      : { maxTokensParameter: extra.maxTokensParameter }),
  });
  const seen: Seen = { deltas: [], usages: [], attempts: [] };
  const result = llm.complete(extra.request ?? REQUEST, {
    signal: extra.signal ?? new AbortController().signal,
    onDelta: (text) => seen.deltas.push(text),
    onUsage: (usage) => seen.usages.push(usage),
    onAttempt: (attempt) => seen.attempts.push(attempt),
  });
  return { result, seen };
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof ProviderError, `expected a ProviderError, got ${error}`);
  assert.ok(!error.message.includes(KEY), "the key never appears in an error");
  return error;
}

Deno.test("openAiCompatible streams deltas in order and reads the usage chunk", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, {});
  const completion = await result;
  assert.equal(completion.text, REPLY);
  assert.deepEqual(seen.deltas, ["one ", "two ", "three ", "four ", "five ", "six"]);
  assert.deepEqual(completion.usage, {
    inputTokens: 9,
    outputTokens: 7,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: 16,
    source: "reported",
  });
  assert.deepEqual(seen.usages, [completion.usage]);
  assert.equal(completion.finishReason, "stop");
  assert.ok(completion.ttftMs !== null && completion.ttftMs <= completion.latencyMs);
  assert.equal(seen.attempts.length, 1);
  assert.equal(seen.attempts[0]!.outcome, "completed");
  assert.equal(seen.attempts[0]!.status, 200);
  assert.equal(seen.attempts[0]!.request, completion.request);
  assert.equal(upstream.stats().completed, 1);
});

Deno.test("openAiCompatible reads a non-streamed reply and hands it over as one delta", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, {}, { stream: false });
  const completion = await result;
  assert.equal(completion.text, REPLY);
  assert.deepEqual(seen.deltas, [REPLY]);
  assert.equal(completion.usage.totalTokens, 16);
  assert.equal(completion.usage.source, "reported");
});

for (const stream of [true, false]) {
  Deno.test(`openAiCompatible reads usage in every dialect (stream: ${stream})`, async () => {
    await using upstream = startMockUpstream();
    const counts = { "x-mock-cached-tokens": "4", "x-mock-reasoning-tokens": "3" };
    const usage = async (dialect: string) =>
      (await call(upstream, { ...counts, "x-mock-usage-dialect": dialect }, { stream }).result)
        .usage;
    const expected = {
      inputTokens: 9,
      outputTokens: 10,
      cachedTokens: 4,
      reasoningTokens: 3,
      totalTokens: 19,
      source: "reported",
    };
    assert.deepEqual(await usage("openai"), expected);
    // Anthropic has no reasoning count of its own; its output includes thinking.
    assert.deepEqual(await usage("anthropic"), { ...expected, reasoningTokens: 0 });
    assert.deepEqual(await usage("gemini"), expected);
  });
}

Deno.test("openAiCompatible estimates usage with the tokenizer when the upstream reports none", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, { "x-mock-usage-dialect": "none" });
  const completion = await result;
  const expected = estimateUsage(await loadTokenizer(), REQUEST.messages, REPLY);
  assert.deepEqual(completion.usage, expected);
  assert.equal(completion.usage.source, "estimated");
  assert.deepEqual(seen.usages, [expected]);
});

Deno.test("a cancelled call closes its upstream connection and reports estimated usage", async () => {
  await using upstream = startMockUpstream();
  const controller = new AbortController();
  const request: LlmRequest = {
    ...REQUEST,
    messages: [{
      role: "user",
      content: "alpha beta gamma delta epsilon zeta eta theta iota kappa",
    }],
  };
  const { result, seen } = call(upstream, { "x-mock-tokens-per-second": "50" }, {
    signal: controller.signal,
    request,
  });
  await eventually("two deltas", () => seen.deltas.length >= 2);
  const reason = new CancelledError("superseded");
  controller.abort(reason);
  await assert.rejects(result, (error) => error === reason);
  await eventually("the upstream to see the abort", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
  assert.equal(upstream.stats().completed, 0);
  const received = seen.deltas.join("");
  assert.deepEqual(seen.usages, [estimateUsage(await loadTokenizer(), request.messages, received)]);
  assert.equal(seen.attempts[0]!.outcome, "cancelled");
});

Deno.test("a call cancelled before the upstream answers closes the connection too", async () => {
  await using upstream = silentUpstream();
  const controller = new AbortController();
  const { result, seen } = call(upstream, {}, { signal: controller.signal });
  await eventually("the connection to open", () => upstream.opened === 1);
  controller.abort(new CancelledError());
  await assert.rejects(result, CancelledError);
  await eventually("the client to close the connection", () => upstream.closed === 1);
  assert.equal(seen.usages.length, 1, "the upstream may have read the prompt");
  assert.equal(seen.usages[0]!.outputTokens, 0);
  assert.equal(seen.usages[0]!.source, "estimated");
  assert.equal(seen.attempts[0]!.outcome, "cancelled");
});

Deno.test("a call that exceeds timeoutMs fails retryably and closes the connection", async () => {
  await using upstream = silentUpstream();
  const { result, seen } = call(upstream, {}, { timeoutMs: 100 });
  const error = await failure(result);
  assert.equal(error.retryable, true);
  assert.equal(error.status, undefined);
  assert.match(error.message, /did not finish within 100 ms \(timeoutMs\)/);
  await eventually("the client to close the connection", () => upstream.closed === 1);
  assert.equal(seen.attempts[0]!.status, null);
  assert.equal(seen.attempts[0]!.outcome, "failed");
});

Deno.test("the mock upstream counts the abort of a small hanging request", async () => {
  // Deno.serve notices the client's close only for small request bodies (see silentUpstream).
  await using upstream = startMockUpstream();
  const controller = new AbortController();
  const request: LlmRequest = { ...REQUEST, messages: [{ role: "user", content: "hi" }] };
  const { result } = call(upstream, { "x-mock-scenario": "hang" }, {
    signal: controller.signal,
    request,
  });
  await eventually("the request to arrive", () => upstream.stats().requests === 1);
  controller.abort(new CancelledError());
  await assert.rejects(result, CancelledError);
  await eventually("the upstream to see the abort", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
});

Deno.test("a 429 is retryable and carries the Retry-After hint and the upstream's message", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, { "x-mock-scenario": "429", "x-mock-retry-after": "7" });
  const error = await failure(result);
  assert.equal(error.status, 429);
  assert.equal(error.retryable, true);
  assert.equal(error.retryAfterMs, 7000);
  assert.match(error.message, /answered 429 Too Many Requests: Mock rate limit reached/);
  assert.deepEqual(seen.usages, [], "a refused request cost nothing");
  assert.equal(seen.attempts[0]!.status, 429);
});

Deno.test("a 400 is not retryable and a 500 is", async () => {
  await using upstream = startMockUpstream();
  const bad = await failure(call(upstream, { "x-mock-scenario": "400" }).result);
  assert.equal(bad.status, 400);
  assert.equal(bad.retryable, false);
  const broken = await failure(
    call(upstream, { "x-mock-scenario": "500" }, { stream: false }).result,
  );
  assert.equal(broken.status, 500);
  assert.equal(broken.retryable, true);
});

Deno.test("a stream dropped mid-reply is a retryable error that still reports what it cost", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, { "x-mock-scenario": "drop" });
  const error = await failure(result);
  assert.equal(error.retryable, true);
  assert.match(error.message, /broke mid-reply|ended the stream/);
  assert.deepEqual(seen.deltas, ["one ", "two "]);
  assert.equal(seen.usages.length, 1);
  assert.equal(seen.usages[0]!.source, "estimated");
  assert.equal(seen.usages[0]!.outputTokens, (await loadTokenizer()).count("one two "));
});

Deno.test("an unreachable upstream is a retryable error that shows neither key nor query", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const url = `http://127.0.0.1:${port}/v1?key=${KEY}`;
  const error = await failure(call({ url }, {}).result);
  assert.equal(error.retryable, true);
  assert.match(
    error.message,
    new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/v1/chat/completions:`),
  );
});

Deno.test("openAiCompatible sends the request id, the key, extra headers and the usage option", async () => {
  await using server = serveFixture({ body: await fixture("openai_chat_stream.sse") });
  const { result } = call(server, { "x-tenant": "acme" }, {
    request: { ...REQUEST, request: "req-123", options: { model: "gpt-4o-mini", maxTokens: 50 } },
  });
  const completion = await result;
  assert.equal(completion.request, "req-123");
  assert.equal(completion.model, "gpt-4o-mini-2024-07-18", "the model the upstream named");
  const [sent] = server.requests;
  assert.equal(sent!.headers.get("x-request-id"), "req-123");
  assert.equal(sent!.headers.get("authorization"), `Bearer ${KEY}`);
  assert.equal(sent!.headers.get("x-tenant"), "acme");
  assert.deepEqual(sent!.body, {
    model: "gpt-4o-mini",
    messages: REQUEST.messages,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 50,
  });
});

Deno.test("openAiCompatible sends each sampling and format option under its wire name", async () => {
  await using server = serveFixture({ body: await fixture("openai_chat_stream.sse") });
  const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
  const { result } = call(server, {}, {
    request: {
      ...REQUEST,
      options: {
        maxTokens: 50,
        temperature: 0.2,
        topP: 0.8,
        stop: ["END"],
        seed: 11,
        presencePenalty: 0.1,
        frequencyPenalty: 0.3,
        responseFormat: {
          type: "json_schema",
          jsonSchema: { name: "place", schema, strict: true },
        },
        reasoningEffort: "high",
      },
    },
  });
  await result;
  assert.deepEqual(server.requests[0]!.body, {
    model: "mock-model",
    messages: REQUEST.messages,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 50,
    temperature: 0.2,
    top_p: 0.8,
    stop: ["END"],
    seed: 11,
    presence_penalty: 0.1,
    frequency_penalty: 0.3,
    response_format: {
      type: "json_schema",
      json_schema: { name: "place", schema, strict: true },
    },
    reasoning_effort: "high",
  });
});

Deno.test("maxTokensParameter: a token cap goes out as max_completion_tokens when the upstream asks", async () => {
  await using server = serveFixture({ body: await fixture("openai_chat_stream.sse") });
  const { result } = call(server, {}, {
    maxTokensParameter: "max_completion_tokens",
    request: { ...REQUEST, options: { maxTokens: 50, temperature: 1 } },
  });
  await result;
  const { max_completion_tokens, max_tokens, temperature } = server.requests[0]!.body;
  assert.deepEqual([max_completion_tokens, max_tokens, temperature], [50, undefined, 1]);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => openAiCompatible({ baseUrl: server.url, model: "m", maxTokensParameter: "n" as any }),
    /maxTokensParameter must be max_tokens or max_completion_tokens, current value is "n"/,
  );
});

Deno.test("an upstream that echoes the key in its error never gets it into the error", async () => {
  const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}` } });
  await using server = serveFixture({
    body,
    status: 401,
    headers: { "content-type": "application/json" },
  });
  const { result, seen } = call(server, {});
  const error = await failure(result);
  assert.equal(error.retryable, false);
  assert.match(error.message, /Incorrect API key provided: \[redacted\]/);
  assert.ok(!JSON.stringify(seen.attempts).includes(KEY));
});

/** A user turn of `n` characters that the mock upstream echoes back. */
function longTurn(n: number): LlmRequest {
  return { ...REQUEST, messages: [{ role: "user", content: "word ".repeat(n / 5).trim() }] };
}

Deno.test("a JSON reply over maxReplyBytes fails, not retryably, and its connection is closed", async () => {
  await using upstream = startMockUpstream();
  const small = call(upstream, {}, { stream: false, maxReplyBytes: 2_000 });
  assert.equal((await small.result).text, REPLY, "a reply under the limit is read as usual");
  const big = call(upstream, {}, { stream: false, maxReplyBytes: 2_000, request: longTurn(5_000) });
  const error = await failure(big.result);
  assert.match(error.message, /larger than 2000 \(maxReplyBytes\)/);
  assert.equal(error.retryable, false);
  assert.equal(big.seen.attempts[0]!.outcome, "failed");
  await eventually("no connection left open", () => upstream.stats().openConnections === 0);
});

Deno.test("a stream whose text passes maxReplyBytes stops there, closes its connection and reports what it cost", async () => {
  await using upstream = startMockUpstream();
  const { result, seen } = call(upstream, { "x-mock-tokens-per-second": "2000" }, {
    maxReplyBytes: 1_000,
    request: longTurn(20_000),
  });
  const error = await failure(result);
  assert.match(error.message, /larger than 1000 \(maxReplyBytes\)/);
  assert.equal(error.retryable, false);
  const received = seen.deltas.join("").length;
  assert.ok(received > 1_000 && received < 20_000, `${received} characters passed on`);
  assert.equal(seen.usages.length, 1, "the attempt may have cost tokens: its usage is reported");
  assert.equal(seen.usages[0]!.source, "estimated");
  await eventually("the upstream to see the stream closed", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
});

Deno.test("a stream whose event never ends fails at maxReplyBytes instead of holding it all", async () => {
  let closed = false;
  let sent = 0;
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (_, info) => {
    // The body never finishes on its own terms: a response that ends is the client closing.
    info.completed.finally(() => (closed = true)).catch(() => {});
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          // One `data:` line that goes on (bounded, so a broken limit still ends the test).
          if (sent++ === 20_000) return controller.close();
          controller.enqueue(new TextEncoder().encode(sent === 1 ? "data: x" : "x".repeat(1024)));
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  const { result } = call({ url: `http://127.0.0.1:${server.addr.port}/v1` }, {}, {
    maxReplyBytes: 64 * 1024,
  });
  const error = await failure(result);
  assert.match(error.message, /larger than 65536 \(maxReplyBytes\)/);
  await eventually("the server to see the connection closed", () => closed);
  assert.ok(sent < 20_000, `${sent} pieces of 1 KiB were sent before the read stopped`);
});

Deno.test("openAiCompatible refuses bad options, naming them without showing the key", () => {
  assert.throws(
    () => openAiCompatible({ baseUrl: "http://x/v1", model: "m", maxReplyBytes: 0 }),
    /maxReplyBytes must be an integer > 0, current value is 0/,
  );
  assert.throws(() => openAiCompatible({ baseUrl: "ftp://x", model: "m" }), /baseUrl must be/);
  assert.throws(
    () => openAiCompatible({ baseUrl: "http://x/v1/chat/completions/", model: "m" }),
    /baseUrl must be the API's base URL without \/chat\/completions/,
  );
  assert.throws(() => openAiCompatible({ baseUrl: "http://x/v1", model: "" }), /model must be/);
  assert.throws(
    () => openAiCompatible({ baseUrl: "http://x/v1", model: "m", timeoutMs: 0 }),
    /timeoutMs must be a finite number > 0, current value is 0/,
  );
  assert.throws(
    () =>
      openAiCompatible({
        baseUrl: "http://x/v1",
        model: "m",
        headers: { "x-api-key": 42 as unknown as string },
      }),
    (error: Error) =>
      /headers\["x-api-key"\] must be a string/.test(error.message) &&
      !error.message.includes("42"),
  );
});

Deno.test("an error thrown by the caller's onDelta comes back as it is, not as an upstream failure", async () => {
  await using upstream = startMockUpstream();
  const llm = openAiCompatible({
    baseUrl: upstream.url,
    model: "mock-model",
    headers: { "x-mock-tokens-per-second": "20" },
  });
  const bug = new RangeError("the caller's bug");
  await assert.rejects(
    llm.complete(REQUEST, {
      signal: new AbortController().signal,
      onDelta: () => {
        throw bug;
      },
    }),
    (error) => error === bug,
  );
  await eventually("the upstream to see the stream cancelled", () => upstream.stats().aborts === 1);
});

Deno.test("asks its upstream for a stream only when the caller takes deltas", async () => {
  await using upstream = startMockUpstream();
  const asked: Array<{ stream: unknown; accept: string | null }> = [];
  const llm = openAiCompatible({
    baseUrl: upstream.url,
    model: "mock-model",
    fetch: async (input, init) => {
      const body = JSON.parse(String(init?.body));
      asked.push({ stream: body.stream, accept: new Headers(init?.headers).get("accept") });
      return await fetch(input, init);
    },
  });
  const signal = new AbortController().signal;
  const deltas: string[] = [];
  const streamed = await llm.complete(REQUEST, { signal, onDelta: (text) => deltas.push(text) });
  const whole = await llm.complete(REQUEST, { signal });
  assert.deepEqual(asked, [
    { stream: true, accept: "text/event-stream, application/json" },
    { stream: false, accept: "application/json" },
  ]);
  assert.equal(deltas.join(""), REPLY);
  for (const completion of [streamed, whole]) {
    assert.equal(completion.text, REPLY);
    assert.equal(completion.usage.source, "reported");
  }
  assert.equal(upstream.stats().completed, 2);
});
