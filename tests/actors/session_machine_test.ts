// Unit tests of the session machine: the real machine, a stub LLM actor, no I/O, simulated time.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type AnyActorRef, createActor, SimulatedClock } from "xstate";
import type { EventBody } from "../../actors/events.ts";
import type { HistoryEntry } from "../../actors/ports.ts";
import type { Reply } from "../../actors/reply.ts";
import {
  buildPrompt,
  type LlmRunInput,
  type LlmRunOutput,
  type SessionContext,
  sessionMachine,
  type SessionMachineInput,
} from "../../actors/session_machine.ts";
import { ProviderError } from "../../actors/errors.ts";

interface StubCall {
  input: LlmRunInput;
  signal: AbortSignal;
  answer(text?: string): void;
  fail(error: unknown): void;
}

function harness(overrides: Partial<SessionMachineInput> = {}) {
  const calls: StubCall[] = [];
  let controller: AbortController | null = null;
  // The machine's call effects, stubbed: a call waits until the test answers or fails it.
  const actions = {
    startCall: ({ self }: { self: AnyActorRef }, params: unknown) => {
      const input = params as LlmRunInput;
      const current = new AbortController();
      controller = current;
      calls.push({
        input,
        signal: current.signal,
        answer: (text = `answer to ${input.messages.at(-1)!.content}`) => {
          const output: LlmRunOutput = {
            completion: {
              text,
              finishReason: "stop",
              model: "stub",
              usage: {
                inputTokens: 1,
                outputTokens: 1,
                cachedTokens: 0,
                reasoningTokens: 0,
                totalTokens: 2,
                source: "estimated",
              },
            },
            finishedAt: 42,
          };
          queueMicrotask(() => self.send({ type: "llm.done", run: input.run, output }));
        },
        fail: (error) =>
          queueMicrotask(() => self.send({ type: "llm.failed", run: input.run, error })),
      });
    },
    stopCall: () => {
      controller?.abort();
      controller = null;
    },
  };
  const clock = new SimulatedClock();
  const actor = createActor(sessionMachine.provide({ actions }), {
    clock,
    input: {
      org: "o",
      session: "s",
      history: [],
      debounceMs: 0,
      join: "\n---\n",
      historyLimit: 50,
      system: "",
      ...overrides,
    },
  });
  const replies: Reply[] = [];
  const events: EventBody[] = [];
  const history: HistoryEntry[] = [];
  actor.on("session.effects", ({ effects }) => {
    for (const effect of effects) {
      if (effect.type === "session.reply") replies.push(effect.reply);
      else if (effect.type === "session.event") events.push(effect.body);
      else history.push(...effect.entries);
    }
  });
  actor.start();
  let n = 0;
  function send(content: string, policy: "merge" | "enqueue" | "reject" | "interrupt" = "merge") {
    n++;
    actor.send({
      type: "message.received",
      message: { id: `m${n}`, content, receivedAt: n },
      policy,
      run: `r${n}`,
    });
  }
  /** Let the stub's promise settle and XState process the done event. */
  const tick = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { actor, calls, replies, events, history, send, tick, clock };
}

/** Nothing in flight and nothing waiting: what the machine calls idle. */
function isIdle(context: SessionContext): boolean {
  return context.running === null && context.queue.length === 0;
}

function replyFor(replies: Reply[], messageId: string): Reply | undefined {
  return replies.find((r) => r.messageId === messageId);
}

Deno.test("a message on an idle session starts one call and completes with its answer", async () => {
  const h = harness();
  h.send("hello");
  assert(h.actor.getSnapshot().context.running !== null);
  assertEquals(h.calls.length, 1);
  assertEquals(h.calls[0]!.input.messages, [{ role: "user", content: "hello" }]);
  h.calls[0]!.answer();
  await h.tick();
  assert(isIdle(h.actor.getSnapshot().context));
  const reply = replyFor(h.replies, "m1")!;
  assertEquals(reply.status, "completed");
  assertEquals(reply.runId, "r1");
  assertEquals(reply.answered, ["m1"]);
  assertEquals(reply.text, "answer to hello");
  assertEquals(h.history.map((e) => [e.role, e.id]), [["user", "m1"], ["assistant", "r1"]]);
  assertEquals(h.history[1]!.answered, ["m1"]);
  assertEquals(h.events.map((e) => e.type), ["message.received", "run.started", "run.completed"]);
  h.actor.stop();
});

Deno.test("merge aborts the call in flight and answers both messages in one call", async () => {
  const h = harness();
  h.send("book a table");
  h.send("for four, at 8");
  assertEquals(h.calls.length, 2);
  assert(h.calls[0]!.signal.aborted, "the superseded call's signal is aborted at once");
  assert(!h.calls[1]!.signal.aborted);
  assertEquals(h.calls[1]!.input.messages, [{
    role: "user",
    content: "book a table\n---\nfor four, at 8",
  }]);
  const first = replyFor(h.replies, "m1")!;
  assertEquals(first.status, "superseded");
  assertEquals(first.supersededBy, "r2");
  h.calls[1]!.answer();
  await h.tick();
  const second = replyFor(h.replies, "m2")!;
  assertEquals(second.status, "completed");
  assertEquals(second.answered, ["m1", "m2"]);
  // History keeps both user messages as sent and one answer linked to both.
  assertEquals(h.history.map((e) => e.id), ["m1", "m2", "r2"]);
  assertEquals(h.history[2]!.answered, ["m1", "m2"]);
  h.actor.stop();
});

Deno.test("regression: an answer that arrives after its run was superseded is never delivered or kept", async () => {
  const h = harness();
  h.send("one");
  h.send("two");
  h.calls[0]!.answer("stale answer");
  await h.tick();
  assert(!h.replies.some((r) => r.text === "stale answer"));
  assert(!h.history.some((e) => e.content === "stale answer"));
  assertEquals(
    h.actor.getSnapshot().context.running?.run,
    "r2",
    "the newer run is still in flight",
  );
  h.calls[1]!.answer();
  await h.tick();
  assertEquals(h.replies.filter((r) => r.status === "completed").length, 1);
  h.actor.stop();
});

Deno.test("enqueue runs one call per message, one at a time, in arrival order", async () => {
  const h = harness();
  h.send("a", "enqueue");
  h.send("b", "enqueue");
  h.send("c", "enqueue");
  assertEquals(h.calls.length, 1, "regression: never two runs of one session in flight");
  for (const expected of ["a", "b", "c"]) {
    const call = h.calls.at(-1)!;
    assertEquals(call.input.messages.at(-1)!.content, expected);
    assert(!call.signal.aborted);
    call.answer();
    await h.tick();
  }
  assertEquals(h.calls.length, 3);
  assertEquals(h.replies.map((r) => [r.messageId, r.status]), [
    ["m1", "completed"],
    ["m2", "completed"],
    ["m3", "completed"],
  ]);
  // The second call saw the first exchange as history.
  assertEquals(h.calls[1]!.input.messages.map((m) => m.content), ["a", "answer to a", "b"]);
  h.actor.stop();
});

Deno.test("reject refuses a message while a run is in flight and the run goes on", async () => {
  const h = harness();
  h.send("first");
  h.send("second", "reject");
  const rejected = replyFor(h.replies, "m2")!;
  assertEquals(rejected.status, "rejected");
  assertEquals(rejected.runId, "r1");
  assert(!h.calls[0]!.signal.aborted);
  h.calls[0]!.answer();
  await h.tick();
  assertEquals(replyFor(h.replies, "m1")!.status, "completed");
  assert(!h.history.some((e) => e.id === "m2"), "a rejected message never enters history");
  assert(h.events.some((e) => e.type === "message.rejected"));
  h.actor.stop();
});

Deno.test("interrupt aborts the run in flight and the new run answers only the new message", async () => {
  const h = harness();
  h.send("first");
  h.send("second", "interrupt");
  assert(h.calls[0]!.signal.aborted);
  assertEquals(h.calls[1]!.input.messages.map((m) => m.content), ["first", "second"]);
  assertEquals(replyFor(h.replies, "m1")!.status, "superseded");
  h.calls[1]!.answer();
  await h.tick();
  const reply = replyFor(h.replies, "m2")!;
  assertEquals(reply.answered, ["m2"]);
  assertEquals(h.history.map((e) => e.id), ["m1", "m2", "r2"]);
  h.actor.stop();
});

Deno.test("regression: a message interrupted before its run started still enters history", async () => {
  const h = harness({ debounceMs: 100 });
  h.send("first");
  assert(h.actor.getSnapshot().matches("pending"));
  h.send("second", "interrupt");
  assertEquals(h.calls.length, 0);
  h.clock.increment(100);
  assertEquals(h.calls.length, 1);
  assertEquals(h.calls[0]!.input.messages.at(-1)!.content, "second");
  h.calls[0]!.answer();
  await h.tick();
  assertEquals(h.history.map((e) => e.id), ["m1", "m2", "r2"]);
  assertEquals(replyFor(h.replies, "m1")!.supersededBy, "r2");
  h.actor.stop();
});

Deno.test("regression: debounce folds the whole burst into one call instead of keeping the last message", async () => {
  const h = harness({ debounceMs: 50 });
  h.send("a");
  h.clock.increment(30);
  h.send("b");
  h.clock.increment(30);
  h.send("c");
  h.clock.increment(49);
  assertEquals(h.calls.length, 0, "each message restarts the window");
  h.clock.increment(1);
  assertEquals(h.calls.length, 1);
  assertEquals(h.calls[0]!.input.messages, [{ role: "user", content: "a\n---\nb\n---\nc" }]);
  h.calls[0]!.answer();
  await h.tick();
  assertEquals(replyFor(h.replies, "m3")!.answered, ["m1", "m2", "m3"]);
  assertEquals(replyFor(h.replies, "m1")!.status, "superseded");
  assertEquals(replyFor(h.replies, "m2")!.status, "superseded");
  h.actor.stop();
});

Deno.test("merge after enqueue folds into the queued run and leaves the run in flight alone", async () => {
  const h = harness();
  h.send("a");
  h.send("b", "enqueue");
  h.send("c", "merge");
  assert(!h.calls[0]!.signal.aborted);
  assertEquals(replyFor(h.replies, "m2")!.supersededBy, "r3");
  h.calls[0]!.answer();
  await h.tick();
  assertEquals(h.calls[1]!.input.messages.at(-1)!.content, "b\n---\nc");
  h.calls[1]!.answer();
  await h.tick();
  assertEquals(replyFor(h.replies, "m3")!.answered, ["m2", "m3"]);
  h.actor.stop();
});

Deno.test("regression: cancel aborts the call, tells every caller, and a cancelled queued message never reaches history", async () => {
  const h = harness();
  h.send("running");
  h.send("queued", "enqueue");
  h.actor.send({ type: "session.cancel", reason: "cancelled" });
  assert(h.calls[0]!.signal.aborted);
  assertEquals(h.replies.map((r) => [r.messageId, r.status]), [
    ["m1", "cancelled"],
    ["m2", "cancelled"],
  ]);
  assert(isIdle(h.actor.getSnapshot().context));
  h.calls[0]!.answer("too late");
  await h.tick();
  assertEquals(h.calls.length, 1, "the queued message never ran");
  assertEquals(h.history.map((e) => e.id), ["m1"], "only the message whose run had started");
  assert(h.events.some((e) => e.type === "message.dropped" && e.message === "m2"));
  h.actor.stop();
});

Deno.test("a failed call tells its caller why and the next queued run starts", async () => {
  const h = harness();
  h.send("a");
  h.send("b", "enqueue");
  h.calls[0]!.fail(new ProviderError("upstream 503", { retryable: true, status: 503 }));
  await h.tick();
  const failed = replyFor(h.replies, "m1")!;
  assertEquals(failed.status, "failed");
  assertEquals(failed.error, { code: "provider_error", message: "upstream 503", retryable: true });
  assertEquals(h.calls.length, 2);
  h.calls[1]!.answer();
  await h.tick();
  assertEquals(replyFor(h.replies, "m2")!.status, "completed");
  h.actor.stop();
});

Deno.test("shutdown cancel fails callers with a retryable shutdown error", () => {
  const h = harness();
  h.send("a");
  h.actor.send({ type: "session.cancel", reason: "shutdown" });
  const reply = replyFor(h.replies, "m1")!;
  assertEquals(reply.status, "failed");
  assertEquals(reply.error?.code, "shutting_down");
  assert(reply.error?.retryable);
  h.actor.stop();
});

Deno.test("the actor keeps only the newest historyLimit entries for prompts", async () => {
  const h = harness({ historyLimit: 3 });
  for (const text of ["a", "b"]) {
    h.send(text, "enqueue");
    h.calls.at(-1)!.answer();
    await h.tick();
  }
  assertEquals(h.actor.getSnapshot().context.history.map((e) => e.id), ["r1", "m2", "r2"]);
  h.actor.stop();
});

Deno.test("buildPrompt puts the system prompt, then history, then the joined turn", () => {
  const prompt = buildPrompt(
    {
      org: "o",
      session: "s",
      debounceMs: 0,
      join: " | ",
      historyLimit: 10,
      system: "be brief",
      running: null,
      queue: [],
      history: [
        { id: "m0", role: "user", content: "earlier", ts: 0 },
        { id: "r0", role: "assistant", content: "reply", ts: 1, answered: ["m0"] },
        { id: "m1", role: "user", content: "x", ts: 2 },
      ],
    },
    {
      run: "r1",
      messages: [
        { id: "m1", content: "x", receivedAt: 2, committed: true },
        { id: "m2", content: "y", receivedAt: 3, committed: false },
      ],
    },
  );
  assertEquals(prompt.map((m) => ({ role: m.role, content: m.content })), [
    { role: "system", content: "be brief" },
    { role: "user", content: "earlier" },
    { role: "assistant", content: "reply" },
    { role: "user", content: "x | y" },
  ]);
});
