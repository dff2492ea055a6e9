// The SQL store over Kysely: session history and event batches, on SQLite or PostgreSQL.

import { CompiledQuery, type Kysely } from "kysely";
import type { TroupeEvent } from "../../actors/events.ts";
import type {
  DeadLetter,
  DeleteSessionOptions,
  EventStore,
  HistoryEntry,
  HistoryPage,
  HistoryQuery,
  SessionKey,
  SessionListQuery,
  SessionPage,
  Store,
} from "../../actors/ports.ts";
import { type ApiKeyStore, apiKeyStore } from "./api_keys.ts";
import { checkPageLimit, decodeSeq, encodeCursor } from "./_cursor.ts";
import { eventRows } from "./_event_rows.ts";
import { eventWriter } from "./_write_events.ts";
import { historyWriter } from "./_history_writer.ts";
import { StoreError } from "./errors.ts";
import type { Database, MessagesTable } from "./schema.ts";
import {
  deleteSession as deleteSessionRows,
  idleSessions as idleSessionRows,
  listSessions as listSessionRows,
} from "./sql_sessions.ts";
import {
  auditTrail as readAuditTrail,
  type AuditTrailPage,
  type AuditTrailQuery,
  type UsageTotals,
  usageTotals as sumUsage,
  type UsageTotalsQuery,
} from "./sql_queries.ts";

/**
 * Options for {@linkcode sqlStore}.
 *
 * @example
 * ```ts
 * import type { SqlStoreOptions } from "./sql_store.ts";
 *
 * const options: SqlStoreOptions = { dialect: "postgres", postgresBulk: "values" };
 * ```
 */
export interface SqlStoreOptions {
  /**
   * The database the Kysely instance speaks.
   *
   * @default {undefined} detected from how the instance compiles a parameter (`$1` is PostgreSQL)
   */
  dialect?: "sqlite" | "postgres";
  /**
   * Most bound parameters one multi-row insert may carry; larger batches are
   * split into several statements of the same transaction.
   *
   * @default {32766} on SQLite (its compiled-in limit), 65535 on PostgreSQL (the protocol's)
   */
  maxParameters?: number;
  /**
   * How PostgreSQL writes event batches: `unnest` sends one array per column
   * (one statement per table whatever the batch size); `values` sends
   * multi-row `VALUES` in chunks. Ignored on SQLite, which always uses `values`.
   *
   * @default {"unnest"}
   */
  postgresBulk?: "unnest" | "values";
  /**
   * Runs compiled statements as one transaction in a single step, answering
   * each statement's affected rows in order; event batches and history
   * appends then use it instead of a Kysely transaction. `openStore` sets it for a SQLite file,
   * whose connection lives in a worker: one message for a whole batch instead
   * of one round trip per statement.
   *
   * @default {undefined} statements run one by one in a Kysely transaction
   */
  runTransaction?: (
    queries: readonly CompiledQuery[],
  ) => Promise<ReadonlyArray<{ numAffectedRows?: bigint }>>;
  /**
   * How long a history append waits for others before their group is
   * written, in ms; 0 writes after the current turn of the event loop.
   * Replies never wait for history, so the wait costs no caller anything,
   * while one transaction then carries a turn's message and its answer (and
   * other sessions' turns) instead of one each. Closing the store writes
   * what waits at once.
   *
   * @default {5}
   */
  historyGroupMs?: number;
}

/**
 * What {@linkcode sqlStore} returns: the history `Store`, the `EventStore`,
 * and the read queries over the events.
 *
 * @example
 * ```ts
 * import { openStore, type SqlStore } from "./mod.ts";
 *
 * const store: SqlStore = await openStore(":memory:");
 * await store.close();
 * ```
 */
export interface SqlStore extends Store, EventStore, AsyncDisposable {
  /** An org's sessions by id, a page at a time; see `listSessions` in `sql_sessions.ts`. */
  listSessions(org: string, query: SessionListQuery): Promise<SessionPage>;
  /** Delete a session's history and state; see `deleteSession` in `sql_sessions.ts`. */
  deleteSession(org: string, session: string, options?: DeleteSessionOptions): Promise<boolean>;
  /** The sessions idle the longest; see `idleSessions` in `sql_sessions.ts`. */
  idleSessions(before: number, limit: number): Promise<SessionKey[]>;
  /** The API keys (hashes only) kept in the same database. */
  readonly apiKeys: ApiKeyStore;
  /** Token sums and call counts of an org's usage; see `usageTotals` in `sql_queries.ts`. */
  usageTotals(query: UsageTotalsQuery): Promise<UsageTotals[]>;
  /** A page of a session's events as written; see `auditTrail` in `sql_queries.ts`. */
  auditTrail(query: AuditTrailQuery): Promise<AuditTrailPage>;
  /** Destroys the Kysely instance; every later call rejects. Closing again does nothing. */
  close(): Promise<void>;
}

const MAX_PARAMETERS = { sqlite: 32_766, postgres: 65_535 } as const;

/**
 * Builds the SQL store on a migrated Kysely instance (see `openStore`, which
 * opens the database and migrates it). The store owns `db`: `close()`
 * destroys it.
 *
 * History: `appendHistory` numbers a session's entries 1, 2, … (it first
 * upserts the `sessions` row, which on PostgreSQL also serialises concurrent
 * appends to one session); an entry id already in the session rejects the
 * whole append. Appends of one event-loop turn, from every session, are
 * committed together in one transaction on the next turn (group commit); an
 * append that fails there is retried alone, so only its own caller sees the error. `readHistory` returns the newest `limit`
 * entries before the cursor, oldest first.
 *
 * Events: `writeEvents` writes a batch in one transaction — every event into
 * `audit_events`, `usage.recorded` also into `usage_events`, `run.*` events
 * folded into `runs` — skipping ids already stored, and returns how many
 * events were new. If anything fails, nothing of the batch is written.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { sqlStore } from "./sql_store.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * const { error } = await new Migrator({ db, provider: migrations }).migrateToLatest();
 * if (error !== undefined) throw error;
 * await using store = sqlStore(db);
 * await store.appendHistory("acme", "s1", [{ id: "m1", role: "user", content: "hi", ts: 1 }]);
 * const page = await store.readHistory("acme", "s1", { limit: 10 });
 * console.assert(page.entries[0]?.content === "hi" && page.next === null);
 * ```
 */
export function sqlStore(db: Kysely<Database>, options: SqlStoreOptions = {}): SqlStore {
  const { dialect = detectDialect(db), postgresBulk = "unnest" } = options;
  const { maxParameters = MAX_PARAMETERS[dialect], historyGroupMs = 5 } = options;
  if (dialect !== "sqlite" && dialect !== "postgres") {
    throw new TypeError(
      `Cannot create the SQL store: dialect must be "sqlite" or "postgres", current value is ${
        JSON.stringify(dialect)
      }`,
    );
  }
  if (postgresBulk !== "unnest" && postgresBulk !== "values") {
    throw new TypeError(
      `Cannot create the SQL store: postgresBulk must be "unnest" or "values", current value is ${
        JSON.stringify(postgresBulk)
      }`,
    );
  }
  if (!Number.isSafeInteger(maxParameters) || maxParameters < 17) {
    // 17: the widest row (usage_events) must fit in one statement.
    throw new RangeError(
      `Cannot create the SQL store: maxParameters must be an integer of at least 17, current value is ${maxParameters}`,
    );
  }
  if (!(historyGroupMs >= 0 && historyGroupMs <= 1_000)) {
    throw new RangeError(
      `Cannot create the SQL store: historyGroupMs must be between 0 and 1000, current value is ${historyGroupMs}`,
    );
  }
  // Without a one-step runner, the statements run one by one in a Kysely transaction.
  const runTransaction = options.runTransaction ??
    ((queries: readonly CompiledQuery[]) =>
      db.transaction().execute(async (trx) => {
        const results = [];
        for (const query of queries) results.push(await trx.executeQuery(query));
        return results;
      }));
  const eventWrite = eventWriter({
    mode: dialect === "postgres" ? postgresBulk : "values",
    maxParameters,
  });
  let closed = false;

  function ensureOpen(action: string): void {
    if (closed) throw new StoreError("closed", `Cannot ${action}: the store is closed`);
  }

  // Compiled once: each activation reads a page, and building the query cost more than its trip.
  const historyPage = historyPageSql(db);

  async function readHistory(
    org: string,
    session: string,
    query: HistoryQuery,
  ): Promise<HistoryPage> {
    ensureOpen("read history");
    const { limit, before } = query;
    checkPageLimit(limit, "read history");
    const end = before === undefined ? undefined : decodeSeq(before);
    // One extra row says whether an older page exists.
    const { rows } = await db.executeQuery<HistoryRow>(
      end === undefined
        ? CompiledQuery.raw(historyPage.first, [org, session, limit + 1])
        : CompiledQuery.raw(historyPage.older, [org, session, end, limit + 1]),
    );
    const page = rows.slice(0, limit).reverse();
    const boundary = page[0]?.seq ?? end ?? Number(rows[0]?.seq ?? 0) + 1;
    return {
      entries: page.map(toEntry),
      next: rows.length > limit ? encodeCursor("h", [Number(boundary)]) : null,
    };
  }

  async function writeEvents(events: TroupeEvent[]): Promise<number> {
    ensureOpen("write events");
    if (events.length === 0) return 0;
    const write = eventWrite(db, eventRows(events));
    const results = await runTransaction(write.queries);
    let inserted = 0n;
    for (let i = 0; i < write.audit; i++) inserted += results[i]?.numAffectedRows ?? 0n;
    return Number(inserted);
  }

  async function writeDeadLetters(letters: DeadLetter[]): Promise<void> {
    ensureOpen("write dead letters");
    if (letters.length === 0) return;
    const rows = letters.map((letter) => ({
      id: crypto.randomUUID(),
      event_id: letter.id,
      data: letter.data,
      reason: letter.reason,
      ts: letter.ts,
    }));
    const size = Math.floor(maxParameters / 5);
    await db.transaction().execute(async (trx) => {
      for (let start = 0; start < rows.length; start += size) {
        await trx.insertInto("dead_letters").values(rows.slice(start, start + size)).execute();
      }
    });
  }

  const history = historyWriter(db, maxParameters, runTransaction, historyGroupMs);

  function appendHistory(org: string, session: string, entries: HistoryEntry[]): Promise<void> {
    try {
      ensureOpen("append history");
    } catch (error) {
      return Promise.reject(error);
    }
    return history.append(org, session, entries);
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    // Appends already accepted are written before the connection goes.
    await history.drain();
    await db.destroy();
  }

  const keys = apiKeyStore(db);
  // The key store's calls refuse a closed store like every other call.
  const apiKeys: ApiKeyStore = {
    async add(key) {
      ensureOpen("add an API key");
      await keys.add(key);
    },
    async list(listOptions) {
      ensureOpen("list API keys");
      return await keys.list(listOptions);
    },
    async revoke(id, at) {
      ensureOpen("revoke an API key");
      return await keys.revoke(id, at);
    },
    async active() {
      ensureOpen("read API keys");
      return await keys.active();
    },
  };

  return {
    appendHistory,
    readHistory,
    async listSessions(org, query) {
      ensureOpen("list sessions");
      return await listSessionRows(db, org, query, dialect);
    },
    async deleteSession(org, session, options) {
      ensureOpen("delete a session");
      return await deleteSessionRows(db, org, session, options);
    },
    async idleSessions(before, limit) {
      ensureOpen("find idle sessions");
      return await idleSessionRows(db, before, limit);
    },
    apiKeys,
    writeEvents,
    writeDeadLetters,
    async usageTotals(query) {
      ensureOpen("sum usage");
      return await sumUsage(db, query);
    },
    async auditTrail(query) {
      ensureOpen("read the audit trail");
      return await readAuditTrail(db, query);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

type HistoryRow = Omit<MessagesTable, "org" | "session">;

/**
 * The SQL of a history page: the newest rows of a session (parameters org,
 * session, limit), or those before a seq (org, session, seq, limit).
 */
function historyPageSql(db: Kysely<Database>): { first: string; older: string } {
  const page = (older: boolean) => {
    let select = db.selectFrom("messages")
      .select(["seq", "id", "role", "content", "ts", "answered"])
      .where("org", "=", "").where("session", "=", "");
    if (older) select = select.where("seq", "<", 0);
    return select.orderBy("seq", "desc").limit(1).compile().sql;
  };
  return { first: page(false), older: page(true) };
}

function toEntry(row: HistoryRow): HistoryEntry {
  const entry: HistoryEntry = {
    id: row.id,
    role: row.role as HistoryEntry["role"],
    content: row.content,
    ts: Number(row.ts),
  };
  if (row.answered !== null) entry.answered = JSON.parse(row.answered) as string[];
  return entry;
}

function detectDialect(db: Kysely<Database>): "sqlite" | "postgres" {
  const { sql } = db.selectFrom("messages").select("id").where("seq", "=", 0).compile();
  return sql.includes("$1") ? "postgres" : "sqlite";
}
