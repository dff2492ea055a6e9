// Tests how upstream failures become ProviderErrors: retry classes, Retry-After, vendor error bodies, secrets kept out.

import assert from "node:assert/strict";
import {
  isRetryableStatus,
  parseRetryAfter,
  redactor,
  shownUrl,
  statusError,
} from "../../../adapters/llm/_upstream_errors.ts";
import { fixture } from "./_fixtures.ts";

const NOW = Date.UTC(2025, 6, 29, 12, 0, 0);

Deno.test("isRetryableStatus retries 408, 409, 429 and 5xx, and no other status", () => {
  const retried = [408, 409, 429, 500, 502, 503, 504, 529];
  for (const status of retried) assert.equal(isRetryableStatus(status), true, `${status}`);
  for (const status of [400, 401, 403, 404, 413, 422]) {
    assert.equal(isRetryableStatus(status), false, `${status}`);
  }
});

Deno.test("parseRetryAfter reads seconds, decimals, HTTP dates and retry-after-ms", () => {
  const at = (headers: Record<string, string>) => parseRetryAfter(new Headers(headers), NOW);
  assert.equal(at({ "retry-after": "3" }), 3000);
  assert.equal(at({ "retry-after": " 0.25 " }), 250);
  assert.equal(at({ "retry-after": new Date(NOW + 7000).toUTCString() }), 7000);
  assert.equal(at({ "retry-after": new Date(NOW - 7000).toUTCString() }), 0, "a past date is now");
  assert.equal(at({ "retry-after": "2", "retry-after-ms": "1500" }), 1500, "ms wins");
  assert.equal(at({}), undefined);
  assert.equal(at({ "retry-after": "soon" }), undefined);
  assert.equal(at({ "retry-after": "-1" }), undefined);
});

Deno.test("statusError reads OpenAI's rate limit body and the Retry-After header", async () => {
  const response = new Response(await fixture("openai_error_429.json"), {
    status: 429,
    statusText: "Too Many Requests",
    headers: { "content-type": "application/json", "retry-after": "2" },
  });
  const error = await statusError(response, { url: "https://u/v1", redact: (t) => t, nowMs: NOW });
  assert.equal(error.status, 429);
  assert.equal(error.retryable, true);
  assert.equal(error.retryAfterMs, 2000);
  assert.match(
    error.message,
    /^Cannot complete the chat: https:\/\/u\/v1 answered 429 Too Many Requests: Rate limit reached for gpt-4o/,
  );
});

Deno.test("statusError reads Anthropic's and Gemini's error bodies", async () => {
  const overloaded = await statusError(
    new Response(await fixture("anthropic_error_529.json"), { status: 529 }),
    { url: "https://u/v1", redact: (t) => t, nowMs: NOW },
  );
  assert.equal(overloaded.retryable, true);
  assert.match(overloaded.message, /answered 529: Overloaded$/);
  const invalid = await statusError(
    new Response(await fixture("gemini_error_400.json"), { status: 400 }),
    { url: "https://u/v1", redact: (t) => t, nowMs: NOW },
  );
  assert.equal(invalid.retryable, false);
  assert.equal(invalid.retryAfterMs, undefined);
  assert.match(invalid.message, /answered 400: API key not valid/);
});

Deno.test("statusError suggests /v1 on a 404 from a base URL without a version, and only then", async () => {
  const notFound = () => new Response("404 page not found", { status: 404 });
  const bare = await statusError(notFound(), {
    url: "http://localhost:11434/chat/completions",
    redact: (t) => t,
    nowMs: NOW,
  });
  assert.equal(bare.status, 404);
  assert.equal(bare.retryable, false);
  assert(bare.message.includes("<base>/v1/chat/completions"), bare.message);
  for (
    const url of [
      "http://localhost:11434/v1/chat/completions",
      "https://g/v1beta/openai/chat/completions",
    ]
  ) {
    const versioned = await statusError(notFound(), { url, redact: (t) => t, nowMs: NOW });
    assert(!versioned.message.includes("version segment"), versioned.message);
  }
  const other = await statusError(new Response("no", { status: 400 }), {
    url: "http://localhost:11434/chat/completions",
    redact: (t) => t,
    nowMs: NOW,
  });
  assert(!other.message.includes("version segment"), other.message);
});

Deno.test("statusError keeps a key the upstream echoes out of the message", async () => {
  const key = "sk-test-0123456789abcdefwxyz";
  const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${key}.` } });
  const error = await statusError(new Response(body, { status: 401 }), {
    url: "https://u/v1",
    redact: redactor([key]),
    nowMs: NOW,
  });
  assert.ok(!error.message.includes(key));
  assert.match(error.message, /Incorrect API key provided: \[redacted\]/);
});

Deno.test("statusError shortens a long non-JSON body to one line", async () => {
  const error = await statusError(
    new Response(`<html>\n${"x".repeat(5000)}\n</html>`, { status: 502 }),
    { url: "https://u/v1", redact: (t) => t, nowMs: NOW },
  );
  assert.ok(error.message.length < 400);
  assert.ok(!error.message.includes("\n"));
});

Deno.test("redactor hides every secret, longest first, and ignores tiny ones", () => {
  const redact = redactor(["abcd", "abcdef", "x", undefined]);
  assert.equal(redact("key abcdef and abcd and x"), "key [redacted] and [redacted] and x");
});

Deno.test("shownUrl drops credentials and the query", () => {
  assert.equal(
    shownUrl("https://user:pw@example.com:8443/v1beta/openai/chat/completions?key=AIza"),
    "https://example.com:8443/v1beta/openai/chat/completions",
  );
  assert.equal(shownUrl("not a url"), "(an invalid URL)");
});
