// Group commit of history appends: every session's appends of one event-loop turn in one transaction.

import type { Kysely } from "kysely";
import type { HistoryEntry } from "../../actors/ports.ts";
import type { Database, MessagesTable } from "./schema.ts";

/** Writes the appends of one session in its own transaction (the one-by-one path). */
export type AppendOne = (org: string, session: string, entries: HistoryEntry[]) => Promise<void>;

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

const MESSAGE_COLUMNS = 8;

/**
 * Group commit. Appends made during one turn of the event loop are written
 * together on the next (a `setTimeout(0)`): one transaction, one upsert of
 * the `sessions` rows, one read of each session's last `seq`, one multi-row
 * insert. A commit costs far more than a row (on SQLite it blocks the loop),
 * so a server with many sessions writes many times less. Appends of one
 * session keep their order. If the group fails, each of its appends is tried
 * alone, so one bad append (say, an id already in its session) fails only
 * its own caller.
 */
export function historyWriter(
  db: Kysely<Database>,
  maxParameters: number,
  appendOne: AppendOne,
): HistoryWriter {
  let queue: Pending[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let writing: Promise<void> = Promise.resolve();

  function flush(): void {
    timer = null;
    const group = queue;
    queue = [];
    writing = writing.then(() => writeGroup(group));
  }

  async function writeGroup(group: Pending[]): Promise<void> {
    if (group.length === 1) {
      const [one] = group as [Pending];
      await appendOne(one.org, one.session, one.entries).then(one.resolve, one.reject);
      return;
    }
    try {
      await db.transaction().execute((trx) => insertGroup(trx, group, maxParameters));
      for (const pending of group) pending.resolve();
    } catch {
      // Nothing of the group was written: each append gets its own chance and its own error.
      for (const p of group) await appendOne(p.org, p.session, p.entries).then(p.resolve, p.reject);
    }
  }

  return {
    append(org, session, entries) {
      if (entries.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ org, session, entries, resolve, reject });
        timer ??= setTimeout(flush, 0);
      });
    },
    async drain() {
      if (timer !== null) {
        clearTimeout(timer);
        flush();
      }
      await writing;
    },
  };
}

async function insertGroup(
  trx: Kysely<Database>,
  group: Pending[],
  maxParameters: number,
): Promise<void> {
  // One entry per session, its appends concatenated in call order.
  const sessions = new Map<string, { org: string; session: string; entries: HistoryEntry[] }>();
  for (const p of group) {
    const key = `${p.org}\u0000${p.session}`;
    const known = sessions.get(key);
    if (known === undefined) {
      sessions.set(key, { org: p.org, session: p.session, entries: [...p.entries] });
    } else known.entries.push(...p.entries);
  }
  const all = [...sessions.values()];
  const perStatement = Math.max(1, Math.floor(maxParameters / 4));
  for (let start = 0; start < all.length; start += perStatement) {
    const chunk = all.slice(start, start + perStatement);
    // The upsert comes first: on PostgreSQL it locks the session rows until commit.
    await trx.insertInto("sessions")
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
      ).execute();
  }
  const tops = new Map<string, number>();
  for (let start = 0; start < all.length; start += perStatement) {
    const chunk = all.slice(start, start + perStatement);
    const rows = await trx.selectFrom("messages")
      .select(["org", "session", (eb) => eb.fn.max("seq").as("top")])
      .where((eb) =>
        eb.or(
          chunk.map(({ org, session }) =>
            eb.and([eb("org", "=", org), eb("session", "=", session)])
          ),
        )
      )
      .groupBy(["org", "session"])
      .execute();
    for (const row of rows) tops.set(`${row.org}\u0000${row.session}`, Number(row.top ?? 0));
  }
  const rows: MessagesTable[] = [];
  for (const { org, session, entries } of all) {
    rows.push(...messageRows(org, session, tops.get(`${org}\u0000${session}`) ?? 0, entries));
  }
  const size = Math.floor(maxParameters / MESSAGE_COLUMNS);
  for (let start = 0; start < rows.length; start += size) {
    await trx.insertInto("messages").values(rows.slice(start, start + size)).execute();
  }
}

/** A session's entries as `messages` rows, numbered on from `base` (the last stored `seq`). */
export function messageRows(
  org: string,
  session: string,
  base: number,
  entries: HistoryEntry[],
): MessagesTable[] {
  return entries.map((entry, i) => ({
    org,
    session,
    seq: base + i + 1,
    id: entry.id,
    role: entry.role,
    content: entry.content,
    ts: entry.ts,
    answered: entry.answered === undefined ? null : JSON.stringify(entry.answered),
  }));
}
