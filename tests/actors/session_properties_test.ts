// Property tests: for random arrival times, latencies, failures and policies, the ordering guarantees hold.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import fc from "fast-check";
import { createRuntime } from "../../actors/runtime.ts";
import { ProviderError } from "../../actors/errors.ts";
import type { Policy } from "../../actors/events.ts";
import type { LlmProvider, LlmRequest } from "../../actors/ports.ts";
import type { Reply, StreamEvent } from "../../actors/reply.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";
import { manualClock } from "../_helpers/manual_clock.ts";

interface Arrival {
  session: number;
  /** Time since the previous message, in ms. */
  gap: number;
  policy: Policy;
  stream: boolean;
}

interface Schedule {
  debounceMs: number;
  tokensPerSecond: number;
  messages: Arrival[];
  latencies: number[];
  failures: boolean[];
}

function scheduleOf(policy: fc.Arbitrary<Policy>, failures: boolean): fc.Arbitrary<Schedule> {
  return fc.record({
    debounceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
    tokensPerSecond: fc.constantFrom(Infinity, 40, 400),
    messages: fc.array(
      fc.record({
        session: fc.integer({ min: 0, max: 2 }),
        gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 150 })),
        policy,
        stream: fc.boolean(),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    latencies: fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 16 }),
    failures: failures
      ? fc.array(fc.boolean(), { minLength: 1, maxLength: 16 })
      : fc.constant([false]),
  });
}

interface Sent {
  index: number;
  session: string;
  id: string;
  content: string;
  policy: Policy;
  reply?: Reply;
  /** Order in which replies were delivered, across all messages. */
  settledAt?: number;
  settleCount: number;
  stream?: StreamEvent[];
}

interface Outcome {
  sent: Sent[];
  calls: LlmRequest[];
  liveOverlap: boolean;
  histories: Map<string, Awaited<ReturnType<ReturnType<typeof createRuntime>["history"]>>>;
}

/** Run one schedule on a manual clock and collect everything the invariants look at. */
async function run(schedule: Schedule): Promise<Outcome> {
  const clock = manualClock();
  let callIndex = 0;
  const indexOfRun = new Map<string, number>();
  const inner = mockLlm({
    clock,
    tokensPerSecond: schedule.tokensPerSecond,
    latencyMs: (request) =>
      schedule.latencies[indexOfRun.get(request.run)! % schedule.latencies.length]!,
    fail: (request) =>
      schedule.failures[indexOfRun.get(request.run)! % schedule.failures.length]
        ? new ProviderError("planned failure")
        : undefined,
  });
  const calls: LlmRequest[] = [];
  const live = new Map<string, Set<AbortSignal>>();
  let liveOverlap = false;
  const llm: LlmProvider = {
    name: "checked",
    complete(request, options) {
      indexOfRun.set(request.run, callIndex++);
      calls.push(request);
      const signals = live.get(request.session) ?? new Set<AbortSignal>();
      live.set(request.session, signals);
      if ([...signals].some((s) => !s.aborted)) liveOverlap = true;
      signals.add(options.signal);
      return inner.complete(request, options).finally(() => signals.delete(options.signal));
    },
  };
  const runtime = createRuntime({ llm, clock, debounceMs: schedule.debounceMs });
  const sent: Sent[] = [];
  let settleOrder = 0;
  const readers: Promise<void>[] = [];
  for (const [index, arrival] of schedule.messages.entries()) {
    await clock.advance(arrival.gap);
    const entry: Sent = {
      index,
      session: `s${arrival.session}`,
      id: `m${index}`,
      content: `message ${index} of s${arrival.session}`,
      policy: arrival.policy,
      settleCount: 0,
    };
    sent.push(entry);
    const input = {
      session: entry.session,
      id: entry.id,
      content: entry.content,
      policy: arrival.policy,
    };
    const settle = (reply: Reply) => {
      entry.settleCount++;
      entry.reply = reply;
      entry.settledAt = settleOrder++;
    };
    if (arrival.stream) {
      const events: StreamEvent[] = [];
      entry.stream = events;
      readers.push((async () => {
        for await (const event of runtime.stream(input)) {
          events.push(event);
          if (event.type === "reply") settle(event.reply);
        }
      })());
    } else {
      runtime.send(input).then(settle);
    }
  }
  for (let i = 0; i < 200 && sent.some((s) => s.settleCount === 0); i++) {
    await clock.advance(100);
  }
  await Promise.all(readers);
  const histories = new Map<
    string,
    Outcome["histories"] extends Map<string, infer H> ? H : never
  >();
  for (const session of new Set(sent.map((s) => s.session))) {
    histories.set(session, await runtime.history({ session, limit: 1000 }));
  }
  await runtime.shutdown({ graceMs: 0 });
  return { sent, calls, liveOverlap, histories };
}

/** Invariants that hold for every schedule, whatever the policies. */
function checkCommon(outcome: Outcome): void {
  const { sent, liveOverlap, histories } = outcome;
  for (const s of sent) {
    assertEquals(s.settleCount, 1, `message ${s.id} settled ${s.settleCount} times`);
    if (s.stream !== undefined) {
      const replies = s.stream.filter((e) => e.type === "reply");
      assertEquals(replies.length, 1);
      assertEquals(s.stream.at(-1)!.type, "reply", "nothing follows the reply");
      if (s.reply!.status === "completed") {
        const text = s.stream.flatMap((e) => e.type === "delta" ? [e.text] : []).join("");
        assertEquals(text, s.reply!.text, "a completed stream carries exactly its own run's text");
      }
    }
  }
  assert(!liveOverlap, "two live LLM calls of one session were in flight at once");

  const byRun = new Map<string, Reply>();
  for (const s of sent) {
    if (s.reply!.status === "rejected") continue;
    assert(!byRun.has(s.reply!.runId), `run ${s.reply!.runId} settled two callers`);
    byRun.set(s.reply!.runId, s.reply!);
  }

  for (const [session, history] of histories) {
    const mine = sent.filter((s) => s.session === session);
    const arrival = new Map(mine.map((s, i) => [s.id, i]));
    // Answers are delivered in arrival order: the answered ids of completed
    // replies, taken in delivery order, increase.
    const completed = mine
      .filter((s) => s.reply!.status === "completed")
      .sort((a, b) => a.settledAt! - b.settledAt!);
    const answeredOrder = completed.flatMap((s) => s.reply!.answered.map((id) => arrival.get(id)!));
    assertEquals(answeredOrder, [...answeredOrder].sort((a, b) => a - b));
    assertEquals(new Set(answeredOrder).size, answeredOrder.length, "a message answered twice");
    for (const s of completed) assertEquals(s.reply!.answered.at(-1), s.id);

    // History: every accepted user message exactly once, in arrival order, and
    // one assistant entry per completed run linked to what it answered.
    const accepted = mine.filter((s) => s.reply!.status !== "rejected").map((s) => s.id);
    const users = history.messages.filter((e) => e.role === "user");
    assertEquals(users.map((e) => e.id), accepted);
    for (const s of mine) {
      const entry = users.find((e) => e.id === s.id);
      if (entry !== undefined) assertEquals(entry.content, s.content);
    }
    const assistants = history.messages.filter((e) => e.role === "assistant");
    assertEquals(
      assistants.map((e) => [e.id, e.answered, e.content]),
      completed.map((s) => [s.reply!.runId, s.reply!.answered, s.reply!.text]),
    );
  }
}

/** Follow `supersededBy` to the reply of the run that finally answered (or failed). */
function terminal(outcome: Outcome, reply: Reply): Reply {
  const byRun = new Map(
    outcome.sent.filter((s) => s.reply!.status !== "rejected").map((
      s,
    ) => [s.reply!.runId, s.reply!]),
  );
  let current = reply;
  for (let hops = 0; current.status === "superseded"; hops++) {
    assert(hops <= outcome.sent.length, "supersededBy chain does not end");
    current = byRun.get(current.supersededBy!)!;
    assert(current !== undefined, "supersededBy names a run no caller heard of");
  }
  return current;
}

const PROPERTY_RUNS = 150;

Deno.test("property: any mix of policies keeps order, one live call per session and exact history", async () => {
  await fc.assert(
    fc.asyncProperty(
      scheduleOf(fc.constantFrom<Policy>("merge", "enqueue", "reject", "interrupt"), true),
      async (schedule) => checkCommon(await run(schedule)),
    ),
    { numRuns: PROPERTY_RUNS },
  );
});

Deno.test("property: with merge every message is answered by exactly one completed run or explicitly failed, and the last of a burst is always answered", async () => {
  await fc.assert(
    fc.asyncProperty(scheduleOf(fc.constant<Policy>("merge"), true), async (schedule) => {
      const outcome = await run(schedule);
      checkCommon(outcome);
      for (const s of outcome.sent) {
        const end = terminal(outcome, s.reply!);
        if (end.status === "completed") assert(end.answered.includes(s.id));
        else assertEquals(end.status, "failed", `message ${s.id} ended ${end.status}`);
      }
      if (schedule.failures.every((f) => !f)) {
        for (const session of new Set(outcome.sent.map((s) => s.session))) {
          const last = outcome.sent.filter((s) => s.session === session).at(-1)!;
          assertEquals(last.reply!.status, "completed");
          assert(last.reply!.answered.includes(last.id));
        }
      }
    }),
    { numRuns: PROPERTY_RUNS },
  );
});

Deno.test("property: with enqueue there is one call per message, in arrival order", async () => {
  await fc.assert(
    fc.asyncProperty(scheduleOf(fc.constant<Policy>("enqueue"), false), async (schedule) => {
      const outcome = await run(schedule);
      checkCommon(outcome);
      for (const session of new Set(outcome.sent.map((s) => s.session))) {
        const mine = outcome.sent.filter((s) => s.session === session);
        const calls = outcome.calls.filter((c) => c.session === session);
        assertEquals(calls.map((c) => c.messages.at(-1)!.content), mine.map((s) => s.content));
        for (const s of mine) {
          assertEquals(s.reply!.status, "completed");
          assertEquals(s.reply!.answered, [s.id]);
        }
      }
    }),
    { numRuns: PROPERTY_RUNS },
  );
});
