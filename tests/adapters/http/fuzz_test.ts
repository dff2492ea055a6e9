// Fuzz over real HTTP: thousands of random malformed requests get 4xx (never 5xx) with the error shape, and the server still works.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import fc from "fast-check";
import { errorOf, jsonBody, startServer } from "./_server.ts";

const REQUESTS = 2_500;
const MAX_BODY_BYTES = 4_096;

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] as const;

/** Path segments: valid ids, junk, broken percent-encoding, traversal, very long ones. */
const segment = fc.oneof(
  fc.constantFrom("s1", "chat-42", "a.b:c@d", "", "..", ".", "%", "%ZZ", "%E0%A4%A", "%00", "%2F"),
  fc.stringMatching(/^[A-Za-z0-9._:@-]{1,140}$/),
  fc.string({ unit: "binary", maxLength: 30 }).map(encodeURIComponent),
  fc.string({ maxLength: 20 }).map((s) => s.replace(/[\/?#]/g, "")),
);

/** Paths near the real routes, so most requests reach a route's validation. */
const path = fc.oneof(
  fc.constantFrom("/", "/v1", "/v1/sessions", "/v1/usage", "/healthz", "/readyz", "/v1/sessions/"),
  segment.map((s) => `/v1/sessions/${s}`),
  { weight: 4, arbitrary: segment.map((s) => `/v1/sessions/${s}/messages`) },
  segment.map((s) => `/v1/sessions/${s}/cancel`),
  fc.tuple(segment, segment).map(([a, b]) => `/v1/sessions/${a}/${b}`),
  fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join("/")}`),
);

const queryValue = fc.oneof(
  fc.constantFrom("", "0", "-1", "1", "50", "1000", "1001", "1e3", "NaN", "2025-01-01", "model"),
  fc.string({ maxLength: 20 }),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
);
const query = fc.array(
  fc.tuple(
    fc.constantFrom("limit", "before", "after", "from", "to", "group_by", "org", "x"),
    queryValue,
  ),
  { maxLength: 4 },
).map((pairs) => pairs.length === 0 ? "" : `?${new URLSearchParams(pairs)}`);

/** JSON values of any shape, and objects that look like a message with wrong field types. */
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const messageLike = fc.record(
  {
    content: fc.oneof(fc.string({ maxLength: 50 }), jsonValue),
    id: fc.oneof(fc.string({ maxLength: 140 }), jsonValue),
    policy: fc.oneof(
      fc.constantFrom("merge", "enqueue", "reject", "interrupt", "later"),
      jsonValue,
    ),
    org: fc.string({ maxLength: 10 }),
    context: jsonValue,
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.constant(undefined),
  jsonValue.map((value) => JSON.stringify(value)),
  messageLike.map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.integer({ min: MAX_BODY_BYTES - 10, max: MAX_BODY_BYTES * 3 }).map((n) =>
    JSON.stringify({ content: "x".repeat(n) })
  ),
);

const headerText = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
const contentType = fc.option(
  fc.oneof(
    { weight: 4, arbitrary: fc.constant("application/json") },
    fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "application/vnd.api+json",
      "text/plain",
      "multipart/form-data",
      "",
    ),
    headerText,
  ),
  { nil: undefined },
);
// Mostly a valid key, so that most requests get past auth to the validation behind it.
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant<"valid">("valid") },
  { weight: 1, arbitrary: fc.constant<null>(null) },
  { weight: 1, arbitrary: headerText },
);
const accept = fc.option(fc.constantFrom("text/event-stream", "*/*", "application/json"), {
  nil: undefined,
});
const sessionHeader = fc.option(headerText, { nil: undefined });

const request = fc.record({
  method: fc.oneof(
    { weight: 4, arbitrary: fc.constant("POST") },
    { weight: 2, arbitrary: fc.constant("GET") },
    { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
  ),
  path,
  query,
  body,
  contentType,
  auth,
  accept,
  sessionHeader,
});

Deno.test(`fuzz: ${REQUESTS} random malformed requests over HTTP get no 5xx, each error in the one shape, and the server still answers`, async () => {
  await using t = await startServer({
    maxBodyBytes: MAX_BODY_BYTES,
    sessionLimit: 1_000_000,
    orgLimit: 1_000_000,
  });
  const statuses = new Map<number, number>();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const headers: Record<string, string> = {};
      if (r.contentType !== undefined) headers["content-type"] = r.contentType;
      if (r.accept !== undefined) headers.accept = r.accept;
      if (r.sessionHeader !== undefined) headers["x-session-id"] = r.sessionHeader;
      if (r.auth === "valid") headers.authorization = `Bearer ${t.keys.acme}`;
      else if (r.auth !== null) headers.authorization = r.auth;
      const withBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
      const response = await fetch(`${t.base}${r.path}${r.query}`, {
        method: r.method,
        headers,
        ...(withBody ? { body: r.body as BodyInit } : {}),
      });
      sent++;
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      const described = `${r.method} ${r.path}${r.query} -> ${response.status}`;
      assert(response.status < 500, described);
      if (response.status >= 400 && r.method !== "HEAD") {
        const error = await errorOf(response);
        assert(error.message.length > 0, described);
      } else {
        await response.body?.cancel();
      }
    }),
    { numRuns: REQUESTS },
  );
  assert(sent >= 2_000, `${sent} requests sent`);
  assertEquals(t.unexpected, [], "no request was answered with a 500");
  // Most requests must reach validation past auth and routing, or the fuzz proves little.
  const refusedForAuth = statuses.get(401) ?? 0;
  assert(refusedForAuth < sent / 2, `statuses: ${JSON.stringify([...statuses])}`);
  assert((statuses.get(400) ?? 0) > 100, `statuses: ${JSON.stringify([...statuses])}`);

  // The server still answers correctly.
  const health = await t.call("/healthz", { as: null });
  assertEquals(await health.json(), { status: "ok" });
  const reply = await t.call(
    "/v1/sessions/after-fuzz/messages",
    jsonBody({ content: "still here" }),
  );
  const answer = await reply.json();
  assertEquals([reply.status, answer.status, answer.text], [200, "completed", "still here"]);
  const history = await (await t.call("/v1/sessions/after-fuzz/messages")).json();
  assertEquals(history.messages.map((m: { content: string }) => m.content), [
    "still here",
    "still here",
  ]);
});
