// Tests the load driver against tiny local servers: counts, percentiles, caps, double texting, loopback only.

import assert from "node:assert/strict";
import fc from "fast-check";
import { runLoad } from "../../scripts/load.ts";
import { percentile, summarizeLatencies } from "../../scripts/_load_stats.ts";
import { parseLoadArgs, resolveLoadOptions } from "../../scripts/_load_options.ts";
import { classifyResponse } from "../../scripts/_load_api.ts";
import { CLIENT_KINDS, createTransport } from "../../scripts/_load_transport.ts";

/** What a test server saw: every request's method, path, headers and body, in arrival order. */
interface Seen {
  path: string;
  headers: Headers;
  body: string;
}

/** A loopback server that records requests and answers with `answer`. */
function recordingServer(
  answer: (seen: Seen, index: number) => Response | Promise<Response>,
) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const entry = {
      path: new URL(request.url).pathname,
      headers: request.headers,
      body: await request.text(),
    };
    seen.push(entry);
    return answer(entry, seen.length - 1);
  });
  return {
    seen,
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const completed = () => Response.json({ status: "completed", text: "ok" });

Deno.test("percentile takes the nearest rank of known data", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile(hundred, 90), 90);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  assert.equal(percentile([], 50), 0);
  assert.throws(() => percentile(hundred, 0), RangeError);
  assert.throws(() => percentile(hundred, 101), RangeError);
});

Deno.test("summarizeLatencies sorts a shuffled copy and leaves the input alone", () => {
  const samples = [7, 3, 10, 1, 9, 2, 8, 4, 6, 5];
  const copy = samples.slice();
  assert.deepEqual(summarizeLatencies(samples), {
    count: 10,
    mean: 5.5,
    p50: 5,
    p90: 9,
    p99: 10,
    max: 10,
  });
  assert.deepEqual(samples, copy);
  assert.deepEqual(summarizeLatencies([]), { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
});

Deno.test("percentile is the smallest sample with at least p% of samples at or below it", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 300 }),
      fc.double({ min: 0.01, max: 100, noNaN: true }),
      (samples, p) => {
        const sorted = samples.slice().sort((a, b) => a - b);
        const value = percentile(sorted, p);
        const atOrBelow = sorted.filter((x) => x <= value).length;
        const below = sorted.filter((x) => x < value).length;
        assert.ok(sorted.includes(value));
        assert.ok(atOrBelow >= (p / 100) * sorted.length - 1e-9, "enough samples at or below");
        assert.ok(below < (p / 100) * sorted.length, "no smaller sample qualifies");
      },
    ),
    { numRuns: 500 },
  );
});

for (const client of CLIENT_KINDS) {
  Deno.test(`the ${client} client counts every request and every session sends one after another`, async () => {
    const inFlight = new Map<string, number>();
    let overlapped = false;
    await using server = recordingServer(async (seen) => {
      const count = (inFlight.get(seen.path) ?? 0) + 1;
      inFlight.set(seen.path, count);
      if (count > 1) overlapped = true;
      await new Promise((resolve) => setTimeout(resolve, 1));
      inFlight.set(seen.path, count - 1);
      return completed();
    });
    const result = await runLoad(server.url, {
      client,
      sessions: 6,
      concurrency: 3,
      messagesPerSession: 4,
      sessionPrefix: "t-",
    });
    assert.equal(result.requests, 24);
    assert.equal(server.seen.length, 24);
    assert.equal(result.completed, 24);
    assert.equal(result.answeredRequests, 24);
    assert.equal(result.turns, 24);
    assert.equal(result.answeredTurns, 24);
    assert.equal(result.requestLatencyMs.count, 24);
    assert.equal(result.stoppedBy, "done");
    assert.equal(result.scheduleLagMs, null, "no schedule in a closed loop");
    assert.deepEqual(result.errors, {});
    assert.equal(overlapped, false, "no session had two messages in flight");
    const paths = new Set(server.seen.map((s) => s.path));
    assert.deepEqual(
      [...paths].sort(),
      [0, 1, 2, 3, 4, 5].map((i) => `/v1/sessions/t-s${i}/messages`).sort(),
    );
    assert.ok(
      server.seen.every((s) => JSON.parse(s.body).content === "what is the time in Lisbon?"),
    );
  });
}

Deno.test("a double-texted turn sends two messages on its session and ends at the last reply", async () => {
  const perSession = new Map<string, number>();
  await using server = recordingServer((seen) => {
    const n = (perSession.get(seen.path) ?? 0) + 1;
    perSession.set(seen.path, n);
    // The first message of each pair is superseded by the second, which answers both.
    return Response.json({ status: n % 2 === 1 ? "superseded" : "completed", text: "" });
  });
  const result = await runLoad(server.url, {
    sessions: 4,
    messagesPerSession: 3,
    doubleTextProbability: 1,
    doubleTextDelayMs: 20,
  });
  assert.equal(result.turns, 12);
  assert.equal(result.requests, 24);
  assert.equal(result.superseded, 12);
  assert.equal(result.completed, 12);
  assert.equal(result.answeredTurns, 12);
  assert.equal(result.turnLatencyMs.count, 12);
  assert.ok(result.turnLatencyMs.p50 >= 19, "a double-texted turn lasts at least the delay");
  assert.ok(result.turnLatencyMs.p50 >= result.requestLatencyMs.p50);
});

Deno.test("the seed picks which turns are double-texted, and the counts agree", async () => {
  await using server = recordingServer(completed);
  const options = {
    sessions: 5,
    messagesPerSession: 8,
    doubleTextProbability: 0.3,
    doubleTextDelayMs: 0,
    seed: 42,
  };
  const first = await runLoad(server.url, options);
  const second = await runLoad(server.url, options);
  const doubles = first.requests - first.turns;
  assert.ok(doubles > 0 && doubles < first.turns, `some but not all turns doubled: ${doubles}`);
  assert.equal(second.requests - second.turns, doubles);
  assert.equal(server.seen.length, first.requests + second.requests);
});

Deno.test("the request cap stops the run at exactly that many requests", async () => {
  await using server = recordingServer(completed);
  const result = await runLoad(server.url, {
    sessions: 3,
    messagesPerSession: 10,
    maxRequests: 7,
  });
  assert.equal(result.requests, 7);
  assert.equal(server.seen.length, 7);
  assert.equal(result.stoppedBy, "requests");
});

Deno.test("the duration cap stops new turns", async () => {
  await using server = recordingServer(async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return completed();
  });
  const result = await runLoad(server.url, {
    sessions: 2,
    messagesPerSession: 1_000_000,
    durationMs: 100,
  });
  assert.equal(result.stoppedBy, "duration");
  assert.ok(result.requests > 0 && result.requests < 2_000_000);
  assert.equal(result.requests, server.seen.length);
});

Deno.test("requests still unanswered after the grace period are aborted and counted", async () => {
  const held: (() => void)[] = [];
  await using server = recordingServer(() =>
    // Never answers while the driver waits; released after the run.
    new Promise<Response>((resolve) =>
      held.push(() => resolve(new Response(null, { status: 499 })))
    )
  );
  const result = await runLoad(server.url, {
    sessions: 3,
    messagesPerSession: 5,
    durationMs: 50,
    graceMs: 50,
  });
  for (const release of held) release();
  assert.equal(result.requests, 3);
  assert.deepEqual(result.errors, { aborted: 3 });
  assert.equal(result.answeredTurns, 0);
  assert.equal(result.requestLatencyMs.count, 0);
});

Deno.test("errors are counted by status and code", async () => {
  await using server = recordingServer((_seen, index) => {
    if (index % 3 === 0) {
      return Response.json({ error: { code: "overloaded", message: "busy" } }, { status: 503 });
    }
    if (index % 3 === 1) {
      return Response.json({ status: "failed", error: { code: "provider_error", message: "x" } });
    }
    return new Response("not json", { status: 502 });
  });
  const result = await runLoad(server.url, { sessions: 1, messagesPerSession: 6 });
  assert.deepEqual(result.errors, {
    "http 503 overloaded": 2,
    "reply failed provider_error": 2,
    "http 502 unparseable body": 2,
  });
  assert.equal(result.answeredRequests, 0);
  assert.equal(result.answeredTurns, 0);
  assert.equal(result.requestLatencyMs.count, 6, "errors with a response still have a latency");
});

Deno.test("the openai API sends X-Session-Id and a Bearer key, and reads 409 superseded", async () => {
  await using server = recordingServer((_seen, index) =>
    index % 2 === 0
      ? Response.json({ error: { code: "superseded", message: "newer" } }, { status: 409 })
      : Response.json({ choices: [{ message: { role: "assistant", content: "hi" } }] })
  );
  const result = await runLoad(server.url, {
    api: "openai",
    sessions: 1,
    messagesPerSession: 4,
    apiKey: "sk-test-secret",
    model: "m1",
    sessionPrefix: "oa-",
  });
  assert.equal(result.superseded, 2);
  assert.equal(result.completed, 2);
  assert.ok(server.seen.every((s) => s.path === "/v1/chat/completions"));
  assert.ok(server.seen.every((s) => s.headers.get("x-session-id") === "oa-s0"));
  assert.ok(server.seen.every((s) => s.headers.get("authorization") === "Bearer sk-test-secret"));
  assert.deepEqual(JSON.parse(server.seen[0]!.body), {
    model: "m1",
    messages: [{ role: "user", content: "what is the time in Lisbon?" }],
  });
  assert.ok(!JSON.stringify(result).includes("sk-test-secret"), "the key is never in the output");
});

Deno.test("oneShot sends openai calls without X-Session-Id, and only on the openai API", async () => {
  await using server = recordingServer(() =>
    Response.json({ choices: [{ message: { role: "assistant", content: "hi" } }] })
  );
  const result = await runLoad(server.url, {
    api: "openai",
    oneShot: true,
    rate: 500,
    maxRequests: 5,
  });
  assert.equal(result.completed, 5);
  assert.equal(server.seen.length, 5);
  assert.ok(server.seen.every((s) => !s.headers.has("x-session-id")));
  assert.throws(
    () => resolveLoadOptions("http://127.0.0.1:1", { oneShot: true }),
    /oneShot applies to the openai API only, current api is native/,
  );
  assert.deepEqual(
    parseLoadArgs(["--url", "http://127.0.0.1:1", "--api", "openai", "--one-shot"]),
    {
      url: "http://127.0.0.1:1",
      options: { api: "openai", oneShot: true },
    },
  );
});

Deno.test("open loop sends each request on a new session, up to the cap", async () => {
  await using server = recordingServer(completed);
  const result = await runLoad(server.url, { rate: 500, maxRequests: 20, durationMs: 10_000 });
  assert.equal(result.requests, 20);
  assert.equal(result.turns, 20);
  assert.equal(result.answeredTurns, 20);
  assert.equal(result.stoppedBy, "requests");
  assert.equal(new Set(server.seen.map((s) => s.path)).size, 20);
  assert.equal(result.scheduleLagMs?.count, 20, "every send's lag against the schedule");
  assert.equal(result.requestLatencyMs.count, 20);
});

Deno.test("only loopback targets are accepted, before anything is sent", async () => {
  for (
    const url of ["http://example.com:8787", "http://10.0.0.8", "https://127.0.0.1:8787", "nope"]
  ) {
    await assert.rejects(runLoad(url, { sessions: 1, messagesPerSession: 1 }), RangeError, url);
  }
  await assert.rejects(
    runLoad("http://127.0.0.1:1", { upstreamStatsUrl: "http://192.168.1.2/stats" }),
    /upstreamStatsUrl/,
  );
  for (
    const url of [
      "http://127.0.0.1:8787",
      "http://127.1.2.3",
      "http://localhost:1",
      "http://[::1]:1",
    ]
  ) {
    assert.equal(resolveLoadOptions(url).url, url);
  }
});

Deno.test("bad options name the option", () => {
  const url = "http://127.0.0.1:1";
  assert.throws(() => resolveLoadOptions(url, { sessions: 0 }), /sessions/);
  assert.throws(
    () => resolveLoadOptions(url, { doubleTextProbability: 1.5 }),
    /doubleTextProbability/,
  );
  assert.throws(() => resolveLoadOptions(url, { rate: -1 }), /rate/);
  assert.throws(() => resolveLoadOptions(url, { sessionPrefix: "a/b" }), /sessionPrefix/);
  assert.throws(() => parseLoadArgs(["--sessions", "10"]), /--url is required/);
  assert.throws(() => parseLoadArgs(["--url", url, "--sessions", "ten"]), /--sessions/);
  assert.throws(() => parseLoadArgs(["--url", url, "--bogus"]), TypeError);
  assert.deepEqual(
    parseLoadArgs(["--url", url, "--clients", "4", "--double-text", "0.3", "--fresh-sessions"]),
    { url, options: { concurrency: 4, doubleTextProbability: 0.3, freshSessions: true } },
  );
});

Deno.test("classifyResponse reads both API shapes", () => {
  const ok = { status: 200, body: '{"status":"completed","text":"x"}' };
  assert.deepEqual(classifyResponse("native", ok), { kind: "completed" });
  assert.deepEqual(classifyResponse("baseline", ok), { kind: "completed" });
  assert.deepEqual(
    classifyResponse("native", { status: 409, body: '{"error":{"code":"superseded"}}' }),
    { kind: "error", key: "http 409 superseded" },
  );
  assert.deepEqual(
    classifyResponse("openai", { status: 429, body: '{"error":{"type":"rate_limit"}}' }),
    { kind: "error", key: "http 429 rate_limit" },
  );
});

for (const client of CLIENT_KINDS) {
  Deno.test(`the ${client} client reads chunked, large and UTF-8 bodies`, async () => {
    const big = "é".repeat(40_000); // 80,000 bytes: more than the raw client's first buffer
    await using server = recordingServer((seen) => {
      if (seen.path === "/chunked") {
        const bytes = new TextEncoder().encode(`chunk-${big}-end`);
        // Split inside a two-byte character, over several chunks.
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 999) controller.enqueue(bytes.slice(i, i + 999));
            controller.close();
          },
        });
        return new Response(stream);
      }
      if (seen.path === "/close") {
        return new Response(`closing ${seen.body}`, { headers: { connection: "close" } });
      }
      return new Response(`len ${new TextEncoder().encode(seen.body).length}`);
    });
    const transport = createTransport(client, server.url);
    try {
      const chunked = await transport.post("/chunked", {}, "");
      assert.equal(chunked.status, 200);
      assert.equal(chunked.body, `chunk-${big}-end`);
      const sized = await transport.post("/sized", { "content-type": "text/plain" }, big);
      assert.equal(sized.body, "len 80000");
      for (let i = 0; i < 3; i++) {
        assert.equal((await transport.post("/close", {}, `#${i}`)).body, `closing #${i}`);
      }
      assert.equal((await transport.post("/after", {}, "abc")).body, "len 3");
    } finally {
      transport.close();
    }
  });
}

Deno.test("the raw client sends again on a new connection when an idle one was closed", async () => {
  let connections = 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // A server that answers one request per connection and then closes it without saying so.
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      const buffer = new Uint8Array(4096);
      await conn.read(buffer);
      await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
      conn.close();
    }
  })();
  const transport = createTransport("raw", `http://127.0.0.1:${listener.addr.port}`);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await transport.post("/", {}, "x")).body, "ok");
    assert.equal(connections, 3);
  } finally {
    transport.close();
    listener.close();
    await serving.catch(() => {});
  }
});
