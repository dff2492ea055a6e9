// Group commit of history appends: every append that arrives while a group is written goes in the next one.

import { CompiledQuery, type Kysely, sql } from "kysely";
import { setImmediate } from "node:timers";
import type { HistoryEntry } from "../../actors/ports.ts";
import type { Database } from "./schema.ts";
import { shapeCache } from "./_shape_cache.ts";

/** Runs compiled statements in one transaction, in order (one message to a SQLite worker). */
export type RunTransaction = (queries: readonly CompiledQuery[]) => Promise<unknown>;

/** What a history writer does: append, and wait until what was appended is written. */
export interface HistoryWriter {
  /** Append a session's entries; resolves once they are committed. */
  append(org: string, session: string, entries: HistoryEntry[]): Promise<void>;
  /** Write what waits at once; resolves once every append so far is settled. */
  drain(): Promise<void>;
}

interface Pending {
  org: string;
  session: string;
  entries: HistoryEntry[];
  resolve(): void;
  reject(error: unknown): void;
}

/** One session's entries of a group, its appends concatenated in call order. */
interface SessionAppend {
  org: string;
  session: string;
  entries: HistoryEntry[];
}

const MESSAGE_COLUMNS = 8;
const SESSION_COLUMNS = 4;

/**
 * Group commit. An append to an idle writer waits `groupMs` for others (0:
 * only the rest of the current turn of the event loop, through
 * `setImmediate`) and is then written with every append that came meanwhile;
 * appends that arrive while a group is being written wait for it and go
 * together in the next group. Waiting costs no caller a reply (history is
 * written behind the replies) and saves a transaction per append: a lone
 * chat turn makes two appends ≈ 1 ms apart (its message, then its answer),
 * and each transaction is a message to the SQLite worker, a commit and a
 * message back. `drain()` cuts the wait short. Each group is one transaction
 * of two statements (`historyStatementMaker`) handed to `runTransaction` in
 * one step: on a SQLite file one message to its worker, so the connection is
 * never held across round trips. Appends of one session keep their order. If
 * a group fails, each of its appends is tried alone, so one bad append fails
 * only its own caller (an entry whose id its session already has is skipped,
 * not an error).
 */
export function historyWriter(
  db: Kysely<Database>,
  maxParameters: number,
  runTransaction: RunTransaction,
  groupMs = 0,
): HistoryWriter {
  let queue: Pending[] = [];
  let scheduled = false;
  let writing: Promise<void> = Promise.resolve();
  // Ends the wait of the group waiting out `groupMs`, so that `drain()` need not wait for it.
  let endWait: (() => void) | null = null;
  let draining = 0;

  function gather(): Promise<void> {
    if (groupMs <= 0 || draining > 0) return afterThisTurn();
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        endWait = null;
        resolve();
      };
      const timer = setTimeout(end, groupMs);
      endWait = end;
    });
  }
  const statements = historyStatementMaker(db, maxParameters);

  const write = (appends: SessionAppend[]) => runTransaction(statements(appends));

  async function flush(): Promise<void> {
    scheduled = false;
    const group = queue;
    queue = [];
    try {
      await write(sessionAppends(group));
      for (const pending of group) pending.resolve();
    } catch (error) {
      if (group.length === 1) return group[0]!.reject(error);
      // Nothing of the group was written: each append gets its own chance and its own error.
      for (const p of group) await write(sessionAppends([p])).then(p.resolve, p.reject);
    }
  }

  return {
    append(org, session, entries) {
      if (entries.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ org, session, entries, resolve, reject });
        if (scheduled) return;
        scheduled = true;
        writing = writing.then(gather).then(flush);
      });
    },
    async drain() {
      // A flush chained while waiting extends `writing`: wait until none is left.
      draining++;
      try {
        let seen: Promise<void> | undefined;
        while (seen !== writing) {
          seen = writing;
          endWait?.();
          await seen;
        }
      } finally {
        draining--;
      }
    },
  };
}

/** Resolves after the current turn of the event loop (its I/O callbacks included). */
function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * One entry per session, its appends concatenated in call order, an id that comes again
 * within them left out: the statement skips ids already stored, and one of two rows of
 * the same id would otherwise fail the whole group on the unique index.
 */
function sessionAppends(group: Pending[]): SessionAppend[] {
  const sessions = new Map<string, SessionAppend>();
  for (const p of group) {
    const key = `${p.org}\u0000${p.session}`;
    const known = sessions.get(key);
    if (known === undefined) {
      sessions.set(key, { org: p.org, session: p.session, entries: [...p.entries] });
    } else known.entries.push(...p.entries);
  }
  const appends = [...sessions.values()];
  for (const append of appends) append.entries = firstOfEachId(append.entries);
  return appends;
}

function firstOfEachId(entries: HistoryEntry[]): HistoryEntry[] {
  if (entries.length < 2) return entries;
  const seen = new Set<string>();
  const kept = entries.filter((entry) => !seen.has(entry.id) && seen.add(entry.id));
  return kept.length === entries.length ? entries : kept;
}

/**
 * Makes the function that gives the statements appending `appends` to
 * history, to run in one transaction: an upsert of the `sessions` rows first
 * (on PostgreSQL it locks them until commit, so two writers of one session
 * take turns), then inserts of the `messages` rows that number each row on
 * from its session's last `seq` in the statement itself (`INSERT ... SELECT`
 * over a `VALUES` list; both SQLite and PostgreSQL read the table as it was
 * before the statement). No statement needs another's result, so the whole
 * append runs in one step.
 *
 * Kysely builds each statement once per row count; later groups of that
 * size only bind new parameters (building and compiling the query tree was
 * about a tenth of the server's time under a load of new sessions).
 */
export function historyStatementMaker(
  db: Kysely<Database>,
  maxParameters: number,
): (appends: readonly SessionAppend[]) => CompiledQuery[] {
  const sqlOf = shapeCache();
  const shape = (kind: "sessions" | "messages", count: number): string =>
    sqlOf(
      `${kind}:${count}`,
      () => kind === "sessions" ? upsertSessions(db, count).sql : insertMessages(db, count),
    );
  const perUpsert = Math.max(1, Math.floor(maxParameters / SESSION_COLUMNS));
  const perInsert = Math.max(1, Math.floor(maxParameters / MESSAGE_COLUMNS));

  return (appends) => {
    const queries: CompiledQuery[] = [];
    for (let start = 0; start < appends.length; start += perUpsert) {
      const chunk = appends.slice(start, start + perUpsert);
      const parameters: unknown[] = [];
      for (const { org, session, entries } of chunk) {
        parameters.push(org, session, entries[0]!.ts, entries.at(-1)!.ts);
      }
      queries.push(CompiledQuery.raw(shape("sessions", chunk.length), parameters));
    }
    let parameters: unknown[] = [];
    // Each statement numbers a session's rows 1, 2, ... after the rows earlier statements stored.
    let offsets = new Map<string, number>();
    const insert = () => {
      const count = parameters.length / MESSAGE_COLUMNS;
      queries.push(CompiledQuery.raw(shape("messages", count), parameters));
      parameters = [];
      offsets = new Map();
    };
    for (const { org, session, entries } of appends) {
      const key = `${org}\u0000${session}`;
      for (const entry of entries) {
        const offset = (offsets.get(key) ?? 0) + 1;
        offsets.set(key, offset);
        const answered = entry.answered === undefined ? null : JSON.stringify(entry.answered);
        parameters.push(
          org,
          session,
          offset,
          entry.id,
          entry.role,
          entry.content,
          entry.ts,
          answered,
        );
        if (parameters.length === perInsert * MESSAGE_COLUMNS) insert();
      }
    }
    if (parameters.length > 0) insert();
    return queries;
  };
}

/** The sessions upsert of `count` rows; its parameters are each row's org, session, created_at, last_seen_at. */
function upsertSessions(db: Kysely<Database>, count: number): CompiledQuery {
  const row = { org: "", session: "", created_at: 0, last_seen_at: 0 };
  return db.insertInto("sessions")
    .values(Array.from({ length: count }, () => row))
    .onConflict((oc) =>
      oc.columns(["org", "session"]).doUpdateSet((eb) => ({
        last_seen_at: eb.ref("excluded.last_seen_at"),
      }))
    ).compile();
}

/**
 * The SQL of an `INSERT ... SELECT` of `count` message rows, each `seq` its
 * session's last one plus the row's offset; its parameters are each row's
 * org, session, offset, id, role, content, ts, answered. A row whose id its
 * session already has is skipped (its `seq` is left unused): a retried
 * append that was committed unseen, or a message id sent again after a
 * restart, costs no other row of the append.
 */
function insertMessages(db: Kysely<Database>, count: number): string {
  const row =
    sql`(${null}, ${null}, cast(${null} as integer), ${null}, ${null}, ${null}, cast(${null} as bigint), ${null})`;
  // A VALUES list's columns are column1, column2, ... in both SQLite and PostgreSQL.
  return sql`insert into messages (org, session, seq, id, role, content, ts, answered)
select v.column1, v.column2,
  coalesce((select max(m.seq) from messages as m where m.org = v.column1 and m.session = v.column2), 0) + v.column3,
  v.column4, v.column5, v.column6, v.column7, v.column8
from (values ${sql.join(Array.from({ length: count }, () => row))}) as v
where not exists (select 1 from messages as d where d.org = v.column1 and d.session = v.column2 and d.id = v.column4)`
    .compile(db).sql;
}
