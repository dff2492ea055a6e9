// The in-memory history store: history survives passivation for the life of the process.

import { InvalidInputError } from "../../actors/errors.ts";
import type {
  DeleteSessionOptions,
  HistoryEntry,
  HistoryPage,
  HistoryQuery,
  SessionKey,
  SessionListQuery,
  SessionPage,
  Store,
} from "../../actors/ports.ts";
import { decodeSessionCursor, sessionCursor } from "./_session_cursor.ts";

/** Encode a position in a session's history as an opaque cursor. */
function cursorOf(position: number): string {
  return btoa(`h:${position}`);
}

function positionOf(cursor: string): number {
  let decoded = "";
  try {
    decoded = atob(cursor);
  } catch {
    // Falls through to the error below.
  }
  const match = /^h:(\d+)$/.exec(decoded);
  if (match === null) {
    throw new InvalidInputError("before", `Cannot read history: cursor "${cursor}" is not valid`);
  }
  return Number(match[1]);
}

/** One stored session of the memory store. */
interface StoredSession {
  history: HistoryEntry[];
  createdAt: number;
  lastSeenAt: number;
}

/**
 * A store that keeps each session's history in memory. Entries are copied
 * in and out, so callers cannot change what is stored. Sessions are listed
 * in code-point order of id, like the SQL store's.
 *
 * @example
 * ```ts
 * import { memoryStore } from "./memory_store.ts";
 *
 * await using store = memoryStore();
 * await store.appendHistory("o", "s", [{ id: "m1", role: "user", content: "hi", ts: 0 }]);
 * const page = await store.readHistory("o", "s", { limit: 10 });
 * console.assert(page.entries.length === 1 && page.next === null);
 * ```
 */
export function memoryStore(): Store & AsyncDisposable {
  // Per org, then per session, so an org's sessions are listed without scanning the others'.
  const orgs = new Map<string, Map<string, StoredSession>>();
  let closed = false;

  function find(org: string, session: string): StoredSession | undefined {
    return orgs.get(org)?.get(session);
  }

  function ensureOpen(): void {
    if (closed) throw new Error("Cannot use the memory store: it is closed");
  }

  function appendHistory(org: string, session: string, entries: HistoryEntry[]): Promise<void> {
    try {
      ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (entries.length === 0) return Promise.resolve();
    let sessions = orgs.get(org);
    if (sessions === undefined) orgs.set(org, sessions = new Map());
    let stored = sessions.get(session);
    if (stored === undefined) {
      stored = { history: [], createdAt: entries[0]!.ts, lastSeenAt: entries[0]!.ts };
      sessions.set(session, stored);
    }
    for (const entry of entries) stored.history.push(copy(entry));
    stored.lastSeenAt = entries.at(-1)!.ts;
    return Promise.resolve();
  }

  function readHistory(org: string, session: string, query: HistoryQuery): Promise<HistoryPage> {
    try {
      ensureOpen();
      const history = find(org, session)?.history ?? [];
      const end = query.before === undefined
        ? history.length
        : Math.min(positionOf(query.before), history.length);
      const start = Math.max(0, end - query.limit);
      return Promise.resolve({
        entries: history.slice(start, end).map(copy),
        next: start > 0 ? cursorOf(start) : null,
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function listSessions(org: string, query: SessionListQuery): Promise<SessionPage> {
    try {
      ensureOpen();
      const start = query.after === undefined ? undefined : decodeSessionCursor(query.after);
      // Sorting on every call is fine for a store that lives in one process's memory.
      const ids = [...(orgs.get(org)?.keys() ?? [])]
        .filter((id) => start === undefined || id > start)
        .sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
      const page = ids.slice(0, query.limit);
      const last = page.at(-1);
      return Promise.resolve({
        sessions: page.map((session) => {
          const { createdAt, lastSeenAt } = find(org, session)!;
          return { session, createdAt, lastSeenAt };
        }),
        next: ids.length > query.limit && last !== undefined ? sessionCursor(last) : null,
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function deleteSession(
    org: string,
    session: string,
    options: DeleteSessionOptions = {},
  ): Promise<boolean> {
    try {
      ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const { idleBefore } = options;
    if (idleBefore !== undefined) {
      const lastSeenAt = find(org, session)?.lastSeenAt;
      if (lastSeenAt === undefined || lastSeenAt >= idleBefore) return Promise.resolve(false);
    }
    const sessions = orgs.get(org);
    const existed = sessions?.delete(session) ?? false;
    if (sessions?.size === 0) orgs.delete(org);
    return Promise.resolve(existed);
  }

  function idleSessions(before: number, limit: number): Promise<SessionKey[]> {
    try {
      ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    // A scan: fine for a store that lives in one process's memory.
    const idle: Array<SessionKey & { lastSeenAt: number }> = [];
    for (const [org, sessions] of orgs) {
      for (const [session, { lastSeenAt }] of sessions) {
        if (lastSeenAt < before) idle.push({ org, session, lastSeenAt });
      }
    }
    idle.sort((a, b) => a.lastSeenAt - b.lastSeenAt);
    return Promise.resolve(idle.slice(0, limit).map(({ org, session }) => ({ org, session })));
  }

  function close(): Promise<void> {
    closed = true;
    orgs.clear();
    return Promise.resolve();
  }

  return {
    appendHistory,
    readHistory,
    listSessions,
    deleteSession,
    idleSessions,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function copy(entry: HistoryEntry): HistoryEntry {
  return entry.answered === undefined ? { ...entry } : { ...entry, answered: [...entry.answered] };
}
