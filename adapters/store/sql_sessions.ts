// Session-level queries of the SQL store: list an org's sessions by id, find idle ones, delete one.

import { type Kysely, sql } from "kysely";
import type {
  DeleteSessionOptions,
  SessionKey,
  SessionListQuery,
  SessionPage,
} from "../../actors/ports.ts";
import { checkPageLimit } from "./_cursor.ts";
import { decodeSessionCursor, sessionCursor } from "./_session_cursor.ts";
import type { Database } from "./schema.ts";

export type { SessionListQuery, SessionPage };

/**
 * Lists an org's sessions that have history, in ascending code-point order of
 * id (PostgreSQL compares with the `C` collation so that the order, and so
 * the cursor, is the same whatever the database's locale), at most `limit` of
 * them after the cursor. A cursor this function did not make throws an
 * `InvalidInputError` naming `after`.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { listSessions } from "./sql_sessions.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await new Migrator({ db, provider: migrations }).migrateToLatest();
 * const page = await listSessions(db, "acme", { limit: 10 });
 * console.assert(page.sessions.length === 0 && page.next === null);
 * await db.destroy();
 * ```
 */
export async function listSessions(
  db: Kysely<Database>,
  org: string,
  query: SessionListQuery,
  dialect: "sqlite" | "postgres" = "sqlite",
): Promise<SessionPage> {
  const { limit, after } = query;
  checkPageLimit(limit, "list sessions");
  const start = after === undefined ? undefined : decodeSessionCursor(after);
  const key = dialect === "postgres" ? sql<string>`session collate "C"` : sql<string>`session`;
  let select = db.selectFrom("sessions")
    .select(["session", "created_at", "last_seen_at"])
    .where("org", "=", org);
  if (start !== undefined) select = select.where(key, ">", start);
  // One extra row says whether a later page exists.
  const rows = await select.orderBy(key).limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    sessions: page.map((row) => ({
      session: row.session,
      createdAt: Number(row.created_at),
      lastSeenAt: Number(row.last_seen_at),
    })),
    next: rows.length > limit && last !== undefined ? sessionCursor(last.session) : null,
  };
}

/**
 * Deletes a session's history and state (its `messages`, `runs` and
 * `sessions` rows) in one transaction; usage and audit records are kept, so
 * an org's usage totals do not change. Resolves with whether the session had
 * any of those rows; deleting again does nothing and resolves `false`.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { deleteSession } from "./sql_sessions.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await new Migrator({ db, provider: migrations }).migrateToLatest();
 * console.assert(await deleteSession(db, "acme", "s1") === false);
 * await db.destroy();
 * ```
 */
export async function deleteSession(
  db: Kysely<Database>,
  org: string,
  session: string,
  options: DeleteSessionOptions = {},
): Promise<boolean> {
  const { idleBefore } = options;
  return await db.transaction().execute(async (trx) => {
    if (idleBefore !== undefined) {
      // Used since it was found idle (or gone): keep it. The check and the deletes are
      // one transaction, so an append committed after the check waits for them.
      const row = await trx.selectFrom("sessions").select("last_seen_at")
        .where("org", "=", org).where("session", "=", session).executeTakeFirst();
      if (row === undefined || Number(row.last_seen_at) >= idleBefore) return false;
    }
    let deleted = 0n;
    for (const table of ["messages", "runs", "sessions"] as const) {
      let remove = trx.deleteFrom(table).where("org", "=", org).where("session", "=", session);
      if (table === "runs") {
        // Runs are found through the session's audit events (each run row is written with its
        // run.* events, which audit_events keeps under the same org and session), so that the
        // runs table needs no (org, session) index: one less index to update per event written.
        remove = remove.where(
          "id",
          "in",
          (eb) =>
            eb.selectFrom("audit_events").select("run").where("org", "=", org)
              .where("session", "=", session).where("run", "is not", null).$narrowType<
              { run: string }
            >(),
        );
      }
      deleted += (await remove.executeTakeFirst()).numDeletedRows;
    }
    return deleted > 0n;
  });
}

/**
 * The sessions whose newest history entry is older than `before` (ms since
 * the epoch), idle the longest first, at most `limit`, across every org,
 * found through the `sessions (last_seen_at)` index (migration 0004).
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { idleSessions } from "./sql_sessions.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await new Migrator({ db, provider: migrations }).migrateToLatest();
 * console.assert((await idleSessions(db, Date.now(), 100)).length === 0);
 * await db.destroy();
 * ```
 */
export async function idleSessions(
  db: Kysely<Database>,
  before: number,
  limit: number,
): Promise<SessionKey[]> {
  checkPageLimit(limit, "find idle sessions");
  const rows = await db.selectFrom("sessions").select(["org", "session"])
    .where("last_seen_at", "<", before).orderBy("last_seen_at").limit(limit).execute();
  return rows.map((row) => ({ org: row.org, session: row.session }));
}
