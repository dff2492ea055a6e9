// The session directory: activates session actors on demand, passivates idle ones, bounds how many live.

import { OverloadedError } from "./errors.ts";

/** What the directory needs of a live session. */
export interface DirectoryEntry {
  /**
   * When the session was last used, in ms since the epoch. Written by the
   * directory only (on activation and on `get`), so that recency order and
   * time order are the same thing and `sweep` can stop at the first recent entry.
   */
  lastActive: number;
  /** True when nothing is queued or in flight. */
  isIdle(): boolean;
  /** Stop the actor; resolves once its writes are flushed. */
  stop(reason: PassivationReason): Promise<void>;
}

/** Why a session was passivated. */
export type PassivationReason = "idle" | "evicted" | "shutdown" | "deleted";

/** Options of {@linkcode sessionDirectory}. */
export interface SessionDirectoryOptions<H extends DirectoryEntry> {
  /**
   * Bring a session to life; `ready` resolves when its previous incarnation
   * finished writing. `isNew` is what the first caller of `acquire` said.
   */
  activate(key: string, ready: Promise<void>, isNew: boolean): Promise<H>;
  /** At most this many sessions are live or activating. */
  maxActiveSessions: number;
  /** Passivate a session idle for this long. */
  idleTimeoutMs: number;
  /** The `Retry-After` hint of the overload error. */
  retryAfterMs: number;
  /** The time, in ms since the epoch. */
  now(): number;
}

/** The live sessions of a runtime. */
export interface SessionDirectory<H extends DirectoryEntry> {
  /** The live session for `key`, marked as used now; `undefined` if not live. */
  get(key: string): H | undefined;
  /** The live session for `key` without touching the recency order. */
  peek(key: string): H | undefined;
  /**
   * The live session for `key`, activating it once however many callers ask
   * at the same time. `isNew` (default false) says that the caller made the
   * key up just now, so nothing can be stored under it yet.
   */
  acquire(key: string, isNew?: boolean): Promise<H>;
  /** The activation in progress for `key`, if any. */
  activating(key: string): Promise<H> | undefined;
  /** Resolves once the last incarnation of `key` finished its writes. */
  settled(key: string): Promise<void>;
  /** Passivate idle sessions unused since before `at - idleTimeoutMs`; returns how many. */
  sweep(at: number): number;
  /** Passivate every live session. */
  passivateAll(reason: PassivationReason): Promise<void>;
  /**
   * Passivate the session for `key` now, whatever it is doing (the caller has
   * cancelled its work first), then run `afterwards` (e.g. delete its stored
   * state). Resolves once both are done; until then `settled(key)` waits for
   * them, so a new activation of `key` starts after them.
   */
  remove(key: string, reason: PassivationReason, afterwards?: () => Promise<void>): Promise<void>;
  /** Live sessions, least recently used first. */
  entries(): IterableIterator<[string, H]>;
  /** How many sessions are live. */
  readonly size: number;
}

/**
 * Make a session directory. Sessions live in a `Map` kept in recency order
 * (a use moves the session to the end), so the least recently used idle
 * session is the first idle one from the start. A session with work queued
 * or in flight is never passivated; when every slot holds one, `acquire`
 * fails at once with an {@linkcode OverloadedError} instead of growing.
 *
 * @example
 * ```ts
 * import { sessionDirectory } from "./session_directory.ts";
 *
 * const directory = sessionDirectory({
 *   maxActiveSessions: 2,
 *   idleTimeoutMs: 1000,
 *   retryAfterMs: 100,
 *   now: () => 0,
 *   activate: () => Promise.resolve({ lastActive: 0, isIdle: () => true, stop: () => Promise.resolve() }),
 * });
 * await directory.acquire("a");
 * const live = directory.size;
 * const passivated = directory.sweep(5000);
 * console.assert(live === 1 && passivated === 1 && directory.size === 0);
 * ```
 */
export function sessionDirectory<H extends DirectoryEntry>(
  options: SessionDirectoryOptions<H>,
): SessionDirectory<H> {
  const { activate, maxActiveSessions, idleTimeoutMs, retryAfterMs, now } = options;
  const live = new Map<string, H>();
  const starting = new Map<string, Promise<H>>();
  const stopping = new Map<string, Promise<void>>();

  function passivate(key: string, entry: H, reason: PassivationReason): Promise<void> {
    live.delete(key);
    const done = entry.stop(reason).finally(() => {
      if (stopping.get(key) === done) stopping.delete(key);
    });
    stopping.set(key, done);
    return done;
  }

  function makeRoom(): void {
    if (live.size + starting.size < maxActiveSessions) return;
    for (const [key, entry] of live) {
      if (entry.isIdle()) {
        void passivate(key, entry, "evicted");
        return;
      }
    }
    throw new OverloadedError(
      `Cannot activate a session: all ${maxActiveSessions} session slots hold work in flight`,
      retryAfterMs,
    );
  }

  function get(key: string): H | undefined {
    const entry = live.get(key);
    if (entry !== undefined) {
      entry.lastActive = now();
      live.delete(key);
      live.set(key, entry);
    }
    return entry;
  }

  function acquire(key: string, isNew = false): Promise<H> {
    const entry = get(key);
    if (entry !== undefined) return Promise.resolve(entry);
    const pending = starting.get(key);
    if (pending !== undefined) return pending;
    try {
      makeRoom();
    } catch (error) {
      return Promise.reject(error);
    }
    const activation = activate(key, settled(key), isNew).then(
      (entry) => {
        starting.delete(key);
        entry.lastActive = now();
        live.set(key, entry);
        return entry;
      },
      (error) => {
        starting.delete(key);
        throw error;
      },
    );
    starting.set(key, activation);
    return activation;
  }

  function settled(key: string): Promise<void> {
    return stopping.get(key) ?? Promise.resolve();
  }

  function sweep(at: number): number {
    let count = 0;
    for (const [key, entry] of live) {
      if (at - entry.lastActive < idleTimeoutMs) break;
      if (entry.isIdle()) {
        void passivate(key, entry, "idle");
        count++;
      }
    }
    return count;
  }

  async function passivateAll(reason: PassivationReason): Promise<void> {
    await Promise.allSettled(starting.values());
    const done = [...live].map(([key, entry]) => passivate(key, entry, reason));
    await Promise.all([...done, ...stopping.values()]);
  }

  return {
    get,
    peek: (key) => live.get(key),
    acquire,
    activating: (key) => starting.get(key),
    settled,
    sweep,
    passivateAll,
    remove(key, reason, afterwards = () => Promise.resolve()) {
      const entry = live.get(key);
      live.delete(key);
      const done = (entry === undefined ? settled(key) : entry.stop(reason)).then(afterwards);
      // Whoever waits on `settled` waits for the removal, not for its outcome.
      const waited = done.catch(() => {}).finally(() => {
        if (stopping.get(key) === waited) stopping.delete(key);
      });
      stopping.set(key, waited);
      return done;
    },
    entries: () => live.entries(),
    get size() {
      return live.size;
    },
  };
}
