// Load drivers shared by the session bench and the session memory script (not a bench itself).
//
// `session_bench.ts` and `session_memory.ts` import this module; it is run only
// through them. It holds the load shape (sessions sending one after another,
// all sessions at once), the two baselines (a promise-chain map over the same
// mock provider, and bare XState actors of a minimal machine) and the burst
// measurement, so the bench and the script measure exactly the same thing.

import { assign, createActor, setup } from "xstate";
import {
  createRuntime,
  type MockLlm,
  mockLlm,
  type Policy,
  type Runtime,
  type RuntimeOptions,
} from "../mod.ts";

/** Messages per measured round: enough that a per-message rate is readable. */
export const MESSAGES = 10_000;

/** The session counts of the end-to-end groups. */
export const SESSION_COUNTS = [1, 100, 10_000] as const;

/** Sends one message on a session and resolves when its reply is in. */
export type SendOne = (session: string, content: string) => Promise<unknown>;

/** Session ids `s0` … `s{count-1}`, made once so id building is not measured. */
export function sessionIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `s${i}`);
}

/**
 * Every session sends `perSession` messages one after another (awaiting each
 * reply); all sessions run at once.
 */
export async function drive(sessions: string[], perSession: number, send: SendOne): Promise<void> {
  await Promise.all(sessions.map(async (session) => {
    for (let i = 0; i < perSession; i++) await send(session, "what is the time in Lisbon?");
  }));
}

/**
 * A runtime on a 0 ms mock, with the options of the end-to-end groups. Every
 * mock of these benches keeps no request log (`requestLog: 0`), as a server's
 * embedded mock does: nothing reads it, and kept it would hold the prompts of
 * the newest 10,000 calls alive, which Troupe's own path does not.
 */
export function fastRuntime(
  sessions: number,
  options: RuntimeOptions = {},
): { runtime: Runtime; llm: MockLlm; send: SendOne } {
  const llm = mockLlm({ latencyMs: 0, requestLog: 0 });
  const runtime = createRuntime({
    llm,
    policy: "merge",
    maxActiveSessions: Math.max(10_000, sessions),
    ...options,
  });
  return { runtime, llm, send: (session, content) => runtime.send({ session, content }) };
}

/**
 * The hand-written alternative: one promise chain per session in a `Map`,
 * each message calling the provider's `complete()` once the previous one on
 * the same session is done. No history, no events, no merging.
 */
export function promiseChains(llm: MockLlm): { send: SendOne; chains: Map<string, unknown> } {
  const chains = new Map<string, Promise<unknown>>();
  const signal = new AbortController().signal;
  let run = 0;
  const send: SendOne = (session, content) => {
    const previous = chains.get(session) ?? Promise.resolve();
    const next = previous.then(() =>
      llm.complete(
        { org: "default", session, run: `r${run++}`, messages: [{ role: "user", content }] },
        { signal },
      )
    );
    chains.set(session, next.catch(() => {}));
    return next;
  };
  return { send, chains };
}

/** The smallest useful machine: one state counting the messages it receives. */
export const minimalMachine = setup({
  types: {} as { context: { count: number }; events: { type: "message" } },
}).createMachine({
  context: { count: 0 },
  on: { message: { actions: assign({ count: ({ context }) => context.count + 1 }) } },
});

/** Started actors of the minimal machine, one per session. */
export function minimalActors(count: number) {
  return Array.from({ length: count }, () => createActor(minimalMachine).start());
}

/** The XState ceiling: `perActor` events to each actor, sessions interleaved as in `drive`. */
export function sendToActors(actors: ReturnType<typeof minimalActors>, perActor: number): void {
  for (let i = 0; i < perActor; i++) {
    for (const actor of actors) actor.send({ type: "message" });
  }
}

/** What the burst measurement found for one policy. */
export interface BurstResult {
  policy: Policy;
  debounceMs: number;
  wallMs: number;
  /** Provider calls started, including the ones aborted by a newer message. */
  providerCalls: number;
  providerCompleted: number;
  providerAborted: number;
  completedReplies: number;
  supersededReplies: number;
  /** Sum of `usage.totalTokens` over completed replies. */
  replyTokens: number;
  /** Sum of `totalTokens` over every `usage.recorded` event (aborted calls are estimated). */
  recordedTokens: number;
}

/** Each of `sessions` fresh sessions sends `burst` messages back to back to a 200 ms mock. */
export async function burst(
  policy: Policy,
  debounceMs = 0,
  sessions = 1_000,
  burst = 5,
  latencyMs = 200,
): Promise<BurstResult> {
  const llm = mockLlm({ latencyMs, requestLog: 0 });
  const runtime = createRuntime({ llm, policy, debounceMs, maxActiveSessions: sessions });
  let recordedTokens = 0;
  runtime.subscribe((event) => {
    if (event.type === "usage.recorded") recordedTokens += event.totalTokens;
  });
  try {
    const started = performance.now();
    const sends = [];
    for (const session of sessionIds(sessions)) {
      for (let i = 0; i < burst; i++) {
        sends.push(runtime.send({ session, content: `part ${i + 1} of my question, please` }));
      }
    }
    const replies = await Promise.all(sends);
    const wallMs = performance.now() - started;
    const completed = replies.filter((r) => r.status === "completed");
    await runtime.close(); // flushes the bus, so every usage event is counted
    return {
      policy,
      debounceMs,
      wallMs: Math.round(wallMs),
      providerCalls: llm.stats.calls,
      providerCompleted: llm.stats.completed,
      providerAborted: llm.stats.aborted,
      completedReplies: completed.length,
      supersededReplies: replies.filter((r) => r.status === "superseded").length,
      replyTokens: completed.reduce((n, r) => n + (r.usage?.totalTokens ?? 0), 0),
      recordedTokens,
    };
  } finally {
    await runtime.close();
  }
}
