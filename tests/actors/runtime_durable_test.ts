// Durable replies: a reply reaches its caller only once its usage record and history are stored.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { deadline, delay } from "@std/async";
import fc from "fast-check";
import type { TroupeEvent } from "../../actors/events.ts";
import type { EventStore, HistoryEntry, Store } from "../../actors/ports.ts";
import type { Reply } from "../../actors/reply.ts";
import { createRuntime } from "../../actors/runtime.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";
import { memoryStore } from "../../adapters/store/memory_store.ts";
import { startNatsServer } from "../_harness/mod.ts";
import { eventually } from "../_helpers/eventually.ts";
import { settledYet } from "../_helpers/settled_yet.ts";

/** A gate that holds writes until it is opened. */
function gate() {
  let open = Promise.withResolvers<void>();
  let isOpen = false;
  return {
    wait: () => isOpen ? Promise.resolve() : open.promise,
    open() {
      isOpen = true;
      open.resolve();
    },
    close() {
      isOpen = false;
      open = Promise.withResolvers<void>();
    },
  };
}

/**
 * A memory store that also takes events, recording what each write committed;
 * event writes and history appends wait for their gates, and each event write
 * for `writeDelayMs()` first.
 */
function recordingStore(
  options: {
    events?: ReturnType<typeof gate>;
    history?: ReturnType<typeof gate>;
    writeDelayMs?: () => number;
  } = {},
) {
  const base = memoryStore();
  const committed: TroupeEvent[] = [];
  const histories: HistoryEntry[][] = [];
  let writesStarted = 0;
  const store: Store & EventStore = {
    ...base,
    async appendHistory(org, session, entries) {
      await options.history?.wait();
      await base.appendHistory(org, session, entries);
      histories.push(entries);
    },
    async writeEvents(events) {
      writesStarted++;
      if (options.writeDelayMs !== undefined) await delay(options.writeDelayMs());
      await options.events?.wait();
      committed.push(...events);
      return events.length;
    },
    writeDeadLetters: () => Promise.resolve(),
  };
  return { store, committed, histories, writesStarted: () => writesStarted };
}

function usageOf(events: TroupeEvent[], run: string): TroupeEvent | undefined {
  return events.find((event) => event.type === "usage.recorded" && event.run === run);
}

Deno.test("durable replies: a reply waits for the write of its usage record", async () => {
  const events = gate();
  const { store, committed, writesStarted } = recordingStore({ events });
  await using runtime = createRuntime({ store, llm: mockLlm(), durableReplies: true });
  const reply = runtime.send({ session: "s1", content: "hello" });
  await eventually("the persister to start a write", () => writesStarted() > 0);
  await delay(20);
  assertEquals(await settledYet(reply), false, "delivered before its usage was stored");
  events.open();
  const { status, runId } = await reply;
  assertEquals(status, "completed");
  assert(usageOf(committed, runId) !== undefined, "its usage record was committed first");
});

Deno.test("without durable replies, a reply does not wait for the event store", async () => {
  const events = gate();
  const { store, committed } = recordingStore({ events });
  await using runtime = createRuntime({ store, llm: mockLlm() });
  const reply = await runtime.send({ session: "s1", content: "hello" });
  assertEquals(reply.status, "completed");
  assertEquals(usageOf(committed, reply.runId), undefined);
  events.open();
});

Deno.test("durable replies: a reply waits for the history written before it", async () => {
  const history = gate();
  const { store, histories } = recordingStore({ history });
  await using runtime = createRuntime({ store, llm: mockLlm(), durableReplies: true });
  const reply = runtime.send({ session: "s1", content: "hello" });
  await delay(20);
  assertEquals(await settledYet(reply), false, "delivered before its history was written");
  history.open();
  const { runId } = await reply;
  assert(histories.flat().some((entry) => entry.id === runId && entry.role === "assistant"));
});

Deno.test("durable replies: a stream's deltas still arrive before the write, its reply after", async () => {
  const events = gate();
  const { store, committed } = recordingStore({ events });
  await using runtime = createRuntime({
    store,
    llm: mockLlm({ tokensPerSecond: 2_000 }),
    durableReplies: true,
  });
  const deltas: string[] = [];
  const seen: { reply?: Reply } = {};
  const reading = (async () => {
    for await (const part of runtime.stream({ session: "s1", content: "one two three" })) {
      if (part.type === "delta") deltas.push(part.text);
      else seen.reply = part.reply;
    }
  })();
  await eventually("the deltas", () => deltas.join("") === "one two three");
  await delay(20);
  assertEquals(seen.reply, undefined, "the reply waits for its usage record");
  events.open();
  await reading;
  const reply = seen.reply as Reply | undefined;
  assertEquals(reply?.status, "completed");
  assert(usageOf(committed, reply!.runId) !== undefined);
});

Deno.test("durable replies, property: answers leave in arrival order, each after its usage record", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(
        "merge" as const,
        "enqueue" as const,
        "reject" as const,
        "interrupt" as const,
      ),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 })), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 8 }),
      async (policy, messages, writeDelays) => {
        let write = 0;
        const { store, committed } = recordingStore({
          writeDelayMs: () => writeDelays[write++ % writeDelays.length]!,
        });
        await using runtime = createRuntime({
          store,
          llm: mockLlm({ latencyMs: 2 }),
          policy,
          durableReplies: true,
        });
        // Completed replies per session, in the order they reached their callers.
        const delivered = new Map<string, string[]>();
        const replies: Promise<Reply>[] = [];
        for (const [session, gapMs] of messages) {
          if (gapMs > 0) await delay(gapMs);
          const id = `m${String(replies.length).padStart(3, "0")}`;
          replies.push(
            runtime.send({ session: `s${session}`, content: id, id }).then((reply) => {
              if (reply.status === "completed") {
                assert(usageOf(committed, reply.runId) !== undefined, `usage of ${reply.runId}`);
                delivered.set(reply.session, [...delivered.get(reply.session) ?? [], id]);
              }
              return reply;
            }),
          );
        }
        const settled = await deadline(Promise.all(replies), 10_000);
        assert(settled.some((reply) => reply.status === "completed"));
        for (const ids of delivered.values()) assertEquals(ids, ids.toSorted());
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("durable replies with NATS: a reply waits while JetStream cannot acknowledge its events", async () => {
  await using server = await startNatsServer();
  await using runtime = createRuntime({
    llm: mockLlm(),
    bus: server.url,
    durableReplies: true,
  });
  await runtime.ready();
  const first = await runtime.send({ session: "s1", content: "while it is up" });
  assertEquals(first.status, "completed");
  await server.stop();
  const reply = runtime.send({ session: "s1", content: "while it is down" });
  await delay(300);
  assertEquals(await settledYet(reply), false, "delivered before JetStream stored its events");
  await server.restart();
  const { status } = await deadline(reply, 60_000);
  assertEquals(status, "completed");
});
