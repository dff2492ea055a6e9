// Migration 0002, frozen: a label for API keys, and the index that deleting a session's runs uses.

import type { Kysely } from "kysely";

// Frozen like 0001: never change it once released; typed `Kysely<any>` so it keeps compiling
// whatever the `Database` interface becomes; portable column types only (SQLite and PostgreSQL).

/**
 * Adds `api_keys.name` (an optional label shown by `deno task keys list`) and
 * an index on `runs (org, session)`, so that deleting a session does not scan
 * every run.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import * as m0001 from "./0001_init.ts";
 * import { down, up } from "./0002_keys_and_deletes.ts";
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
  await db.schema.alterTable("api_keys").addColumn("name", "text").execute();
  await db.schema.createIndex("runs_org_session").on("runs").columns(["org", "session"])
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
 * import { down, up } from "./0002_keys_and_deletes.ts";
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
  await db.schema.dropIndex("runs_org_session").execute();
  await db.schema.alterTable("api_keys").dropColumn("name").execute();
}
