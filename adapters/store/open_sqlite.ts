// Opens a `node:sqlite` database with the pragmas Troupe's store relies on (WAL, foreign keys).

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { NodeSqliteDatabase } from "./node_sqlite_dialect.ts";

/**
 * Options for {@linkcode openSqlite}.
 *
 * @example
 * ```ts
 * import type { OpenSqliteOptions } from "./open_sqlite.ts";
 *
 * const options: OpenSqliteOptions = { busyTimeoutMs: 10_000 };
 * ```
 */
export interface OpenSqliteOptions {
  /**
   * How long a statement waits for another process's lock before failing
   * with `SQLITE_BUSY`, in milliseconds.
   *
   * @default {5000}
   */
  busyTimeoutMs?: number;
}

/**
 * Opens (creating if needed) a SQLite database for the store.
 *
 * Sets `journal_mode=WAL` (readers do not block the writer),
 * `synchronous=NORMAL` (safe in WAL mode; a power loss may drop the last
 * commits but never corrupts), `busy_timeout`, `foreign_keys=ON` and
 * `temp_store=MEMORY` (statement journals and temporary B-trees, such as
 * those of a GROUP BY, stay in memory instead of temp files).
 * `":memory:"` opens a private in-memory database, which has no WAL. For a
 * file, the parent directory is created if missing, and opening fails if WAL
 * cannot be enabled (for example on a file system without shared memory).
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 *
 * const db = new Kysely<Record<string, never>>({
 *   dialect: nodeSqliteDialect({ database: () => openSqlite(":memory:") }),
 * });
 * await db.destroy();
 * ```
 */
export function openSqlite(path: string, options: OpenSqliteOptions = {}): NodeSqliteDatabase {
  const { busyTimeoutMs = 5000 } = options;
  if (typeof path !== "string" || path === "") {
    throw new TypeError(
      `Cannot open SQLite database: path must be a non-empty string, current value is ${
        JSON.stringify(path)
      }`,
    );
  }
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(
      `Cannot open SQLite database: busyTimeoutMs must be a non-negative integer, current value is ${busyTimeoutMs}`,
    );
  }
  const inMemory = path === ":memory:";
  // Start-up only, before anything else touches the database, so sync is fine here.
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  try {
    // busy_timeout first: switching to WAL needs a lock another process may hold.
    db.exec(`pragma busy_timeout = ${busyTimeoutMs}`);
    const row = db.prepare("pragma journal_mode = wal").get() as { journal_mode?: unknown };
    if (!inMemory && row.journal_mode !== "wal") {
      throw new Error(
        `Cannot enable WAL for ${path}: current journal mode is ${String(row.journal_mode)}`,
      );
    }
    // temp_store = memory: a multi-row insert keeps a statement journal (to undo just that
    // statement on a constraint error) and SQLite spills it to a temp file past 64 KiB, which
    // cost a third of the write syscalls of a 500-event batch.
    db.exec("pragma synchronous = normal; pragma foreign_keys = on; pragma temp_store = memory");
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
