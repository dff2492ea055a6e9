// Every refusal over real HTTP, with auth on: its status, its headers, and the one error shape.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { PoolSaturatedError, ProviderError } from "../../../actors/errors.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { errorOf, jsonBody, startServer, type TestServer } from "./_server.ts";

const IN_FLIGHT_MS = 60_000;

async function expectError(
  response: Response,
  status: number,
  code: string,
  field?: string,
): Promise<string> {
  assertEquals(response.status, status);
  assertEquals(response.headers.get("content-type"), "application/json; charset=utf-8");
  const error = await errorOf(response);
  assertEquals(error.code, code, error.message);
  assertEquals(error.field, field, error.message);
  assert(error.message.startsWith("Cannot "), error.message);
  return error.message;
}

function noUnexpected(t: TestServer): void {
  assertEquals(t.unexpected, [], "no request was answered with a 500");
}

Deno.test("400 names the field: bad JSON, wrong types, empty content, unknown fields, bad ids and queries", async () => {
  await using t = await startServer();
  const post = (body: unknown, path = "/v1/sessions/s1/messages") => t.call(path, jsonBody(body));
  await expectError(await post("{not json"), 400, "invalid_json");
  await expectError(await post(""), 400, "invalid_json");
  await expectError(await post("[1,2]"), 400, "invalid_input", "body");
  await expectError(await post("null"), 400, "invalid_input", "body");
  await expectError(await post({ content: 5 }), 400, "invalid_input", "content");
  await expectError(await post({ content: "   " }), 400, "invalid_input", "content");
  await expectError(await post({}), 400, "invalid_input", "content");
  await expectError(await post({ content: "hi", id: 7 }), 400, "invalid_input", "id");
  await expectError(await post({ content: "hi", policy: "later" }), 400, "invalid_input", "policy");
  await expectError(await post({ content: "hi", extra: 1 }), 400, "invalid_input", "extra");
  await expectError(
    await post({ content: "hi" }, "/v1/sessions/has%20space/messages"),
    400,
    "invalid_input",
    "session",
  );
  await expectError(
    await post({ content: "hi" }, "/v1/sessions/%E0%A4%A/messages"),
    400,
    "invalid_input",
    "session",
  );
  await expectError(
    await t.call("/v1/sessions/s1/messages?limit=abc"),
    400,
    "invalid_input",
    "limit",
  );
  await expectError(
    await t.call("/v1/sessions/s1/messages?before=nope!"),
    400,
    "invalid_input",
    "before",
  );
  await expectError(await t.call("/v1/usage?group_by=org"), 400, "invalid_input", "group_by");
  noUnexpected(t);
});

Deno.test("401 without a key, with WWW-Authenticate: Bearer", async () => {
  await using t = await startServer();
  const response = await t.call("/v1/sessions", { as: null });
  assertEquals(response.headers.get("www-authenticate"), 'Bearer realm="troupe"');
  await expectError(response, 401, "unauthorized");
});

Deno.test("404 for an unknown route, 405 with Allow for a wrong method", async () => {
  await using t = await startServer();
  for (const path of ["/", "/v1", "/v1/sessions/s1/nope", "/v1/sessions/s1/messages/x", "/v2"]) {
    await expectError(await t.call(path), 404, "not_found");
  }
  const cases: [string, string, string][] = [
    ["POST", "/v1/sessions", "GET"],
    ["GET", "/v1/sessions/s1", "DELETE"],
    ["PUT", "/v1/sessions/s1/messages", "GET, POST"],
    ["GET", "/v1/sessions/s1/cancel", "POST"],
    ["DELETE", "/v1/usage", "GET"],
    ["POST", "/healthz", "GET"],
  ];
  for (const [method, path, allow] of cases) {
    const response = await t.call(path, { method });
    assertEquals(response.headers.get("allow"), allow, `${method} ${path}`);
    await expectError(response, 405, "method_not_allowed");
  }
  noUnexpected(t);
});

Deno.test("413 for a body over the limit, 415 for a body that is not JSON", async () => {
  await using t = await startServer({ maxBodyBytes: 64 });
  const big = JSON.stringify({ content: "x".repeat(100) });
  await expectError(
    await t.call("/v1/sessions/s1/messages", jsonBody(big)),
    413,
    "payload_too_large",
  );
  const text = await t.call("/v1/sessions/s1/messages", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: '{"content":"hi"}',
  });
  await expectError(text, 415, "unsupported_media_type");
  const fits = await t.call("/v1/sessions/s1/messages", jsonBody({ content: "hi" }));
  assertEquals(fits.status, 200);
  await fits.body?.cancel();
  noUnexpected(t);
});

/** One HTTP/1.1 response read off a connection (its head, then `content-length` bytes). */
async function readResponse(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  for (;;) {
    const n = await conn.read(buffer.subarray(text.length));
    if (n === null) return text;
    text = new TextDecoder().decode(buffer.subarray(0, text.length + n));
    const end = text.indexOf("\r\n\r\n");
    const length = /content-length: (\d+)/i.exec(text)?.[1];
    if (end !== -1 && length !== undefined && text.length >= end + 4 + Number(length)) return text;
  }
}

Deno.test("408 for a body that does not all arrive in time, on both kinds of route", async () => {
  await using t = await startServer({ bodyTimeoutMs: 300 });
  const port = Number(new URL(t.base).port);
  for (const path of ["/v1/sessions/s1/messages", "/v1/chat/completions"]) {
    // Headers and the start of the body, then nothing: a client trickling (or holding) its body.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const head = [
      `POST ${path} HTTP/1.1`,
      "host: 127.0.0.1",
      `authorization: Bearer ${t.keys.acme}`,
      "content-type: application/json",
      "content-length: 100",
      "",
      '{"content":"wa',
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(head));
    const response = await readResponse(conn);
    conn.close();
    const [status] = response.split("\r\n", 1);
    assertEquals(status, "HTTP/1.1 408 Request Timeout", path);
    const body = JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));
    assertEquals(body.error.code, "request_timeout", path);
    assert(body.error.message.includes("300 ms"), body.error.message);
  }
  assertEquals((await t.runtime.history({ org: "acme", session: "s1" })).messages, []);
  const fits = await t.call("/v1/sessions/s1/messages", jsonBody({ content: "hi" }));
  assertEquals(fits.status, 200, "the server still answers");
  await fits.body?.cancel();
  noUnexpected(t);
});

Deno.test("429 with Retry-After and the rate-limit headers", async () => {
  await using t = await startServer({ orgLimit: 1 });
  const first = await t.call("/v1/sessions");
  assertEquals(first.status, 200);
  await first.body?.cancel();
  const refused = await t.call("/v1/sessions");
  assert(Number(refused.headers.get("retry-after")) >= 1);
  assertEquals(refused.headers.get("x-ratelimit-remaining"), "0");
  await expectError(refused, 429, "rate_limited");
});

Deno.test("a run the worker pool had no room for says when to come back, on both APIs", async () => {
  await using t = await startServer({
    llm: { fail: () => new PoolSaturatedError("Cannot call the llm pool: 64 calls queued", 100) },
  });
  const native = await t.call("/v1/sessions/s1/messages", jsonBody({ content: "hi" }));
  assertEquals(native.status, 200);
  assertEquals(native.headers.get("retry-after"), "5");
  const reply = await native.json();
  assertEquals([reply.status, reply.error.code, reply.error.retryable], [
    "failed",
    "pool_saturated",
    true,
  ]);
  const openAi = await t.call(
    "/v1/chat/completions",
    jsonBody({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  );
  assertEquals(openAi.status, 503);
  assertEquals(openAi.headers.get("retry-after"), "5");
  assertEquals((await openAi.json()).error.code, "pool_saturated");
  // A provider's failure is no capacity problem: no Retry-After.
  await using p = await startServer({
    llm: { fail: () => new ProviderError("upstream said no", { status: 400 }) },
  });
  const failed = await p.call("/v1/sessions/s1/messages", jsonBody({ content: "hi" }));
  assertEquals((await failed.json()).status, "failed");
  assertEquals(failed.headers.get("retry-after"), null);
  noUnexpected(t);
});

Deno.test("503 with Retry-After when every session slot is busy", async () => {
  await using t = await startServer({
    llm: { latencyMs: IN_FLIGHT_MS },
    runtime: { maxActiveSessions: 1 },
  });
  const busy = t.call("/v1/sessions/a/messages", jsonBody({ content: "slow" }));
  await eventually("the run is in flight", () => t.llm.stats.inFlight === 1);
  const refused = await t.call("/v1/sessions/b/messages", jsonBody({ content: "hi" }));
  assertEquals(refused.headers.get("retry-after"), "1");
  await expectError(refused, 503, "overloaded");
  const cancelled = await t.call("/v1/sessions/a/cancel", { method: "POST" });
  await cancelled.body?.cancel();
  assertEquals((await (await busy).json()).status, "cancelled");
  noUnexpected(t);
});

Deno.test("503 with Retry-After while draining: new messages refused, /readyz not ready", async () => {
  await using t = await startServer({ llm: { latencyMs: IN_FLIGHT_MS } });
  const running = t.call("/v1/sessions/a/messages", jsonBody({ content: "slow" }));
  await eventually("the run is in flight", () => t.llm.stats.inFlight === 1);
  t.drain();
  const stopping = t.runtime.shutdown({ graceMs: IN_FLIGHT_MS });
  const refused = await t.call("/v1/sessions/b/messages", jsonBody({ content: "hi" }));
  assertEquals(refused.headers.get("retry-after"), "5");
  await expectError(refused, 503, "shutting_down");
  const ready = await t.call("/readyz", { as: null });
  assertEquals([ready.status, (await ready.json()).status], [503, "draining"]);
  // The run in flight is cancelled by its own caller, and the shutdown ends.
  const cancelled = await t.call("/v1/sessions/a/cancel", { method: "POST" });
  await cancelled.body?.cancel();
  assertEquals((await (await running).json()).status, "cancelled");
  await stopping;
  noUnexpected(t);
});
