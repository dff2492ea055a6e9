// The contract every SQL event store passes: once-only writes, one transaction a batch, reads back.

import assert from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import type { TroupeEvent, UsageRecorded } from "../../actors/events.ts";
import type { Database, SqlStore, SqlStoreOptions } from "../../adapters/store/mod.ts";

/** A database made for one test, and how to open stores on it and look inside it. */
export interface EventStoreFixture extends AsyncDisposable {
  /** Open a store on the fixture's database; every call opens the same database again. */
  open(options?: SqlStoreOptions): Promise<SqlStore>;
  /** Every row of a table as the database holds it (integers as numbers), ordered by `id`. */
  rows(table: keyof Database): Promise<Record<string, unknown>[]>;
}

/** What {@linkcode runEventStoreContract} needs to know about one implementation. */
export interface EventStoreContractOptions {
  /** Prefixes every test name, e.g. `"sqlite"` or `"postgres"`. */
  name: string;
  /** Make a fresh, empty database; each test disposes the one it made. */
  create: () => Promise<EventStoreFixture>;
}

const T0 = 1_700_000_000_000;

/** A usage event numbered `n`; `over` replaces any field. */
function usage(n: number, over: Partial<UsageRecorded> = {}): UsageRecorded {
  return {
    id: `u${n}`,
    type: "usage.recorded",
    ts: T0 + n,
    org: "acme",
    session: "s1",
    run: `r${n}`,
    provider: "mock",
    model: "small",
    inputTokens: 10 + n,
    outputTokens: 5 + n,
    cachedTokens: n % 3,
    reasoningTokens: n % 2,
    totalTokens: 15 + 2 * n,
    source: "reported",
    status: "completed",
    latencyMs: 100 + n,
    ttftMs: n % 2 === 0 ? 20 + n : null,
    messages: [`m${n}`],
    ...over,
  };
}

/** One run's worth of events of every type, numbered from `n`, in session `session`. */
function lifecycle(n: number, session = "s1"): TroupeEvent[] {
  const base = { org: "acme", session };
  const run = `run-${session}-${n}`;
  const messages = [`msg-${session}-${n}`];
  const ts = T0 + 100 * n;
  return [
    { ...base, id: `${session}-${n}-a`, ts, type: "session.activated", historyLength: n },
    {
      ...base,
      id: `${session}-${n}-b`,
      ts: ts + 1,
      type: "message.received",
      message: messages[0]!,
      policy: "merge",
      length: 5,
    },
    { ...base, id: `${session}-${n}-c`, ts: ts + 2, type: "run.started", run, messages },
    {
      ...usage(n, { ...base, id: `${session}-${n}-d`, ts: ts + 3, run, messages }),
    },
    {
      ...base,
      id: `${session}-${n}-e`,
      ts: ts + 4,
      type: "run.completed",
      run,
      messages,
      finishReason: "stop",
    },
    {
      ...base,
      id: `${session}-${n}-f`,
      ts: ts + 5,
      type: "message.rejected",
      message: `late-${n}`,
      run,
      reason: "busy",
    },
    {
      ...base,
      id: `${session}-${n}-g`,
      ts: ts + 6,
      type: "request.rejected",
      code: "overloaded",
      reason: "full",
    },
    { ...base, id: `${session}-${n}-h`, ts: ts + 7, type: "session.passivated", reason: "idle" },
  ];
}

function isInvalidBefore(error: unknown): boolean {
  assert.ok(error instanceof InvalidInputError, `expected an InvalidInputError, got ${error}`);
  assert.equal(error.field, "before");
  return true;
}

/**
 * Register the SQL event store contract as `Deno.test` cases named `"<name> event store: …"`.
 *
 * @example
 * ```ts ignore
 * import { runEventStoreContract } from "./event_store_contract.ts";
 *
 * runEventStoreContract({ name: "sqlite", create: sqliteFixture });
 * ```
 */
export function runEventStoreContract({ name, create }: EventStoreContractOptions): void {
  function test(
    title: string,
    fn: (store: SqlStore, fixture: EventStoreFixture) => Promise<void>,
  ): void {
    Deno.test(`${name} event store: ${title}`, async () => {
      await using fixture = await create();
      await using store = await fixture.open();
      await fn(store, fixture);
    });
  }

  test(
    "stores each event once: the same batch written twice returns N, then 0",
    async (store, fixture) => {
      const batch = [...lifecycle(1), ...lifecycle(2, "s2")];
      assert.equal(await store.writeEvents(batch), batch.length);
      assert.equal(await store.writeEvents(batch), 0);
      assert.equal((await fixture.rows("audit_events")).length, batch.length);
      assert.equal((await fixture.rows("usage_events")).length, 2);
      // Half old, half new: only the new ones count.
      const more = lifecycle(3);
      assert.equal(await store.writeEvents([...batch.slice(0, 4), ...more]), more.length);
      assert.equal((await fixture.rows("audit_events")).length, batch.length + more.length);
    },
  );

  test("counts an id repeated within one batch once", async (store, fixture) => {
    const event = usage(1);
    assert.equal(await store.writeEvents([event, { ...event }, usage(2), event]), 2);
    assert.equal((await fixture.rows("audit_events")).length, 2);
    assert.equal((await fixture.rows("usage_events")).length, 2);
  });

  test("writes usage events into usage_events with every field", async (store, fixture) => {
    const events = [usage(1), usage(2, { source: "estimated", status: "cancelled" })];
    await store.writeEvents(events);
    const rows = await fixture.rows("usage_events");
    assert.deepEqual(
      rows,
      events.map((e) => ({
        id: e.id,
        org: e.org,
        session: e.session,
        run: e.run,
        provider: e.provider,
        model: e.model,
        input_tokens: e.inputTokens,
        output_tokens: e.outputTokens,
        cached_tokens: e.cachedTokens,
        reasoning_tokens: e.reasoningTokens,
        total_tokens: e.totalTokens,
        source: e.source,
        status: e.status,
        latency_ms: e.latencyMs,
        ttft_ms: e.ttftMs,
        messages: JSON.stringify(e.messages),
        ts: e.ts,
      })),
    );
    const audit = await fixture.rows("audit_events");
    assert.deepEqual(audit.map((row) => [row.type, row.run]), [
      ["usage.recorded", "r1"],
      ["usage.recorded", "r2"],
    ]);
  });

  test("folds run events into runs whatever order they arrive in", async (store, fixture) => {
    const [, , started, , completed] = lifecycle(1);
    // Redelivery can bring the ending first; the start must not undo it.
    await store.writeEvents([completed!]);
    await store.writeEvents([started!]);
    // An older ending arriving late does not replace a newer one.
    await store.writeEvents([{
      ...completed!,
      id: "older",
      ts: completed!.ts - 1,
      type: "run.failed",
      code: "x",
      error: "x",
    } as TroupeEvent]);
    assert.deepEqual(await fixture.rows("runs"), [{
      id: "run-s1-1",
      org: "acme",
      session: "s1",
      status: "completed",
      messages: '["msg-s1-1"]',
      started_at: started!.ts,
      ended_at: completed!.ts,
    }]);
  });

  test("a batch that fails midway writes nothing of that batch", async (store, fixture) => {
    await store.writeEvents(lifecycle(1));
    const before = await fixture.rows("audit_events");
    // A null org passes no type check but hits the NOT NULL constraint in the database.
    const bad = { ...usage(50), org: null } as unknown as TroupeEvent;
    const batch = [...lifecycle(2), bad, ...lifecycle(3)];
    await assert.rejects(store.writeEvents(batch));
    assert.deepEqual(await fixture.rows("audit_events"), before);
    assert.equal((await fixture.rows("usage_events")).length, 1);
    assert.equal((await fixture.rows("runs")).length, 1);
    // The store is still usable, and the good events are written when retried alone.
    const good = batch.filter((event) => event !== bad);
    assert.equal(await store.writeEvents(good), good.length);
  });

  test("a batch split over many statements is still one transaction", async (_store, fixture) => {
    // 17 parameters a statement: two audit rows, one usage row per insert.
    await using store = await fixture.open({ maxParameters: 17, postgresBulk: "values" });
    const bad = { ...usage(50), session: null } as unknown as TroupeEvent;
    const batch = [...lifecycle(1), ...lifecycle(2), bad];
    await assert.rejects(store.writeEvents(batch));
    assert.deepEqual(await fixture.rows("audit_events"), []);
    assert.deepEqual(await fixture.rows("usage_events"), []);
    assert.equal(await store.writeEvents(batch.slice(0, -1)), batch.length - 1);
  });

  test(
    "an event that cannot be serialised rejects the batch and writes nothing",
    async (store, fixture) => {
      const bad = { ...usage(2), extra: 1n } as unknown as TroupeEvent;
      await assert.rejects(store.writeEvents([usage(1), bad]), TypeError);
      assert.deepEqual(await fixture.rows("audit_events"), []);
    },
  );

  test("writes a batch larger than one statement's parameter limit", async (store, fixture) => {
    const batch = Array.from({ length: 6_000 }, (_, n) => usage(n));
    assert.equal(await store.writeEvents(batch), batch.length);
    assert.equal((await fixture.rows("audit_events")).length, batch.length);
    assert.equal((await fixture.rows("usage_events")).length, batch.length);
  });

  test("keeps dead letters with their reason", async (store, fixture) => {
    await store.writeDeadLetters([
      { id: "e1", data: '{"id":"e1"}', reason: "type is missing", ts: T0 },
      { id: null, data: "42", reason: "not an object", ts: T0 + 1 },
    ]);
    await store.writeDeadLetters([]);
    const rows = await fixture.rows("dead_letters");
    assert.deepEqual(
      rows.map(({ id: _, ...rest }) => rest).sort((a, b) => Number(a.ts) - Number(b.ts)),
      [
        { event_id: "e1", data: '{"id":"e1"}', reason: "type is missing", ts: T0 },
        { event_id: null, data: "42", reason: "not an object", ts: T0 + 1 },
      ],
    );
  });

  test("usageTotals groups and sums over a time range, one org only", async (store) => {
    const events = [
      usage(1, { session: "a", model: "small" }),
      usage(2, { session: "a", model: "large" }),
      usage(3, { session: "b", model: "large" }),
      usage(4, { session: "b", model: "large" }),
      usage(9, { session: "c", model: "small" }), // after `to`
      usage(5, { org: "other", session: "a" }),
    ];
    await store.writeEvents([...events, ...lifecycle(7)]);
    const sum = (ns: number[]) => ({
      calls: ns.length,
      inputTokens: ns.reduce((t, n) => t + 10 + n, 0),
      outputTokens: ns.reduce((t, n) => t + 5 + n, 0),
      cachedTokens: ns.reduce((t, n) => t + n % 3, 0),
      reasoningTokens: ns.reduce((t, n) => t + n % 2, 0),
      totalTokens: ns.reduce((t, n) => t + 15 + 2 * n, 0),
    });
    const range = { org: "acme", from: T0 + 1, to: T0 + 9 };
    assert.deepEqual(await store.usageTotals(range), [{ key: null, ...sum([1, 2, 3, 4]) }]);
    assert.deepEqual(await store.usageTotals({ ...range, groupBy: "session" }), [
      { key: "a", ...sum([1, 2]) },
      { key: "b", ...sum([3, 4]) },
    ]);
    assert.deepEqual(await store.usageTotals({ ...range, groupBy: "model" }), [
      { key: "large", ...sum([2, 3, 4]) },
      { key: "small", ...sum([1]) },
    ]);
    // `from` is inclusive, `to` exclusive; no bound means everything.
    assert.deepEqual(
      await store.usageTotals({ org: "acme", from: T0 + 2, to: T0 + 4 }),
      [{ key: null, ...sum([2, 3]) }],
    );
    assert.equal((await store.usageTotals({ org: "acme" }))[0]!.calls, 6);
    assert.deepEqual(await store.usageTotals({ org: "nobody" }), [{ key: null, ...sum([]) }]);
    assert.deepEqual(await store.usageTotals({ org: "nobody", groupBy: "model" }), []);
  });

  test("auditTrail pages back with a cursor and returns the events as written", async (store) => {
    const s1 = [...lifecycle(1), ...lifecycle(2), ...lifecycle(3)];
    await store.writeEvents([...lifecycle(1, "s2"), ...s1.toReversed()]);
    const pages = [];
    let before: string | undefined;
    do {
      const page = await store.auditTrail(
        before === undefined
          ? { org: "acme", session: "s1", limit: 10 }
          : { org: "acme", session: "s1", limit: 10, before },
      );
      pages.push(page);
      before = page.next ?? undefined;
    } while (before !== undefined && pages.length < 10);
    assert.deepEqual(pages.map((p) => p.events.length), [10, 10, 4]);
    assert.deepEqual(pages.toReversed().flatMap((p) => p.events), s1);
    assert.deepEqual(await store.auditTrail({ org: "other", session: "s1" }), {
      events: [],
      next: null,
    });
    for (const bad of ["garbage!", "", "WyJoIiwyXQ"]) {
      await assert.rejects(
        store.auditTrail({ org: "acme", session: "s1", before: bad }),
        isInvalidBefore,
      );
    }
  });

  test("history and events survive closing and reopening the store", async (store, fixture) => {
    const entries = [
      { id: "m1", role: "user" as const, content: "hello", ts: T0 },
      { id: "r1", role: "assistant" as const, content: "hi", ts: T0 + 1, answered: ["m1"] },
    ];
    await store.appendHistory("acme", "s1", entries);
    await store.writeEvents(lifecycle(1));
    await store.close();
    await using reopened = await fixture.open();
    assert.deepEqual(await reopened.readHistory("acme", "s1", { limit: 10 }), {
      entries,
      next: null,
    });
    assert.deepEqual(
      (await reopened.auditTrail({ org: "acme", session: "s1" })).events,
      lifecycle(1),
    );
    // The ids are still known: rewriting the batch adds nothing.
    assert.equal(await reopened.writeEvents(lifecycle(1)), 0);
    await reopened.appendHistory("acme", "s1", [{
      id: "m2",
      role: "user",
      content: "again",
      ts: T0 + 2,
    }]);
    assert.deepEqual(
      (await reopened.readHistory("acme", "s1", { limit: 10 })).entries.map((e) => e.id),
      ["m1", "r1", "m2"],
    );
    assert.deepEqual(
      (await fixture.rows("sessions")).map(({ org, session, created_at, last_seen_at }) => ({
        org,
        session,
        created_at,
        last_seen_at,
      })),
      [{ org: "acme", session: "s1", created_at: T0, last_seen_at: T0 + 2 }],
    );
  });

  test("skips an appended entry whose id the session has, and stores the rest of the append", async (store) => {
    await store.appendHistory("acme", "s1", [{ id: "m1", role: "user", content: "a", ts: T0 }]);
    // A retry of an append committed unseen, or an id sent again after a restart: neither may
    // cost the entries beside it.
    await store.appendHistory("acme", "s1", [
      { id: "m2", role: "user", content: "b", ts: T0 + 1 },
      { id: "m1", role: "user", content: "again", ts: T0 + 2 },
      { id: "r1", role: "assistant", content: "c", ts: T0 + 3, answered: ["m1", "m2"] },
    ]);
    await store.appendHistory("acme", "s1", [{ id: "m2", role: "user", content: "b", ts: T0 + 1 }]);
    // One id twice in one append (a caller's id equal to a run id of the session): the first
    // is stored, and the append is not refused whole.
    await Promise.all([
      store.appendHistory("acme", "s1", [
        { id: "m3", role: "user", content: "d", ts: T0 + 4 },
        { id: "r2", role: "assistant", content: "e", ts: T0 + 5, answered: ["m3"] },
        { id: "r2", role: "user", content: "f", ts: T0 + 6 },
      ]),
      store.appendHistory("acme", "s1", [{ id: "m3", role: "user", content: "g", ts: T0 + 7 }]),
    ]);
    const page = await store.readHistory("acme", "s1", { limit: 10 });
    assert.deepEqual(page.entries.map((e) => [e.id, e.content]), [
      ["m1", "a"],
      ["m2", "b"],
      ["r1", "c"],
      ["m3", "d"],
      ["r2", "e"],
    ]);
  });

  test("rejects event writes and reads after close", async (store) => {
    await store.close();
    await assert.rejects(store.writeEvents(lifecycle(1)));
    await assert.rejects(store.writeDeadLetters([]));
    await assert.rejects(store.usageTotals({ org: "acme" }));
    await assert.rejects(store.auditTrail({ org: "acme", session: "s1" }));
    await store.close();
  });
}
