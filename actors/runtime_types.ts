// The module API's types: runtime options, what the runtime accepts and returns.

import type { Policy, TroupeEvent } from "./events.ts";
import type {
  AuditTrailPage,
  Clock,
  EventBus,
  HistoryEntry,
  LlmProvider,
  SessionPage,
  Store,
  UsageTotals,
} from "./ports.ts";
import type { Reply, SendInput, StreamEvent } from "./reply.ts";

/** Settings one session may override. */
export interface SessionSettings {
  /** The session's default policy. */
  policy?: Policy;
  /** The session's debounce window. */
  debounceMs?: number;
}

/** Options of `createRuntime`. The runtime owns the adapters it is given and closes them. */
export interface RuntimeOptions {
  /**
   * The LLM provider. Without one, the `TROUPE_LLM_*` variables pick it (when
   * `--allow-env` lets them be read): `TROUPE_LLM_BASE_URL` and
   * `TROUPE_LLM_MODEL` make an OpenAI-compatible upstream called from a worker
   * pool with retries; unset, the embedded `mockLlm()`.
   * @default {the TROUPE_LLM_* configuration, else mockLlm()}
   */
  llm?: LlmProvider;
  /**
   * Where events go: a bus, or a `nats://` URL (JetStream, opened in the background).
   * @default {memoryBus()}
   */
  bus?: EventBus | string;
  /**
   * Where history (and, when the store can take them, events) live: a store,
   * or a file path (SQLite) or `postgres://` URL, opened in the background
   * with its migrations run.
   * @default {memoryStore()}
   */
  store?: Store | string;
  /**
   * Persist events (a persister actor moves them from the bus to the store in
   * batches) when the store can take events and the bus has consumer groups.
   * @default {true}
   */
  persist?: boolean;
  /**
   * Deliver a reply only once it cannot be lost: the events published before
   * it (its run's usage record among them) are stored, or acknowledged by
   * JetStream when the bus is NATS, and its history is written. A crash
   * (`kill -9`, out of memory) then never loses the usage of a reply its
   * caller has. It costs a write per reply: the persister writes as soon as
   * an event arrives (replies that wait together share a transaction) and
   * history appends are waited for. Deltas still stream as they arrive.
   * @default {false}
   */
  durableReplies?: boolean;
  /**
   * Delete a session's history and state once it has been idle this long, in
   * ms (its usage and audit records are kept): a sweep every tenth of it
   * (between 1 s and 10 min) deletes the sessions whose newest history entry
   * is older, never one that is live or was used since it was found idle,
   * and emits `session.deleted` (reason `retention`) for each. A gateway whose
   * clients send no session id gets a one-shot session per call; this bounds
   * what they leave behind. `0` keeps sessions forever.
   * Needs a store with `idleSessions` and `deleteSession` (every store Troupe
   * ships has them).
   * @default {0}
   */
  sessionRetentionMs?: number;
  /**
   * What happens to a message that arrives while a run is in flight.
   * @default {"merge"}
   */
  policy?: Policy;
  /**
   * Per-session settings, looked up when a session is activated.
   * @default {no overrides}
   */
  sessionSettings?: (ref: { org: string; session: string }) => SessionSettings | undefined;
  /**
   * Wait this long after a message before starting its run, so a burst becomes one call.
   * @default {0}
   */
  debounceMs?: number;
  /**
   * Joins the messages of a merged run into one user turn.
   * @default {"\n---\n"}
   */
  join?: string;
  /**
   * A system prompt put before every conversation.
   * @default {""}
   */
  system?: string;
  /**
   * Passivate a session after this long without work.
   * @default {300000}
   */
  idleTimeoutMs?: number;
  /**
   * At most this many sessions are live at once; the least recently used idle one makes room.
   * @default {10000}
   */
  maxActiveSessions?: number;
  /**
   * How many history entries a live session keeps for building prompts.
   * @default {50}
   */
  historyLimit?: number;
  /**
   * Longest accepted message, in characters.
   * @default {100000}
   */
  maxContentLength?: number;
  /**
   * How many recent message ids are remembered for idempotent sends. After a
   * restart, an id in the history a session starts from is answered from that
   * history instead (see `SendInput.id`).
   * @default {100000}
   */
  dedupeWindow?: number;
  /**
   * How many history entries may wait to be stored, across sessions, before new
   * messages are refused with an `OverloadedError` (503 on the server). Entries
   * wait while the store is unreachable (each session retries its append for up
   * to a minute), so this bounds the memory they hold and tells clients to back off.
   * @default {50000}
   */
  maxHistoryBacklog?: number;
  /**
   * Time and timers (inject one in tests).
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Called with failures that have no caller to go to: a history write that failed
   * (with its session), or a bus that could not flush or close at shutdown (no session).
   * @default {writes a JSON line to stderr}
   */
  onError?: (error: unknown, context?: { org: string; session: string }) => void;
}

/** Which session to read or act on. */
export interface SessionRef {
  /** The org; `"default"` when absent. */
  org?: string;
  /** The session. */
  session: string;
}

/** A page of a session's history. */
export interface HistoryInput extends SessionRef {
  /**
   * At most this many entries (1–1000).
   * @default {50}
   */
  limit?: number;
  /** Entries before this cursor (a previous page's `next`). */
  before?: string;
}

/** A page of a session's history, oldest first. */
export interface HistoryResult {
  /** User messages as sent and assistant answers, oldest first. */
  messages: HistoryEntry[];
  /** Cursor for the previous page, or `null`. */
  next: string | null;
}

/** Which page of an org's sessions to list. */
export interface SessionListInput {
  /** The org; `"default"` when absent. */
  org?: string;
  /**
   * At most this many sessions (1–1000).
   * @default {50}
   */
  limit?: number;
  /** Sessions after this cursor (a previous page's `next`). */
  after?: string;
}

/** Which usage to total. */
export interface UsageInput {
  /** The org; `"default"` when absent. */
  org?: string;
  /** Only calls at or after this time, in ms since the epoch. */
  from?: number;
  /** Only calls before this time, in ms since the epoch. */
  to?: number;
  /**
   * One row per session, per model, or one in all.
   * @default {"none"}
   */
  groupBy?: "session" | "model" | "none";
}

/** Which page of a session's audit trail to read. */
export interface AuditInput extends SessionRef {
  /**
   * At most this many events (1–1000).
   * @default {100}
   */
  limit?: number;
  /** Events before this cursor (a previous page's `next`). */
  before?: string;
}

/** Options of {@linkcode Runtime.shutdown}. */
export interface ShutdownOptions {
  /**
   * Let runs in flight finish for this long, then abort them.
   * @default {10000}
   */
  graceMs?: number;
}

/** A running Troupe: send messages to sessions, read their history, stop them. */
export interface Runtime extends AsyncDisposable {
  /** Send a message; resolves with its outcome (never rejects for a run's failure). */
  send(input: SendInput): Promise<Reply>;
  /** Send a message and receive the answer's text as it is generated, then the reply. */
  stream(input: SendInput): AsyncIterableIterator<StreamEvent>;
  /** Read a session's history, newest page first (entries within a page oldest first). */
  history(input: HistoryInput): Promise<HistoryResult>;
  /** Stop the run in flight and drop queued messages; resolves with how many callers were told `cancelled`. */
  cancel(input: SessionRef): Promise<number>;
  /** An org's sessions that have history, by id, a page at a time (needs a store that lists them). */
  sessions(input?: SessionListInput): Promise<SessionPage>;
  /**
   * Delete a session: cancel its run and queue (callers get `cancelled`), stop its
   * actor, and delete its history and state (usage and audit records stay), then
   * emit `session.deleted`. Resolves with whether there was anything to delete
   * (nothing is emitted when there was not); deleting again is harmless.
   */
  deleteSession(input: SessionRef): Promise<boolean>;
  /** Resolve once the store and bus given as URLs are open; reject with why one is not. */
  ready(): Promise<void>;
  /**
   * Token totals of an org's LLM calls (needs a store with event queries, e.g. SQL).
   * Every call whose usage was recorded before this one is counted: it waits until
   * those events are stored, and not for later ones, so it answers under load too.
   * If they cannot be stored within 15 s (the bus or the store is down), it rejects
   * with an `OverloadedError` (retry shortly) rather than hang.
   */
  usage(input: UsageInput): Promise<UsageTotals[]>;
  /**
   * A session's events as persisted, oldest first, with a cursor (needs a SQL store).
   * Like `usage`, it first waits for the events emitted before it to be stored.
   */
  audit(input: AuditInput): Promise<AuditTrailPage>;
  /** Receive every event the runtime emits. */
  subscribe(handler: (event: TroupeEvent) => void): () => void;
  /** Stop accepting, let runs finish within `graceMs`, abort the rest, flush and close. */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** Same as `shutdown()`. */
  close(): Promise<void>;
  /** How many sessions are live. */
  readonly activeSessions: number;
  /** Events the runtime's persisters hold and have not stored yet (0 without persisters). */
  readonly unpersistedEvents: number;
  /** History entries handed to the store and not stored yet (see `maxHistoryBacklog`). */
  readonly unstoredHistory: number;
}
