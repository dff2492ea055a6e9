// Proves every read query of the event tables searches an index on SQLite (EXPLAIN QUERY PLAN), none scans a table.

import assert from "node:assert/strict";
import { Kysely, Migrator } from "kysely";
import {
  auditTrail,
  type Database,
  deleteSession,
  idleSessions,
  migrations,
  nodeSqliteDialect,
  openSqlite,
  usageTotals,
} from "../../../adapters/store/mod.ts";

interface Captured {
  sql: string;
  parameters: readonly unknown[];
}

/** Runs `read` on a migrated database and returns the plan of each select it ran. */
async function plansOf(
  read: (db: Kysely<Database>) => Promise<unknown>,
): Promise<{ sql: string; plan: string[] }[]> {
  const sqlite = openSqlite(":memory:");
  const captured: Captured[] = [];
  const db = new Kysely<Database>({
    dialect: nodeSqliteDialect({ database: sqlite }),
    log: (event) => {
      if (event.level === "query" && /^(select|delete)/i.test(event.query.sql)) {
        captured.push({ sql: event.query.sql, parameters: event.query.parameters });
      }
    },
  });
  try {
    const { error } = await new Migrator({ db, provider: migrations }).migrateToLatest();
    if (error !== undefined) throw error;
    captured.length = 0;
    await read(db);
    return captured.map(({ sql, parameters }) => ({
      sql,
      plan: (sqlite.prepare(`explain query plan ${sql}`).all(
        ...(parameters as (string | number)[]),
      ) as { detail: string }[]).map((row) => row.detail),
    }));
  } finally {
    await db.destroy();
  }
}

function assertSearchesIndex(plans: { sql: string; plan: string[] }[], index: string): void {
  assert.ok(plans.length > 0, "no query ran");
  for (const { sql, plan } of plans) {
    const access = plan.filter((step) => /^(SCAN|SEARCH) /.test(step));
    assert.ok(access.length > 0, `no table access in the plan of ${sql}: ${plan}`);
    for (const step of access) {
      assert.ok(
        step.startsWith("SEARCH ") && step.includes(`USING INDEX ${index} `),
        `${sql}\nreads through "${step}", not a search of ${index}`,
      );
    }
  }
}

const CURSOR_SOURCE = { org: "acme", session: "s1", limit: 1 };

Deno.test("usage totals search usage_events_org_ts, grouped or not, with or without a range", async () => {
  for (const groupBy of ["none", "session", "model"] as const) {
    for (const range of [{}, { from: 1 }, { to: 2 }, { from: 1, to: 2 }]) {
      const plans = await plansOf((db) => usageTotals(db, { org: "acme", groupBy, ...range }));
      assertSearchesIndex(plans, "usage_events_org_ts");
    }
  }
});

Deno.test("the audit trail searches audit_events_org_session_ts, first page and later pages", async () => {
  assertSearchesIndex(
    await plansOf((db) => auditTrail(db, { org: "acme", session: "s1", limit: 50 })),
    "audit_events_org_session_ts",
  );
  const plans = await plansOf(async (db) => {
    await db.insertInto("audit_events").values([1, 2].map((ts) => ({
      id: `e${ts}`,
      type: "session.activated",
      org: "acme",
      session: "s1",
      run: null,
      ts,
      body: "{}",
    }))).execute();
    const { next } = await auditTrail(db, CURSOR_SOURCE);
    assert.ok(next !== null);
    await auditTrail(db, { ...CURSOR_SOURCE, before: next });
  });
  assertSearchesIndex(plans, "audit_events_org_session_ts");
  // A later page seeks to its cursor rather than walking the session's newer events.
  assert.match(plans.at(-1)!.plan.join("\n"), /\(org=\? AND session=\? AND ts<\?\)/);
});

Deno.test("deleting a session finds its rows by key, and its runs through the audit index", async () => {
  const plans = await plansOf((db) => deleteSession(db, "acme", "s1"));
  assert.equal(plans.length, 3);
  const [messages, runs, sessions] = plans.map(({ plan }) => plan.join("\n"));
  assert.match(
    messages!,
    /^SEARCH messages USING INDEX sqlite_autoindex_messages_\d \(org=\? AND session=\?\)/,
  );
  assert.match(
    sessions!,
    /^SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 \(org=\? AND session=\?\)/,
  );
  assert.match(runs!, /SEARCH runs USING INDEX sqlite_autoindex_runs_1 \(id=\?\)/);
  assert.match(
    runs!,
    /SEARCH audit_events USING INDEX audit_events_org_session_ts \(org=\? AND session=\?\)/,
  );
  assert.doesNotMatch(runs!, /SCAN/);
});

Deno.test("a retention sweep finds idle sessions through sessions_last_seen_at, in its order", async () => {
  const plans = await plansOf((db) => idleSessions(db, 1_700_000_000_000, 500));
  assert.equal(plans.length, 1);
  const plan = plans[0]!.plan.join("\n");
  assert.match(plan, /^SEARCH sessions USING INDEX sessions_last_seen_at \(last_seen_at<\?\)/);
  assert.doesNotMatch(plan, /TEMP B-TREE/, "ordered by the index, not sorted afterwards");
});

Deno.test("deleting a session only if idle reads its row by key before the deletes", async () => {
  const plans = await plansOf((db) => deleteSession(db, "acme", "s1", { idleBefore: 1 }));
  assert.equal(plans.length, 1, "a session that is not there is not deleted");
  assert.match(
    plans[0]!.plan.join("\n"),
    /^SEARCH sessions USING INDEX sqlite_autoindex_sessions_1 \(org=\? AND session=\?\)/,
  );
});

Deno.test("migration 0003 leaves the event tables one index each besides their key", async () => {
  const sqlite = openSqlite(":memory:");
  const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ database: sqlite }) });
  try {
    await new Migrator({ db, provider: migrations }).migrateToLatest();
    const indexes = (sqlite.prepare(
      "select tbl_name as t, name from sqlite_schema where type = 'index' and tbl_name in ('usage_events', 'audit_events', 'runs') order by name",
    ).all() as { t: string; name: string }[]).map((row) => row.name);
    assert.deepEqual(indexes, [
      "audit_events_org_session_ts",
      "sqlite_autoindex_audit_events_1",
      "sqlite_autoindex_runs_1",
      "sqlite_autoindex_usage_events_1",
      "usage_events_org_ts",
    ]);
  } finally {
    await db.destroy();
  }
});
