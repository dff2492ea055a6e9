// Runtime tests: the module API with the mock LLM, a manual clock and the in-memory adapters.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { createRuntime, type RuntimeOptions } from "../../actors/runtime.ts";
import {
  InvalidInputError,
  OverloadedError,
  ShutdownError,
  TroupeError,
} from "../../actors/errors.ts";
import type { TroupeEvent } from "../../actors/events.ts";
import type { LlmProvider, Store } from "../../actors/ports.ts";
import type { StreamEvent } from "../../actors/reply.ts";
import { mockLlm, type MockLlmOptions } from "../../adapters/llm/mock_llm.ts";
import { memoryStore } from "../../adapters/store/memory_store.ts";
import { manualClock } from "../_helpers/manual_clock.ts";
import { systemClock } from "../../actors/clock.ts";
import { usageOf } from "../../actors/usage.ts";
import { validateEvent } from "../../actors/validate_event.ts";

function setup(
  llmOptions: MockLlmOptions = {},
  options: Omit<RuntimeOptions, "llm" | "clock"> = {},
) {
  const clock = manualClock();
  const llm = mockLlm({ clock, ...llmOptions });
  const runtime = createRuntime({ llm, clock, ...options });
  const events: TroupeEvent[] = [];
  runtime.subscribe((event) => events.push(event));
  return { clock, llm, runtime, events };
}

/** `store`, whose history appends fail as a database that cannot be reached while `down()`. */
function unreachableWhile(store: Store, down: () => boolean): Store {
  return {
    ...store,
    appendHistory: (org, session, entries) =>
      down()
        ? Promise.reject(new Error("connect ECONNREFUSED"))
        : store.appendHistory(org, session, entries),
  };
}

async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

Deno.test("cancellation reaches the provider: a superseded call's signal aborts and its streaming stops", async () => {
  const { clock, runtime } = setup();
  const signals: AbortSignal[] = [];
  let deltasAfterAbort = 0;
  const inner = mockLlm({ clock, latencyMs: 10, tokensPerSecond: 100 });
  await using rt = createRuntime({
    clock,
    llm: {
      name: "watched",
      complete(request, options) {
        signals.push(options.signal);
        return inner.complete(request, {
          signal: options.signal,
          onDelta: (text) => {
            if (options.signal.aborted) deltasAfterAbort++;
            options.onDelta?.(text);
          },
        });
      },
    },
  });
  await runtime.close();
  const first = rt.send({ session: "s", content: "one two three four five six" });
  await clock.advance(25);
  const second = rt.send({ session: "s", content: "seven" });
  await clock.advance(0);
  assert(signals[0]!.aborted);
  await clock.advance(1000);
  assertEquals((await first).status, "superseded");
  assertEquals((await second).status, "completed");
  assertEquals(inner.stats.aborted, 1, "the provider saw the abort");
  assertEquals(deltasAfterAbort, 0, "no token was produced after the abort");
});

Deno.test("a cancelled run still records its usage, estimated from what was streamed", async () => {
  const { clock, runtime, events } = setup({ latencyMs: 10, tokensPerSecond: 100 });
  const first = runtime.send({ session: "s", content: "aaaa bbbb cccc dddd" });
  await clock.advance(25);
  const second = runtime.send({ session: "s", content: "next" });
  await clock.advance(1000);
  await Promise.all([first, second]);
  await runtime.close();
  const usage = events.filter((e) => e.type === "usage.recorded");
  assertEquals(usage.map((u) => u.status), ["cancelled", "completed"]);
  const cancelled = usage[0]!;
  assertEquals(cancelled.source, "estimated");
  assert(cancelled.outputTokens > 0, "tokens already streamed are counted");
  assertEquals(cancelled.messages, [(await first).messageId]);
  assertEquals(usage[1]!.source, "reported");
});

Deno.test("debounce folds a burst into one provider call", async () => {
  const { clock, llm, runtime } = setup({}, { debounceMs: 100 });
  const replies = ["a", "b", "c"].map((content) => runtime.send({ session: "s", content }));
  await clock.advance(99);
  assertEquals(llm.stats.calls, 0);
  await clock.advance(1);
  const [a, b, c] = await Promise.all(replies);
  assertEquals(llm.stats.calls, 1);
  assertEquals(c!.text, "a\n---\nb\n---\nc");
  assertEquals(c!.answered, [a!.messageId, b!.messageId, c!.messageId]);
  await runtime.close();
});

Deno.test("single-flight activation: 100 concurrent first messages load history once", async () => {
  const clock = manualClock();
  const store = memoryStore();
  let loads = 0;
  const counted: Store = {
    appendHistory: (...args) => store.appendHistory(...args),
    readHistory: (...args) => {
      loads++;
      return store.readHistory(...args);
    },
    close: () => store.close(),
  };
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({
    clock,
    store: counted,
    llm: mockLlm({ clock }),
    policy: "enqueue",
  });
  runtime.subscribe((e) => events.push(e));
  const replies = Array.from(
    { length: 100 },
    (_, i) => runtime.send({ session: "new", content: `m${i}` }),
  );
  await clock.advance(0);
  const settled = await Promise.all(replies);
  assertEquals(loads, 1);
  assertEquals(events.filter((e) => e.type === "session.activated").length, 1);
  assertEquals(settled.map((r) => r.text), Array.from({ length: 100 }, (_, i) => `m${i}`));
});

Deno.test("an idle session is passivated and reactivated with its history", async () => {
  const { clock, llm, runtime, events } = setup({ latencyMs: 10 }, { idleTimeoutMs: 1000 });
  const first = runtime.send({ session: "s", content: "remember me" });
  await clock.advance(10);
  await first;
  assertEquals(runtime.activeSessions, 1);
  await clock.advance(2000);
  assertEquals(runtime.activeSessions, 0);
  assert(events.some((e) => e.type === "session.passivated" && e.reason === "idle"));
  const second = runtime.send({ session: "s", content: "and now?" });
  await clock.advance(10);
  assertEquals((await second).status, "completed");
  assertEquals(llm.requests.at(-1)!.messages.map((m) => m.content), [
    "remember me",
    "remember me",
    "and now?",
  ]);
  const activations = events.filter((e) => e.type === "session.activated");
  assertEquals(activations.map((e) => e.historyLength), [0, 2]);
  await runtime.close();
});

Deno.test("regression: a session with a run in flight is never passivated, and is not left busy after", async () => {
  const { clock, runtime } = setup({ latencyMs: 5000 }, { idleTimeoutMs: 1000 });
  const reply = runtime.send({ session: "s", content: "slow" });
  await clock.advance(3000);
  assertEquals(runtime.activeSessions, 1, "busy sessions stay live past the idle timeout");
  await clock.advance(2000);
  assertEquals((await reply).status, "completed");
  await clock.advance(3000);
  assertEquals(runtime.activeSessions, 0);
  const again = runtime.send({ session: "s", content: "fresh", policy: "reject" });
  await clock.advance(5000);
  assertEquals((await again).status, "completed", "the reactivated session is idle, not busy");
  await runtime.close();
});

Deno.test("overload: when every slot holds a running session a new session is refused at once", async () => {
  const { clock, runtime, events } = setup({ latencyMs: 1000 }, { maxActiveSessions: 2 });
  const a = runtime.send({ session: "a", content: "x" });
  const b = runtime.send({ session: "b", content: "x" });
  await clock.advance(0);
  const error = await runtime.send({ session: "c", content: "x" }).catch((e) => e);
  assert(error instanceof OverloadedError);
  assert(error.retryAfterMs > 0);
  assertEquals(runtime.activeSessions, 2);
  assert(events.some((e) => e.type === "request.rejected" && e.code === "overloaded"));
  await clock.advance(1000);
  await Promise.all([a, b]);
  // Now both are idle: the least recently used one makes room.
  const c = runtime.send({ session: "c", content: "x" });
  await clock.advance(1000);
  assertEquals((await c).status, "completed");
  assertEquals(runtime.activeSessions, 2);
  assert(events.some((e) => e.type === "session.passivated" && e.session === "a"));
  await runtime.close();
});

Deno.test("sending the same id twice returns the first outcome and makes no second call", async () => {
  const { clock, llm, runtime } = setup({ latencyMs: 10 });
  const first = runtime.send({ session: "s", content: "once", id: "client-1" });
  const again = runtime.send({ session: "s", content: "once", id: "client-1" });
  await clock.advance(10);
  const later = runtime.send({ session: "s", content: "once", id: "client-1" });
  assertEquals(await again, await first);
  assertEquals(await later, await first);
  assertEquals((await first).status, "completed");
  assertEquals(llm.stats.calls, 1);
  const history = await runtime.history({ session: "s" });
  assertEquals(history.messages.filter((m) => m.role === "user").length, 1);
  await runtime.close();
});

Deno.test("after a restart, a resent id is answered from the stored history, not run again", async () => {
  const clock = manualClock();
  const store = memoryStore();
  // The first process stops; its store (kept open here) is what the next one starts from.
  const kept: Store = { ...store, close: () => Promise.resolve() };
  const first = createRuntime({ llm: mockLlm({ clock, latencyMs: 10 }), clock, store: kept });
  // m1 answered alone; m2 superseded by m3 (interrupt); m4 and m5 folded into one run.
  const m1 = first.send({ session: "s", content: "one", id: "m1" });
  await clock.advance(10);
  const m2 = first.send({ session: "s", content: "two", id: "m2" });
  await clock.advance(5);
  const m3 = first.send({ session: "s", content: "three", id: "m3", policy: "interrupt" });
  await clock.advance(10);
  const m4 = first.send({ session: "s", content: "four", id: "m4" });
  await clock.advance(5);
  const m5 = first.send({ session: "s", content: "five", id: "m5", policy: "merge" });
  await clock.advance(10);
  const before = await Promise.all([m1, m2, m3, m4, m5]);
  assertEquals(before.map((r) => r.status), [
    "completed",
    "superseded",
    "completed",
    "superseded",
    "completed",
  ]);
  await first.close();

  const llm = mockLlm({ clock, latencyMs: 10 });
  const second = createRuntime({ llm, clock, store });
  const [a1, a2, a3, a4, a5] = await Promise.all(
    ["m1", "m2", "m3", "m4", "m5"].map((id) =>
      second.send({ session: "s", content: "sent again", id })
    ),
  );
  assertEquals(llm.stats.calls, 0, "no second run");
  for (const [again, was] of [[a1, before[0]], [a3, before[2]], [a5, before[4]]] as const) {
    assertEquals(again!.status, "completed");
    assertEquals(again!.text, was!.text);
    assertEquals(again!.runId, was!.runId);
    assertEquals(again!.answered, was!.answered);
  }
  assertEquals(a4!.status, "completed", "m4 was folded into the run that answered m5");
  assertEquals(a4!.messageId, "m4");
  assertEquals(a4!.answered, ["m4", "m5"]);
  assertEquals(a2!.status, "superseded", "answering m2 now would answer a stale message");
  assertEquals(a2!.supersededBy, before[2]!.runId);
  const history = await second.history({ session: "s" });
  assertEquals(history.messages.length, 8, "nothing stored again");
  await second.close();
});

Deno.test("after a restart, a resent id whose run never ended runs, and enters history once", async () => {
  const clock = manualClock();
  const store = memoryStore();
  // What a process that stopped during the run of m2 left: m2 stored, no answer.
  await store.appendHistory("default", "s", [
    { id: "m1", role: "user", content: "one", ts: 1 },
    { id: "r1", role: "assistant", content: "one", ts: 2, answered: ["m1"] },
    { id: "m2", role: "user", content: "two", ts: 3 },
  ]);
  const prompts: string[][] = [];
  const inner = mockLlm({ clock, latencyMs: 10 });
  const runtime = createRuntime({
    clock,
    store,
    llm: {
      name: "watched",
      complete(request, options) {
        prompts.push(request.messages.map((m) => `${m.role}:${m.content}`));
        return inner.complete(request, options);
      },
    },
  });
  const again = runtime.send({ session: "s", content: "two", id: "m2" });
  await clock.advance(10);
  assertEquals((await again).status, "completed");
  assertEquals(
    prompts,
    [["user:one", "assistant:one", "user:two"]],
    "the message reaches the model once",
  );
  const history = await runtime.history({ session: "s" });
  assertEquals(history.messages.map((m) => m.id).filter((id) => id === "m2"), ["m2"]);
  assertEquals(history.messages.at(-1)!.answered, ["m2"]);
  await runtime.close();
});

Deno.test("after a restart, an unanswered id resent after a newer message was answered is superseded", async () => {
  const clock = manualClock();
  const store = memoryStore();
  // A process stopped during the run of m1.
  await store.appendHistory("default", "s", [{ id: "m1", role: "user", content: "one", ts: 1 }]);
  const llm = mockLlm({ clock, latencyMs: 10 });
  await using runtime = createRuntime({ clock, store, llm });
  const newer = runtime.send({ session: "s", content: "two", id: "m2" });
  await clock.advance(10);
  assertEquals((await newer).status, "completed");
  const again = await runtime.send({ session: "s", content: "one", id: "m1" });
  assertEquals([again.status, again.supersededBy], ["superseded", (await newer).runId]);
  assertEquals(llm.stats.calls, 1, "the stale message is not answered");
});

Deno.test("orgs never share a session: same session id in two orgs stays apart", async () => {
  const { clock, runtime } = setup({ latencyMs: 10 });
  const a = runtime.send({ org: "acme", session: "s", content: "acme secret" });
  const b = runtime.send({ org: "globex", session: "s", content: "globex secret" });
  await clock.advance(10);
  assertEquals((await a).status, "completed", "no merge across orgs");
  assertEquals((await b).status, "completed");
  assertEquals((await a).text, "acme secret");
  const acme = await runtime.history({ org: "acme", session: "s" });
  const globex = await runtime.history({ org: "globex", session: "s" });
  assert(acme.messages.every((m) => !m.content.includes("globex")));
  assert(globex.messages.every((m) => !m.content.includes("acme")));
  assertEquals((await runtime.history({ session: "s" })).messages, []);
  await runtime.close();
});

Deno.test("shutdown lets runs finish within the grace period, then fails the rest and refuses new work", async () => {
  const { clock, runtime, events } = setup({ latencyMs: 100 });
  const quick = runtime.send({ session: "a", content: "quick" });
  await clock.advance(50);
  const slow = runtime.send({ session: "b", content: "slow", policy: "enqueue" });
  const done = runtime.shutdown({ graceMs: 60 });
  await assertRejects(runtime.send({ session: "c", content: "late" }), ShutdownError);
  await clock.advance(60);
  await done;
  assertEquals((await quick).status, "completed");
  const failed = await slow;
  assertEquals(failed.status, "failed");
  assertEquals(failed.error?.code, "shutting_down");
  const usage = events.filter((e) => e.type === "usage.recorded").map((e) => e.status);
  assertEquals(usage.sort(), ["cancelled", "completed"], "events were flushed before close");
  assertEquals(runtime.activeSessions, 0);
});

Deno.test("every invalid input is refused before anything runs, naming the field", async () => {
  const { llm, runtime, events } = setup();
  const cases: [unknown, string][] = [
    [{ session: "s", content: "" }, "content"],
    [{ session: "s", content: "   " }, "content"],
    [{ session: "s", content: "x".repeat(100_001) }, "content"],
    [{ session: "s", content: 42 }, "content"],
    [{ session: "", content: "hi" }, "session"],
    [{ session: "has space", content: "hi" }, "session"],
    [{ session: "s".repeat(129), content: "hi" }, "session"],
    [{ content: "hi" }, "session"],
    [{ org: "a/b", session: "s", content: "hi" }, "org"],
    [{ session: "s", content: "hi", id: "" }, "id"],
    [{ session: "s", content: "hi", id: "a\nb" }, "id"],
    [{ session: "s", content: "hi", policy: "later" }, "policy"],
    [null, "input"],
  ];
  for (const [input, field] of cases) {
    const error = await runtime.send(input as never).catch((e) => e);
    assert(error instanceof InvalidInputError, `expected InvalidInputError for ${field}`);
    assertEquals(error.field, field);
    assertEquals(error.code, "invalid_input");
    assert(error.message.includes(field));
  }
  const badHistory = await runtime.history({ session: "s", limit: 0 }).catch((e) => e);
  assertEquals(badHistory.field, "limit");
  assertEquals(llm.stats.calls, 0);
  assertEquals(events.length, 0);
  assertEquals(runtime.activeSessions, 0);
  await runtime.close();
});

Deno.test("stream yields deltas as they are generated, then the reply", async () => {
  const { clock, runtime } = setup({ latencyMs: 5, tokensPerSecond: 100 });
  const events = collect(runtime.stream({ session: "s", content: "one two three" }));
  await clock.advance(100);
  const seen = await events;
  assertEquals(seen.filter((e) => e.type === "delta").map((e) => e.type === "delta" && e.text), [
    "one ",
    "two ",
    "three",
  ]);
  const last = seen.at(-1)!;
  assert(last.type === "reply" && last.reply.status === "completed");
  await runtime.close();
});

Deno.test("regression: two overlapping streams on one session never interleave their deltas", async () => {
  const { clock, runtime } = setup({ latencyMs: 5, tokensPerSecond: 100 });
  const first = collect(runtime.stream({ session: "s", content: "alpha beta gamma delta" }));
  await clock.advance(20);
  const second = collect(runtime.stream({ session: "s", content: "omega" }));
  await clock.advance(200);
  const [a, b] = await Promise.all([first, second]);
  const aText = a.flatMap((e) => e.type === "delta" ? [e.text] : []).join("");
  const bText = b.flatMap((e) => e.type === "delta" ? [e.text] : []).join("");
  assert("alpha beta gamma delta".startsWith(aText), "the first stream only got its own run");
  assertEquals(bText, "alpha beta gamma delta\n---\nomega");
  const aReply = a.at(-1)!;
  assert(aReply.type === "reply" && aReply.reply.status === "superseded");
  await runtime.close();
});

Deno.test("cancel stops the run in flight and drops the queue; nothing of them reaches history as an answer", async () => {
  const { clock, llm, runtime } = setup({ latencyMs: 100 });
  const running = runtime.send({ session: "s", content: "running" });
  const queued = runtime.send({ session: "s", content: "queued", policy: "enqueue" });
  await clock.advance(10);
  assertEquals(await runtime.cancel({ session: "s" }), 2);
  assertEquals((await running).status, "cancelled");
  assertEquals((await queued).status, "cancelled");
  await clock.advance(200);
  assertEquals(llm.stats.aborted, 1);
  assertEquals(llm.stats.calls, 1);
  const history = await runtime.history({ session: "s" });
  assertEquals(history.messages.map((m) => [m.role, m.content]), [["user", "running"]]);
  assertEquals(await runtime.cancel({ session: "s" }), 0, "nothing left to cancel");
  const next = runtime.send({ session: "s", content: "after" });
  await clock.advance(100);
  assertEquals((await next).status, "completed");
  await runtime.close();
});

Deno.test("history pages walk back through the whole session with a cursor", async () => {
  const { clock, runtime } = setup({}, { policy: "enqueue" });
  for (let i = 0; i < 5; i++) {
    const reply = runtime.send({ session: "s", content: `m${i}` });
    await clock.advance(0);
    await reply;
  }
  const seen: string[] = [];
  let before: string | undefined;
  do {
    const page: Awaited<ReturnType<typeof runtime.history>> = await runtime.history({
      session: "s",
      limit: 3,
      ...(before === undefined ? {} : { before }),
    });
    seen.unshift(...page.messages.map((m) => m.content));
    before = page.next ?? undefined;
  } while (before !== undefined);
  assertEquals(seen, ["m0", "m0", "m1", "m1", "m2", "m2", "m3", "m3", "m4", "m4"]);
  await runtime.close();
});

Deno.test("session settings override the policy for one session", async () => {
  const { clock, llm, runtime } = setup({ latencyMs: 10 }, {
    sessionSettings: ({ session }) => session === "fifo" ? { policy: "enqueue" } : undefined,
  });
  const fifo = [
    runtime.send({ session: "fifo", content: "a" }),
    runtime.send({ session: "fifo", content: "b" }),
  ];
  const merged = [
    runtime.send({ session: "m", content: "a" }),
    runtime.send({ session: "m", content: "b" }),
  ];
  await clock.advance(100);
  assertEquals((await Promise.all(fifo)).map((r) => r.status), ["completed", "completed"]);
  assertEquals((await Promise.all(merged)).map((r) => r.status), ["superseded", "completed"]);
  assertEquals(llm.stats.calls, 3, "fifo: two calls; merge: one call for both");
  await runtime.close();
});

Deno.test("a failing provider gives a failed reply with a typed error, and the session goes on", async () => {
  let fail = true;
  const { clock, runtime } = setup({
    fail: () => fail ? new TroupeError("provider_error", "upstream down", true) : undefined,
  });
  const first = runtime.send({ session: "s", content: "x" });
  await clock.advance(0);
  assertEquals((await first).error, {
    code: "provider_error",
    message: "upstream down",
    retryable: true,
  });
  fail = false;
  const second = runtime.send({ session: "s", content: "y" });
  await clock.advance(0);
  assertEquals((await second).status, "completed");
  await runtime.close();
});

Deno.test("a failed history write is reported and the session keeps answering", async () => {
  const clock = manualClock();
  const errors: unknown[] = [];
  const broken: Store = {
    appendHistory: () => Promise.reject(new Error("disk full")),
    readHistory: () => Promise.resolve({ entries: [], next: null }),
    close: () => Promise.resolve(),
  };
  const llm: LlmProvider = mockLlm({ clock });
  await using runtime = createRuntime({
    clock,
    llm,
    store: broken,
    onError: (error) => errors.push(error),
  });
  const reply = runtime.send({ session: "s", content: "x" });
  await clock.advance(0);
  assertEquals((await reply).status, "completed");
  // Each append is retried for a minute, then given up on and reported.
  const reading = runtime.history({ session: "s" });
  await clock.advance(140_000);
  await reading;
  const kinds = errors.map((error) => (error as Error).message.split(":")[0]);
  assert(kinds.length >= 2 && kinds.length % 2 === 0, kinds.join(" | "));
  for (let i = 0; i < kinds.length; i += 2) {
    assertEquals(kinds.slice(i, i + 2), [
      "Cannot append the history of session s yet",
      "disk full",
    ]);
  }
});

Deno.test("a history write that fails while the store is unreachable is retried, and nothing is lost", async () => {
  const clock = manualClock();
  const errors: unknown[] = [];
  const store = memoryStore();
  let failures = 3;
  const flaky = unreachableWhile(store, () => failures-- > 0);
  await using runtime = createRuntime({
    clock,
    llm: mockLlm({ clock }),
    store: flaky,
    durableReplies: true,
    onError: (error) => errors.push(error),
  });
  let settled = false;
  const reply = runtime.send({ session: "s", content: "keep me" });
  void reply.then(() => settled = true);
  await clock.advance(0);
  assertEquals(settled, false, "a durable reply waits for its history");
  await clock.advance(2_000);
  assertEquals((await reply).status, "completed");
  const { messages } = await runtime.history({ session: "s" });
  assertEquals(messages.map((m) => [m.role, m.content]), [
    ["user", "keep me"],
    ["assistant", "keep me"],
  ]);
  assertEquals(errors.length, 1, "one report for the streak of failures");
  assert(/retrying/.test(String(errors[0])));
});

Deno.test("while history cannot be stored, new messages are refused past maxHistoryBacklog, and accepted once it drains", async () => {
  const clock = manualClock();
  const store = memoryStore();
  let down = true;
  const outage = unreachableWhile(store, () => down);
  await using runtime = createRuntime({
    clock,
    llm: mockLlm({ clock }),
    store: outage,
    maxHistoryBacklog: 4,
    onError: () => {},
  });
  // Each answered message leaves two entries (the message and its answer) waiting.
  assertEquals((await runtime.send({ session: "a", content: "one" })).status, "completed");
  assertEquals((await runtime.send({ session: "b", content: "two" })).status, "completed");
  await assertRejects(
    () => runtime.send({ session: "c", content: "three" }),
    (error) => {
      assert(error instanceof OverloadedError, String(error));
      assert(/4 entries wait \(maxHistoryBacklog\)/.test(error.message), error.message);
      return true;
    },
  );
  assertEquals(runtime.unstoredHistory, 4);
  down = false;
  await clock.advance(1_000);
  assertEquals(runtime.unstoredHistory, 0);
  assertEquals((await runtime.send({ session: "c", content: "three" })).status, "completed");
  for (const session of ["a", "b"]) {
    assertEquals((await runtime.history({ session })).messages.length, 2, "nothing was lost");
  }
});

Deno.test("bad runtime options stop creation with a message naming the option", () => {
  for (
    const [options, name] of [
      [{ idleTimeoutMs: 0 }, "idleTimeoutMs"],
      [{ maxActiveSessions: -1 }, "maxActiveSessions"],
      [{ debounceMs: Number.NaN }, "debounceMs"],
      [{ policy: "sometimes" }, "policy"],
    ] as const
  ) {
    let caught: unknown;
    try {
      createRuntime(options as RuntimeOptions);
    } catch (error) {
      caught = error;
    }
    assert(
      caught instanceof Error && caught.message.includes(name),
      `expected an error for ${name}`,
    );
  }
});

Deno.test("a burst sent in one tick makes one provider call under merge, even without debounce", async () => {
  const { clock, llm, runtime, events } = setup({ latencyMs: 200 });
  const replies = ["a", "b", "c", "d", "e"].map((content) =>
    runtime.send({ session: "s", content })
  );
  await clock.advance(200);
  const settled = await Promise.all(replies);
  assertEquals(llm.stats.calls, 1, "superseded runs of the same tick never reach the provider");
  assertEquals(settled.at(-1)!.text, "a\n---\nb\n---\nc\n---\nd\n---\ne");
  assertEquals(settled.slice(0, 4).map((r) => r.status), Array(4).fill("superseded"));
  await runtime.close();
  assertEquals(events.filter((e) => e.type === "usage.recorded").length, 1);
  assertEquals(events.filter((e) => e.type === "run.superseded").length, 4, "still audited");
});

Deno.test("a rejected message left no trace, so its id can be sent again once the session is free", async () => {
  const { clock, llm, runtime } = setup({ latencyMs: 10 });
  const first = runtime.send({ session: "s", content: "busy" });
  const refused = await runtime.send({
    session: "s",
    content: "retry me",
    id: "r-1",
    policy: "reject",
  });
  assertEquals(refused.status, "rejected");
  await clock.advance(10);
  await first;
  const retried = runtime.send({ session: "s", content: "retry me", id: "r-1", policy: "reject" });
  await clock.advance(10);
  assertEquals((await retried).status, "completed");
  assertEquals(llm.stats.calls, 2);
  await runtime.close();
});

Deno.test("shutdown with a bad grace period rejects, naming it, and shuts nothing down", async () => {
  const { runtime } = setup();
  const error = await runtime.shutdown({ graceMs: -1 }).catch((e) => e);
  assert(error instanceof RangeError && error.message.startsWith("Cannot shut down: graceMs"));
  await runtime.close();
});

Deno.test("a duplicate id in flight shares the first outcome even with no dedupe window", async () => {
  const { clock, llm, runtime } = setup({ latencyMs: 10 }, { dedupeWindow: 0 });
  const first = runtime.send({ session: "s", content: "once", id: "same" });
  const again = runtime.send({ session: "s", content: "once", id: "same" });
  await clock.advance(10);
  assertEquals(await again, await first);
  assertEquals(llm.stats.calls, 1);
  const later = runtime.send({ session: "s", content: "once", id: "same" });
  await clock.advance(10);
  assertEquals((await later).status, "completed", "settled outcomes are not kept with window 0");
  assertEquals(llm.stats.calls, 2);
  await runtime.close();
});

Deno.test("a saturated bus makes the runtime refuse new messages instead of losing events", async () => {
  const clock = manualClock();
  let saturated = false;
  const delivered: TroupeEvent[] = [];
  const bus = {
    publish: (event: TroupeEvent) => void delivered.push(event),
    subscribe: () => () => {},
    saturated: () => saturated,
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  await using runtime = createRuntime({ clock, bus, llm: mockLlm({ clock }) });
  const ok = runtime.send({ session: "s", content: "before" });
  await clock.advance(0);
  assertEquals((await ok).status, "completed");
  saturated = true;
  const error = await runtime.send({ session: "s", content: "during" }).catch((e) => e);
  assert(error instanceof OverloadedError && error.message.includes("event buffer"));
  saturated = false;
  const after = runtime.send({ session: "s", content: "after" });
  await clock.advance(0);
  assertEquals((await after).status, "completed");
  assertEquals(
    delivered.filter((e) => e.type === "message.received").length,
    2,
    "the refused message never entered the session",
  );
});

Deno.test("a provider is asked for deltas only by runs whose caller streams", async () => {
  const inner = mockLlm();
  const askedForDeltas: boolean[] = [];
  const llm: LlmProvider = {
    name: "recording",
    complete(request, call) {
      askedForDeltas.push(call.onDelta !== undefined);
      return inner.complete(request, call);
    },
  };
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm });
  runtime.subscribe((event) => events.push(event));
  assertEquals((await runtime.send({ session: "s", content: "whole" })).text, "whole");
  const deltas: string[] = [];
  for await (const event of runtime.stream({ session: "s", content: "in pieces" })) {
    if (event.type === "delta") deltas.push(event.text);
  }
  assertEquals(deltas.join(""), "in pieces");
  assertEquals(askedForDeltas, [false, true]);
  await runtime.close();
  // A run nobody streamed has no time to first token; a streamed one has.
  const ttft = events.filter((e) => e.type === "usage.recorded").map((e) => e.ttftMs !== null);
  assertEquals(ttft, [false, true]);
});

Deno.test("a usage record stays storable when the wall clock steps back and the provider names no model", async () => {
  let offset = 0;
  const clock = { ...systemClock, now: () => Date.now() + offset };
  const llm: LlmProvider = {
    name: "stepper",
    model: "asked-model",
    complete() {
      // An NTP correction in the middle of the call.
      offset -= 2_000;
      return Promise.resolve({
        text: "ok",
        usage: usageOf(3, 1, "reported"),
        finishReason: "stop",
        model: "",
      });
    },
  };
  const events: TroupeEvent[] = [];
  await using runtime = createRuntime({ llm, clock });
  runtime.subscribe((event) => events.push(event));
  assertEquals((await runtime.send({ session: "s1", content: "hi" })).status, "completed");
  await runtime.close();
  const usage = events.find((e) => e.type === "usage.recorded");
  assert(usage !== undefined && usage.type === "usage.recorded");
  assertEquals(validateEvent(usage), { ok: true, event: usage }, "the persister would store it");
  assertEquals([usage.model, usage.latencyMs >= 0], ["asked-model", true]);
});
