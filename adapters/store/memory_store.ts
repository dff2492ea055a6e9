// The in-memory history store: history survives passivation for the life of the process.

import { InvalidInputError } from "../../actors/errors.ts";
import type { HistoryEntry, HistoryPage, HistoryQuery, Store } from "../../actors/ports.ts";

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

/**
 * A store that keeps each session's history in memory. Entries are copied
 * in and out, so callers cannot change what is stored.
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
  const sessions = new Map<string, HistoryEntry[]>();
  let closed = false;

  function keyOf(org: string, session: string): string {
    return `${org}\u0000${session}`;
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
    const key = keyOf(org, session);
    let history = sessions.get(key);
    if (history === undefined) sessions.set(key, history = []);
    for (const entry of entries) history.push(copy(entry));
    return Promise.resolve();
  }

  function readHistory(org: string, session: string, query: HistoryQuery): Promise<HistoryPage> {
    try {
      ensureOpen();
      const history = sessions.get(keyOf(org, session)) ?? [];
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

  function close(): Promise<void> {
    closed = true;
    sessions.clear();
    return Promise.resolve();
  }

  return { appendHistory, readHistory, close, [Symbol.asyncDispose]: close };
}

function copy(entry: HistoryEntry): HistoryEntry {
  return entry.answered === undefined ? { ...entry } : { ...entry, answered: [...entry.answered] };
}
