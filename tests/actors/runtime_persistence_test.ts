// The runtime with real stores and buses: events persisted once, history loaded after a restart.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { InvalidInputError, OverloadedError } from "../../actors/errors.ts";
import { createRuntime } from "../../actors/runtime.ts";
import type { TroupeEvent } from "../../actors/events.ts";
import type { Runtime, RuntimeOptions } from "../../actors/runtime_types.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";
import { startNatsServer, startPostgres } from "../_harness/mod.ts";
import { eventually } from "../_helpers/eventually.ts";

/** Every event id of the sessions, read back through the audit trail. */
async function storedIds(runtime: Runtime, org: string, sessions: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const session of sessions) {
    let before: string | undefined;
    do {
      const page = await runtime.audit({
        org,
        session,
        limit: 1000,
        ...(before === undefined ? {} : { before }),
      });
      ids.push(...page.events.map((e) => e.id));
      before = page.next ?? undefined;
    } while (before !== undefined);
  }
  return ids;
}

Deno.test("a SQLite file store keeps history across restarts and persists every event once", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/troupe.db`;
  const emitted: TroupeEvent[] = [];
  try {
    const first = createRuntime({ store: path, llm: mockLlm({ latencyMs: 5 }) });
    first.subscribe((event) => emitted.push(event));
    await first.ready();
    const [a, b] = await Promise.all([
      first.send({ org: "acme", session: "s1", content: "book a table" }),
      first.send({ org: "acme", session: "s1", content: "for four, at 8" }),
    ]);
    assertEquals(b.status, "completed");
    await first.send({ org: "acme", session: "s2", content: "hello" });
    const totals = await first.usage({ org: "acme" });
    assertEquals(totals.length, 1);
    assert(totals[0]!.calls >= 2 && totals[0]!.totalTokens > 0);
    await first.close();

    const second = createRuntime({ store: path, llm: mockLlm() });
    const again = await second.send({ org: "acme", session: "s1", content: "and a high chair" });
    assertEquals(again.status, "completed");
    const history = await second.history({ org: "acme", session: "s1" });
    assertEquals(history.messages.map((m) => m.content).slice(0, 3), [
      "book a table",
      "for four, at 8",
      "book a table\n---\nfor four, at 8",
    ]);
    assertEquals(history.messages[2]!.answered, [a.messageId, b.messageId]);
    const ids = await storedIds(second, "acme", ["s1", "s2"]);
    const firstIds = emitted.map((e) => e.id);
    for (const id of firstIds) assert(ids.includes(id), `event ${id} was not persisted`);
    assertEquals(new Set(ids).size, ids.length, "no event stored twice");
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SQLite file store answers an id sent again after a restart without a second call", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/troupe.db`;
  try {
    const first = createRuntime({ store: path, llm: mockLlm({ latencyMs: 5 }) });
    const answered = await first.send({ session: "s", content: "book a table", id: "client-7" });
    assertEquals(answered.status, "completed");
    await first.close();

    const llm = mockLlm();
    const second = createRuntime({ store: path, llm });
    const again = await second.send({ session: "s", content: "book a table", id: "client-7" });
    assertEquals(llm.stats.calls, 0);
    assertEquals(
      [again.status, again.text, again.runId, again.answered],
      ["completed", answered.text, answered.runId, ["client-7"]],
    );
    assertEquals((await second.history({ session: "s" })).messages.length, 2);
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with NATS and PostgreSQL, every event of a load is in the store after a graceful shutdown", async () => {
  await using nats = await startNatsServer();
  await using postgres = await startPostgres();
  const emitted: TroupeEvent[] = [];
  const runtime = createRuntime({
    store: postgres.url,
    bus: nats.url,
    llm: mockLlm({ latencyMs: 2 }),
  });
  runtime.subscribe((event) => emitted.push(event));
  await runtime.ready();
  const sessions = Array.from({ length: 20 }, (_, i) => `s${i}`);
  await Promise.all(sessions.map(async (session) => {
    for (let i = 0; i < 10; i++) {
      await runtime.send({ org: "fleet", session, content: `message ${i}` });
    }
  }));
  await runtime.close();

  const reader = createRuntime({ store: postgres.url, bus: nats.url, llm: mockLlm() });
  await reader.ready();
  // The persister of the new runtime drains whatever the stream still holds.
  const expected = new Set(emitted.filter((e) => e.org === "fleet").map((e) => e.id));
  let stored: string[] = [];
  await eventually("every event stored", async () => {
    stored = await storedIds(reader, "fleet", sessions);
    return stored.length >= expected.size;
  });
  assertEquals(new Set(stored), expected, "stored = emitted: nothing lost");
  assertEquals(stored.length, expected.size, "nothing stored twice");
  const usage = await reader.usage({ org: "fleet", groupBy: "session" });
  assertEquals(usage.length, sessions.length);
  assert(usage.every((row) => row.calls === 10));
  await reader.close();
});

/**
 * Other sessions keep sending (20 sessions, one message after another, at most 1,000 each)
 * while one session sends a message and reads it back through usage() and audit(), then is
 * deleted. Each read has to see its own writes, and none may wait for the load to end.
 */
async function readsUnderLoad(runtime: Runtime): Promise<void> {
  await runtime.ready();
  const org = "busy";
  const stop = new AbortController();
  let loadEnded = false;
  const load = Promise.all(Array.from({ length: 20 }, async (_, i) => {
    for (let n = 0; n < 1_000 && !stop.signal.aborted; n++) {
      await runtime.send({ org, session: `load${i}`, content: `message ${n}` });
    }
  })).finally(() => loadEnded = true);
  try {
    await eventually("the load to be stored as it goes", async () => {
      const rows = await runtime.usage({ org, groupBy: "session" });
      return rows.reduce((calls, row) => calls + row.calls, 0) >= 100;
    });
    const reply = await runtime.send({ org, session: "mine", content: "count me" });
    const usage = await runtime.usage({ org, groupBy: "session" });
    assertEquals(usage.find((row) => row.key === "mine")?.calls, 1, "usage reads its own write");
    const trail = await runtime.audit({ org, session: "mine" });
    assert(
      trail.events.some((event) => event.type === "run.completed" && event.run === reply.runId),
      "the audit trail reads its own write",
    );
    assert(await runtime.deleteSession({ org, session: "mine" }));
    assertEquals((await runtime.history({ org, session: "mine" })).messages, []);
    const kept = (await runtime.audit({ org, session: "mine" })).events;
    assertEquals(kept.at(-1)?.type, "session.deleted", "the audit trail is kept and says so");
    assert(!loadEnded, "usage(), audit() and deleteSession() waited for the load to end");
  } finally {
    stop.abort();
    await load;
  }
}

/** Run `use` with a runtime on a fresh SQLite file; closes it and removes the file afterwards. */
async function onSqliteFile(
  options: RuntimeOptions,
  use: (runtime: Runtime) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await using runtime = createRuntime({ store: `${dir}/troupe.db`, ...options });
    await use(runtime);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("usage(), audit() and deleteSession() read their own writes while other sessions keep sending (SQLite, in-process bus)", async () => {
  await onSqliteFile({ llm: mockLlm({ latencyMs: 2 }) }, readsUnderLoad);
});

Deno.test("usage(), audit() and deleteSession() read their own writes while other sessions keep sending (SQLite, NATS)", async () => {
  await using nats = await startNatsServer();
  await onSqliteFile({ bus: nats.url, llm: mockLlm({ latencyMs: 2 }) }, readsUnderLoad);
});

Deno.test("with NATS down, usage() is refused as overloaded instead of hanging, deleteSession() goes on, and both catch up once it is back", async () => {
  await using nats = await startNatsServer();
  const reported: unknown[] = [];
  const options = {
    bus: nats.url,
    llm: mockLlm(),
    onError: (error: unknown) => reported.push(error),
  };
  await onSqliteFile(options, async (runtime) => {
    await runtime.ready();
    await runtime.send({ session: "before", content: "stored" });
    assertEquals((await runtime.usage({}))[0]?.calls, 1);
    await nats.stop();
    await runtime.send({ session: "during", content: "not stored yet" });
    const [read, deletion] = await Promise.allSettled([
      runtime.usage({}),
      runtime.deleteSession({ session: "before" }),
    ]);
    assert(
      read.status === "rejected" && read.reason instanceof OverloadedError &&
        read.reason.retryAfterMs > 0 && /not stored yet/.test(read.reason.message),
      `usage() while the events cannot be stored: ${JSON.stringify(read)}`,
    );
    assertEquals(deletion, { status: "fulfilled", value: true });
    // A bad page is refused at once: after the wait, it would be refused as overloaded.
    await assertRejects(
      () => runtime.audit({ session: "during", limit: 0 }),
      (error: unknown) => error instanceof InvalidInputError && error.field === "limit",
    );
    assertEquals((await runtime.history({ session: "before" })).messages, []);
    assert(reported.some((error) => /before its last events are stored/.test(String(error))));
    await nats.restart();
    await eventually("usage to count both calls", async () => {
      const totals = await runtime.usage({}).catch(() => []);
      return totals[0]?.calls === 2;
    });
  });
});
