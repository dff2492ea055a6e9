// Acceptance: the official `openai` npm client, unchanged, against a real Troupe server on loopback.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import type { LlmProvider } from "../../../actors/ports.ts";
import { createRuntime, type Runtime } from "../../../actors/runtime.ts";
import { createHandler } from "../../../adapters/http/handler.ts";
import { type MockLlm, mockLlm, type MockLlmOptions } from "../../../adapters/llm/mock_llm.ts";
import { openAiCompatible } from "../../../adapters/llm/openai_compatible.ts";
import { llmPool } from "../../../adapters/workers/llm_pool.ts";
import { startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { fixture, serveFixture } from "../llm/_fixtures.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { nextEvent } from "../../_helpers/next_event.ts";

// Long enough that a run is still in flight when the test acts on it; tests supersede it, never wait it out.
const IN_FLIGHT_MS = 60_000;

interface Server extends AsyncDisposable {
  client: OpenAI;
  llm: MockLlm;
  runtime: Runtime;
  baseURL: string;
}

/** A Troupe server over `llm` on a free loopback port, and an OpenAI client pointed at it. */
function serveOver(llm: LlmProvider, models?: string[]): Omit<Server, "llm"> {
  const runtime = createRuntime({ llm });
  const handler = createHandler({ runtime, ...(models === undefined ? {} : { models }) });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const baseURL = `http://127.0.0.1:${server.addr.port}/v1`;
  // The client as anyone would make it: default retries, timeouts and headers.
  const client = new OpenAI({ apiKey: "sk-not-checked", baseURL });
  return {
    client,
    runtime,
    baseURL,
    async [Symbol.asyncDispose]() {
      await runtime.shutdown({ graceMs: 0 });
      await server.shutdown();
    },
  };
}

function serve(llmOptions: MockLlmOptions = {}): Server {
  const llm = mockLlm(llmOptions);
  return { ...serveOver(llm, ["troupe-test"]), llm };
}

function lastTurn(request: { messages: { content: string }[] }): string {
  return request.messages.at(-1)!.content;
}

Deno.test("openai client: a non-streaming completion", async () => {
  await using s = serve();
  const completion = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }],
  });
  assertEquals(completion.object, "chat.completion");
  assertEquals(completion.choices[0]!.message.content, "hello");
  assertEquals(completion.choices[0]!.finish_reason, "stop");
  assertEquals(completion.usage, {
    prompt_tokens: 4,
    completion_tokens: 2,
    total_tokens: 6,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  });
  // The prompt is the conversation the client sent.
  assertEquals(s.llm.requests[0]!.messages, [
    { role: "system", content: "be brief" },
    { role: "user", content: "hello" },
  ]);
});

Deno.test("openai client: a streaming completion with include_usage", async () => {
  await using s = serve({ tokensPerSecond: 1000 });
  const stream = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "one two three four" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish: string | null = null;
  let total: number | undefined;
  const ids = new Set<string>();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
    total = chunk.usage?.total_tokens ?? total;
  }
  assertEquals(text, "one two three four");
  assertEquals(finish, "stop");
  assertEquals(total, 10);
  assertEquals(ids.size, 1);
});

Deno.test("openai client: double texting on one X-Session-Id, the first call is superseded with 409", async () => {
  await using s = serve({ latencyMs: (r) => lastTurn(r) === "book a table" ? IN_FLIGHT_MS : 0 });
  const options = { headers: { "X-Session-Id": "chat-42" } };
  const started = nextEvent(s.runtime, "run.started");
  const first = s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "book a table" }],
  }, options);
  let supersededBy: unknown;
  const refused = rejects(first, (error: unknown) => {
    assert(error instanceof APIError, String(error));
    assertEquals(error.status, 409);
    assertEquals(error.code, "superseded");
    supersededBy = (error.error as { superseded_by?: string }).superseded_by;
    return true;
  });
  await started;
  const { data, response } = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "for four, at 8" }],
  }, options).withResponse();
  await refused;
  assertEquals(supersededBy, response.headers.get("x-troupe-run-id"));
  assertEquals(data.choices[0]!.message.content, "book a table\n---\nfor four, at 8");
  // The client did not retry the 409: one aborted call, one merged call.
  assertEquals([s.llm.stats.calls, s.llm.stats.aborted], [2, 1]);
});

Deno.test("openai client: with an Idempotency-Key, retries after timeouts get the first call's answer, one upstream call", async () => {
  await using s = serve({ latencyMs: 400 });
  // The client gives up on each try long before the answer and retries, with the same headers.
  const client = new OpenAI({
    apiKey: "sk-not-checked",
    baseURL: s.baseURL,
    timeout: 150,
    maxRetries: 5,
  });
  for (const headers of [{}, { "X-Session-Id": "chat-7" }]) {
    const before = s.llm.stats.calls;
    const { data, response } = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "book a table" }],
    }, { headers: { "Idempotency-Key": `key-${before}`, ...headers } }).withResponse();
    assertEquals(data.choices[0]!.message.content, "book a table");
    assertEquals(s.llm.stats.calls - before, 1, "the retries joined the first call");
    assertEquals(s.llm.stats.aborted, 0, "a client that timed out did not cancel its run");
    if ("X-Session-Id" in headers) assertEquals(response.headers.get("x-session-id"), "chat-7");
  }
  // Without a session header, the key names the one-shot session: the same key, the same session.
  const again = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "something else" }],
  }, { headers: { "Idempotency-Key": "key-0" } }).withResponse();
  assertEquals(again.data.choices[0]!.message.content, "book a table", "the first outcome");
  assertEquals(s.llm.stats.calls, 2);
  const session = again.response.headers.get("x-session-id")!;
  assert(/^oneshot-[0-9a-f]{32}$/.test(session), session);
  assertEquals((await s.runtime.history({ session })).messages.length, 2);
  await rejects(
    s.client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    }, { headers: { "Idempotency-Key": "not a valid key" } }),
    (error: unknown) => {
      assert(error instanceof APIError && error.status === 400, String(error));
      assertEquals(error.param, "Idempotency-Key");
      return true;
    },
  );
});

Deno.test("openai client: a superseded stream ends with an error carrying code superseded", async () => {
  await using s = serve({
    tokensPerSecond: 50,
    reply: (r) => lastTurn(r) === "tell me a story" ? "once upon a time ".repeat(200) : "ok",
  });
  const options = { headers: { "X-Session-Id": "chat-7" } };
  const stream = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "tell me a story" }],
    stream: true,
  }, options);
  const iterator = stream[Symbol.asyncIterator]();
  let text = "";
  // Read until the story has started, then double-text.
  while (text === "") text += (await iterator.next()).value?.choices[0]?.delta.content ?? "";
  const second = await s.client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [
      { role: "user", content: "tell me a story" },
      { role: "user", content: "a short one" },
    ],
  }, options);
  await rejects(
    (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        text += next.value.choices[0]?.delta.content ?? "";
      }
    })(),
    (error: unknown) => {
      assert(error instanceof APIError, String(error));
      assertEquals(error.code, "superseded");
      return true;
    },
  );
  assert(text.startsWith("once"), text);
  // The merged run answered the resent story request once, then the new text.
  assertEquals(second.choices[0]!.message.content, "ok");
  assertEquals(s.llm.requests.at(-1)!.messages, [
    { role: "user", content: "tell me a story\n\na short one" },
  ]);
});

Deno.test("openai client: models.list", async () => {
  await using s = serve();
  const ids: string[] = [];
  for await (const model of s.client.models.list()) ids.push(model.id);
  assertEquals(ids, ["troupe-test"]);
});

Deno.test("openai client: a bad request surfaces as BadRequestError with the field as param", async () => {
  await using s = serve();
  await rejects(
    s.client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }],
    }),
    (error: unknown) => {
      assert(error instanceof OpenAI.BadRequestError, String(error));
      assertEquals([error.code, error.param], ["invalid_input", "messages"]);
      return true;
    },
  );
  await eventually("no call reached the provider", () => s.llm.stats.calls === 0, 1000);
});

Deno.test("openai client -> Troupe -> the real provider -> mock upstream: streams, and a double text aborts upstream", async () => {
  // Long enough that the first call is still upstream when the second arrives; the test waits for that.
  await using upstream = startMockUpstream({ latencyMs: 300, model: "upstream-model" });
  await using s = serveOver(
    openAiCompatible({ baseUrl: upstream.url, apiKey: "sk-upstream", model: "upstream-model" }),
  );
  const { client } = s;
  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "one two three" }],
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  assertEquals(text, "one two three");

  const options = { headers: { "X-Session-Id": "chat-9" } };
  const first = client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "book a table" }],
  }, options).then(() => "completed", (error: APIError) => error.code);
  await eventually("the first call to be upstream", () => upstream.stats().requests === 2);
  const second = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "book a table" }, { role: "user", content: "for four" }],
  }, options);
  assertEquals(await first, "superseded");
  assertEquals(second.choices[0]!.message.content, "book a table\n\nfor four");
  assertEquals(second.model, "upstream-model");
  // The superseded call's upstream request was cancelled, not left to finish.
  await eventually("the upstream abort to be counted", () => upstream.stats().aborts === 1);
  assertEquals(upstream.stats().requests, 3);
});

Deno.test("openai client -> Troupe -> worker pool -> upstream: sampling and format parameters arrive as sent", async () => {
  await using upstream = serveFixture({
    body: await fixture("openai_chat_completion.json"),
    headers: { "content-type": "application/json" },
  });
  await using llm = llmPool({
    provider: {
      kind: "openai-compatible",
      options: { baseUrl: upstream.url, model: "upstream-model", stream: true },
    },
    size: 1,
  });
  await using s = serveOver(llm);
  const { client } = s;
  const schema = { type: "object", properties: { city: { type: "string" } } };
  const sampling = {
    temperature: 0.1,
    top_p: 0.5,
    stop: ["END"],
    seed: 3,
    presence_penalty: 0.2,
    frequency_penalty: 0.4,
    response_format: {
      type: "json_schema" as const,
      json_schema: { name: "place", schema, strict: true },
    },
    reasoning_effort: "low" as const,
  };
  const completion = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "where?" }],
    max_completion_tokens: 40,
    user: "end-user-7",
    ...sampling,
  });
  assertEquals(completion.object, "chat.completion");
  const { model: _, messages: __, stream: ___, ...sent } = upstream.requests[0]!.body;
  // Each goes on under its OpenAI name; the cap under the provider's (max_tokens by
  // default), and `user` not at all.
  assertEquals(sent, { max_tokens: 40, ...sampling });
});

Deno.test("openai client -> Troupe -> worker pool -> mock upstream: a capped reply finishes with length, streamed or not", async () => {
  await using upstream = startMockUpstream({ tokensPerSecond: 1000 });
  await using llm = llmPool({
    provider: {
      kind: "openai-compatible",
      options: { baseUrl: upstream.url, model: "mock-model" },
    },
    size: 1,
  });
  await using s = serveOver(llm);
  const { client } = s;
  const request = {
    model: "gpt-4o-mini",
    messages: [{ role: "user" as const, content: "one two three four" }],
    max_tokens: 2,
  };
  const whole = await client.chat.completions.create(request);
  assertEquals(
    [whole.choices[0]!.message.content, whole.choices[0]!.finish_reason],
    ["one two ", "length"],
  );
  assertEquals(whole.usage?.completion_tokens, 2);
  const stream = await client.chat.completions.create({
    ...request,
    stop: " two",
    max_tokens: 50,
    stream: true,
  });
  let text = "";
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assertEquals([text, finish], ["one", "stop"]);
});
