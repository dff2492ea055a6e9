// Tests the mock upstream over real HTTP: wire format, streaming, usage dialects, scenarios and stats.

import assert from "node:assert/strict";
import {
  type MockUpstream,
  type MockUpstreamStats,
  startMockUpstream,
} from "../../scripts/mock_upstream.ts";

const NOW = 1_700_000_000_123;

/** A system turn (8 chars, 2 tokens) then a user turn (17 chars, 5 tokens) the mock echoes. */
const BODY = {
  messages: [
    { role: "system", content: "be brief" },
    { role: "user", content: "Hello there, mock" },
  ],
};

/** An OpenAI `usage` object, written out field by field. */
function openAiUsage(counts: {
  prompt: number;
  completion: number;
  total: number;
  cached: number;
  reasoning: number;
}) {
  return {
    prompt_tokens: counts.prompt,
    completion_tokens: counts.completion,
    total_tokens: counts.total,
    prompt_tokens_details: { cached_tokens: counts.cached },
    completion_tokens_details: { reasoning_tokens: counts.reasoning },
  };
}

function post(
  upstream: MockUpstream,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  const init: RequestInit = {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
  if (signal) init.signal = signal;
  return fetch(`${upstream.url}/chat/completions`, init);
}

/** The `data:` payloads of an SSE body, JSON-parsed except the final `[DONE]`. */
async function events(response: Response): Promise<unknown[]> {
  const text = await response.text();
  assert.ok(text.endsWith("\n\n"), "every event ends with a blank line");
  return text.trimEnd().split("\n\n").map((event) => {
    assert.ok(event.startsWith("data: "), `an event is a data line: ${event}`);
    const data = event.slice("data: ".length);
    return data === "[DONE]" ? data : JSON.parse(data);
  });
}

/** Poll the stats until `holds` is true; throw with the last stats after `timeout` ms. */
async function statsWhen(
  upstream: MockUpstream,
  holds: (stats: MockUpstreamStats) => boolean,
  timeout = 5_000,
): Promise<MockUpstreamStats> {
  const deadline = performance.now() + timeout;
  for (;;) {
    const stats = upstream.stats();
    if (holds(stats)) return stats;
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms; stats are ${JSON.stringify(stats)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("a non-streaming answer follows the chat.completion wire format field by field", async () => {
  await using upstream = startMockUpstream({ now: () => NOW });
  const response = await post(upstream, BODY);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const body = await response.json();
  assert.match(body.id, /^chatcmpl-/);
  assert.deepEqual(body, {
    id: body.id,
    object: "chat.completion",
    created: 1_700_000_000,
    model: "mock-model",
    choices: [{
      index: 0,
      message: { role: "assistant", content: "Hello there, mock" },
      logprobs: null,
      finish_reason: "stop",
    }],
    usage: openAiUsage({ prompt: 7, completion: 5, total: 12, cached: 0, reasoning: 0 }),
  });
});

Deno.test("the answer echoes the last user turn, names the requested model and reads content parts", async () => {
  await using upstream = startMockUpstream();
  const response = await post(upstream, {
    model: "gpt-test",
    messages: [
      { role: "user", content: "first" },
      { role: "assistant", content: "reply" },
      {
        role: "user",
        content: [{ type: "text", text: "second " }, { type: "text", text: "turn" }],
      },
    ],
  });
  const body = await response.json();
  assert.equal(body.model, "gpt-test");
  assert.equal(body.choices[0].message.content, "second turn");
  const other = await (await post(upstream, BODY)).json();
  assert.notEqual(other.id, body.id, "every answer has its own id");
});

Deno.test("a stream sends a role chunk, word chunks, a finish chunk, the usage chunk and [DONE]", async () => {
  await using upstream = startMockUpstream({ now: () => NOW });
  const response = await post(upstream, {
    ...BODY,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const [role, ...rest] = await events(response);
  const head = { id: (role as { id: string }).id, created: 1_700_000_000, model: "mock-model" };
  const chunk = (delta: unknown, finishReason: string | null) => ({
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    usage: null,
  });
  assert.match(head.id, /^chatcmpl-/);
  assert.deepEqual([role, ...rest], [
    chunk({ role: "assistant", content: "" }, null),
    chunk({ content: "Hello " }, null),
    chunk({ content: "there, " }, null),
    chunk({ content: "mock" }, null),
    chunk({}, "stop"),
    {
      ...head,
      object: "chat.completion.chunk",
      choices: [],
      usage: openAiUsage({ prompt: 7, completion: 5, total: 12, cached: 0, reasoning: 0 }),
    },
    "[DONE]",
  ]);
});

Deno.test("max_tokens and stop cut the answer as an upstream would, finish_reason length for the cap", async () => {
  await using upstream = startMockUpstream();
  const user = (content: string) => ({ messages: [{ role: "user", content }] });
  const answer = async (body: Record<string, unknown>) => {
    const json = await (await post(upstream, body)).json();
    return [
      json.choices[0].message.content,
      json.choices[0].finish_reason,
      json.usage.completion_tokens,
    ];
  };
  // "one two three four" is 18 characters: 5 tokens at four characters each.
  assert.deepEqual(await answer({ ...user("one two three four"), max_tokens: 2 }), [
    "one two ",
    "length",
    2,
  ]);
  assert.deepEqual(
    await answer({ ...user("one two three four"), max_tokens: 9, max_completion_tokens: 3 }),
    ["one two thre", "length", 3],
  );
  assert.deepEqual(await answer({ ...user("one two three four"), stop: " three" }), [
    "one two",
    "stop",
    2,
  ]);
  assert.deepEqual(
    await answer({ ...user("one two three four"), stop: ["four", "two"], max_tokens: 50 }),
    ["one ", "stop", 1],
  );
  const streamed = await events(
    await post(upstream, { ...user("one two three four"), max_tokens: 2, stream: true }),
  );
  const chunks = streamed.slice(1, -1) as {
    choices: { delta: { content?: string }; finish_reason: string | null }[];
  }[];
  assert.equal(chunks.map((c) => c.choices[0]!.delta.content ?? "").join(""), "one two ");
  assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "length");
  for (
    const bad of [{ max_tokens: 0 }, { max_completion_tokens: "5" }, { stop: [""] }, { stop: 4 }]
  ) {
    const response = await post(upstream, { ...user("x"), ...bad });
    assert.equal(response.status, 400, JSON.stringify(bad));
    await response.body?.cancel();
  }
});

Deno.test("a stream without include_usage has no usage chunk and no usage field", async () => {
  await using upstream = startMockUpstream();
  const all = await events(await post(upstream, { ...BODY, stream: true }));
  assert.equal(all.at(-1), "[DONE]");
  const chunks = all.slice(0, -1) as Record<string, unknown>[];
  assert.equal(chunks.length, 5);
  for (const chunk of chunks) {
    assert.equal("usage" in chunk, false);
    assert.equal((chunk.choices as unknown[]).length, 1);
  }
});

Deno.test("each usage dialect names the same counts its own way", async () => {
  await using upstream = startMockUpstream();
  const counts = { "x-mock-cached-tokens": "2", "x-mock-reasoning-tokens": "3" };
  const usageOf = async (dialect: string) => {
    const response = await post(upstream, BODY, { ...counts, "x-mock-usage-dialect": dialect });
    const { usage, usageMetadata } = await response.json();
    return { usage, usageMetadata };
  };
  assert.deepEqual(await usageOf("openai"), {
    usage: openAiUsage({ prompt: 7, completion: 8, total: 15, cached: 2, reasoning: 3 }),
    usageMetadata: undefined,
  });
  assert.deepEqual(await usageOf("anthropic"), {
    usage: {
      input_tokens: 5,
      output_tokens: 8,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 2,
    },
    usageMetadata: undefined,
  });
  assert.deepEqual(await usageOf("gemini"), {
    usage: undefined,
    usageMetadata: {
      promptTokenCount: 7,
      candidatesTokenCount: 5,
      totalTokenCount: 15,
      cachedContentTokenCount: 2,
      thoughtsTokenCount: 3,
    },
  });
  assert.deepEqual(await usageOf("none"), { usage: undefined, usageMetadata: undefined });
});

Deno.test("a streamed usage chunk uses the dialect too, and none sends no usage chunk", async () => {
  await using upstream = startMockUpstream();
  const streamed = { ...BODY, stream: true, stream_options: { include_usage: true } };
  const gemini = await events(await post(upstream, streamed, { "x-mock-usage-dialect": "gemini" }));
  const last = gemini.at(-2) as Record<string, unknown>;
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage, undefined);
  assert.deepEqual(last.usageMetadata, {
    promptTokenCount: 7,
    candidatesTokenCount: 5,
    totalTokenCount: 12,
    cachedContentTokenCount: 0,
    thoughtsTokenCount: 0,
  });
  const none = await events(await post(upstream, streamed, { "x-mock-usage-dialect": "none" }));
  assert.equal(none.length, 6, "role, three words, finish and [DONE]");
  const chunks = none.slice(0, -1) as Record<string, unknown>[];
  assert.ok(chunks.every((chunk) => !("usage" in chunk)));
});

Deno.test("scenario 429 answers Retry-After and an OpenAI error body", async () => {
  await using upstream = startMockUpstream();
  const first = await post(upstream, BODY, { "x-mock-scenario": "429" });
  assert.equal(first.status, 429);
  assert.equal(first.headers.get("retry-after"), "1");
  assert.deepEqual(await first.json(), {
    error: {
      message: "Mock rate limit reached",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    },
  });
  const second = await post(upstream, BODY, {
    "x-mock-scenario": "429",
    "x-mock-retry-after": "7",
  });
  assert.equal(second.headers.get("retry-after"), "7");
  await second.body?.cancel();
  assert.equal(upstream.stats().errors, 2);
});

Deno.test("scenarios 500 and 400 answer OpenAI error bodies", async () => {
  await using upstream = startMockUpstream();
  const failed = await post(upstream, BODY, { "x-mock-scenario": "500" });
  assert.equal(failed.status, 500);
  assert.equal((await failed.json()).error.type, "server_error");
  const refused = await post(upstream, BODY, { "x-mock-scenario": "400" });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.type, "invalid_request_error");
  const stats = upstream.stats();
  assert.equal(stats.errors, 2);
  assert.deepEqual(stats.byScenario, { "500": 1, "400": 1 });
});

Deno.test("bad JSON, missing messages and a malformed control header are 400s saying what is wrong", async () => {
  await using upstream = startMockUpstream();
  const cases: [string | object, Record<string, string>, string][] = [
    ["{not json", {}, "invalid_json"],
    [{ model: "m" }, {}, "missing_messages"],
    [{ messages: [] }, {}, "missing_messages"],
    [BODY, { "x-mock-scenario": "teapot" }, "invalid_mock_header"],
    [BODY, { "x-mock-latency-ms": "-5" }, "invalid_mock_header"],
    [BODY, { "x-mock-fail-times": "2" }, "invalid_mock_header"],
  ];
  for (const [body, headers, code] of cases) {
    const response = await post(upstream, body, headers);
    assert.equal(response.status, 400);
    const { error } = await response.json();
    assert.equal(error.code, code);
    assert.equal(error.type, "invalid_request_error");
    assert.equal(typeof error.message, "string");
  }
  const response = await post(upstream, BODY, { "x-mock-scenario": "teapot" });
  assert.match((await response.json()).error.message, /x-mock-scenario.*teapot/);
  assert.equal(upstream.stats().errors, cases.length + 1);
});

Deno.test("an unknown route is a 404 and a wrong method a 405, both JSON", async () => {
  await using upstream = startMockUpstream();
  const missing = await fetch(`${upstream.url}/nothing`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "unknown_url");
  const wrong = await fetch(`${upstream.url}/chat/completions`);
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "POST");
  assert.equal((await wrong.json()).error.code, "method_not_allowed");
});

Deno.test("GET /v1/models lists the model in OpenAI's list format", async () => {
  await using upstream = startMockUpstream({ model: "echo-1", now: () => NOW });
  const response = await fetch(`${upstream.url}/models`);
  assert.deepEqual(await response.json(), {
    object: "list",
    data: [{ id: "echo-1", object: "model", created: 1_700_000_000, owned_by: "mock" }],
  });
});

Deno.test("a hanging request counts as aborted, and closes, when the client aborts", async () => {
  await using upstream = startMockUpstream();
  const controller = new AbortController();
  const pending = post(upstream, BODY, { "x-mock-scenario": "hang" }, controller.signal);
  await statsWhen(upstream, (stats) => stats.openConnections === 1);
  controller.abort();
  await assert.rejects(pending, { name: "AbortError" });
  const stats = await statsWhen(upstream, (stats) => stats.aborts === 1);
  assert.equal(stats.openConnections, 0);
  assert.equal(stats.maxOpenConnections, 1);
  assert.equal(stats.completed, 0);
  assert.deepEqual(stats.byScenario, { hang: 1 });
});

Deno.test("closing the server answers a hanging request 503 instead of waiting for it", async () => {
  const upstream = startMockUpstream();
  const pending = post(upstream, BODY, { "x-mock-scenario": "hang" });
  await statsWhen(upstream, (stats) => stats.openConnections === 1);
  const closed = upstream.close();
  const response = await pending;
  assert.equal(response.status, 503);
  assert.equal((await response.json()).error.code, "shutting_down");
  await closed;
  assert.equal(upstream.stats().openConnections, 0);
  assert.equal(upstream.stats().aborts, 1);
});

Deno.test("a client cancelling a slow stream counts as an abort", async () => {
  await using upstream = startMockUpstream({ tokensPerSecond: 2 });
  const response = await post(upstream, {
    messages: [{ role: "user", content: "one two three four five six" }],
    stream: true,
  });
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  const stats = await statsWhen(upstream, (stats) => stats.aborts === 1);
  assert.equal(stats.openConnections, 0);
  assert.equal(stats.completed, 0);
});

Deno.test("a stream dropped mid-way makes the client's body read fail", async () => {
  await using upstream = startMockUpstream();
  const response = await post(
    upstream,
    { ...BODY, stream: true, stream_options: { include_usage: true } },
    { "x-mock-scenario": "drop" },
  );
  assert.equal(response.status, 200);
  await assert.rejects(response.text());
  const stats = await statsWhen(upstream, (stats) => stats.errors === 1);
  assert.equal(stats.openConnections, 0);
  assert.equal(stats.completed, 0);
});

Deno.test("a non-streaming answer dropped mid-way makes the client's body read fail", async () => {
  await using upstream = startMockUpstream();
  const response = await post(upstream, BODY, { "x-mock-scenario": "drop" });
  assert.equal(response.status, 200);
  await assert.rejects(response.json());
  await statsWhen(upstream, (stats) => stats.errors === 1 && stats.openConnections === 0);
});

Deno.test("fail-times fails the first attempts of a request key, then answers", async () => {
  await using upstream = startMockUpstream();
  const attempt = async (key: string) => {
    const response = await post(upstream, BODY, {
      "x-mock-scenario": "429",
      "x-mock-fail-times": "2",
      "x-mock-request-key": key,
    });
    await response.body?.cancel();
    return response.status;
  };
  assert.deepEqual([await attempt("abc"), await attempt("abc"), await attempt("abc")], [
    429,
    429,
    200,
  ]);
  assert.equal(await attempt("other"), 429, "each key counts its own attempts");
  const stats = upstream.stats();
  assert.deepEqual(stats.byScenario, { "429": 3, ok: 1 });
  const reset = await fetch(new URL("/stats/reset", upstream.url), { method: "POST" });
  assert.equal((await reset.json()).requests, 0);
  assert.equal(await attempt("abc"), 429, "a reset forgets the attempts");
});

Deno.test("fail-times without a scenario fails with 500", async () => {
  await using upstream = startMockUpstream();
  const headers = { "x-mock-fail-times": "1", "x-mock-request-key": "k" };
  const first = await post(upstream, BODY, headers);
  assert.equal(first.status, 500);
  await first.body?.cancel();
  const second = await post(upstream, BODY, headers);
  assert.equal(second.status, 200);
  await second.body?.cancel();
});

Deno.test("the latency passes before the answer", async () => {
  await using upstream = startMockUpstream({ latencyMs: 150 });
  const started = performance.now();
  const response = await post(upstream, BODY);
  const elapsed = performance.now() - started;
  await response.body?.cancel();
  assert.ok(elapsed >= 150, `answered after ${elapsed} ms`);
});

Deno.test("slow uses x-mock-latency-ms, and a stream spaces its words by tokens per second", async () => {
  await using upstream = startMockUpstream();
  const slowStarted = performance.now();
  const slow = await post(upstream, BODY, {
    "x-mock-scenario": "slow",
    "x-mock-latency-ms": "120",
  });
  const slowElapsed = performance.now() - slowStarted;
  assert.equal((await slow.json()).choices[0].message.content, "Hello there, mock");
  assert.ok(slowElapsed >= 120, `slow answered after ${slowElapsed} ms`);

  const streamStarted = performance.now();
  const streamed = await post(upstream, { ...BODY, stream: true }, {
    "x-mock-tokens-per-second": "20",
  });
  assert.equal((await events(streamed)).at(-1), "[DONE]");
  const streamElapsed = performance.now() - streamStarted;
  assert.ok(streamElapsed >= 100, `three words at 20/s took ${streamElapsed} ms`);
});

Deno.test("GET /stats reports the counters and POST /stats/reset zeroes them", async () => {
  await using upstream = startMockUpstream();
  await (await post(upstream, BODY)).body?.cancel();
  await (await post(upstream, BODY, { "x-mock-scenario": "500" })).body?.cancel();
  const expected: MockUpstreamStats = {
    requests: 2,
    completed: 1,
    errors: 1,
    aborts: 0,
    openConnections: 0,
    maxOpenConnections: 1,
    byScenario: { ok: 1, "500": 1 },
  };
  assert.deepEqual(await (await fetch(new URL("/stats", upstream.url))).json(), expected);
  assert.deepEqual(upstream.stats(), expected);
  await (await fetch(new URL("/stats/reset", upstream.url), { method: "POST" })).body?.cancel();
  assert.deepEqual(upstream.stats(), {
    requests: 0,
    completed: 0,
    errors: 0,
    aborts: 0,
    openConnections: 0,
    maxOpenConnections: 0,
    byScenario: {},
  });
});

Deno.test("the error rate is applied by a seeded PRNG: the same seed answers the same", async () => {
  const statuses = async (seed: number) => {
    await using upstream = startMockUpstream({ errorRate: 0.5, seed });
    const result: number[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await post(upstream, BODY);
      await response.body?.cancel();
      result.push(response.status);
    }
    return result;
  };
  const first = await statuses(42);
  assert.deepEqual(await statuses(42), first);
  assert.ok(first.includes(500) && first.includes(200), `a mix of answers: ${first}`);
});

Deno.test("a bad option throws a RangeError naming it", () => {
  assert.throws(() => startMockUpstream({ errorRate: 2 }), {
    name: "RangeError",
    message: "Cannot start mock upstream: errorRate must be 0 to 1, current value is 2",
  });
  assert.throws(() => startMockUpstream({ errorRate: 0.6, hangRate: 0.6 }), RangeError);
  assert.throws(() => startMockUpstream({ tokensPerSecond: 0 }), /tokensPerSecond/);
});

const SCRIPT = new URL("../../scripts/mock_upstream.ts", import.meta.url).pathname;

Deno.test("run as a script it prints its URL, serves, and stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1,localhost", SCRIPT, "--model", "cli-model"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { done, value } = await lines.read();
    if (done) break;
    out += value;
  }
  const { url } = JSON.parse(out.split("\n")[0]!);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  const models = await (await fetch(`${url}/models`)).json();
  assert.equal(models.data[0].id, "cli-model");
  child.kill("SIGTERM");
  while (!(await lines.read()).done);
  const status = await child.status;
  await stderr;
  assert.equal(status.code, 0);
});

Deno.test("run as a script a bad flag value exits 2 naming the flag", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1,localhost", SCRIPT, "--error-rate", "lots"],
  }).output();
  assert.equal(code, 2);
  assert.equal(stdout.byteLength, 0);
  assert.match(new TextDecoder().decode(stderr), /--error-rate.*"lots"/);
});
