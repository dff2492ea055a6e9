// Measures heap per idle session, the tokens a burst saves under merge, and end-to-end messages/s; prints JSON.
//
// Run: `deno task bench:memory`, i.e.
// `deno run --v8-flags=--expose-gc --allow-all bench/session_memory.ts`.
// It activates 100,000 sessions (one awaited message each, 0 ms mock) in a
// runtime with room for all of them, forces GC and divides the heap growth by
// 100,000, beside 100,000 bare XState actors of a minimal machine and of the
// session machine; runs 1,000 sessions x 5 back-to-back messages on a 200 ms
// mock under merge and enqueue; and measures messages/s for 1, 100 and 10,000
// sessions next to the promise-chain baseline in the same run. Takes ~1 minute.

import { createActor } from "xstate";
import { createRuntime, mockLlm, type Store } from "../mod.ts";
import { sessionMachine } from "../actors/mod.ts";
import {
  burst,
  drive,
  fastRuntime,
  MESSAGES,
  minimalActors,
  minimalMachine,
  promiseChains,
  sendToActors,
  SESSION_COUNTS,
  sessionIds,
} from "./session_load.ts";

const SESSIONS = 100_000;
const ROUNDS = 5;
const TARGET_MESSAGES_PER_SECOND = 50_000;
const TARGET_KIB_PER_SESSION = 8;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("Cannot measure heap: run with --v8-flags=--expose-gc");

function heapUsed(): number {
  for (let i = 0; i < 4; i++) gc!();
  return Deno.memoryUsage().heapUsed;
}

function perSession(before: number, after: number) {
  const bytes = (after - before) / SESSIONS;
  return { bytes: Math.round(bytes), KiB: Number((bytes / 1024).toFixed(2)) };
}

/** Keeps no history: isolates what the live sessions themselves hold. */
const discardingStore: Store = {
  appendHistory: () => Promise.resolve(),
  readHistory: () => Promise.resolve({ entries: [], next: null }),
  close: () => Promise.resolve(),
};

async function runtimeHeap(options: { dedupeWindow?: number; store?: Store }) {
  const ids = sessionIds(SESSIONS);
  const before = heapUsed();
  const runtime = createRuntime({
    llm: mockLlm({ latencyMs: 0, requestLog: 0 }),
    maxActiveSessions: 200_000,
    idleTimeoutMs: 3_600_000,
    ...options,
  });
  await drive(ids, 1, (session, content) => runtime.send({ session, content }));
  const after = heapUsed();
  const active = runtime.activeSessions;
  await runtime.close();
  return { activeSessions: active, ...perSession(before, after) };
}

function actorHeap(start: (i: number) => { stop(): void }) {
  const before = heapUsed();
  const actors = Array.from({ length: SESSIONS }, (_, i) => start(i));
  const after = heapUsed();
  for (const actor of actors) actor.stop();
  return perSession(before, after);
}

const heap = {
  runtimeDefaults: await runtimeHeap({}),
  runtimeNoDedupeNoStore: await runtimeHeap({ dedupeWindow: 0, store: discardingStore }),
  bareXStateMinimalActor: actorHeap(() => createActor(minimalMachine).start()),
  bareXStateSessionMachineActor: actorHeap((i) =>
    createActor(sessionMachine, {
      input: {
        org: "default",
        session: `s${i}`,
        history: [],
        debounceMs: 0,
        join: "\n---\n",
        historyLimit: 50,
        system: "",
      },
    }).start()
  ),
};

const mergeBurst = await burst("merge", 0);
const mergeDebouncedBurst = await burst("merge", 20);
const enqueueBurst = await burst("enqueue", 0);
const saved = (merge: number, enqueue: number) => Number((100 * (1 - merge / enqueue)).toFixed(1));

async function rate(run: () => Promise<number>): Promise<number> {
  const ms = await run();
  return Math.round(MESSAGES / (ms / 1000));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const throughput: Record<string, unknown> = {};
for (const count of SESSION_COUNTS) {
  const sessions = sessionIds(count);
  const per = MESSAGES / count;
  const samples = { troupe: [] as number[], promiseChain: [] as number[], xstate: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    samples.promiseChain.push(
      await rate(async () => {
        const { send } = promiseChains(mockLlm({ latencyMs: 0, requestLog: 0 }));
        await drive(sessions, 1, send);
        const t = performance.now();
        await drive(sessions, per, send);
        return performance.now() - t;
      }),
    );
    samples.xstate.push(
      await rate(() => {
        const actors = minimalActors(count);
        const t = performance.now();
        sendToActors(actors, per);
        const ms = performance.now() - t;
        for (const actor of actors) actor.stop();
        return Promise.resolve(ms);
      }),
    );
    samples.troupe.push(
      await rate(async () => {
        const { runtime, send } = fastRuntime(count);
        await drive(sessions, 1, send);
        const t = performance.now();
        await drive(sessions, per, send);
        const ms = performance.now() - t;
        await runtime.close();
        return ms;
      }),
    );
  }
  const troupe = median(samples.troupe);
  const promiseChain = median(samples.promiseChain);
  const xstate = median(samples.xstate);
  throughput[`${count} sessions`] = {
    troupeMessagesPerSecond: troupe,
    promiseChainMessagesPerSecond: promiseChain,
    rawXStateEventsPerSecond: xstate,
    troupeVsPromiseChain: Number((troupe / promiseChain).toFixed(4)),
    troupeVsRawXState: Number((troupe / xstate).toFixed(4)),
    samples,
  };
}

const slowest = Math.min(
  ...Object.values(throughput).map((t) =>
    (t as { troupeMessagesPerSecond: number })
      .troupeMessagesPerSecond
  ),
);

console.log(JSON.stringify(
  {
    deno: Deno.version.deno,
    heapPerIdleSession: heap,
    burst: {
      shape: "1,000 sessions x 5 messages back to back, mockLlm latency 200 ms",
      merge: mergeBurst,
      mergeDebounce20ms: mergeDebouncedBurst,
      enqueue: enqueueBurst,
      tokensSavedPercent: {
        mergeVsEnqueueReplyTokens: saved(mergeBurst.replyTokens, enqueueBurst.replyTokens),
        mergeVsEnqueueRecordedTokens: saved(mergeBurst.recordedTokens, enqueueBurst.recordedTokens),
        mergeDebounce20msVsEnqueueRecordedTokens: saved(
          mergeDebouncedBurst.recordedTokens,
          enqueueBurst.recordedTokens,
        ),
      },
    },
    throughput: { messagesPerRound: MESSAGES, rounds: ROUNDS, statistic: "median", ...throughput },
    targets: {
      messagesPerSecond: {
        target: TARGET_MESSAGES_PER_SECOND,
        slowest,
        met: slowest >= TARGET_MESSAGES_PER_SECOND,
      },
      heapPerIdleSessionKiB: {
        target: TARGET_KIB_PER_SESSION,
        measured: heap.runtimeDefaults.KiB,
        met: heap.runtimeDefaults.KiB <= TARGET_KIB_PER_SESSION,
      },
    },
  },
  null,
  2,
));
