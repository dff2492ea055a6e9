/**
 * The SQL store's migrations, in order, as a Kysely `MigrationProvider` that
 * imports them (no file-system scanning, so it works from a compiled binary
 * or a remote import).
 *
 * @module
 */

import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_init.ts";
import * as m0002 from "./0002_keys_and_deletes.ts";
import * as m0003 from "./0003_event_write_speed.ts";
import * as m0004 from "./0004_session_retention.ts";

/**
 * Every migration by name; names sort in the order they run.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { nodeSqliteDialect } from "../node_sqlite_dialect.ts";
 * import { openSqlite } from "../open_sqlite.ts";
 * import { migrations } from "./mod.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * const { error, results } = await new Migrator({ db, provider: migrations })
 *   .migrateToLatest();
 * console.assert(error === undefined && results?.[0]?.status === "Success");
 * await db.destroy();
 * ```
 */
export const migrations: MigrationProvider = {
  getMigrations: (): Promise<Record<string, Migration>> =>
    Promise.resolve({
      "0001_init": m0001,
      "0002_keys_and_deletes": m0002,
      "0003_event_write_speed": m0003,
      "0004_session_retention": m0004,
    }),
};
