// GET /v1/sessions, DELETE /v1/sessions/{session}, GET /v1/sessions/{session}/events and
// GET /v1/usage over real HTTP, on SQLite.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { TroupeEvent } from "../../../actors/events.ts";
import { memoryStore } from "../../../adapters/store/memory_store.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { errorOf, jsonBody, startServer, type TestServer } from "./_server.ts";

const IN_FLIGHT_MS = 60_000;

async function json(response: Response, status = 200): Promise<Record<string, unknown>> {
  assertEquals(response.status, status);
  return await response.json();
}

async function send(t: TestServer, session: string, content: string): Promise<void> {
  const response = await t.call(`/v1/sessions/${session}/messages`, jsonBody({ content }));
  assertEquals((await json(response)).status, "completed");
}

async function remove(t: TestServer, session: string): Promise<void> {
  const response = await t.call(`/v1/sessions/${session}`, { method: "DELETE" });
  assertEquals(response.status, 204);
  assertEquals(await response.text(), "");
}

Deno.test("GET /v1/sessions pages through every session with limit and the next cursor", async () => {
  await using t = await startServer();
  const ids = Array.from({ length: 7 }, (_, i) => `s${i}`);
  for (const id of ids.toReversed()) await send(t, id, `hello ${id}`);
  const seen: string[] = [];
  let path = "/v1/sessions?limit=3";
  const sizes: number[] = [];
  while (true) {
    const page = await json(await t.call(path));
    const sessions = page.sessions as { session: string; createdAt: number; lastSeenAt: number }[];
    sizes.push(sessions.length);
    for (const s of sessions) {
      seen.push(s.session);
      assert(s.createdAt <= s.lastSeenAt);
    }
    if (page.next === null) break;
    path = `/v1/sessions?limit=3&after=${encodeURIComponent(page.next as string)}`;
  }
  assertEquals(seen, ids);
  assertEquals(sizes, [3, 3, 1]);
  const all = await json(await t.call("/v1/sessions"));
  assertEquals((all.sessions as unknown[]).length, 7, "the default page holds 50");
});

Deno.test("GET /v1/sessions refuses a bad limit or cursor with 400 naming the parameter", async () => {
  await using t = await startServer();
  for (
    const [query, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=-1", "limit"],
      ["limit=ten", "limit"],
      ["limit=1e3", "limit"],
      ["after=garbage!", "after"],
      ["after=", "after"],
    ]
  ) {
    const response = await t.call(`/v1/sessions?${query}`);
    assertEquals(response.status, 400, query);
    const error = await errorOf(response);
    assertEquals([error.code, error.field], ["invalid_input", field], query);
  }
});

Deno.test("DELETE /v1/sessions/{session} drops history and listing, answers 204, and again 204", async () => {
  await using t = await startServer();
  const deletions: TroupeEvent[] = [];
  t.runtime.subscribe((event) => event.type === "session.deleted" && deletions.push(event));
  await send(t, "gone", "forget me");
  await send(t, "kept", "keep me");
  await remove(t, "gone");
  assertEquals(await json(await t.call("/v1/sessions/gone/messages")), {
    messages: [],
    next: null,
  });
  const listed = await json(await t.call("/v1/sessions"));
  assertEquals((listed.sessions as { session: string }[]).map((s) => s.session), ["kept"]);
  await remove(t, "gone");
  await remove(t, "never-existed");
  const kept = await json(await t.call("/v1/sessions/kept/messages"));
  assertEquals((kept.messages as unknown[]).length, 2);
  // One deletion recorded: deleting again, or what never existed, deletes nothing.
  await eventually("the deletion event", () => deletions.length > 0);
  assertEquals(
    deletions.map((e) => e.type === "session.deleted" && [e.session, e.reason]),
    [["gone", "requested"]],
  );
});

Deno.test("DELETE stops the live actor: its run is cancelled upstream and its caller told cancelled", async () => {
  await using t = await startServer({ llm: { latencyMs: IN_FLIGHT_MS } });
  const events: TroupeEvent[] = [];
  t.runtime.subscribe((event) => events.push(event));
  const pending = t.call("/v1/sessions/busy/messages", jsonBody({ content: "slow" }));
  await eventually("the run is in flight", () => t.llm.stats.inFlight === 1);
  await remove(t, "busy");
  assertEquals((await json(await pending)).status, "cancelled");
  assertEquals(t.llm.stats.aborted, 1, "the upstream call was aborted");
  assertEquals(t.runtime.activeSessions, 0, "the actor is stopped");
  assert(events.some((e) => e.type === "session.passivated" && e.reason === "deleted"));
  assertEquals(await json(await t.call("/v1/sessions/busy/messages")), {
    messages: [],
    next: null,
  });
});

Deno.test("a deleted session starts afresh: no old history in the prompt, and a reused message id runs again", async () => {
  await using t = await startServer();
  const first = await json(
    await t.call("/v1/sessions/s1/messages", jsonBody({ content: "secret", id: "m1" })),
  );
  assertEquals(first.status, "completed");
  await remove(t, "s1");
  const again = await json(
    await t.call("/v1/sessions/s1/messages", jsonBody({ content: "fresh", id: "m1" })),
  );
  assertEquals([again.status, again.text], ["completed", "fresh"]);
  const prompt = t.llm.requests.at(-1)!.messages.map((m) => m.content);
  assert(!prompt.includes("secret"), `the old history is gone: ${JSON.stringify(prompt)}`);
  const history = await json(await t.call("/v1/sessions/s1/messages"));
  assertEquals((history.messages as { content: string }[]).map((m) => m.content), [
    "fresh",
    "fresh",
  ]);
});

Deno.test("deleting a session keeps the org's usage totals", async () => {
  await using t = await startServer();
  await send(t, "s1", "one");
  await send(t, "s2", "two");
  const before = await json(await t.call("/v1/usage"));
  await remove(t, "s1");
  assertEquals(await json(await t.call("/v1/usage")), before);
  assertEquals((before.totals as { calls: number }[])[0]!.calls, 2);
});

Deno.test("GET /v1/usage takes from and to as ms or ISO dates, from inclusive and to exclusive", async () => {
  await using t = await startServer();
  const start = Date.now();
  await send(t, "s1", "one");
  await send(t, "s1", "two");
  const end = Date.now() + 1;
  const calls = async (query: string) => {
    const body = await json(await t.call(`/v1/usage?${query}`));
    return (body.totals as { calls: number }[]).map((row) => row.calls);
  };
  assertEquals(await calls(`from=${start}&to=${end}`), [2]);
  assertEquals(await calls(`from=${end}`), [0]);
  assertEquals(await calls(`to=${start}`), [0]);
  assertEquals(await calls(`from=${new Date(start).toISOString()}&group_by=session`), [2]);
  assertEquals(await calls("to=2000-01-01"), [0]);
  const body = await json(await t.call(`/v1/usage?from=${start}&to=${end}&group_by=model`));
  assertEquals([body.groupBy, body.from, body.to], ["model", start, end]);
  const row = (body.totals as Record<string, number>[])[0]!;
  assert(row.inputTokens! > 0 && row.totalTokens === row.inputTokens! + row.outputTokens!);
});

Deno.test("GET /v1/usage refuses bad parameters with 400 naming them", async () => {
  await using t = await startServer();
  for (
    const [query, field] of [
      ["group_by=org", "group_by"],
      ["group_by=", "group_by"],
      ["from=yesterday", "from"],
      ["from=-5", "from"],
      ["to=March%207", "to"],
      ["to=2025-13-45T99:99", "to"],
      ["from=10&to=5", "to"],
    ]
  ) {
    const response = await t.call(`/v1/usage?${query}`);
    assertEquals(response.status, 400, query);
    const error = await errorOf(response);
    assertEquals([error.code, error.field], ["invalid_input", field], query);
  }
});

Deno.test("a message sent right after a delete lands in a fresh session, never beside the deleted history", async () => {
  await using t = await startServer();
  await send(t, "s1", "old secret");
  const deleting = t.runtime.deleteSession({ org: "acme", session: "s1" });
  const reply = await t.runtime.send({ org: "acme", session: "s1", content: "new" });
  assertEquals(await deleting, true);
  assertEquals([reply.status, reply.text], ["completed", "new"]);
  const prompt = t.llm.requests.at(-1)!.messages.map((m) => m.content);
  assert(!prompt.includes("old secret"), `the deleted history is not in the prompt: ${prompt}`);
  const history = await json(await t.call("/v1/sessions/s1/messages"));
  assertEquals((history.messages as { content: string }[]).map((m) => m.content), ["new", "new"]);
});

Deno.test("GET /v1/usage and the audit trail on a store that keeps no events are 501s that say what to use", async () => {
  await using t = await startServer({ runtime: { store: memoryStore() } });
  await send(t, "s1", "hello");
  for (const path of ["/v1/usage", "/v1/sessions/s1/events"]) {
    const response = await t.call(path);
    assertEquals(response.status, 501, path);
    const error = await errorOf(response);
    assertEquals(error.code, "unsupported", path);
    assert(String(error.message).includes("SQL store"), String(error.message));
  }
  assertEquals(t.unexpected.length, 0);
});

/** Every page of a session's audit trail, newest page first, as the route pages it. */
async function trail(t: TestServer, session: string, limit: number): Promise<TroupeEvent[][]> {
  const pages: TroupeEvent[][] = [];
  let path = `/v1/sessions/${session}/events?limit=${limit}`;
  while (true) {
    const page = await json(await t.call(path));
    pages.push(page.events as TroupeEvent[]);
    if (page.next === null) return pages;
    path = `/v1/sessions/${session}/events?limit=${limit}&before=${
      encodeURIComponent(page.next as string)
    }`;
  }
}

Deno.test("GET /v1/sessions/{session}/events pages through the session's events as emitted, the last reply's included", async () => {
  await using t = await startServer();
  const emitted: TroupeEvent[] = [];
  t.runtime.subscribe((event) => event.session === "s1" && emitted.push(event));
  await send(t, "s1", "one");
  await send(t, "other", "not in s1's trail");
  await send(t, "s1", "two");
  await send(t, "s1", "three");
  // No wait for the persister: the route waits for the events emitted before it.
  const pages = await trail(t, "s1", 4);
  const read = pages.toReversed().flat();
  assertEquals(read, emitted, "every event of s1, in order, as emitted");
  assert(emitted.length > 8, `three sends make more than 8 events: ${emitted.length}`);
  assert(pages.every((page) => page.length <= 4) && pages[0]!.length === 4);
  assertEquals(
    read.at(-1)!.type === "run.completed" || read.at(-1)!.type === "usage.recorded",
    true,
  );
  const whole = await json(await t.call("/v1/sessions/s1/events"));
  assertEquals([whole.events, whole.next], [emitted, null], "the default page holds them all");
});

Deno.test("a deleted session's audit trail stays and ends with its deletion", async () => {
  await using t = await startServer();
  await send(t, "gone", "forget me");
  await remove(t, "gone");
  const events = (await json(await t.call("/v1/sessions/gone/events"))).events as TroupeEvent[];
  assertEquals(events.at(-1)!.type, "session.deleted");
  assert(events.some((e) => e.type === "run.completed"), "the run's events are kept");
  assert(
    !JSON.stringify(events).includes("forget me"),
    "the trail holds no message content",
  );
  const never = await json(await t.call("/v1/sessions/never-existed/events"));
  assertEquals(never, { events: [], next: null });
});

Deno.test("GET /v1/sessions/{session}/events refuses a bad limit, cursor or session with 400 naming it", async () => {
  await using t = await startServer();
  await send(t, "s1", "hello");
  const cases: [string, string][] = [
    ["/v1/sessions/s1/events?limit=0", "limit"],
    ["/v1/sessions/s1/events?limit=1001", "limit"],
    ["/v1/sessions/s1/events?limit=ten", "limit"],
    ["/v1/sessions/s1/events?limit=", "limit"],
    ["/v1/sessions/s1/events?before=garbage!", "before"],
    ["/v1/sessions/s1/events?before=", "before"],
    // A history cursor is no audit cursor.
    ["/v1/sessions/s1/events?before=WyJoIiwzXQ", "before"],
    ["/v1/sessions/a%20b/events", "session"],
  ];
  for (const [path, field] of cases) {
    const response = await t.call(path);
    assertEquals(response.status, 400, path);
    const error = await errorOf(response);
    assertEquals([error.code, error.field], ["invalid_input", field], path);
  }
  assertEquals(t.unexpected.length, 0);
});
