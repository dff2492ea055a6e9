// Fault: a runtime on a SQLite file closed while 100 sessions still send; every emitted event is stored once.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { ShutdownError } from "../../actors/errors.ts";
import type { TroupeEvent } from "../../actors/events.ts";
import { createRuntime, type Runtime } from "../../actors/runtime.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";
import { assertExactlyOnce, eventually, storedRows, tempDatabase } from "./_exactly_once.ts";

const SESSIONS = 100;

/**
 * Loads a runtime on a SQLite temp file (its mock LLM answering after
 * `latencyMs`) with 100 sessions that double-text
 * in a loop, closes it with `close` once thousands of events were emitted,
 * and checks the file: every event the runtime emitted, exactly once.
 * Returns the emitted events.
 */
async function closeUnderLoad(
  latencyMs: number,
  close: (runtime: Runtime) => Promise<void>,
): Promise<TroupeEvent[]> {
  await using db = await tempDatabase();
  const runtime = createRuntime({ store: db.path, llm: mockLlm({ latencyMs }) });
  const emitted: TroupeEvent[] = [];
  runtime.subscribe((event) => emitted.push(event));
  await runtime.ready();

  let refused = 0;
  // Each session sends two messages at once (merged into one run) until the runtime refuses.
  const sessions = Array.from({ length: SESSIONS }, async (_, s) => {
    for (let i = 0;; i += 2) {
      const sends = [i, i + 1].map((n) =>
        runtime.send({ org: "faults", session: `s${s}`, content: `message ${n}` })
      );
      const outcomes = await Promise.allSettled(sends);
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") continue;
        if (!(outcome.reason instanceof ShutdownError)) throw outcome.reason;
        refused++;
      }
      if (outcomes.some((outcome) => outcome.status === "rejected")) return;
    }
  });
  await eventually("the load to be under way", () => emitted.length >= 3_000);
  const beforeClose = emitted.length;
  await close(runtime);
  await deadline(Promise.all(sessions), 30_000);

  // The runtime closed the store; a connection of our own reads the file.
  const stored = await storedRows(db.path);
  assert.ok(refused > 0, "sends were still arriving when the runtime closed");
  assert.ok(emitted.length > beforeClose, "events of the runs in flight were emitted during close");
  assertExactlyOnce(stored, { ids: emitted.map((event) => event.id) });
  return emitted;
}

Deno.test("close() of a SQLite runtime under load: in-flight runs finish, every emitted event stored once", async () => {
  await closeUnderLoad(1, (runtime) => runtime.close());
});

Deno.test("shutdown with no grace under load: cancelled runs too, every emitted event stored once", async () => {
  // Calls much slower than the (zero) grace, so the shutdown cancels the runs in flight: with
  // 20 ms calls, an event loop held ≥ 20 ms before the grace timer fired (a persister batch, a
  // GC pause, a loaded CI machine) let every run finish first, and nothing was left to cancel.
  const emitted = await closeUnderLoad(200, (runtime) => runtime.shutdown({ graceMs: 0 }));
  assert.ok(
    emitted.some((event) => event.type === "run.cancelled" || event.type === "message.dropped"),
    "runs were cut short by the shutdown",
  );
});
