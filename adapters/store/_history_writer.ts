// Group commit of history appends: every append that arrives while a group is written goes in the next one.

import { type CompiledQuery, type Kysely, sql } from "kysely";
import { setImmediate } from "node:timers";
import type { HistoryEntry } from "../../actors/ports.ts";
import type { Database } from "./schema.ts";

/** Runs compiled statements in one transaction, in order (one message to a SQLite worker). */
export type RunTransaction = (queries: readonly CompiledQuery[]) => Promise<unknown>;

/** What a history writer does: append, and wait until what was appended is written. */
export interface HistoryWriter {
  /** Append a session's entries; resolves once they are committed. */
  append(org: string, session: string, entries: HistoryEntry[]): Promise<void>;
  /** Resolves once every append so far is settled. */
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
 * Group commit without a timer. An append to an idle writer is written
 * straight after the current turn of the event loop (`setImmediate`, so the
 * appends of that turn join it); appends that arrive while a group is being
 * written wait for it and then go together in the next group. Under load the
 * groups grow by themselves; a lone append waits for no clock. Each group is
 * one transaction of two statements (`historyStatements`) handed to
 * `runTransaction` in one step: on a SQLite file one message to its worker,
 * so the connection is never held across round trips. Appends of one session
 * keep their order. If a group fails, each of its appends is tried alone, so
 * one bad append (say, an id already in its session) fails only its own
 * caller.
 */
export function historyWriter(
  db: Kysely<Database>,
  maxParameters: number,
  runTransaction: RunTransaction,
): HistoryWriter {
  let queue: Pending[] = [];
  let scheduled = false;
  let writing: Promise<void> = Promise.resolve();

  const write = (appends: SessionAppend[]) =>
    runTransaction(historyStatements(db, appends, maxParameters));

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
        writing = writing.then(afterThisTurn).then(flush);
      });
    },
    async drain() {
      // A flush chained while waiting extends `writing`: wait until none is left.
      let seen: Promise<void> | undefined;
      while (seen !== writing) {
        seen = writing;
        await seen;
      }
    },
  };
}

/** Resolves after the current turn of the event loop (its I/O callbacks included). */
function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One entry per session, its appends concatenated in call order. */
function sessionAppends(group: Pending[]): SessionAppend[] {
  const sessions = new Map<string, SessionAppend>();
  for (const p of group) {
    const key = `${p.org}\u0000${p.session}`;
    const known = sessions.get(key);
    if (known === undefined) {
      sessions.set(key, { org: p.org, session: p.session, entries: [...p.entries] });
    } else known.entries.push(...p.entries);
  }
  return [...sessions.values()];
}

/**
 * The statements that append `appends` to history, to run in one
 * transaction: an upsert of the `sessions` rows first (on PostgreSQL it locks
 * them until commit, so two writers of one session take turns), then inserts
 * of the `messages` rows that number each row on from its session's last
 * `seq` in the statement itself (`INSERT ... SELECT` over a `VALUES` list;
 * both SQLite and PostgreSQL read the table as it was before the statement).
 * No statement needs another's result, so the whole append runs in one step.
 */
export function historyStatements(
  db: Kysely<Database>,
  appends: readonly SessionAppend[],
  maxParameters: number,
): CompiledQuery[] {
  const queries: CompiledQuery[] = [];
  const perUpsert = Math.max(1, Math.floor(maxParameters / SESSION_COLUMNS));
  for (let start = 0; start < appends.length; start += perUpsert) {
    const chunk = appends.slice(start, start + perUpsert);
    queries.push(
      db.insertInto("sessions")
        .values(chunk.map(({ org, session, entries }) => ({
          org,
          session,
          created_at: entries[0]!.ts,
          last_seen_at: entries.at(-1)!.ts,
        })))
        .onConflict((oc) =>
          oc.columns(["org", "session"]).doUpdateSet((eb) => ({
            last_seen_at: eb.ref("excluded.last_seen_at"),
          }))
        ).compile(),
    );
  }
  const perInsert = Math.max(1, Math.floor(maxParameters / MESSAGE_COLUMNS));
  let rows: ReturnType<typeof sql>[] = [];
  // Each statement numbers a session's rows 1, 2, ... after the rows earlier statements stored.
  let offsets = new Map<string, number>();
  const insert = () => {
    queries.push(insertMessages(rows).compile(db));
    rows = [];
    offsets = new Map();
  };
  for (const { org, session, entries } of appends) {
    const key = `${org}\u0000${session}`;
    for (const entry of entries) {
      const offset = (offsets.get(key) ?? 0) + 1;
      offsets.set(key, offset);
      const answered = entry.answered === undefined ? null : JSON.stringify(entry.answered);
      rows.push(
        sql`(${org}, ${session}, cast(${offset} as integer), ${entry.id}, ${entry.role}, ${entry.content}, cast(${entry.ts} as bigint), ${answered})`,
      );
      if (rows.length === perInsert) insert();
    }
  }
  if (rows.length > 0) insert();
  return queries;
}

/** `INSERT ... SELECT` of message rows, each `seq` its session's last one plus the row's offset. */
function insertMessages(rows: ReturnType<typeof sql>[]) {
  // A VALUES list's columns are column1, column2, ... in both SQLite and PostgreSQL.
  return sql`insert into messages (org, session, seq, id, role, content, ts, answered)
select v.column1, v.column2,
  coalesce((select max(m.seq) from messages as m where m.org = v.column1 and m.session = v.column2), 0) + v.column3,
  v.column4, v.column5, v.column6, v.column7, v.column8
from (values ${sql.join(rows)}) as v`;
}
