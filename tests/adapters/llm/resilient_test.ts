// Tests the resilience wrapper on a manual clock: retries, backoff, Retry-After, fallbacks, the deadline and cancellation.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CancelledError,
  PoolSaturatedError,
  ProviderError,
  WorkerCrashedError,
} from "../../../actors/errors.ts";
import type { LlmAttempt, LlmRequest, Usage } from "../../../actors/ports.ts";
import { retryDelay } from "../../../adapters/llm/_backoff.ts";
import { mockLlm } from "../../../adapters/llm/mock_llm.ts";
import { resilient, type ResilientOptions } from "../../../adapters/llm/resilient.ts";
import { type ManualClock, manualClock } from "../../_helpers/manual_clock.ts";
import { settledYet } from "../../_helpers/settled_yet.ts";

const REQUEST: LlmRequest = {
  org: "o",
  session: "s",
  run: "r",
  messages: [{ role: "user", content: "hello" }],
};

const unavailable = () =>
  new ProviderError("Upstream answered 503", { retryable: true, status: 503 });
const badRequest = () =>
  new ProviderError("Upstream answered 400", { retryable: false, status: 400 });

/** A mock provider failing with each error of `script` in turn, then answering. */
function scripted(
  script: Array<() => Error>,
  options: { model?: string; latencyMs?: number; clock?: ManualClock } = {},
) {
  let calls = 0;
  return mockLlm({
    ...options,
    fail: () => script[calls++]?.(),
  });
}

function start(
  provider: Parameters<typeof resilient>[0],
  options: ResilientOptions,
  signal = new AbortController().signal,
) {
  const llm = resilient(provider, options);
  const attempts: LlmAttempt[] = [];
  const usages: Usage[] = [];
  const result = llm.complete(REQUEST, {
    signal,
    onAttempt: (attempt) => attempts.push(attempt),
    onUsage: (usage) => usages.push(usage),
  });
  result.catch(() => {});
  return { result, attempts, usages };
}

Deno.test("resilient retries a retryable error after a full-jitter wait, with a fresh id per attempt", async () => {
  const clock = manualClock();
  const provider = scripted([unavailable, unavailable]);
  const { result, attempts } = start(provider, {
    clock,
    random: () => 0.5,
    minDelayMs: 100,
    maxDelayMs: 1000,
  });
  await clock.settle();
  assert.equal(provider.stats.calls, 1);
  assert.equal(attempts[0]!.retryInMs, 50, "half of the first cap, 100");
  await clock.advance(49);
  assert.equal(provider.stats.calls, 1, "no retry before the wait is over");
  await clock.advance(1);
  assert.equal(provider.stats.calls, 2);
  assert.equal(attempts[1]!.retryInMs, 100, "half of the second cap, 200");
  await clock.advance(100);
  const completion = await result;
  assert.equal(completion.text, "hello");
  assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.status, a.code]), [
    [1, "failed", 503, "provider_error"],
    [2, "failed", 503, "provider_error"],
    [3, "completed", null, null],
  ]);
  assert.equal(attempts[2]!.retryInMs, null);
  const ids = provider.requests.map((r) => r.request);
  assert.deepEqual(ids, attempts.map((a) => a.request), "each attempt's id went upstream");
  assert.equal(new Set(ids).size, 3);
  assert.ok(attempts.every((a) => a.provider === "mock" && a.model === "mock-model"));
  assert.equal(clock.pending, 0, "the deadline timer is cleared");
});

Deno.test("each retry's wait is drawn below a cap that doubles up to maxDelayMs", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 0, max: 100_000 }),
      (retry, draw, minDelayMs, extra) => {
        const maxDelayMs = minDelayMs + extra;
        const wait = retryDelay(retry, undefined, { minDelayMs, maxDelayMs, random: () => draw });
        const cap = Math.min(maxDelayMs, minDelayMs * 2 ** (retry - 1));
        assert.ok(wait >= 0 && wait <= cap, `${wait} within [0, ${cap}]`);
        assert.equal(wait, Math.floor(draw * cap));
      },
    ),
  );
});

Deno.test("resilient waits at least the upstream's Retry-After, even above maxDelayMs", async () => {
  const clock = manualClock();
  const limited = () =>
    new ProviderError("Upstream answered 429", {
      retryable: true,
      status: 429,
      retryAfterMs: 5000,
    });
  const provider = scripted([limited]);
  const { result, attempts } = start(provider, { clock, random: () => 0.99, maxDelayMs: 1000 });
  await clock.settle();
  assert.equal(attempts[0]!.retryInMs, 5000);
  await clock.advance(4999);
  assert.equal(provider.stats.calls, 1);
  await clock.advance(1);
  assert.equal((await result).text, "hello");
  assert.equal(provider.stats.calls, 2);
});

Deno.test("resilient does not retry an error that is not retryable", async () => {
  const clock = manualClock();
  const provider = scripted([badRequest]);
  const { result, attempts } = start(provider, { clock });
  await assert.rejects(result, (error: ProviderError) => error.status === 400);
  assert.equal(provider.stats.calls, 1);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.retryInMs, null);
  assert.equal(clock.pending, 0);
});

Deno.test("resilient retries a dead worker but not a saturated pool", async () => {
  const clock = manualClock();
  const crashed = scripted([() => new WorkerCrashedError("Worker 1 died")]);
  const first = start(crashed, { clock, random: () => 0 });
  await clock.advance(0);
  assert.equal((await first.result).text, "hello");
  assert.equal(crashed.stats.calls, 2);
  const saturated = scripted([() => new PoolSaturatedError("Cannot call the llm pool: full", 100)]);
  const second = start(saturated, { clock, random: () => 0 });
  await assert.rejects(second.result, PoolSaturatedError);
  assert.equal(saturated.stats.calls, 1);
});

Deno.test("resilient gives up with the last error once its retries are spent", async () => {
  const clock = manualClock();
  const provider = scripted([unavailable, unavailable, unavailable, unavailable]);
  const { result, attempts } = start(provider, { clock, retries: 2, random: () => 0 });
  await clock.advance(0);
  await assert.rejects(result, (error: ProviderError) => error.status === 503);
  assert.equal(provider.stats.calls, 3);
  assert.deepEqual(attempts.map((a) => a.retryInMs), [0, 0, null]);
});

Deno.test("resilient falls back to another model once the first one's retries are spent", async () => {
  const clock = manualClock();
  const provider = scripted([unavailable, unavailable]);
  const { result, attempts } = start(provider, {
    clock,
    retries: 1,
    random: () => 0,
    fallback: [{ model: "small-model" }],
  });
  await clock.advance(0);
  const completion = await result;
  assert.equal(completion.model, "small-model");
  assert.deepEqual(provider.requests.map((r) => r.options?.model), [
    undefined,
    undefined,
    "small-model",
  ]);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.model, a.outcome, a.retryInMs]), [
    [1, "mock-model", "failed", 0],
    [2, "mock-model", "failed", 0],
    [3, "small-model", "completed", null],
  ]);
});

Deno.test("resilient falls back to another provider at once on an error that is not retryable", async () => {
  const clock = manualClock();
  const primary = scripted([badRequest]);
  const secondary = mockLlm({ model: "other-model" });
  const { result, attempts } = start(primary, { clock, fallback: [secondary] });
  const completion = await result;
  assert.equal(completion.model, "other-model");
  assert.equal(primary.stats.calls, 1);
  assert.equal(secondary.stats.calls, 1);
  assert.deepEqual(attempts.map((a) => [a.model, a.outcome, a.status]), [
    ["mock-model", "failed", 400],
    ["other-model", "completed", null],
  ]);
});

Deno.test("resilient fails with the last fallback's error when the whole chain fails", async () => {
  const clock = manualClock();
  const primary = scripted([badRequest]);
  const secondary = scripted([() => new ProviderError("Upstream answered 401", { status: 401 })]);
  const { result, attempts } = start(primary, { clock, fallback: [secondary] });
  await assert.rejects(result, (error: ProviderError) => error.status === 401);
  assert.deepEqual(attempts.map((a) => a.retryInMs), [0, null]);
});

Deno.test("resilient skips a wait that would end past the deadline", async () => {
  const clock = manualClock();
  const limited = () =>
    new ProviderError("Upstream answered 429", {
      retryable: true,
      status: 429,
      retryAfterMs: 60_000,
    });
  const alone = start(scripted([limited]), { clock, deadlineMs: 10_000 });
  await assert.rejects(alone.result, (error: ProviderError) => error.status === 429);
  assert.equal(alone.attempts[0]!.retryInMs, null);
  const backup = mockLlm({ model: "backup" });
  const chained = start(scripted([limited]), { clock, deadlineMs: 10_000, fallback: [backup] });
  assert.equal((await chained.result).model, "backup", "the fallback goes at once");
});

Deno.test("the deadline aborts the attempt in flight and fails retryably", async () => {
  const clock = manualClock();
  const slow = mockLlm({ latencyMs: 60_000, clock });
  const { result, attempts } = start(slow, { clock, deadlineMs: 1000 });
  await clock.advance(999);
  assert.equal(await settledYet(result), false);
  await clock.advance(1);
  await assert.rejects(
    result,
    (error: ProviderError) =>
      error.retryable && /deadline of 1000 ms passed during attempt 1/.test(error.message),
  );
  assert.equal(slow.stats.aborted, 1);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [["failed", "deadline_exceeded"]]);
  assert.equal(clock.pending, 0);
});

Deno.test("a deadline that cuts a retry short names the previous attempt's error as its cause", async () => {
  const clock = manualClock();
  // A retry wait of 500 fits in the deadline of 1000; the second attempt then takes too long.
  const provider = scripted([unavailable], { latencyMs: 400, clock });
  const { result } = start(provider, {
    clock,
    deadlineMs: 1000,
    minDelayMs: 1000,
    random: () => 0.5,
  });
  await clock.advance(1000);
  const error = await result.then(() => undefined, (e) => e);
  assert.ok(error instanceof ProviderError && /deadline/.test(error.message));
  assert.match(String((error.cause as Error).message), /503/);
});

Deno.test("cancelling during a wait rejects at once with the reason and makes no more attempts", async () => {
  const clock = manualClock();
  const provider = scripted([unavailable]);
  const controller = new AbortController();
  const { result, attempts } = start(provider, { clock, random: () => 0.5 }, controller.signal);
  await clock.settle();
  assert.equal(clock.pending, 2, "the deadline and the wait");
  const reason = new CancelledError("superseded");
  controller.abort(reason);
  await assert.rejects(result, (error) => error === reason);
  assert.equal(clock.pending, 0);
  await clock.advance(10_000);
  assert.equal(provider.stats.calls, 1);
  assert.equal(attempts.length, 1);
});

Deno.test("cancelling during an attempt aborts it and reports it cancelled", async () => {
  const clock = manualClock();
  const slow = mockLlm({ latencyMs: 5000, clock });
  const controller = new AbortController();
  const { result, attempts } = start(slow, { clock }, controller.signal);
  await clock.advance(100);
  controller.abort(new CancelledError());
  await assert.rejects(result, CancelledError);
  assert.equal(slow.stats.aborted, 1);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.code, a.retryInMs]), [[
    "cancelled",
    "cancelled",
    null,
  ]]);
});

Deno.test("resilient refuses bad options and closes each provider of its chain once", async () => {
  assert.throws(
    () => resilient(mockLlm(), { retries: -1 }),
    /retries must be an integer >= 0, current value is -1/,
  );
  assert.throws(() => resilient(mockLlm(), { deadlineMs: 0 }), /deadlineMs must be a number > 0/);
  assert.throws(
    () => resilient(mockLlm(), { minDelayMs: 500, maxDelayMs: 100 }),
    /maxDelayMs must be a finite number >= minDelayMs \(500\), current value is 100/,
  );
  let closed = 0;
  const closing = { ...mockLlm(), close: () => Promise.resolve(void closed++) };
  await resilient(closing, { fallback: [{ model: "x" }, closing] }).close?.();
  assert.equal(closed, 1);
});
