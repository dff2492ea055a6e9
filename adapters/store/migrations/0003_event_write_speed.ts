// Migration 0003, frozen: drops the event indexes no query needs, so that a batch of events writes less.

import type { Kysely } from "kysely";

// Frozen like 0001: never change it once released; typed `Kysely<any>` so it keeps compiling
// whatever the `Database` interface becomes; portable statements only (SQLite and PostgreSQL).
//
// Every index is one more B-tree each row of a batch is inserted into, and more pages each
// commit writes. The read queries (`sql_queries.ts`) use `usage_events (org, ts)` and
// `audit_events (org, session, ts)`; the first three indexes below were read by none of them.
// `runs (org, session)` (0002) served only the deletion of a session's runs, which now finds
// them through `audit_events (org, session, ts)` (`sql_sessions.ts`); keyed by session, each
// batch touched one of its pages per session (50 of the 238 pages a 500-event batch wrote).
// EXPLAIN QUERY PLAN checks in `tests/adapters/store/query_plan_test.ts`.
const DROPPED = [
  { name: "audit_events_type", table: "audit_events", columns: ["type"] },
  { name: "usage_events_org_session", table: "usage_events", columns: ["org", "session"] },
  { name: "usage_events_org_model", table: "usage_events", columns: ["org", "model"] },
  { name: "runs_org_session", table: "runs", columns: ["org", "session"] },
] as const;

/**
 * Drops `audit_events_type`, `usage_events_org_session`,
 * `usage_events_org_model` and `runs_org_session`. Usage totals grouped by
 * session or model still search `usage_events_org_ts` and group the org's
 * rows in a temporary B-tree.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import * as m0001 from "./0001_init.ts";
 * import * as m0002 from "./0002_keys_and_deletes.ts";
 * import { down, up } from "./0003_event_write_speed.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await m0001.up(db);
 * await m0002.up(db);
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  for (const index of DROPPED) await db.schema.dropIndex(index.name).ifExists().execute();
}

/**
 * Creates the indexes {@linkcode up} dropped again.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import * as m0001 from "./0001_init.ts";
 * import * as m0002 from "./0002_keys_and_deletes.ts";
 * import { down, up } from "./0003_event_write_speed.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await m0001.up(db);
 * await m0002.up(db);
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const index of DROPPED) {
    await db.schema.createIndex(index.name).ifNotExists().on(index.table)
      .columns([...index.columns]).execute();
  }
}
