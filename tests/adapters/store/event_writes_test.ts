// Property tests of event batch writes on SQLite and PostgreSQL: any batching, any redelivery, one folded run row.

import assert from "node:assert/strict";
import fc from "fast-check";
import type { TroupeEvent } from "../../../actors/events.ts";
import { openStore, type SqlStore } from "../../../adapters/store/mod.ts";
import { startPostgres } from "../../_harness/mod.ts";

const T0 = 1_700_000_000_000;
const ENDINGS = ["run.completed", "run.failed", "run.cancelled", "run.superseded"] as const;
const STATUS: Record<(typeof ENDINGS)[number], string> = {
  "run.completed": "completed",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
  "run.superseded": "superseded",
};

/** One run: its start time and its endings (distinct times), as drawn. */
interface RunPlan {
  start: number;
  endings: { type: (typeof ENDINGS)[number]; at: number; answered: number }[];
}

function ending(
  run: string,
  n: number,
  { type, at, answered }: RunPlan["endings"][number],
): TroupeEvent {
  const base = { id: `${run}-end-${n}`, ts: T0 + at, org: "acme", session: "s1", run };
  const messages = Array.from({ length: answered }, (_, i) => `${run}-m${i}`);
  switch (type) {
    case "run.completed":
      return { ...base, type, messages, finishReason: "stop" };
    case "run.failed":
      return { ...base, type, messages, code: "upstream", error: "boom" };
    case "run.cancelled":
      return { ...base, type, messages, reason: "cancelled" };
    case "run.superseded":
      return { ...base, type, messages, supersededBy: "later", policy: "merge", started: true };
  }
}

/** Every event of the runs: a start, a usage record and the endings of each. */
function eventsOf(prefix: string, runs: RunPlan[]): TroupeEvent[] {
  return runs.flatMap((plan, r) => {
    const run = `${prefix}-r${r}`;
    const start: TroupeEvent = {
      id: `${run}-start`,
      type: "run.started",
      ts: T0 + plan.start,
      org: "acme",
      session: "s1",
      run,
      messages: [`${run}-m0`],
    };
    const usage: TroupeEvent = {
      id: `${run}-usage`,
      type: "usage.recorded",
      ts: T0 + plan.start + 1,
      org: "acme",
      session: "s1",
      run,
      provider: "mock",
      model: "small",
      inputTokens: 1,
      outputTokens: 2,
      cachedTokens: 0,
      reasoningTokens: 0,
      totalTokens: 3,
      source: "reported",
      status: "completed",
      latencyMs: 5,
      ttftMs: null,
      messages: [`${run}-m0`],
    };
    return [start, usage, ...plan.endings.map((e, n) => ending(run, n, e))];
  });
}

/** The runs rows the events fold to: the start time, and the latest ending (or "started"). */
function expectedRuns(prefix: string, runs: RunPlan[]) {
  return runs.map((plan, r) => {
    const run = `${prefix}-r${r}`;
    const latest = plan.endings.reduce<RunPlan["endings"][number] | undefined>(
      (best, e) => best === undefined || e.at > best.at ? e : best,
      undefined,
    );
    return {
      id: run,
      status: latest === undefined ? "started" : STATUS[latest.type],
      messages: JSON.stringify(
        latest === undefined
          ? [`${run}-m0`]
          : Array.from({ length: latest.answered }, (_, i) => `${run}-m${i}`),
      ),
      started_at: T0 + plan.start,
      ended_at: latest === undefined ? null : T0 + latest.at,
    };
  });
}

const runPlan: fc.Arbitrary<RunPlan> = fc.record({
  start: fc.integer({ min: 0, max: 1_000 }),
  endings: fc.uniqueArray(
    fc.record({
      type: fc.constantFrom(...ENDINGS),
      at: fc.integer({ min: 0, max: 2_000 }),
      answered: fc.integer({ min: 0, max: 3 }),
    }),
    { maxLength: 3, selector: (e) => e.at },
  ),
});

/**
 * A delivery schedule: every event at least once, some again (redeliveries), in any order,
 * cut into batches of any size.
 */
function schedule(events: TroupeEvent[]) {
  return fc.record({
    again: fc.array(fc.nat({ max: events.length - 1 }), { maxLength: events.length }),
    order: fc.array(fc.nat(), { minLength: events.length * 2, maxLength: events.length * 2 }),
    cuts: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 40 }),
  }).map(({ again, order, cuts }) => {
    const deliveries = [...events, ...again.map((i) => events[i]!)];
    const keyed = deliveries.map((event, i) => ({ event, key: order[i % order.length]! }));
    keyed.sort((a, b) => a.key - b.key);
    const batches: TroupeEvent[][] = [];
    let at = 0;
    for (let c = 0; at < keyed.length; c++) {
      const size = cuts[c % cuts.length]!;
      batches.push(keyed.slice(at, at + size).map((k) => k.event));
      at += size;
    }
    return batches;
  });
}

interface Target {
  store: SqlStore;
  runs(prefix: string): Promise<Record<string, unknown>[]>;
  count(table: "audit_events" | "usage_events", prefix: string): Promise<number>;
}

/** Checks the folding property on `target`, naming its runs `<base><round>-r<n>`. */
async function checkFolding(target: Target, base: string, numRuns: number): Promise<void> {
  let round = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(runPlan, { minLength: 1, maxLength: 4 }).chain((runs) => {
        const prefix = `${base}${round++}`;
        const events = eventsOf(prefix, runs);
        return fc.tuple(fc.constant(prefix), fc.constant(runs), schedule(events));
      }),
      async ([prefix, runs, batches]) => {
        const events = eventsOf(prefix, runs);
        let written = 0;
        for (const batch of batches) written += await target.store.writeEvents(batch);
        assert.equal(written, events.length, "each event is new exactly once");
        assert.equal(await target.count("audit_events", prefix), events.length);
        assert.equal(await target.count("usage_events", prefix), runs.length);
        assert.deepEqual(await target.runs(prefix), expectedRuns(prefix, runs));
      },
    ),
    { numRuns },
  );
}

function sqliteTarget(store: SqlStore, path: string): Target {
  return {
    store,
    async runs(prefix) {
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return db.prepare(
          "select id, status, messages, started_at, ended_at from runs where id like ? order by id",
        ).all(`${prefix}-%`).map((row) => ({ ...row }));
      } finally {
        db.close();
      }
    },
    async count(table, prefix) {
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        const row = db.prepare(`select count(*) as n from ${table} where id like ?`).get(
          `${prefix}-%`,
        );
        return Number(row?.n);
      } finally {
        db.close();
      }
    },
  };
}

Deno.test("sqlite: runs fold to the latest ending whatever the batches, order and redeliveries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe_event_writes_" });
  try {
    await using store = await openStore(`${dir}/troupe.db`);
    await checkFolding(sqliteTarget(store, `${dir}/troupe.db`), "p", 150);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite: a batch of any size, split into statements of any width, is written whole and once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe_event_writes_" });
  try {
    let round = 0;
    // 17 parameters: one usage row or two audit rows a statement; the default: up to 4,096.
    for (const maxParameters of [17, 60, undefined]) {
      const path = `${dir}/troupe-${maxParameters}.db`;
      await using store = await openStore(path, maxParameters ? { maxParameters } : {});
      const target = sqliteTarget(store, path);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 700 }), async (size) => {
          const prefix = `q${round++}`;
          const events = eventsOf(
            prefix,
            Array.from({ length: size }, (_, i) => ({
              start: i,
              endings: [],
            })),
          ).filter((event) => event.type !== "run.started" || size % 2 === 0);
          assert.equal(await store.writeEvents(events), events.length);
          assert.equal(await store.writeEvents(events), 0);
          assert.equal(await target.count("audit_events", prefix), events.length);
          assert.equal(await target.count("usage_events", prefix), size);
        }),
        { numRuns: 12 },
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("postgres: runs fold to the latest ending whatever the batches, order and redeliveries", async () => {
  await using postgres = await startPostgres();
  for (const postgresBulk of ["unnest", "values"] as const) {
    await using store = await openStore(postgres.url, { postgresBulk });
    const pg = (await import("pg")).default;
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await checkFolding(
        {
          store,
          async runs(prefix) {
            const { rows } = await client.query(
              "select id, status, messages, started_at::float8 as started_at, ended_at::float8 as ended_at from runs where id like $1 order by id",
              [`${prefix}-%`],
            );
            return rows;
          },
          async count(table, prefix) {
            const { rows } = await client.query(
              `select count(*)::int as n from ${table} where id like $1`,
              [`${prefix}-%`],
            );
            return rows[0].n;
          },
        },
        postgresBulk,
        25,
      );
    } finally {
      await client.end();
    }
  }
});

/** Run events of `run` in (org, session). */
function runEvents(org: string, session: string, run: string): TroupeEvent[] {
  return [
    { id: `${run}-s`, type: "run.started", ts: T0, org, session, run, messages: ["m"] },
    {
      id: `${run}-e`,
      type: "run.completed",
      ts: T0 + 1,
      org,
      session,
      run,
      messages: ["m"],
      finishReason: "stop",
    },
  ];
}

async function checkDeleteSessionRuns(store: SqlStore, runIds: () => Promise<string[]>) {
  await store.writeEvents([
    ...runEvents("acme", "s1", "r-acme-s1-a"),
    ...runEvents("acme", "s1", "r-acme-s1-b"),
    ...runEvents("acme", "s2", "r-acme-s2"),
    ...runEvents("other", "s1", "r-other-s1"),
  ]);
  // Only events, no history: the runs rows alone make the session exist.
  assert.equal(await store.deleteSession!("acme", "s1"), true);
  assert.deepEqual(await runIds(), ["r-acme-s2", "r-other-s1"]);
  assert.equal(await store.deleteSession!("acme", "s1"), false);
  assert.equal((await store.auditTrail({ org: "acme", session: "s1" })).events.length, 4);
}

Deno.test("sqlite: deleting a session deletes its runs and no other session's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe_event_writes_" });
  try {
    const path = `${dir}/troupe.db`;
    await using store = await openStore(path);
    const { DatabaseSync } = await import("node:sqlite");
    await checkDeleteSessionRuns(store, () => {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return Promise.resolve(
          db.prepare("select id from runs order by id").all().map((row) => String(row.id)),
        );
      } finally {
        db.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("postgres: deleting a session deletes its runs and no other session's", async () => {
  await using postgres = await startPostgres();
  await using store = await openStore(postgres.url);
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    await checkDeleteSessionRuns(store, async () => {
      const { rows } = await client.query("select id from runs order by id");
      return rows.map((row: { id: string }) => row.id);
    });
  } finally {
    await client.end();
  }
});
