// Tests the naive baseline server against the real mock upstream: one upstream call per request, nothing more.

import assert from "node:assert/strict";
import { startBaselineServer } from "../../scripts/baseline_server.ts";
import { startMockUpstream } from "../../scripts/mock_upstream.ts";
import { runLoad } from "../../scripts/load.ts";

function postMessage(url: string, session: string, body: unknown): Promise<Response> {
  return fetch(`${url}/v1/sessions/${session}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("every message is one upstream call, answered in Troupe's Reply shape", async () => {
  await using upstream = startMockUpstream();
  await using baseline = startBaselineServer({ upstream: upstream.url, model: "m1" });
  for (const content of ["one", "two", "three"]) {
    const response = await postMessage(baseline.url, "s1", { content });
    assert.equal(response.status, 200);
    const reply = await response.json();
    assert.equal(reply.status, "completed");
    assert.equal(reply.text, content, "the mock upstream echoes the user message");
    assert.equal(reply.session, "s1");
    assert.deepEqual(reply.answered, [reply.messageId]);
    assert.equal(typeof reply.usage?.prompt_tokens, "number");
  }
  assert.equal(upstream.stats().requests, 3);
  assert.equal(upstream.stats().completed, 3);
});

Deno.test("a double text is two upstream calls: the baseline folds nothing", async () => {
  await using upstream = startMockUpstream({ latencyMs: 30 });
  await using baseline = startBaselineServer({ upstream: upstream.url });
  const [first, second] = await Promise.all([
    postMessage(baseline.url, "s1", { content: "book a table" }),
    postMessage(baseline.url, "s1", { content: "for four" }),
  ]);
  assert.equal((await first.json()).text, "book a table");
  assert.equal((await second.json()).text, "for four");
  assert.equal(upstream.stats().requests, 2);
});

Deno.test("the load driver counts the baseline's upstream calls: one per request", async () => {
  await using upstream = startMockUpstream();
  await using baseline = startBaselineServer({ upstream: upstream.url });
  const result = await runLoad(baseline.url, {
    api: "baseline",
    sessions: 8,
    messagesPerSession: 5,
    doubleTextProbability: 0.5,
    doubleTextDelayMs: 0,
    upstreamStatsUrl: `http://127.0.0.1:${upstream.port}/stats`,
  });
  assert.ok(result.requests > 40, "some turns were double-texted");
  assert.equal(result.completed, result.requests);
  assert.equal(result.upstreamCalls, result.requests);
  assert.equal(upstream.stats().requests, result.requests);
});

Deno.test("without an upstream it echoes at once and calls nothing", async () => {
  await using upstream = startMockUpstream();
  await using baseline = startBaselineServer({ upstream: null });
  const reply = await (await postMessage(baseline.url, "s1", { content: "hello" })).json();
  assert.equal(reply.status, "completed");
  assert.equal(reply.text, "hello");
  const completion = await fetch(`${baseline.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi there" }] }),
  });
  assert.equal((await completion.json()).choices[0].message.content, "hi there");
  assert.equal(upstream.stats().requests, 0);
});

Deno.test("the chat completions route is passed through to the upstream as it is", async () => {
  await using upstream = startMockUpstream({ model: "echo" });
  await using baseline = startBaselineServer({ upstream: upstream.url });
  const response = await fetch(`${baseline.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-session-id": "s1" },
    body: JSON.stringify({ messages: [{ role: "user", content: "straight through" }] }),
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.choices[0].message.content, "straight through");
  assert.equal(body.model, "echo");
  assert.equal(upstream.stats().requests, 1);
});

Deno.test("bad input is a 4xx naming the problem, and an upstream failure a 502", async () => {
  await using upstream = startMockUpstream({ errorRate: 1 });
  await using baseline = startBaselineServer({ upstream: upstream.url });
  const notJson = await postMessage(baseline.url, "s1", "{oops");
  assert.equal(notJson.status, 400);
  assert.equal((await notJson.json()).error.code, "invalid_json");
  const empty = await postMessage(baseline.url, "s1", { content: "" });
  assert.equal(empty.status, 400);
  assert.equal((await empty.json()).error.field, "content");
  const unknown = await fetch(`${baseline.url}/v1/nothing`);
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  const badSession = await postMessage(baseline.url, "%E0%A4%A", { content: "x" });
  assert.equal(badSession.status, 404);
  await badSession.body?.cancel();
  assert.equal(upstream.stats().requests, 0, "nothing reached the upstream so far");
  const failed = await postMessage(baseline.url, "s1", { content: "x" });
  assert.equal(failed.status, 502);
  assert.equal((await failed.json()).error.code, "provider_error");
  assert.equal(upstream.stats().requests, 1);
});

Deno.test("a bad upstream URL is refused at start", () => {
  assert.throws(() => startBaselineServer({ upstream: "ftp://x" }), TypeError);
});
