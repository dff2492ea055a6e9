// Session retention: sessions idle longer than sessionRetentionMs are deleted, live or fresh ones never.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { UnsupportedError } from "../../actors/errors.ts";
import type { TroupeEvent } from "../../actors/events.ts";
import { createRuntime } from "../../actors/runtime.ts";
import type { Runtime, RuntimeOptions } from "../../actors/runtime_types.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";
import { memoryStore } from "../../adapters/store/memory_store.ts";
import { eventually } from "../_helpers/eventually.ts";
import { type ManualClock, manualClock } from "../_helpers/manual_clock.ts";

const MINUTE = 60_000;

/** A runtime on `clock` over a memory store, with the mock LLM answering at once. */
function runtimeAt(
  clock: ManualClock,
  options: Pick<RuntimeOptions, "idleTimeoutMs" | "sessionRetentionMs">,
): Runtime {
  return createRuntime({ clock, llm: mockLlm({ clock }), store: memoryStore(), ...options });
}

async function stored(runtime: Runtime, session: string): Promise<number> {
  return (await runtime.history({ session })).messages.length;
}

async function listed(runtime: Runtime): Promise<string[]> {
  return (await runtime.sessions({})).sessions.map((s) => s.session);
}

Deno.test("retention: a session idle longer than sessionRetentionMs is deleted, a newer one kept", async () => {
  const clock = manualClock();
  await using runtime = runtimeAt(clock, { idleTimeoutMs: 1_000, sessionRetentionMs: MINUTE });
  const deleted: TroupeEvent[] = [];
  runtime.subscribe((event) => event.type === "session.deleted" && deleted.push(event));
  assertEquals((await runtime.send({ session: "old", content: "hello" })).status, "completed");
  await clock.advance(30_000);
  assertEquals((await runtime.send({ session: "recent", content: "hi" })).status, "completed");
  await clock.advance(2_000);
  assertEquals(runtime.activeSessions, 0, "both passivated");
  // Before a minute has passed, nothing goes.
  await clock.advance(20_000);
  assertEquals(await listed(runtime), ["old", "recent"]);
  // Sweeps run every tenth of the retention: by 60 s + 6 s the old one is gone.
  await clock.advance(14_000);
  assertEquals(await listed(runtime), ["recent"]);
  assertEquals(
    deleted.map((e) => e.type === "session.deleted" && [e.session, e.reason, e.ts]),
    [["old", "retention", clock.now()]],
    "one deletion recorded, when the sweep ran",
  );
  assertEquals(await stored(runtime, "old"), 0);
  assertEquals(await stored(runtime, "recent"), 2);
  // A message to the deleted session starts it afresh.
  const again = await runtime.send({ session: "old", content: "back" });
  assertEquals(again.text, "back");
  assertEquals(await stored(runtime, "old"), 2);
});

Deno.test("retention: a live session is never deleted, however old its history", async () => {
  const clock = manualClock();
  await using runtime = runtimeAt(clock, {
    idleTimeoutMs: 10 * MINUTE,
    sessionRetentionMs: MINUTE,
  });
  await runtime.send({ session: "live", content: "hello" });
  await clock.advance(2 * MINUTE);
  assertEquals(runtime.activeSessions, 1);
  assertEquals(await stored(runtime, "live"), 2);
  // Once passivated, it is idle in the store and the next sweep deletes it.
  await clock.advance(9 * MINUTE);
  assertEquals(runtime.activeSessions, 0);
  await clock.advance(MINUTE);
  assertEquals(await stored(runtime, "live"), 0);
});

Deno.test("retention: with the default of 0 nothing is ever deleted", async () => {
  const clock = manualClock();
  await using runtime = runtimeAt(clock, { idleTimeoutMs: 1_000 });
  await runtime.send({ session: "kept", content: "hello" });
  await clock.advance(30 * MINUTE);
  assertEquals(await stored(runtime, "kept"), 2);
});

Deno.test("retention on a SQLite file: idle sessions are deleted, their usage is kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using runtime = createRuntime({
      llm: mockLlm(),
      store: `${dir}/troupe.db`,
      idleTimeoutMs: 100,
      sessionRetentionMs: 500,
    });
    await runtime.send({ session: "a", content: "hello" });
    await runtime.send({ session: "b", content: "hello" });
    await eventually("the sessions to expire", async () => (await listed(runtime)).length === 0);
    assertEquals(await stored(runtime, "a"), 0);
    const [totals] = await runtime.usage({});
    assertEquals(totals?.calls, 2, "usage records are kept");
    // The audit trail is kept too, and ends with the deletion.
    for (const session of ["a", "b"]) {
      const last = (await runtime.audit({ session })).events.at(-1);
      assertEquals([last?.type, last?.type === "session.deleted" && last.reason], [
        "session.deleted",
        "retention",
      ]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention: a negative sessionRetentionMs, or a store that cannot expire sessions, is refused", () => {
  assertThrows(
    () => createRuntime({ llm: mockLlm(), sessionRetentionMs: -1 }),
    (error: unknown) => error instanceof RangeError && /sessionRetentionMs/.test(error.message),
  );
  const store = memoryStore();
  assertThrows(
    () =>
      createRuntime({
        llm: mockLlm(),
        store: {
          appendHistory: store.appendHistory,
          readHistory: store.readHistory,
          close: store.close,
        },
        sessionRetentionMs: MINUTE,
      }),
    (error: unknown) => error instanceof UnsupportedError && /idleSessions/.test(error.message),
  );
});
