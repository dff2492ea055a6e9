// The OpenAI-compatible routes through the handler: wire format, sessions, supersession, errors. No sockets.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ProviderError } from "../../../actors/errors.ts";
import type { TroupeEvent } from "../../../actors/events.ts";
import type { StreamEvent } from "../../../actors/reply.ts";
import type { Runtime } from "../../../actors/runtime.ts";
import { createHandler } from "../../../adapters/http/handler.ts";
import { memoryStore } from "../../../adapters/store/memory_store.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { nextEvent } from "../../_helpers/next_event.ts";
import { BASE, post, setup } from "./_handler_setup.ts";

// Long enough that a run is still in flight when the test acts on it; tests supersede or cancel it.
const IN_FLIGHT_MS = 60_000;

function chat(body: unknown, headers: Record<string, string> = {}): Request {
  return post("/v1/chat/completions", body, headers);
}

function user(content: string) {
  return { role: "user", content };
}

/** The `data:` payloads of an SSE body, in order; every frame must be a bare `data:` line. */
function dataFrames(text: string): string[] {
  assert(text.endsWith("\n\n"), `an SSE body ends with a blank line: ${JSON.stringify(text)}`);
  return text.slice(0, -2).split("\n\n").map((frame) => {
    assert(frame.startsWith("data: ") && !frame.includes("\n"), `one data line: ${frame}`);
    return frame.slice(6);
  });
}

interface OpenAiErrorShape {
  code: string;
  message: string;
  type: string;
  param: string | null;
  field?: string;
  run?: string;
  superseded_by?: string;
}

async function openAiError(response: Response, status: number, code: string) {
  const body = await response.json() as { error: OpenAiErrorShape };
  assertEquals(response.status, status, JSON.stringify(body));
  assertEquals(body.error.code, code);
  assert(body.error.message.length > 0);
  assert(typeof body.error.type === "string");
  assertEquals(body.error.param, body.error.field ?? null);
  return body.error;
}

Deno.test("a completion has OpenAI's fields, field for field", async () => {
  await using t = setup();
  const before = Math.floor(Date.now() / 1000);
  const response = await t.handler(
    chat({ model: "gpt-test", messages: [user("hello there")] }, { "x-session-id": "s1" }),
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("x-session-id"), "s1");
  const body = await response.json();
  assertEquals(Object.keys(body).sort(), ["choices", "created", "id", "model", "object", "usage"]);
  assert(/^chatcmpl-[0-9a-f]{32}$/.test(body.id), body.id);
  assertEquals(body.object, "chat.completion");
  assert(body.created >= before && body.created <= Math.ceil(Date.now() / 1000));
  assertEquals(body.model, "mock-model");
  assertEquals(body.choices, [{
    index: 0,
    message: { role: "assistant", content: "hello there", refusal: null },
    logprobs: null,
    finish_reason: "stop",
  }]);
  // The mock counts a token per four characters: 11 characters each way.
  assertEquals(body.usage, {
    prompt_tokens: 3,
    completion_tokens: 3,
    total_tokens: 6,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  });
  assertEquals(response.headers.get("x-troupe-run-id") !== null, true);
});

Deno.test("the run answers from the messages sent, and the session stores the new turn and answer", async () => {
  await using t = setup();
  const headers = { "x-session-id": "s1" };
  await t.handler(chat({ model: "m", messages: [user("first")] }, headers));
  const messages = [
    { role: "developer", content: "be brief" },
    user("first"),
    { role: "assistant", content: null },
    { role: "user", content: [{ type: "text", text: "sec" }, { type: "text", text: "ond" }] },
    user("third"),
  ];
  const response = await t.handler(chat({ model: "m", messages }, headers));
  assertEquals(response.status, 200);
  assertEquals(t.llm.requests.at(-1)!.messages, [
    { role: "system", content: "be brief" },
    { role: "user", content: "first" },
    { role: "assistant", content: "" },
    { role: "user", content: "second\n\nthird" },
  ]);
  const history = await t.runtime.history({ session: "s1" });
  assertEquals(history.messages.map((m) => [m.role, m.content]), [
    ["user", "first"],
    ["assistant", "first"],
    ["user", "second\n\nthird"],
    ["assistant", "second\n\nthird"],
  ]);
});

Deno.test("without X-Session-Id every call is a one-shot session of its own, stored without a history read", async () => {
  const store = memoryStore();
  const reads: string[] = [];
  const readHistory = store.readHistory.bind(store);
  store.readHistory = (org, session, query) => {
    reads.push(session);
    return readHistory(org, session, query);
  };
  await using t = setup({}, { store });
  const a = await t.handler(chat({ model: "m", messages: [user("a")] }));
  const b = await t.handler(chat({ model: "m", messages: [user("b")] }));
  const [sa, sb] = [a.headers.get("x-session-id")!, b.headers.get("x-session-id")!];
  assert(sa.startsWith("oneshot-") && sb.startsWith("oneshot-") && sa !== sb, `${sa} ${sb}`);
  assertEquals((await a.json()).choices[0].message.content, "a");
  assertEquals((await b.json()).choices[0].message.content, "b");
  // Its id was made by the route, so nothing can be stored under it: activation reads nothing.
  assertEquals(reads, []);
  const stored = await t.runtime.history({ session: sa });
  assertEquals(stored.messages.map((m) => [m.role, m.content]), [["user", "a"], [
    "assistant",
    "a",
  ]]);
  // A named session, new or not, is read on activation.
  reads.length = 0;
  await t.handler(chat({ model: "m", messages: [user("c")] }, { "x-session-id": "named" }));
  assertEquals(reads, ["named"]);
});

Deno.test("a one-shot session is passivated once answered, and its id can carry the conversation on", async () => {
  await using t = setup();
  const events: TroupeEvent[] = [];
  t.runtime.subscribe((event) => events.push(event));
  const first = await t.handler(chat({ model: "m", messages: [user("a")] }));
  const session = first.headers.get("x-session-id")!;
  await first.body?.cancel();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(t.runtime.activeSessions, 0, "no live session is left behind");
  assertEquals(
    events.filter((e) => e.session === session).map((e) =>
      e.type === "session.passivated" ? `${e.type} ${e.reason}` : e.type
    ).at(-1),
    "session.passivated idle",
  );
  // The client may name it afterwards: it is activated again with its stored history.
  const again = await t.handler(
    chat({ model: "m", messages: [user("a"), { role: "assistant", content: "a" }, user("b")] }, {
      "x-session-id": session,
    }),
  );
  assertEquals(again.status, 200);
  await again.body?.cancel();
  const activated = events.filter((e) => e.session === session && e.type === "session.activated");
  assertEquals(activated.map((e) => e.type === "session.activated" && e.historyLength), [0, 2]);
  const stored = await t.runtime.history({ session });
  assertEquals(stored.messages.map((m) => m.content), ["a", "a", "b", "b"]);
});

/** A chat request whose client can go away (its signal is the request's). */
function abortableChat(body: unknown, headers: Record<string, string> = {}) {
  const client = new AbortController();
  const request = new Request(chat(body, headers), { signal: client.signal });
  return { request, client };
}

Deno.test("a one-shot call whose client goes away cancels its run and upstream call, streaming or not", async () => {
  await using t = setup({ latencyMs: IN_FLIGHT_MS });
  for (const stream of [false, true]) {
    const { request, client } = abortableChat({ model: "m", stream, messages: [user("hi")] });
    const answering = t.handler(request).catch(() => null);
    await eventually("the call upstream", () => t.llm.stats.inFlight === 1);
    client.abort();
    await eventually("the upstream call aborted", () => t.llm.stats.inFlight === 0);
    await answering;
  }
  assertEquals(t.llm.stats.aborted, 2);
  assertEquals(t.runtime.activeSessions, 0);
});

Deno.test("a one-shot stream read in part then dropped cancels its run", async () => {
  await using t = setup({ tokensPerSecond: 2 });
  const events: TroupeEvent[] = [];
  t.runtime.subscribe((event) => events.push(event));
  const response = await t.handler(
    chat({ model: "m", stream: true, messages: [user("one two three four five six")] }),
  );
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  await eventually("the run cancelled", () => events.some((e) => e.type === "run.cancelled"));
  assertEquals(t.llm.stats.aborted, 1);
});

Deno.test("a named session's stream dropped mid-way is a plain end: the run goes on, nothing is reported", async () => {
  await using t = setup({ tokensPerSecond: 20 });
  const events: TroupeEvent[] = [];
  t.runtime.subscribe((event) => events.push(event));
  const response = await t.handler(
    chat({ model: "m", stream: true, messages: [user("one two three four")] }, {
      "x-session-id": "named",
    }),
  );
  const reader = response.body!.getReader();
  // The role chunk and the first delta; then the stream waits for the next delta.
  await reader.read();
  await reader.read();
  await new Promise((resolve) => setTimeout(resolve, 10));
  await reader.cancel();
  await eventually("the run completed", () => events.some((e) => e.type === "run.completed"));
  assertEquals(t.unexpected, [], "a client leaving is no internal error");
});

Deno.test("a body cut short by its client is a 400, not an internal error", async () => {
  await using t = setup();
  // What Deno's server hands over when the client closes before its Content-Length is met.
  const cut = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"model":"m","messages":[{"ro'));
        controller.error(new Error("BadResource: Cannot read request body"));
      },
    });
  for (const path of ["/v1/chat/completions", "/v1/sessions/s1/messages"]) {
    const response = await t.handler(
      new Request(`${BASE}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: cut(),
      }),
    );
    assertEquals(response.status, 400, path);
    assertEquals((await response.json()).error.code, "invalid_json", path);
  }
  assertEquals(t.unexpected, []);
});

Deno.test("a named session's run goes on when its client goes away, and answers into history", async () => {
  await using t = setup({ latencyMs: 50 });
  const { request, client } = abortableChat(
    { model: "m", messages: [user("keep going")] },
    { "x-session-id": "named" },
  );
  const answering = t.handler(request);
  await eventually("the call upstream", () => t.llm.stats.inFlight === 1);
  client.abort();
  assertEquals((await answering).status, 200);
  assertEquals(t.llm.stats.aborted, 0);
  const stored = await t.runtime.history({ session: "named" });
  assertEquals(stored.messages.map((m) => m.role), ["user", "assistant"]);
});

Deno.test("a one-shot call answered in full is not cancelled by the end of its request", async () => {
  await using t = setup();
  const cancels: unknown[] = [];
  const cancel = t.runtime.cancel.bind(t.runtime);
  t.runtime.cancel = (input) => {
    cancels.push(input);
    return cancel(input);
  };
  for (const stream of [false, true]) {
    const { request, client } = abortableChat({ model: "m", stream, messages: [user("hi")] });
    const response = await t.handler(request);
    assertEquals(response.status, 200);
    await response.text();
    // Deno aborts a served request's signal once its response is sent.
    client.abort();
  }
  assertEquals(cancels, []);
});

Deno.test("a stream is chat.completion.chunk data events: role, deltas, finish, usage, [DONE]", async () => {
  await using t = setup({ tokensPerSecond: 1000 });
  const response = await t.handler(chat({
    model: "gpt-test",
    messages: [user("one two three")],
    stream: true,
    stream_options: { include_usage: true },
  }));
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const frames = dataFrames(await response.text());
  assertEquals(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
  const ids = new Set(chunks.map((c) => c.id));
  assertEquals(ids.size, 1);
  for (const chunk of chunks) {
    assertEquals(chunk.object, "chat.completion.chunk");
    assertEquals(chunk.model, "gpt-test");
    assert(Number.isInteger(chunk.created));
  }
  assertEquals(chunks[0].choices, [{
    index: 0,
    delta: { role: "assistant", content: "", refusal: null },
    logprobs: null,
    finish_reason: null,
  }]);
  const text = chunks.slice(1, -2).map((c) => c.choices[0].delta.content).join("");
  assertEquals(text, "one two three");
  assert(chunks.slice(1, -2).length === 3, "one chunk per streamed token");
  assertEquals(chunks.at(-2).choices, [{
    index: 0,
    delta: {},
    logprobs: null,
    finish_reason: "stop",
  }]);
  // With include_usage every chunk has usage: null, but the last, which has no choices.
  for (const chunk of chunks.slice(0, -1)) assertEquals(chunk.usage, null);
  assertEquals(chunks.at(-1).choices, []);
  assertEquals(chunks.at(-1).usage.total_tokens, 8);
});

Deno.test("without include_usage a stream's chunks have no usage field", async () => {
  await using t = setup();
  const response = await t.handler(chat({ model: "m", messages: [user("hi")], stream: true }));
  const frames = dataFrames(await response.text());
  assertEquals(frames.at(-1), "[DONE]");
  for (const frame of frames.slice(0, -1)) assert(!("usage" in JSON.parse(frame)), frame);
});

Deno.test("double texting: the first call gets 409 superseded naming the run that answers both", async () => {
  await using t = setup({
    latencyMs: (r) => r.messages.at(-1)!.content === "A" ? IN_FLIGHT_MS : 0,
  });
  const headers = { "x-session-id": "s1" };
  const started = nextEvent(t.runtime, "run.started");
  const first = t.handler(chat({ model: "m", messages: [user("A")] }, headers));
  await started;
  // The client keeps the conversation: the second call resends the first text.
  const second = await t.handler(chat({ model: "m", messages: [user("A"), user("B")] }, headers));
  assertEquals(second.status, 200);
  const answer = await second.json();
  assertEquals(answer.choices[0].message.content, "A\n\nB");
  const refused = await first;
  assertEquals(refused.headers.get("x-should-retry"), "false");
  const error = await openAiError(refused, 409, "superseded");
  assertEquals(error.type, "conflict_error");
  assertEquals(error.superseded_by, second.headers.get("x-troupe-run-id"));
  assertEquals(error.run, refused.headers.get("x-troupe-run-id"));
  assertEquals(t.llm.stats.calls, 2);
  assertEquals(t.llm.stats.aborted, 1);
});

Deno.test("a superseded stream ends with the superseded error and no [DONE]", async () => {
  await using t = setup({
    tokensPerSecond: 50,
    reply: (r) => r.messages.at(-1)!.content === "story" ? "word ".repeat(500) : "short",
  });
  const headers = { "x-session-id": "s1" };
  const streaming = await t.handler(
    chat({ model: "m", messages: [user("story")], stream: true }, headers),
  );
  assertEquals(streaming.status, 200);
  const reader = streaming.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = (await reader.read()).value!;
  const second = await t.handler(chat({ model: "m", messages: [user("go on")] }, headers));
  assertEquals(second.status, 200);
  for (let part = await reader.read(); !part.done; part = await reader.read()) text += part.value;
  const frames = dataFrames(text);
  const last = JSON.parse(frames.at(-1)!);
  assertEquals(last.error.code, "superseded");
  assertEquals(last.error.superseded_by, second.headers.get("x-troupe-run-id"));
  assert(!frames.includes("[DONE]"));
  assert(frames.slice(0, -1).some((f) => JSON.parse(f).choices[0]?.delta.content === "word "));
});

Deno.test("a message the reject policy refuses gets 409 rejected naming the run in flight", async () => {
  await using t = setup({ latencyMs: IN_FLIGHT_MS }, { policy: "reject" });
  const headers = { "x-session-id": "s1" };
  const started = nextEvent(t.runtime, "run.started");
  const first = t.handler(chat({ model: "m", messages: [user("A")] }, headers));
  const run = (await started as { run: string }).run;
  const refused = await t.handler(chat({ model: "m", messages: [user("B")] }, headers));
  assertEquals(refused.headers.get("x-should-retry"), "false");
  assertEquals((await openAiError(refused, 409, "rejected")).run, run);
  await t.runtime.cancel({ session: "s1" });
  await openAiError(await first, 409, "cancelled");
});

Deno.test("a provider failure is a 502 that keeps the provider's code and retryability", async () => {
  await using t = setup({
    fail: () => new ProviderError("upstream said 500", { retryable: true }),
  });
  const response = await t.handler(chat({ model: "m", messages: [user("x")] }));
  assertEquals(response.headers.get("x-should-retry"), "true");
  const error = await openAiError(response, 502, "provider_error");
  assertEquals(error.type, "server_error");
});

Deno.test("bad input gets 400 naming the field, with OpenAI's type and param", async () => {
  await using t = setup({}, { maxContentLength: 20 });
  const cases: Array<[unknown, string]> = [
    [{ messages: [user("x")] }, "model"],
    [{ model: "m" }, "messages"],
    [{ model: "m", messages: [] }, "messages"],
    [{ model: "m", messages: [user("x"), { role: "assistant", content: "y" }] }, "messages"],
    [{ model: "m", messages: [{ role: "tool", content: "x" }, user("x")] }, "messages[0].role"],
    [{ model: "m", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
    [{ model: "m", messages: ["x"] }, "messages[0]"],
    [{ model: "m", messages: [{ role: "user", content: 3 }] }, "messages[0].content"],
    [
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] },
      "messages[0].content[0].type",
    ],
    [{ model: "m", messages: [user("  ")] }, "messages[0].content"],
    [{ model: "m", messages: [user("x")], n: 2 }, "n"],
    [{ model: "m", messages: [user("x")], tools: [{ type: "function" }] }, "tools"],
    [{ model: "m", messages: [user("x")], stream: "yes" }, "stream"],
    [
      { model: "m", messages: [user("x")], stream_options: { include_usage: 1 } },
      "stream_options.include_usage",
    ],
    [{ model: "m", messages: [user("x")], max_tokens: 0 }, "max_tokens"],
    [{ model: "m", messages: [user("x")], max_completion_tokens: "9" }, "max_completion_tokens"],
    [{ model: "m", messages: [user("x")], temperature: 3 }, "temperature"],
    [{ model: "m", messages: [user("x")], top_p: 2 }, "top_p"],
    [{ model: "m", messages: [user("x")], stop: "" }, "stop"],
    [{ model: "m", messages: [user("x")], stop: ["a", "b", "c", "d", "e"] }, "stop"],
    [{ model: "m", messages: [user("x")], stop: ["a", 1] }, "stop[1]"],
    [{ model: "m", messages: [user("x")], seed: "1" }, "seed"],
    [{ model: "m", messages: [user("x")], presence_penalty: 9 }, "presence_penalty"],
    [{ model: "m", messages: [user("x")], frequency_penalty: -9 }, "frequency_penalty"],
    [
      { model: "m", messages: [user("x")], response_format: { type: "yaml" } },
      "response_format.type",
    ],
    [
      { model: "m", messages: [user("x")], response_format: { type: "json_schema" } },
      "response_format.json_schema",
    ],
    [
      {
        model: "m",
        messages: [user("x")],
        response_format: { type: "json_schema", json_schema: { name: "a", schema: "{}" } },
      },
      "response_format.json_schema.schema",
    ],
    [{ model: "m", messages: [user("x")], reasoning_effort: 3 }, "reasoning_effort"],
    [{ model: "m", messages: [user("x")], logprobs: true }, "logprobs"],
    [{ model: "m", messages: [user("x")], top_logprobs: 2 }, "top_logprobs"],
    [{ model: "m", messages: [user("x")], audio: { voice: "alloy" } }, "audio"],
    [{ model: "m", messages: [user("x")], modalities: ["text", "audio"] }, "modalities"],
    [{ model: "m", messages: [user("x".repeat(21))] }, "messages"],
    [{
      model: "m",
      messages: [user("x".repeat(21)), { role: "assistant", content: "" }, user("q")],
    }, "messages[0].content"],
  ];
  for (const [body, field] of cases) {
    const error = await openAiError(await t.handler(chat(body)), 400, "invalid_input");
    assertEquals([JSON.stringify(body), error.field], [JSON.stringify(body), field]);
    assertEquals(error.type, "invalid_request_error");
  }
  const badSession = await t.handler(
    chat({ model: "m", messages: [user("x")] }, { "x-session-id": "no spaces" }),
  );
  assertEquals((await openAiError(badSession, 400, "invalid_input")).field, "X-Session-Id");
  assertEquals(t.llm.stats.calls, 0);
  assertEquals(t.unexpected, []);
});

Deno.test("the sampling and format parameters reach the provider; null is absent, others are ignored", async () => {
  await using t = setup();
  const schema = { type: "object", properties: { city: { type: "string" } } };
  const bodies = [
    { model: "m", messages: [user("a")], max_tokens: 32, temperature: 0.7, top_p: 0.9 },
    { model: "m", messages: [user("b")], max_tokens: 32, max_completion_tokens: 16 },
    { model: "m", messages: [user("c")], max_tokens: null, temperature: null, stop: null },
    {
      model: "m",
      messages: [user("d")],
      stop: "END",
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      response_format: { type: "json_object" },
      reasoning_effort: "low",
      user: "end-user-1",
      logprobs: false,
      modalities: ["text"],
      store: false,
    },
    {
      model: "m",
      messages: [user("e")],
      stop: ["\n", "END"],
      response_format: {
        type: "json_schema",
        json_schema: { name: "place", schema, strict: true },
      },
    },
    { model: "m", messages: [user("f")], stop: [] },
  ];
  for (const body of bodies) assertEquals((await t.handler(chat(body))).status, 200);
  assertEquals(t.llm.requests.map((r) => r.options), [
    { maxTokens: 32, temperature: 0.7, topP: 0.9 },
    { maxTokens: 16 },
    undefined,
    {
      stop: ["END"],
      seed: 7,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      responseFormat: { type: "json_object" },
      reasoningEffort: "low",
    },
    {
      stop: ["\n", "END"],
      responseFormat: { type: "json_schema", jsonSchema: { name: "place", schema, strict: true } },
    },
    undefined,
  ]);
});

Deno.test("the body's framing errors keep their status: 415, 400 invalid_json, 413", async () => {
  await using t = setup({}, {}, { maxBodyBytes: 64 });
  const wrongType = await t.handler(
    new Request(`${BASE}/v1/chat/completions`, { method: "POST", body: "{}" }),
  );
  await openAiError(wrongType, 415, "unsupported_media_type");
  await openAiError(await t.handler(chat("{nope")), 400, "invalid_json");
  await openAiError(
    await t.handler(chat({ model: "m", messages: [user("x".repeat(100))] })),
    413,
    "payload_too_large",
  );
});

Deno.test("GET /v1/models lists the configured models; a wrong method gets 405", async () => {
  await using t = setup({}, {}, { models: ["alpha", "beta"] });
  const response = await t.handler(new Request(`${BASE}/v1/models`));
  const body = await response.json();
  assertEquals(body.object, "list");
  assertEquals(
    body.data.map((
      m: { id: string; object: string; owned_by: string },
    ) => [m.id, m.object, m.owned_by]),
    [
      ["alpha", "model", "troupe"],
      ["beta", "model", "troupe"],
    ],
  );
  const wrong = await t.handler(new Request(`${BASE}/v1/chat/completions`));
  assertEquals(wrong.status, 405);
  assertEquals(wrong.headers.get("allow"), "POST");
  await wrong.body?.cancel();
});

Deno.test("an unexpected failure is a bare 500, reported once, its details kept from the client", async () => {
  await using t = setup();
  const secret = "password=hunter2 at /srv/db";
  const broken: Runtime = { ...t.runtime, send: () => Promise.reject(new Error(secret)) };
  const streaming: Runtime = {
    ...t.runtime,
    stream: () => {
      throw new Error(secret);
    },
  };
  for (const [runtime, stream] of [[broken, false], [streaming, true]] as const) {
    const reported: unknown[] = [];
    const handler = createHandler({ runtime, onError: (error) => reported.push(error) });
    const response = await handler(chat({ model: "m", messages: [user("x")], stream }));
    const text = await response.text();
    assertEquals(response.status, 500);
    assertEquals(JSON.parse(text).error.code, "internal_error");
    assert(!text.includes("hunter2"));
    assertEquals(reported.length, 1);
  }
});

Deno.test("a stream that fails after it began ends with a bare internal_error event, reported once", async () => {
  await using t = setup();
  const reported: unknown[] = [];
  const failing: Runtime = {
    ...t.runtime,
    stream: () => {
      let step = 0;
      const events: AsyncIterableIterator<StreamEvent> = {
        next: () =>
          step++ === 0
            ? Promise.resolve({ done: false, value: { type: "delta", text: "par" } })
            : Promise.reject(new Error("socket hang up at 10.0.0.7")),
        [Symbol.asyncIterator]: () => events,
      };
      return events;
    },
  };
  const handler = createHandler({ runtime: failing, onError: (error) => reported.push(error) });
  const response = await handler(chat({ model: "m", messages: [user("x")], stream: true }));
  assertEquals(response.status, 200);
  const text = await response.text();
  const last = JSON.parse(dataFrames(text).at(-1)!);
  assertEquals([last.error.code, last.error.type], ["internal_error", "server_error"]);
  assert(!text.includes("10.0.0.7"));
  assertEquals(reported.length, 1);
});
