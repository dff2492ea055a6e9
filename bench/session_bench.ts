// Benchmarks the session hot path: messages through `runtime.send` against a promise-chain map and bare XState.
//
// Run: `deno bench --allow-all bench/session_bench.ts` (or `deno task bench`).
// Every iteration of the end-to-end and cold groups sends MESSAGES = 10,000
// messages, so messages/s = 10,000 / the mean time shown (e.g. 200 ms -> 50,000/s).
// The runtime is created and its sessions warmed with one message each before
// `b.start()`, so the warm groups measure only the hot path; the cold group
// includes activation. The headline baseline of each group is the hand-written
// promise-chain map over the same mock provider; raw XState `actor.send` of a
// minimal machine is the ceiling of the actor library. The burst group counts
// time only: its provider-call and token figures are printed by
// `deno task bench:memory` (bench/session_memory.ts), which runs the same drivers.
//
// Reading it: on a shared 2-core machine, the 1- and 100-session groups move between
// ≈ 180 and ≈ 205 ms from run to run (50,000 messages/s is 200 ms), the baselines much less.
// GC takes ≈ 28% of it (CPU profile, one session), mostly because V8's allocation-site pretenuring
// decides early that the session path's short-lived objects live long: they end up in the
// old generation (≈ 8 KB a message, against ≈ 1 KB without pretenuring) and wait for a full GC.
// `deno bench --allow-all --v8-flags=--no-allocation-site-pretenuring bench/session_bench.ts`
// measured 146 / 165 / 285 ms against 198 / 201 / 306 ms (1 / 100 / 10,000 sessions) in
// back-to-back runs; the HTTP server's throughput did not change with it, so no task sets it.

import { mockLlm } from "../mod.ts";
import {
  burst,
  drive,
  fastRuntime,
  MESSAGES,
  minimalActors,
  promiseChains,
  sendToActors,
  SESSION_COUNTS,
  sessionIds,
} from "./session_load.ts";

const WARM = { n: 10, warmup: 2 } as const;

for (const count of SESSION_COUNTS) {
  const group = `messages, ${count.toLocaleString("en-US")} session${count === 1 ? "" : "s"}`;
  const sessions = sessionIds(count);
  const perSession = MESSAGES / count;

  Deno.bench({
    name: `promise-chain Map + mockLlm.complete(), ${MESSAGES} messages`,
    group,
    baseline: true,
    ...WARM,
    async fn(b) {
      const { send } = promiseChains(mockLlm({ latencyMs: 0, requestLog: 0 }));
      await drive(sessions, 1, send);
      b.start();
      await drive(sessions, perSession, send);
      b.end();
    },
  });

  Deno.bench({
    name: `raw XState actor.send, minimal machine, ${MESSAGES} events`,
    group,
    ...WARM,
    fn(b) {
      const actors = minimalActors(count);
      b.start();
      sendToActors(actors, perSession);
      b.end();
      for (const actor of actors) actor.stop();
    },
  });

  Deno.bench({
    name: `troupe runtime.send, merge, warm, ${MESSAGES} messages`,
    group,
    ...WARM,
    async fn(b) {
      const { runtime, send } = fastRuntime(count);
      await drive(sessions, 1, send);
      b.start();
      await drive(sessions, perSession, send);
      b.end();
      await runtime.close();
    },
  });
}

const COLD_GROUP = "cold: activate + 1 message, 10,000 sessions";
const coldSessions = sessionIds(MESSAGES);

Deno.bench({
  name: `promise-chain Map, new sessions, ${MESSAGES} messages`,
  group: COLD_GROUP,
  baseline: true,
  ...WARM,
  async fn(b) {
    const { send } = promiseChains(mockLlm({ latencyMs: 0, requestLog: 0 }));
    b.start();
    await drive(coldSessions, 1, send);
    b.end();
  },
});

Deno.bench({
  name: `raw XState createActor().start() + send, ${MESSAGES} actors`,
  group: COLD_GROUP,
  ...WARM,
  fn(b) {
    b.start();
    const actors = minimalActors(MESSAGES);
    sendToActors(actors, 1);
    b.end();
    for (const actor of actors) actor.stop();
  },
});

Deno.bench({
  name: `troupe runtime.send, merge, activation included, ${MESSAGES} messages`,
  group: COLD_GROUP,
  ...WARM,
  async fn(b) {
    const { runtime, send } = fastRuntime(MESSAGES);
    b.start();
    await drive(coldSessions, 1, send);
    b.end();
    await runtime.close();
  },
});

const BURST_GROUP = "burst of 5 over 1,000 sessions, 200 ms mock";
const BURST = { n: 4, warmup: 1 } as const;

Deno.bench({
  name: "promise-chain Map: 5 calls one after another per session",
  group: BURST_GROUP,
  baseline: true,
  ...BURST,
  async fn() {
    const { send } = promiseChains(mockLlm({ latencyMs: 200, requestLog: 0 }));
    const sends = [];
    for (const session of sessionIds(1_000)) {
      for (let i = 0; i < 5; i++) sends.push(send(session, `part ${i + 1} of my question, please`));
    }
    await Promise.all(sends);
  },
});

Deno.bench({
  name: "troupe merge, debounce 0 ms",
  group: BURST_GROUP,
  ...BURST,
  async fn() {
    await burst("merge", 0);
  },
});

Deno.bench({
  name: "troupe merge, debounce 20 ms",
  group: BURST_GROUP,
  ...BURST,
  async fn() {
    await burst("merge", 20);
  },
});

Deno.bench({
  name: "troupe enqueue",
  group: BURST_GROUP,
  ...BURST,
  async fn() {
    await burst("enqueue", 0);
  },
});
