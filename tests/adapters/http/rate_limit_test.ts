// Rate limits: the limiter's guarantees as properties on a manual clock, then headers and 429 over real HTTP.

import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import fc from "fast-check";
import {
  limitRequest,
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  rateLimiter,
} from "../../../adapters/http/rate_limit.ts";
import { errorOf, jsonBody, startServer } from "./_server.ts";

/** A limiter on a clock the test moves. */
function manual(limit: number, windowMs: number, algorithm: RateLimitAlgorithm, maxKeys?: number) {
  let now = 1_000_000;
  const limiter = rateLimiter({
    limit,
    windowMs,
    algorithm,
    now: () => now,
    ...(maxKeys === undefined ? {} : { maxKeys }),
  });
  return { limiter, advance: (ms: number) => now += ms, now: () => now };
}

const algorithm = fc.constantFrom(...RATE_LIMIT_ALGORITHMS);
// Gaps between requests: mostly bursts, sometimes long pauses.
const gaps = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.nat(3_000)), {
  minLength: 1,
  maxLength: 300,
});

Deno.test("property: no window of windowMs allows more than the bound of its algorithm", () => {
  fc.assert(
    fc.property(algorithm, fc.integer({ min: 1, max: 20 }), gaps, (algo, limit, steps) => {
      const windowMs = 1_000;
      const { limiter, advance, now } = manual(limit, windowMs, algo);
      const allowedAt: number[] = [];
      for (const gap of steps) {
        advance(gap);
        if (limiter.take("k").allowed) allowedAt.push(now());
      }
      // A token bucket allows its burst plus what refills in the window; a sliding window
      // never more than the limit in a window aligned to the clock.
      for (const [i, start] of allowedAt.entries()) {
        const inWindow = allowedAt.slice(i).filter((at) => at < start + windowMs).length;
        if (algo === "token-bucket") assert(inWindow <= 2 * limit, `${inWindow} > 2 x ${limit}`);
      }
      if (algo === "sliding-window") {
        const perWindow = new Map<number, number>();
        for (const at of allowedAt) {
          const window = Math.floor(at / windowMs);
          perWindow.set(window, (perWindow.get(window) ?? 0) + 1);
        }
        for (const count of perWindow.values()) assert(count <= limit, `${count} > ${limit}`);
      }
    }),
  );
});

Deno.test("property: a refused request's Retry-After is honest: waiting it out lets the next one in", () => {
  fc.assert(
    fc.property(algorithm, fc.integer({ min: 1, max: 20 }), gaps, (algo, limit, steps) => {
      const { limiter, advance } = manual(limit, 1_000, algo);
      for (const gap of steps) {
        advance(gap);
        const decision = limiter.take("k");
        if (decision.allowed) continue;
        assert(decision.retryAfterMs > 0 && decision.remaining === 0);
        advance(decision.retryAfterMs);
        assert(limiter.take("k").allowed, "allowed after waiting Retry-After");
      }
    }),
  );
});

Deno.test("property: remaining counts down by one per allowed request, and a full allowance is ready after resetMs", () => {
  fc.assert(
    fc.property(algorithm, fc.integer({ min: 1, max: 50 }), gaps, (algo, limit, steps) => {
      const { limiter, advance } = manual(limit, 1_000, algo);
      for (const gap of steps) {
        advance(gap);
        limiter.take("k");
      }
      const last = limiter.take("k");
      advance(last.resetMs);
      const burst = Array.from({ length: limit }, () => limiter.take("k"));
      assert(burst.every((d) => d.allowed), "the whole limit is available after the reset");
      assertEquals(burst.map((d) => d.remaining), burst.map((_, i) => limit - 1 - i));
      assert(!limiter.take("k").allowed);
    }),
  );
});

Deno.test("keys are independent, and idle keys are forgotten so memory stays bounded", () => {
  for (const algo of RATE_LIMIT_ALGORITHMS) {
    const { limiter, advance } = manual(1, 1_000, algo, 100);
    assert(limiter.take("a").allowed);
    assert(!limiter.take("a").allowed);
    assert(limiter.take("b").allowed, "another key has its own allowance");
    for (let i = 0; i < 1_000; i++) limiter.take(`flood-${i}`);
    assert(limiter.size <= 100, `${limiter.size} keys tracked past maxKeys`);
    advance(2_000);
    for (let i = 0; i < 10; i++) limiter.take(`late-${i}`);
    // Each take drops up to two idle keys from the front.
    assert(limiter.size <= 100 - 10, `${limiter.size} keys after idle ones could go`);
  }
});

Deno.test("limitRequest counts the session, then the org, and refunds the session when the org refuses", () => {
  const clock = () => 0;
  const limits = {
    org: rateLimiter({ limit: 2, windowMs: 1_000, now: clock }),
    session: rateLimiter({ limit: 5, windowMs: 1_000, now: clock }),
  };
  assertEquals(limitRequest(limits, "o", "s")?.scope, "org", "the tighter one is reported");
  assertEquals(limitRequest(limits, "o", "s")?.decision.remaining, 0);
  const refused = limitRequest(limits, "o", "s")!;
  assertEquals([refused.decision.allowed, refused.scope], [false, "org"]);
  // The session gave back the request the org refused: 2 counted, this is the third.
  assertEquals(limits.session.take("o\u0000s").remaining, 2);
  assertEquals(limitRequest({}, "o", "s"), null);
});

Deno.test("rateLimiter refuses options it cannot honour", () => {
  for (
    const options of [
      { limit: 0, windowMs: 1 },
      { limit: 1.5, windowMs: 1 },
      { limit: 1, windowMs: 0 },
      { limit: 1, windowMs: 1, maxKeys: 0 },
      { limit: 1, windowMs: 1, algorithm: "leaky" as RateLimitAlgorithm },
    ]
  ) {
    throws(() => rateLimiter(options), RangeError);
  }
});

for (const algo of RATE_LIMIT_ALGORITHMS) {
  Deno.test(`HTTP (${algo}): X-RateLimit-* on every response, then 429 with Retry-After for the session`, async () => {
    await using t = await startServer({ sessionLimit: 3, orgLimit: 100, algorithm: algo });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await t.call("/v1/sessions/s1/messages", jsonBody({ content: `m${i}` }));
      assertEquals(response.status, 200);
      assertEquals(response.headers.get("x-ratelimit-limit"), "3");
      assert(Number(response.headers.get("x-ratelimit-reset")) > 0);
      remaining.push(response.headers.get("x-ratelimit-remaining")!);
      await response.body?.cancel();
    }
    assertEquals(remaining, ["2", "1", "0"]);
    const refused = await t.call("/v1/sessions/s1/messages", jsonBody({ content: "one more" }));
    assertEquals(refused.status, 429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    // A token bucket refills one request in 20 s; a sliding window may wait past its window.
    const most = algo === "token-bucket" ? 20 : 120;
    assert(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= most, `${retryAfter}`);
    assertEquals(refused.headers.get("x-ratelimit-remaining"), "0");
    const error = await errorOf(refused);
    assertEquals(error.code, "rate_limited");
    assert(error.message.includes("session's limit of 3 requests per 60 s"), error.message);
    // Another session of the org is not limited by this one.
    const other = await t.call("/v1/sessions/s2/messages", jsonBody({ content: "hi" }));
    assertEquals(other.status, 200);
    await other.body?.cancel();
    assertEquals(t.llm.stats.calls, 4, "the refused request never reached the runtime");
  });
}

Deno.test("HTTP: the org's limit covers all its sessions and routes, not other orgs; health is never limited", async () => {
  await using t = await startServer({ orgLimit: 4 });
  const statuses: number[] = [];
  for (
    const path of ["/v1/sessions", "/v1/usage", "/v1/sessions/a/messages", "/nope", "/v1/sessions"]
  ) {
    const response = await t.call(path, { as: "acme" });
    statuses.push(response.status);
    assert(response.headers.has("x-ratelimit-limit"), `${path} has the headers`);
    await response.body?.cancel();
  }
  assertEquals(statuses, [200, 200, 200, 404, 429]);
  const globex = await t.call("/v1/sessions", { as: "globex" });
  assertEquals([globex.status, globex.headers.get("x-ratelimit-remaining")], [200, "3"]);
  await globex.body?.cancel();
  for (let i = 0; i < 10; i++) {
    const health = await t.call("/healthz", { as: null });
    assertEquals(health.status, 200);
    await health.body?.cancel();
  }
});

Deno.test("HTTP: an X-Session-Id header is the session counted on routes without one in the path", async () => {
  await using t = await startServer({ sessionLimit: 1 });
  const headers = { "x-session-id": "chat-1" };
  const first = await t.call("/v1/sessions", { headers });
  assertEquals(first.status, 200);
  await first.body?.cancel();
  const second = await t.call("/v1/usage", { headers });
  assertEquals(second.status, 429);
  assertEquals((await errorOf(second)).code, "rate_limited");
  const without = await t.call("/v1/usage");
  assertEquals(without.status, 200, "no session named, no session limit");
  await without.body?.cancel();
});
