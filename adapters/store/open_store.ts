// Opens the SQL store from a URL: PostgreSQL for postgres:// URLs, SQLite for anything else; migrates.

import { type Dialect, Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import { errorText, logLine } from "../../actors/log.ts";
import { pathScheme } from "../../actors/validate.ts";
import { localSqliteDialect } from "./_local_sqlite.ts";
import { SqliteWorkerUnavailable, workerSqliteDialect } from "./_worker_sqlite_dialect.ts";
import { StoreError } from "./errors.ts";
import { migrations } from "./migrations/mod.ts";
import type { Database } from "./schema.ts";
import { type SqlStore, sqlStore, type SqlStoreOptions } from "./sql_store.ts";

/**
 * Options for {@linkcode openStore}; the {@linkcode SqlStoreOptions} apply too.
 *
 * @example
 * ```ts
 * import type { OpenStoreOptions } from "./open_store.ts";
 *
 * const options: OpenStoreOptions = { maxConnections: 20, busyTimeoutMs: 10_000 };
 * ```
 */
export interface OpenStoreOptions extends SqlStoreOptions {
  /**
   * PostgreSQL: the most connections the pool opens.
   *
   * @default {10}
   */
  maxConnections?: number;
  /**
   * SQLite: how long a statement waits for another process's lock, in ms.
   *
   * @default {5000}
   */
  busyTimeoutMs?: number;
  /**
   * PostgreSQL: called once when a pooled connection fails, idle or in use
   * (the server restarted or crashed, a network cut). The pool drops that
   * connection and opens a new one for the next query, which rejects if the
   * server is still unreachable; a query that was running rejects on its
   * own. So the default ignores it rather than crash the process with an
   * unhandled `error` event.
   *
   * @default {() => {}}
   */
  onConnectionError?: (error: Error) => void;
  /**
   * SQLite file: who copies the write-ahead log back into the database.
   * `background`: a worker thread with its own connection, woken every few
   * commits, so that commits on the event loop only append to the WAL; once
   * the WAL passes 4,000 pages (≈ 16 MB) a commit waits, without blocking the
   * event loop, for the thread to catch up so that the WAL starts over. The
   * thread needs read access to `adapters/store/`; without it (or if it
   * fails) the store checkpoints inline and tells `onCheckpointError`.
   * `inline`: SQLite's default, the commit that takes the WAL past 1,000 pages
   * does it on the event loop. Ignored for `":memory:"` and PostgreSQL.
   *
   * @default {"background"}
   */
  checkpoints?: "background" | "inline";
  /**
   * SQLite: told once if the background checkpoint thread fails; the store
   * then checkpoints inline and goes on.
   *
   * @default {writes a JSON line to stderr}
   */
  onCheckpointError?: (error: StoreError) => void;
  /**
   * SQLite file: where the connection lives. `worker`: in a worker of its
   * own, so that no statement, commit or disk write blocks the event loop
   * (the HTTP server and the session actors); each query costs a message
   * each way. It needs read access to `adapters/store/`. `main`: on the event
   * loop, as `node:sqlite` is used directly (fine for a short-lived command).
   * `":memory:"` always runs on the event loop: a worker's in-memory database
   * would be its own.
   *
   * @default {"worker"}
   */
  sqliteThread?: "worker" | "main";
}

/** What a PostgreSQL URL starts with; anything else (but `memory`) is a SQLite path. */
export const POSTGRES_URL = /^postgres(ql)?:\/\//i;
const INT8_OID = 20;

/**
 * Opens the SQL store and brings its schema up to date with Kysely's
 * `Migrator`. A `postgres://` or `postgresql://` URL opens a `pg` pool
 * (bigint columns come back as numbers); anything else is a SQLite file path,
 * or `":memory:"`, opened through `node:sqlite` with WAL on (a path that
 * starts with another scheme, `sqlite:` or `file:`, is refused). Throws a
 * `StoreError` (`invalid_url`, or `open_failed` with the cause) that names
 * the database with any password redacted.
 *
 * @example
 * ```ts
 * import { openStore } from "./open_store.ts";
 *
 * await using store = await openStore(":memory:");
 * await store.writeEvents([{
 *   id: "e1", type: "session.activated", ts: 1, org: "acme", session: "s1", historyLength: 0,
 * }]);
 * const { events } = await store.auditTrail({ org: "acme", session: "s1" });
 * console.assert(events[0]?.type === "session.activated");
 * ```
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<SqlStore> {
  const {
    maxConnections = 10,
    busyTimeoutMs = 5000,
    onConnectionError = () => {},
    checkpoints = "background",
    onCheckpointError = logCheckpointError,
    sqliteThread = "worker",
    ...storeOptions
  } = options;
  if (typeof url !== "string" || url.trim() === "") {
    throw new StoreError(
      "invalid_url",
      `Cannot open the store: the URL must be a postgres:// URL or a SQLite path, current value is ${
        JSON.stringify(url)
      }`,
    );
  }
  if (checkpoints !== "background" && checkpoints !== "inline") {
    throw new TypeError(
      `Cannot open the store: checkpoints must be "background" or "inline", current value is ${
        JSON.stringify(checkpoints)
      }`,
    );
  }
  if (sqliteThread !== "worker" && sqliteThread !== "main") {
    throw new TypeError(
      `Cannot open the store: sqliteThread must be "worker" or "main", current value is ${
        JSON.stringify(sqliteThread)
      }`,
    );
  }
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    throw new RangeError(
      `Cannot open the store: maxConnections must be a positive integer, current value is ${maxConnections}`,
    );
  }
  const postgres = POSTGRES_URL.test(url);
  const shown = redactUrl(url);
  const scheme = postgres ? null : pathScheme(url);
  if (scheme !== null) {
    throw new StoreError(
      "invalid_url",
      `Cannot open the store: the URL must be a postgres:// URL or a SQLite path, current value is a "${scheme}:" URL; give the SQLite file's path alone, e.g. ./data/troupe.db`,
    );
  }
  if (postgres && !URL.canParse(url)) {
    throw new StoreError(
      "invalid_url",
      `Cannot open the store: ${shown} is not a valid PostgreSQL URL (postgres://user:password@host:port/database)`,
    );
  }
  const openFailed = (error: unknown) =>
    new StoreError(
      "open_failed",
      `Cannot open the store at ${shown}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  const local = () =>
    localSqliteDialect(url, busyTimeoutMs, checkpoints === "background", onCheckpointError);
  const worker = !postgres && sqliteThread === "worker" && url !== ":memory:"
    ? workerSqliteDialect({
      path: url,
      busyTimeoutMs,
      background: checkpoints === "background",
      onCheckpointError,
    })
    : undefined;
  const dialect = postgres
    ? new PostgresDialect({ pool: postgresPool(url, maxConnections, onConnectionError) })
    : worker ?? local();
  try {
    return await migrated(dialect, postgres ? "postgres" : "sqlite", {
      ...storeOptions,
      ...(worker === undefined ? {} : { runTransaction: worker.runTransaction }),
    });
  } catch (error) {
    if (!(causeOf(error) instanceof SqliteWorkerUnavailable)) throw openFailed(error);
    // No worker (it needs read access to adapters/store/): the connection runs on the event loop.
    logLine("warn", "store sqlite worker unavailable, running the connection on the event loop", {
      error: errorText(causeOf(error)),
    });
    return await migrated(local(), "sqlite", storeOptions).catch((error) => {
      throw openFailed(error);
    });
  }
}

/** A store on `dialect` with its schema brought up to date; the connection is closed on failure. */
async function migrated(
  dialect: Dialect,
  name: "sqlite" | "postgres",
  options: SqlStoreOptions,
): Promise<SqlStore> {
  const db = new Kysely<Database>({ dialect });
  try {
    const { error } = await new Migrator({ db, provider: migrations }).migrateToLatest();
    if (error !== undefined) throw error;
    return sqlStore(db, { dialect: name, ...options });
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/** The innermost cause of `error`. */
function causeOf(error: unknown): unknown {
  let inner = error;
  while (
    inner instanceof Error && inner.cause !== undefined &&
    !(inner instanceof SqliteWorkerUnavailable)
  ) {
    inner = inner.cause;
  }
  return inner;
}

/**
 * The URL with the password, if any, replaced by `***`, for messages and logs.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./open_store.ts";
 *
 * console.assert(redactUrl("postgres://app:s3cret@db:5432/troupe") === "postgres://app:***@db:5432/troupe");
 * ```
 */
export function redactUrl(url: string): string {
  // Up to the last "@" before the path, so a password holding an unescaped "@" is hidden whole.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^/]*@/i, "$1:***@");
}

function logCheckpointError(error: StoreError): void {
  logLine("warn", "store checkpoint error", { code: error.code, error: errorText(error) });
}

function postgresPool(
  connectionString: string,
  max: number,
  onConnectionError: (error: Error) => void,
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    // Per pool rather than pg.types.setTypeParser, which would change every pool in the process.
    types: {
      getTypeParser: (oid: number, format?: "text" | "binary") =>
        oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format),
    },
  });
  // A connection that fails while a query holds it emits "error" on its client, not on the
  // pool; unheard, that event would crash the process (the query itself rejects). So every
  // client reports its errors, and the pool's event, which repeats an idle client's, is heard.
  pool.on("connect", (client: pg.PoolClient) => client.on("error", onConnectionError));
  pool.on("error", () => {});
  return pool;
}
