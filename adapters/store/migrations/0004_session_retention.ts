// Migration 0004, frozen: the index a retention sweep finds the sessions idle the longest with.

import type { Kysely } from "kysely";

// Frozen like 0001: never change it once released; typed `Kysely<any>` so it keeps compiling
// whatever the `Database` interface becomes; portable statements only (SQLite and PostgreSQL).

/**
 * Adds an index on `sessions (last_seen_at)`, so that `sessionRetentionMs`
 * finds the sessions idle the longest without reading every session row.
 * Each history append already updates its session's row, so the index costs
 * one more B-tree entry per append, not per event.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import * as m0001 from "./0001_init.ts";
 * import { down, up } from "./0004_session_retention.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await m0001.up(db);
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("sessions_last_seen_at").on("sessions").columns(["last_seen_at"])
    .execute();
}

/**
 * Undoes {@linkcode up}.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import * as m0001 from "./0001_init.ts";
 * import { down, up } from "./0004_session_retention.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await m0001.up(db);
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("sessions_last_seen_at").execute();
}
