// HTTP handler tests: every route and error status against a real runtime with the mock LLM, no sockets.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { OverloadedError, ShutdownError } from "../../../actors/errors.ts";
import type { Reply } from "../../../actors/reply.ts";
import type { Runtime } from "../../../actors/runtime.ts";
import { createHandler } from "../../../adapters/http/handler.ts";
import { describeError } from "../../../adapters/http/error_response.ts";
import { formatSseEvent } from "../../../adapters/http/sse.ts";
import { nextEvent } from "../../_helpers/next_event.ts";
import { BASE, post, setup } from "./_handler_setup.ts";

// Long enough that a run is still in flight when the test acts on it; tests cancel it, never wait it out.
const IN_FLIGHT_MS = 60_000;

function get(path: string): Request {
  return new Request(`${BASE}${path}`);
}

async function json(response: Response): Promise<Record<string, unknown>> {
  assertEquals(response.headers.get("content-type"), "application/json; charset=utf-8");
  return await response.json();
}

async function assertError(
  response: Response,
  status: number,
  code: string,
  field?: string,
): Promise<string> {
  const body = await json(response);
  const error = body.error as { code: string; message: string; field?: string };
  assertEquals(response.status, status, JSON.stringify(body));
  assertEquals(error.code, code);
  assertEquals(error.field, field);
  assert(typeof error.message === "string" && error.message.length > 0);
  return error.message;
}

/** Parse an SSE body into its events. */
function parseSse(text: string): { event: string; data: string }[] {
  assert(text.endsWith("\n\n"), `an SSE body ends with a blank line: ${JSON.stringify(text)}`);
  return text.slice(0, -2).split("\n\n").map((frame) => {
    let event = "";
    const data: string[] = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
    }
    return { event, data: data.join("\n") };
  });
}

Deno.test("POST /v1/sessions/{session}/messages answers 200 with the Reply as JSON", async () => {
  await using t = setup();
  const response = await t.handler(post("/v1/sessions/s1/messages", { content: "hello" }));
  assertEquals(response.status, 200);
  const reply = await json(response) as unknown as Reply;
  assertEquals(reply.status, "completed");
  assertEquals(reply.org, "default");
  assertEquals(reply.session, "s1");
  assertEquals(reply.text, "hello");
  assertEquals(reply.answered, [reply.messageId]);
});

Deno.test("POST with the caller's id is idempotent: the same id gets the first outcome", async () => {
  await using t = setup();
  const first = await json(
    await t.handler(post("/v1/sessions/s1/messages", { content: "a", id: "m-1" })),
  );
  const again = await json(
    await t.handler(post("/v1/sessions/s1/messages", { content: "a", id: "m-1" })),
  );
  assertEquals(first.messageId, "m-1");
  assertEquals(again, first);
});

Deno.test("double texting over HTTP: the first POST answers superseded, naming the second's run", async () => {
  await using t = setup({ latencyMs: 20 });
  const started = nextEvent(t.runtime, "run.started");
  const first = t.handler(post("/v1/sessions/s1/messages", { content: "book a table" }));
  await started;
  const second = t.handler(post("/v1/sessions/s1/messages", { content: "for four, at 8" }));
  const [a, b] = await Promise.all([first, second]);
  assertEquals([a.status, b.status], [200, 200]);
  const [replyA, replyB] = [await json(a), await json(b)];
  assertEquals(replyA.status, "superseded");
  assertEquals(replyA.supersededBy, replyB.runId);
  assertEquals(replyB.status, "completed");
  assertEquals(replyB.text, "book a table\n---\nfor four, at 8");
  assertEquals(replyB.answered, [replyA.messageId, replyB.messageId]);
});

Deno.test("a refused message is still a 200: the status is in the body", async () => {
  await using t = setup({ latencyMs: IN_FLIGHT_MS });
  const started = nextEvent(t.runtime, "run.started");
  const first = t.handler(post("/v1/sessions/s1/messages", { content: "a" }));
  await started;
  const refused = await t.handler(
    post("/v1/sessions/s1/messages", { content: "b", policy: "reject" }),
  );
  assertEquals(refused.status, 200);
  assertEquals((await json(refused)).status, "rejected");
  await json(await t.handler(post("/v1/sessions/s1/cancel", "")));
  assertEquals((await json(await first)).status, "cancelled");
});

Deno.test("POST /v1/sessions/{session}/cancel answers how many callers were cancelled", async () => {
  await using t = setup({ latencyMs: IN_FLIGHT_MS });
  const started = nextEvent(t.runtime, "run.started");
  const pending = t.handler(post("/v1/sessions/s1/messages", { content: "a" }));
  await started;
  const response = await t.handler(
    new Request(`${BASE}/v1/sessions/s1/cancel`, { method: "POST" }),
  );
  assertEquals(response.status, 200);
  assertEquals(await json(response), { cancelled: 1 });
  assertEquals((await json(await pending)).status, "cancelled");
  const idle = await t.handler(new Request(`${BASE}/v1/sessions/s1/cancel`, { method: "POST" }));
  assertEquals(await json(idle), { cancelled: 0 });
});

Deno.test("GET /v1/sessions/{session}/messages pages through history with limit and before", async () => {
  await using t = setup();
  for (const content of ["one", "two"]) {
    await json(await t.handler(post("/v1/sessions/s1/messages", { content })));
  }
  const newest = await t.handler(get("/v1/sessions/s1/messages?limit=3"));
  assertEquals(newest.status, 200);
  const page = await json(newest) as {
    messages: { role: string; content: string }[];
    next: string;
  };
  assertEquals(page.messages.map((m) => `${m.role}:${m.content}`), [
    "assistant:one",
    "user:two",
    "assistant:two",
  ]);
  assert(typeof page.next === "string");
  const older = await json(
    await t.handler(
      get(`/v1/sessions/s1/messages?limit=3&before=${encodeURIComponent(page.next)}`),
    ),
  ) as { messages: { content: string }[]; next: string | null };
  assertEquals(older.messages.map((m) => m.content), ["one"]);
  assertEquals(older.next, null);
  const all = await json(await t.handler(get("/v1/sessions/s1/messages")));
  assertEquals((all.messages as unknown[]).length, 4);
});

Deno.test("GET messages refuses a bad limit or cursor with 400 naming the parameter", async () => {
  await using t = setup();
  await assertError(
    await t.handler(get("/v1/sessions/s1/messages?limit=abc")),
    400,
    "invalid_input",
    "limit",
  );
  await assertError(
    await t.handler(get("/v1/sessions/s1/messages?limit=0")),
    400,
    "invalid_input",
    "limit",
  );
  await assertError(
    await t.handler(get("/v1/sessions/s1/messages?limit=5000")),
    400,
    "invalid_input",
    "limit",
  );
  await assertError(
    await t.handler(get("/v1/sessions/s1/messages?before=nope")),
    400,
    "invalid_input",
    "before",
  );
});

Deno.test("the session path segment is URL-decoded, then checked by the runtime", async () => {
  await using t = setup();
  const ok = await json(
    await t.handler(post("/v1/sessions/team%3A42/messages", { content: "hi" })),
  );
  assertEquals(ok.session, "team:42");
  const spaced = await t.handler(post("/v1/sessions/has%20space/messages", { content: "hi" }));
  assert((await assertError(spaced, 400, "invalid_input", "session")).includes("session must be"));
  const slash = await t.handler(get("/v1/sessions/a%2Fb/messages"));
  await assertError(slash, 400, "invalid_input", "session");
  const malformed = await t.handler(get("/v1/sessions/%E0%A4%A/messages"));
  await assertError(malformed, 400, "invalid_input", "session");
});

Deno.test("GET /healthz answers ok", async () => {
  await using t = setup();
  const response = await t.handler(get("/healthz"));
  assertEquals(response.status, 200);
  assertEquals(await json(response), { status: "ok" });
});

Deno.test("GET /readyz answers ready with the live session count, and 503 once draining", async () => {
  let draining = false;
  await using t = setup({}, {}, { isDraining: () => draining });
  await json(await t.handler(post("/v1/sessions/s1/messages", { content: "hi" })));
  const ready = await t.handler(get("/readyz"));
  assertEquals(ready.status, 200);
  assertEquals(await json(ready), { status: "ready", activeSessions: 1 });
  draining = true;
  const drained = await t.handler(get("/readyz"));
  assertEquals(drained.status, 503);
  assertEquals(await json(drained), { status: "draining" });
  assertEquals((await t.handler(get("/healthz"))).status, 200);
});

Deno.test("Accept: text/event-stream streams delta events, then one reply event, then ends", async () => {
  await using t = setup({ tokensPerSecond: 1000 });
  const response = await t.handler(
    post("/v1/sessions/s1/messages", { content: "one two three" }, { accept: "text/event-stream" }),
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assertEquals(response.headers.get("cache-control"), "no-store");
  const events = parseSse(await response.text());
  assertEquals(events.map((e) => e.event), ["delta", "delta", "delta", "reply"]);
  assertEquals(events.slice(0, 3).map((e) => JSON.parse(e.data)), [
    { text: "one " },
    { text: "two " },
    { text: "three" },
  ]);
  const reply = JSON.parse(events[3]!.data) as Reply;
  assertEquals(reply.status, "completed");
  assertEquals(reply.text, "one two three");
});

Deno.test("a streamed request refused before its first event gets its status as JSON, not a stream", async () => {
  await using t = setup();
  const response = await t.handler(
    post("/v1/sessions/s1/messages", { content: " " }, {
      accept: "application/json, text/event-stream",
    }),
  );
  await assertError(response, 400, "invalid_input", "content");
});

Deno.test("a stream that fails after it began ends with an error event that hides the details", async () => {
  await using t = setup();
  async function* failing() {
    yield { type: "delta" as const, text: "partial" };
    throw new Error("password=hunter2");
  }
  const reported: unknown[] = [];
  const broken: Runtime = { ...t.runtime, stream: () => failing() };
  const handler = createHandler({ runtime: broken, onError: (error) => reported.push(error) });
  const response = await handler(
    post("/v1/sessions/s1/messages", { content: "a" }, { accept: "text/event-stream" }),
  );
  assertEquals(response.status, 200);
  const events = parseSse(await response.text());
  assertEquals(events.map((e) => e.event), ["delta", "error"]);
  assertEquals(JSON.parse(events[1]!.data), {
    error: { code: "internal_error", message: "Internal server error" },
  });
  assertEquals(reported.length, 1);
});

Deno.test("a client that leaves a stream stops receiving; the run still completes into history", async () => {
  await using t = setup({ tokensPerSecond: 200 });
  const completed = nextEvent(t.runtime, "run.completed");
  const response = await t.handler(
    post("/v1/sessions/s1/messages", { content: "one two three four" }, {
      accept: "text/event-stream",
    }),
  );
  const reader = response.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert(first.startsWith("event: delta\n"), first);
  await reader.cancel();
  await completed;
  const page = await json(await t.handler(get("/v1/sessions/s1/messages")));
  assertEquals(
    (page.messages as { role: string; content: string }[]).map((m) => m.role),
    ["user", "assistant"],
  );
});

Deno.test("the SSE writer splits multi-line data and refuses CR or LF in event and id", () => {
  assertEquals(
    formatSseEvent({ event: "e", id: "7", data: "a\nb\r\nc" }),
    "event: e\nid: 7\ndata: a\ndata: b\ndata: c\n\n",
  );
  for (const event of ["a\nb", "a\rb"]) {
    assertThrows(() => formatSseEvent({ event, data: "" }), TypeError);
    assertThrows(() => formatSseEvent({ id: event, data: "" }), TypeError);
  }
});

Deno.test("bad bodies get 400: invalid JSON, empty, non-object, unknown field, missing content", async () => {
  await using t = setup();
  const path = "/v1/sessions/s1/messages";
  await assertError(await t.handler(post(path, "{not json")), 400, "invalid_json");
  await assertError(await t.handler(post(path, "")), 400, "invalid_json");
  for (const body of ["[]", '"hi"', "null", "42"]) {
    await assertError(await t.handler(post(path, body)), 400, "invalid_input", "body");
  }
  await assertError(
    await t.handler(post(path, { content: "hi", contnet: "x" })),
    400,
    "invalid_input",
    "contnet",
  );
  await assertError(await t.handler(post(path, {})), 400, "invalid_input", "content");
  await assertError(
    await t.handler(post(path, { content: "hi", policy: "later" })),
    400,
    "invalid_input",
    "policy",
  );
  await assertError(
    await t.handler(post(path, { content: "hi", id: 7 })),
    400,
    "invalid_input",
    "id",
  );
});

Deno.test("POST messages passes options (sampling and format) to the provider call", async () => {
  await using t = setup();
  const path = "/v1/sessions/s1/messages";
  const options = {
    maxTokens: 32,
    temperature: 0.5,
    topP: 0.9,
    stop: ["END"],
    seed: 1,
    presencePenalty: 1,
    frequencyPenalty: -1,
    responseFormat: { type: "json_object" },
    reasoningEffort: "medium",
  };
  const response = await t.handler(post(path, { content: "hi", options }));
  assertEquals(response.status, 200);
  assertEquals((await json(response)).status, "completed");
  assertEquals((await t.handler(post(path, { content: "again" }))).status, 200);
  assertEquals(t.llm.requests.map((r) => r.options), [options, undefined]);
});

Deno.test("POST messages refuses bad options with 400 naming the field, and never runs them", async () => {
  await using t = setup();
  const path = "/v1/sessions/s1/messages";
  const cases: Array<[unknown, string]> = [
    ["fast", "options"],
    [null, "options"],
    [{ maxTokens: 0 }, "options.maxTokens"],
    [{ temperature: 3 }, "options.temperature"],
    [{ max_tokens: 10 }, "options.max_tokens"],
    [{ topP: 2 }, "options.topP"],
    [{ stop: "END" }, "options.stop"],
    [{ responseFormat: { type: "json_schema" } }, "options.responseFormat.jsonSchema"],
    // The operator's TROUPE_LLM_MODEL decides the model, not the caller.
    [{ model: "gpt-4o" }, "options.model"],
  ];
  for (const [options, field] of cases) {
    await assertError(
      await t.handler(post(path, { content: "hi", options })),
      400,
      "invalid_input",
      field,
    );
  }
  assertEquals(t.llm.requests.length, 0);
});

Deno.test("a body that is not UTF-8 is invalid_json", async () => {
  await using t = setup();
  const request = new Request(`${BASE}/v1/sessions/s1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new Uint8Array([0x7b, 0xff, 0x7d]),
  });
  await assertError(await t.handler(request), 400, "invalid_json");
});

Deno.test("a POST without a JSON content type gets 415", async () => {
  await using t = setup();
  const request = new Request(`${BASE}/v1/sessions/s1/messages`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: '{"content":"hi"}',
  });
  await assertError(await t.handler(request), 415, "unsupported_media_type");
});

Deno.test("a declared Content-Length over maxBodyBytes gets 413 before the body is read", async () => {
  await using t = setup({}, {}, { maxBodyBytes: 64 });
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new TextEncoder().encode('{"content":"hi"}'));
      controller.close();
    },
  }, { highWaterMark: 0 });
  const request = new Request(`${BASE}/v1/sessions/s1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": "65" },
    body,
  });
  await assertError(await t.handler(request), 413, "payload_too_large");
  assertEquals(pulled, 0);
  await body.cancel();
});

Deno.test("a body over maxBodyBytes gets 413 and one that fits goes through", async () => {
  await using t = setup({}, {}, { maxBodyBytes: 64 });
  const path = "/v1/sessions/s1/messages";
  const big = JSON.stringify({ content: "x".repeat(100) });
  await assertError(await t.handler(post(path, big)), 413, "payload_too_large");
  const fits = await t.handler(post(path, { content: "x".repeat(40) }));
  assertEquals(fits.status, 200);
  await fits.body?.cancel();
});

Deno.test("a body that streams past the limit is cut off and cancelled, whatever Content-Length claims", async () => {
  await using t = setup({}, {}, { maxBodyBytes: 1024 });
  let pulled = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(256).fill(0x20));
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request(`${BASE}/v1/sessions/s1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": "10" },
    body: endless,
  });
  await assertError(await t.handler(request), 413, "payload_too_large");
  assert(cancelled, "the body stream was cancelled");
  assert(pulled <= 8, `read no more than the limit needs, pulled ${pulled} chunks`);
});

Deno.test("an unknown route gets 404 not_found", async () => {
  await using t = setup();
  for (
    const path of ["/", "/v1/session", "/v1/sessions/s1/nope", "/v1/sessions/s1/messages/", "/v2/x"]
  ) {
    await assertError(await t.handler(get(path)), 404, "not_found");
  }
});

Deno.test("a wrong method on a known route gets 405 with an Allow header", async () => {
  await using t = setup();
  const cases: [method: string, path: string, allow: string][] = [
    ["DELETE", "/v1/sessions/s1/messages", "GET, POST"],
    ["GET", "/v1/sessions/s1/cancel", "POST"],
    ["POST", "/healthz", "GET"],
    ["PUT", "/readyz", "GET"],
  ];
  for (const [method, path, allow] of cases) {
    const response = await t.handler(new Request(`${BASE}${path}`, { method }));
    assertEquals(response.headers.get("allow"), allow);
    await assertError(response, 405, "method_not_allowed");
  }
});

Deno.test("every session slot busy: 503 overloaded with Retry-After in seconds", async () => {
  await using t = setup({ latencyMs: IN_FLIGHT_MS }, { maxActiveSessions: 1 });
  const started = nextEvent(t.runtime, "run.started");
  const busy = t.handler(post("/v1/sessions/s1/messages", { content: "a" }));
  await started;
  const refused = await t.handler(post("/v1/sessions/s2/messages", { content: "b" }));
  assertEquals(refused.headers.get("retry-after"), "1");
  await assertError(refused, 503, "overloaded");
  await json(await t.handler(post("/v1/sessions/s1/cancel", "")));
  assertEquals((await json(await busy)).status, "cancelled");
});

Deno.test("a runtime that is shutting down: 503 shutting_down with Retry-After", async () => {
  await using t = setup();
  await t.runtime.shutdown();
  const response = await t.handler(post("/v1/sessions/s1/messages", { content: "a" }));
  assert(Number(response.headers.get("retry-after")) > 0);
  await assertError(response, 503, "shutting_down");
});

Deno.test("Retry-After rounds the runtime's hint up to whole seconds", () => {
  assertEquals(describeError(new OverloadedError("busy", 1001)).headers["retry-after"], "2");
  assertEquals(describeError(new OverloadedError("busy", 1000)).headers["retry-after"], "1");
  assertEquals(describeError(new ShutdownError()).status, 503);
});

Deno.test("an unexpected error gets 500 internal_error without its details, and is reported", async () => {
  await using t = setup();
  const broken: Runtime = {
    ...t.runtime,
    send: () => Promise.reject(new Error("password=hunter2 at /srv/db")),
  };
  const reported: unknown[] = [];
  const handler = createHandler({ runtime: broken, onError: (error) => reported.push(error) });
  const response = await handler(post("/v1/sessions/s1/messages", { content: "a" }));
  const message = await assertError(response, 500, "internal_error");
  assert(!message.includes("hunter2"));
  assertEquals(reported.length, 1);
  assertEquals(t.unexpected.length, 0);
});

Deno.test("createHandler refuses a maxBodyBytes that is not a whole number >= 1", async () => {
  await using t = setup();
  for (const maxBodyBytes of [0, -1, 1.5, NaN]) {
    assertThrows(() => createHandler({ runtime: t.runtime, maxBodyBytes }), RangeError);
  }
});
