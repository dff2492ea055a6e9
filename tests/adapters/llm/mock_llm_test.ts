// Tests the mock LLM provider: echo, usage, latency on the injected clock, streaming, abort, failure.

import assert from "node:assert/strict";
import fc from "fast-check";
import { CancelledError, ProviderError } from "../../../actors/errors.ts";
import type { Clock, LlmOptions, LlmRequest } from "../../../actors/ports.ts";
import { mockLlm } from "../../../adapters/llm/mock_llm.ts";
import { settledYet } from "../../_helpers/settled_yet.ts";

interface Timer {
  fn: () => void;
  at: number;
  ms: number;
}

/** A clock that moves only when the test says, and tells the test when a timer is set. */
interface TestClock extends Clock {
  /** Timers set and not yet fired or cleared. */
  readonly pending: Set<Timer>;
  /** The delays of every timer ever set, in order. */
  readonly delays: number[];
  /** Move time forward, firing the timers that come due, in order. */
  advance(ms: number): void;
  /** Resolves once a timer is pending. */
  nextTimer(): Promise<void>;
}

function testClock(start = 0): TestClock {
  let now = start;
  const pending = new Set<Timer>();
  const delays: number[] = [];
  let waiters: Array<() => void> = [];
  return {
    pending,
    delays,
    now: () => now,
    setTimeout(fn, ms) {
      const timer = { fn, at: now + ms, ms };
      pending.add(timer);
      delays.push(ms);
      for (const wake of waiters) wake();
      waiters = [];
      return timer;
    },
    clearTimeout(id) {
      pending.delete(id as Timer);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...pending].filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        pending.delete(due);
        now = due.at;
        due.fn();
      }
      now = until;
    },
    nextTimer() {
      if (pending.size > 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

function requestOf(...contents: string[]): LlmRequest {
  return {
    org: "o",
    session: "s",
    run: "r",
    messages: contents.map((content) => ({ role: "user", content })),
  };
}

function call(): { signal: AbortSignal } {
  return { signal: new AbortController().signal };
}

Deno.test("mockLlm echoes the last user turn, whatever follows it", async () => {
  const llm = mockLlm();
  const completion = await llm.complete({
    org: "o",
    session: "s",
    run: "r",
    messages: [
      { role: "system", content: "be brief" },
      { role: "user", content: "first" },
      { role: "assistant", content: "answer" },
      { role: "user", content: "second question" },
      { role: "assistant", content: "trailing" },
    ],
  }, call());
  assert.equal(completion.text, "second question");
  assert.equal(completion.finishReason, "stop");
  assert.equal(completion.model, "mock-model");
});

Deno.test("mockLlm answers an empty string when there is no user turn", async () => {
  const llm = mockLlm();
  const deltas: string[] = [];
  const completion = await llm.complete(
    { org: "o", session: "s", run: "r", messages: [{ role: "system", content: "x" }] },
    { ...call(), onDelta: (text) => deltas.push(text) },
  );
  assert.equal(completion.text, "");
  assert.deepEqual(deltas, []);
});

Deno.test("mockLlm reports usage of one token per four characters, rounded up, as reported", async () => {
  const llm = mockLlm();
  // Inputs of 1, 4, 5 and 9 characters: 1 + 1 + 2 + 3 tokens; the echo of 9 characters is 3.
  const completion = await llm.complete(requestOf("a", "abcd", "abcde", "abcdefghi"), call());
  assert.deepEqual(completion.usage, {
    inputTokens: 7,
    outputTokens: 3,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: 10,
    source: "reported",
  });
});

Deno.test("mockLlm reports the requested model, else its own", async () => {
  const llm = mockLlm({ model: "tiny" });
  assert.equal(llm.model, "tiny");
  assert.equal((await llm.complete(requestOf("hi"), call())).model, "tiny");
  const asked = { ...requestOf("hi"), options: { model: "big" } };
  assert.equal((await llm.complete(asked, call())).model, "big");
});

Deno.test("mockLlm uses a custom reply and records the requests and counters", async () => {
  const llm = mockLlm({ reply: (request) => `to ${request.run}` });
  const first = requestOf("a");
  const second = { ...requestOf("b"), run: "r2" };
  assert.equal((await llm.complete(first, call())).text, "to r");
  assert.equal((await llm.complete(second, call())).text, "to r2");
  assert.deepEqual(llm.requests, [first, second]);
  assert.deepEqual(llm.stats, { calls: 2, completed: 2, aborted: 0, failed: 0, inFlight: 0 });
});

Deno.test("mockLlm keeps at least the newest requestLog requests, and none with 0", async () => {
  const kept = mockLlm({ requestLog: 3 });
  const sent: LlmRequest[] = [];
  for (let i = 0; i < 20; i++) {
    const request = { ...requestOf(`m${i}`), run: `r${i}` };
    sent.push(request);
    await kept.complete(request, call());
    assert.ok(kept.requests.length >= Math.min(3, i + 1) && kept.requests.length < 6);
    assert.deepEqual(kept.requests, sent.slice(-kept.requests.length), "the newest, in order");
  }
  const none = mockLlm({ requestLog: 0 });
  await none.complete(requestOf("a"), call());
  assert.deepEqual(none.requests, []);
  assert.equal(none.stats.calls, 1, "the counters still count");
});

Deno.test("mockLlm waits its latency on the injected clock before answering", async () => {
  const clock = testClock();
  const llm = mockLlm({ latencyMs: 250, clock });
  const deltas: string[] = [];
  const completion = llm.complete(requestOf("hello"), {
    ...call(),
    onDelta: (text) => deltas.push(text),
  });
  assert.deepEqual(clock.delays, [250]);
  assert.equal(llm.stats.inFlight, 1);
  clock.advance(249);
  assert.equal(await settledYet(completion), false);
  assert.deepEqual(deltas, []);
  clock.advance(1);
  assert.equal((await completion).text, "hello");
  assert.deepEqual(deltas, ["hello"]);
  assert.deepEqual(llm.stats, { calls: 1, completed: 1, aborted: 0, failed: 0, inFlight: 0 });
});

Deno.test("mockLlm takes a latency function per request", async () => {
  const clock = testClock();
  const llm = mockLlm({ latencyMs: (request) => request.messages.length * 100, clock });
  const completion = llm.complete(requestOf("a", "b", "c"), call());
  assert.deepEqual(clock.delays, [300]);
  clock.advance(300);
  assert.equal((await completion).text, "c");
});

Deno.test("mockLlm streams word tokens in order, one per 1/tokensPerSecond, that join to the text", async () => {
  const clock = testClock();
  const llm = mockLlm({ tokensPerSecond: 20, clock });
  const text = "  the quick\tbrown  fox\njumps ";
  const deltas: string[] = [];
  const completion = llm.complete(requestOf(text), {
    ...call(),
    onDelta: (delta) => deltas.push(delta),
  });
  let settled = false;
  completion.finally(() => settled = true).catch(() => {});
  while (!settled) {
    await Promise.race([clock.nextTimer(), completion]);
    clock.advance(50);
  }
  assert.equal((await completion).text, text);
  assert.deepEqual(deltas, ["  ", "the ", "quick\t", "brown  ", "fox\n", "jumps "]);
  assert.deepEqual(clock.delays, [50, 50, 50, 50, 50]);
});

Deno.test("mockLlm streams tokens that join to the text for any text", async () => {
  // A clock whose timers fire on the next microtask: streaming runs without real time.
  const instant: Clock = {
    now: () => 0,
    setTimeout: (fn) => queueMicrotask(fn),
    clearTimeout: () => {},
  };
  const llm = mockLlm({ tokensPerSecond: 1_000, clock: instant });
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 60 }), async (text) => {
      const deltas: string[] = [];
      const completion = await llm.complete(requestOf(text), {
        ...call(),
        onDelta: (delta) => deltas.push(delta),
      });
      assert.equal(completion.text, text);
      assert.equal(deltas.join(""), text);
      assert.ok(deltas.every((d) => d !== "" && !/\S\s+\S/.test(d)), JSON.stringify(deltas));
    }),
    { numRuns: 200 },
  );
});

Deno.test("mockLlm streams on real timers too", async () => {
  const llm = mockLlm({ tokensPerSecond: 2_000, latencyMs: 1 });
  const deltas: string[] = [];
  const completion = await llm.complete(requestOf("one two three"), {
    ...call(),
    onDelta: (delta) => deltas.push(delta),
  });
  assert.equal(completion.text, "one two three");
  assert.deepEqual(deltas, ["one ", "two ", "three"]);
});

Deno.test("mockLlm aborted mid-stream rejects with the signal's reason and sends no more deltas", async () => {
  const clock = testClock();
  const llm = mockLlm({ tokensPerSecond: 10, clock });
  const controller = new AbortController();
  const deltas: string[] = [];
  const completion = llm.complete(requestOf("one two three four"), {
    signal: controller.signal,
    onDelta: (delta) => deltas.push(delta),
  });
  await clock.nextTimer();
  clock.advance(100);
  await clock.nextTimer();
  assert.deepEqual(deltas, ["one ", "two "]);
  const reason = new CancelledError("Run superseded");
  controller.abort(reason);
  await assert.rejects(completion, (error) => error === reason);
  assert.equal(clock.pending.size, 0, "the abort clears the pending timer");
  clock.advance(10_000);
  assert.deepEqual(deltas, ["one ", "two "]);
  assert.deepEqual(llm.stats, { calls: 1, completed: 0, aborted: 1, failed: 0, inFlight: 0 });
});

Deno.test("mockLlm aborted during its latency rejects with the reason and sends nothing", async () => {
  const clock = testClock();
  const llm = mockLlm({ latencyMs: 1_000, clock });
  const controller = new AbortController();
  const deltas: string[] = [];
  const completion = llm.complete(requestOf("hello"), {
    signal: controller.signal,
    onDelta: (delta) => deltas.push(delta),
  });
  controller.abort();
  await assert.rejects(completion, (error) => error === controller.signal.reason);
  assert.equal(clock.pending.size, 0);
  assert.deepEqual(deltas, []);
  assert.equal(llm.stats.aborted, 1);
});

Deno.test("mockLlm called with an aborted signal rejects at once with its reason", async () => {
  const reason = new CancelledError();
  for (const latencyMs of [0, 50]) {
    const llm = mockLlm({ latencyMs, clock: testClock() });
    const deltas: string[] = [];
    await assert.rejects(
      llm.complete(requestOf("hello"), {
        signal: AbortSignal.abort(reason),
        onDelta: (delta) => deltas.push(delta),
      }),
      (error) => error === reason,
    );
    assert.deepEqual(deltas, []);
    assert.deepEqual(llm.stats, { calls: 1, completed: 0, aborted: 1, failed: 0, inFlight: 0 });
  }
});

Deno.test("mockLlm with fail rejects with that error after the latency, sending nothing", async () => {
  const clock = testClock();
  const failure = new ProviderError("Upstream answered 503", { retryable: true, status: 503 });
  const llm = mockLlm({
    latencyMs: 100,
    clock,
    fail: (request) => request.messages.at(-1)?.content === "bad" ? failure : undefined,
  });
  const deltas: string[] = [];
  const failed = llm.complete(requestOf("bad"), {
    ...call(),
    onDelta: (delta) => deltas.push(delta),
  });
  assert.equal(await settledYet(failed), false);
  clock.advance(100);
  await assert.rejects(failed, (error) => error === failure);
  assert.deepEqual(deltas, []);
  const fine = llm.complete(requestOf("good"), call());
  clock.advance(100);
  assert.equal((await fine).text, "good");
  assert.deepEqual(llm.stats, { calls: 2, completed: 1, aborted: 0, failed: 1, inFlight: 0 });
});

Deno.test("mockLlm refuses invalid options with a RangeError naming the option", () => {
  for (const latencyMs of [-1, NaN]) {
    assert.throws(
      () => mockLlm({ latencyMs }),
      (error) => error instanceof RangeError && error.message.includes("latencyMs"),
    );
  }
  for (const requestLog of [-1, 1.5, NaN]) {
    assert.throws(
      () => mockLlm({ requestLog }),
      (error) => error instanceof RangeError && error.message.includes("requestLog"),
    );
  }
  for (const tokensPerSecond of [0, -3, NaN]) {
    assert.throws(
      () => mockLlm({ tokensPerSecond }),
      (error) => error instanceof RangeError && error.message.includes("tokensPerSecond"),
    );
  }
});

Deno.test("mockLlm gives onUsage what each call cost: reported when answered, estimated when cut, nothing before it began", async () => {
  const clock = testClock();
  const llm = mockLlm({ tokensPerSecond: 10, clock });
  const seen: Array<{ source: string; outputTokens: number; inputTokens: number }> = [];
  const onUsage = (usage: { source: string; outputTokens: number; inputTokens: number }) =>
    seen.push(usage);

  // Answered: the usage it returns, as reported.
  const whole = llm.complete(requestOf("one two"), {
    signal: new AbortController().signal,
    onUsage,
  });
  await clock.nextTimer();
  clock.advance(100);
  const completion = await whole;
  assert.deepEqual(seen.map((u) => u.source), ["reported"]);
  assert.equal(seen[0]!.outputTokens, completion.usage.outputTokens);

  // Cut mid-reply with no onDelta: the prompt and the text generated so far, estimated.
  const controller = new AbortController();
  const cut = llm.complete(requestOf("one two three four five six seven eight"), {
    signal: controller.signal,
    onUsage,
  });
  await clock.nextTimer();
  clock.advance(100);
  await clock.nextTimer();
  controller.abort(new CancelledError("superseded"));
  await assert.rejects(cut);
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.source, "estimated");
  assert.ok(seen[1]!.inputTokens > 0);
  // "one two " generated, 8 characters: 2 tokens at one per four characters.
  assert.equal(seen[1]!.outputTokens, 2);

  // Aborted before it came in: it never reached the upstream, so it cost nothing.
  const early = new AbortController();
  early.abort();
  await assert.rejects(llm.complete(requestOf("hello"), { signal: early.signal, onUsage }));
  assert.equal(seen.length, 2);
});

Deno.test("mockLlm cuts its reply at a stop sequence and at maxTokens (finish reason length)", async () => {
  const llm = mockLlm({ tokensPerSecond: 10_000 });
  const ask = async (options: LlmOptions) => {
    const deltas: string[] = [];
    const completion = await llm.complete(
      {
        org: "o",
        session: "s",
        run: "r",
        messages: [{ role: "user", content: "one two three four" }],
        options,
      },
      { signal: new AbortController().signal, onDelta: (text) => deltas.push(text) },
    );
    assert.deepEqual(deltas.join(""), completion.text, "the stream says what the completion says");
    return [completion.text, completion.finishReason, completion.usage.outputTokens];
  };
  assert.deepEqual(await ask({ maxTokens: 2 }), ["one two ", "length", 2]);
  assert.deepEqual(await ask({ stop: [" three"] }), ["one two", "stop", 2]);
  assert.deepEqual(await ask({ stop: ["zzz"], maxTokens: 5 }), ["one two three four", "stop", 5]);
  assert.deepEqual(await ask({ temperature: 1 }), ["one two three four", "stop", 5]);
});
