// Unit tests of validateEvent: every event type passes when well formed, and a refusal names the field.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { TroupeEvent } from "../../actors/events.ts";
import { validateEvent } from "../../actors/validate_event.ts";

const envelope = { id: "e1", ts: 1_700_000_000_000, org: "org-1", session: "s-1" };

const GOOD: TroupeEvent[] = [
  { ...envelope, type: "session.activated", historyLength: 3 },
  { ...envelope, type: "session.passivated", reason: "idle" },
  { ...envelope, type: "message.received", message: "m1", policy: "merge", length: 2 },
  { ...envelope, type: "message.rejected", message: "m2", run: "r1", reason: "busy" },
  { ...envelope, type: "message.dropped", message: "m1", reason: "shutdown" },
  { ...envelope, type: "run.started", run: "r1", messages: ["m1"] },
  {
    ...envelope,
    type: "run.superseded",
    run: "r1",
    supersededBy: "r2",
    policy: "merge",
    messages: ["m1"],
    started: true,
  },
  { ...envelope, type: "run.completed", run: "r1", messages: ["m1"], finishReason: "stop" },
  { ...envelope, type: "run.failed", run: "r1", messages: [], code: "provider_error", error: "" },
  { ...envelope, type: "run.cancelled", run: "r1", messages: ["m1"], reason: "cancelled" },
  {
    ...envelope,
    type: "usage.recorded",
    run: "r1",
    provider: "mock",
    model: "m",
    inputTokens: 10,
    outputTokens: 5,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: 15,
    source: "reported",
    status: "completed",
    latencyMs: 12.5,
    ttftMs: null,
    messages: ["m1"],
  },
  { ...envelope, type: "request.rejected", code: "overloaded", reason: "all slots busy" },
];

const usage = GOOD.find((event) => event.type === "usage.recorded")!;

Deno.test("validateEvent accepts a well-formed event of every type and returns it", () => {
  for (const event of GOOD) assertEquals(validateEvent(event), { ok: true, event });
});

Deno.test("validateEvent names the bad field and its value", () => {
  assertEquals(validateEvent({ ...usage, inputTokens: -1 }), {
    ok: false,
    id: "e1",
    reason: "usage.recorded: inputTokens must be a non-negative integer, current value is -1",
  });
  assertEquals(validateEvent({ ...usage, status: "done" }), {
    ok: false,
    id: "e1",
    reason:
      'usage.recorded: status must be one of completed, cancelled, failed, current value is "done"',
  });
  assertEquals(validateEvent({ ...usage, outputTokens: 1.5 }).ok, false);
  assertEquals(validateEvent({ ...usage, ttftMs: 3 }).ok, true);
  assertEquals(validateEvent({ ...usage, latencyMs: Infinity }).ok, false);
});

Deno.test("validateEvent checks run ids and message id arrays of run events", () => {
  const started = GOOD.find((event) => event.type === "run.started")!;
  const { run: _, ...noRun } = started as TroupeEvent & { run: string };
  assertEquals(validateEvent(noRun), {
    ok: false,
    id: "e1",
    reason: "run.started: run must be a non-empty string, current value is missing",
  });
  assertEquals(validateEvent({ ...started, messages: ["m1", 2] }), {
    ok: false,
    id: "e1",
    reason:
      "run.started: messages must be an array of non-empty strings, current value is an array",
  });
  assertEquals(validateEvent({ ...started, messages: "m1" }).ok, false);
});

Deno.test("validateEvent checks the envelope and keeps a usable id for the dead letter", () => {
  const event = GOOD[0]!;
  assertEquals(validateEvent({ ...event, id: "" }), {
    ok: false,
    id: null,
    reason:
      'session.activated: id must be a non-empty string of at most 128 characters, current value is ""',
  });
  assertEquals(validateEvent({ ...event, id: "x".repeat(129) }).ok, false);
  assertEquals(validateEvent({ ...event, id: "x".repeat(128) }).ok, true);
  assertEquals(validateEvent({ ...event, ts: Number.NaN }), {
    ok: false,
    id: "e1",
    reason: "session.activated: ts must be a finite number, current value is NaN",
  });
  assertEquals(validateEvent({ ...event, org: "" }).ok, false);
  assertEquals(validateEvent({ ...event, session: 7 }).ok, false);
});

Deno.test("validateEvent refuses unknown types and data that is not an object", () => {
  const unknown = validateEvent({ ...envelope, type: "run.exploded" });
  assert(!unknown.ok);
  assertEquals(unknown.id, "e1");
  assert(unknown.reason.startsWith("event: type must be one of session.activated, "));
  assert(unknown.reason.endsWith('current value is "run.exploded"'));
  assertEquals(validateEvent({ ...envelope, type: "toString" }).ok, false);
  for (const data of [null, undefined, "text", 3, [GOOD[0]]]) {
    const result = validateEvent(data);
    assert(!result.ok);
    assertEquals(result.id, null);
    assert(result.reason.startsWith("event must be an object"), result.reason);
  }
});
