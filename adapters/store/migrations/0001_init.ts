// Migration 0001, frozen: the first schema (sessions, history, runs, usage, audit, dead letters, keys).

import type { Kysely } from "kysely";

// Frozen: this file must never change once released. A schema change is a new
// migration. It is typed `Kysely<any>` on purpose, so that it keeps compiling
// whatever the `Database` interface becomes. Only portable column types (text,
// integer, bigint) are used so the same file runs on SQLite and PostgreSQL;
// JSON is stored as text.

/**
 * Creates the tables and indexes.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import { down, up } from "./0001_init.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable("sessions")
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("session", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_seen_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("sessions_pk", ["org", "session"])
    .execute();

  // The primary key (org, session, seq) is the index history pages are read through.
  await db.schema.createTable("messages")
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("session", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("content", "text", (c) => c.notNull())
    .addColumn("ts", "bigint", (c) => c.notNull())
    .addColumn("answered", "text")
    .addPrimaryKeyConstraint("messages_pk", ["org", "session", "seq"])
    .addUniqueConstraint("messages_id_unique", ["org", "session", "id"])
    .execute();

  await db.schema.createTable("runs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("session", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("messages", "text", (c) => c.notNull())
    .addColumn("started_at", "bigint")
    .addColumn("ended_at", "bigint")
    .execute();

  await db.schema.createTable("usage_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("session", "text", (c) => c.notNull())
    .addColumn("run", "text", (c) => c.notNull())
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("input_tokens", "bigint", (c) => c.notNull())
    .addColumn("output_tokens", "bigint", (c) => c.notNull())
    .addColumn("cached_tokens", "bigint", (c) => c.notNull())
    .addColumn("reasoning_tokens", "bigint", (c) => c.notNull())
    .addColumn("total_tokens", "bigint", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("latency_ms", "bigint", (c) => c.notNull())
    .addColumn("ttft_ms", "bigint")
    .addColumn("messages", "text", (c) => c.notNull())
    .addColumn("ts", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("usage_events_org_ts").on("usage_events").columns(["org", "ts"])
    .execute();
  await db.schema.createIndex("usage_events_org_session").on("usage_events")
    .columns(["org", "session"]).execute();
  await db.schema.createIndex("usage_events_org_model").on("usage_events")
    .columns(["org", "model"]).execute();

  await db.schema.createTable("audit_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("session", "text", (c) => c.notNull())
    .addColumn("run", "text")
    .addColumn("ts", "bigint", (c) => c.notNull())
    .addColumn("body", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_events_org_session_ts").on("audit_events")
    .columns(["org", "session", "ts"]).execute();
  await db.schema.createIndex("audit_events_type").on("audit_events").column("type").execute();

  await db.schema.createTable("dead_letters")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("event_id", "text")
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("ts", "bigint", (c) => c.notNull())
    .execute();

  await db.schema.createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("revoked_at", "bigint")
    .execute();
  await db.schema.createIndex("api_keys_org").on("api_keys").column("org").execute();
}

/**
 * Drops everything {@linkcode up} created.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import { down, up } from "./0001_init.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await up(db);
 * await down(db);
 * await db.destroy();
 * ```
 */
// deno-lint-ignore no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  // Dropping a table drops its indexes and constraints.
  for (
    const table of [
      "api_keys",
      "dead_letters",
      "audit_events",
      "usage_events",
      "runs",
      "messages",
      "sessions",
    ]
  ) {
    await db.schema.dropTable(table).execute();
  }
}
