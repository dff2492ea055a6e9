// The SQL store's tables as Kysely types: every query in the store is checked against them.

/**
 * A session that has history: one row per (org, session).
 *
 * @example
 * ```ts
 * import type { SessionsTable } from "./schema.ts";
 *
 * const row: SessionsTable = { org: "o", session: "s", created_at: 0, last_seen_at: 5 };
 * ```
 */
export interface SessionsTable {
  /** The org. */
  org: string;
  /** The session id, unique within the org. */
  session: string;
  /** The `ts` of the first entry appended, in ms since the epoch. */
  created_at: number;
  /** The newest `ts` of any entry appended, in ms since the epoch. */
  last_seen_at: number;
}

/**
 * One history entry of a session; `seq` orders the session's entries from 1.
 *
 * @example
 * ```ts
 * import type { MessagesTable } from "./schema.ts";
 *
 * const row: MessagesTable = {
 *   org: "o",
 *   session: "s",
 *   seq: 2,
 *   id: "r1",
 *   role: "assistant",
 *   content: "hello",
 *   ts: 1,
 *   answered: '["m1"]',
 * };
 * ```
 */
export interface MessagesTable {
  /** The org. */
  org: string;
  /** The session. */
  session: string;
  /** Position in the session's history, 1 for the first entry. */
  seq: number;
  /** The message id (user turns) or the run id (assistant turns); unique per session. */
  id: string;
  /** `user` or `assistant`. */
  role: string;
  /** The text. */
  content: string;
  /** When it was received or produced, in ms since the epoch. */
  ts: number;
  /** On assistant turns, the answered message ids as a JSON array; otherwise `null`. */
  answered: string | null;
}

/**
 * A run's latest known state, folded from its `run.*` events.
 *
 * @example
 * ```ts
 * import type { RunsTable } from "./schema.ts";
 *
 * const row: RunsTable = {
 *   id: "r1",
 *   org: "o",
 *   session: "s",
 *   status: "completed",
 *   messages: '["m1"]',
 *   started_at: 1,
 *   ended_at: 9,
 * };
 * ```
 */
export interface RunsTable {
  /** The run id. */
  id: string;
  /** The org. */
  org: string;
  /** The session. */
  session: string;
  /** `started`, or how it ended: `completed`, `failed`, `cancelled` or `superseded`. */
  status: string;
  /** The ids of the messages the run answers, as a JSON array. */
  messages: string;
  /** When it started, or `null` if no `run.started` was stored (a run superseded while waiting). */
  started_at: number | null;
  /** When it ended, or `null` while it runs. */
  ended_at: number | null;
}

/**
 * One LLM call's usage: a `usage.recorded` event in columns, for totals.
 *
 * @example
 * ```ts
 * import type { UsageEventsTable } from "./schema.ts";
 *
 * const row: UsageEventsTable = {
 *   id: "e1", org: "o", session: "s", run: "r1", provider: "mock", model: "m",
 *   input_tokens: 10, output_tokens: 5, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 15,
 *   source: "reported", status: "completed", latency_ms: 120, ttft_ms: 40, messages: '["m1"]', ts: 1,
 * };
 * ```
 */
export interface UsageEventsTable {
  /** The event id. */
  id: string;
  /** The org. */
  org: string;
  /** The session. */
  session: string;
  /** The run. */
  run: string;
  /** The provider name. */
  provider: string;
  /** The model. */
  model: string;
  /** Prompt tokens. */
  input_tokens: number;
  /** Generated tokens. */
  output_tokens: number;
  /** Prompt tokens served from a cache. */
  cached_tokens: number;
  /** Generated tokens spent on reasoning. */
  reasoning_tokens: number;
  /** Input plus output. */
  total_tokens: number;
  /** `reported` or `estimated`. */
  source: string;
  /** `completed`, `cancelled` or `failed`. */
  status: string;
  /** Wall time of the call, in ms. */
  latency_ms: number;
  /** Time to the first generated text in ms, or `null` if none came. */
  ttft_ms: number | null;
  /** The answered message ids, as a JSON array. */
  messages: string;
  /** When it happened, in ms since the epoch. */
  ts: number;
}

/**
 * Every event of every type, as written: the audit trail.
 *
 * @example
 * ```ts
 * import type { AuditEventsTable } from "./schema.ts";
 *
 * const row: AuditEventsTable = {
 *   id: "e1", type: "session.activated", org: "o", session: "s", run: null, ts: 1,
 *   body: '{"id":"e1","type":"session.activated","ts":1,"org":"o","session":"s","historyLength":0}',
 * };
 * ```
 */
export interface AuditEventsTable {
  /** The event id. */
  id: string;
  /** The event type, e.g. `run.completed`. */
  type: string;
  /** The org. */
  org: string;
  /** The session. */
  session: string;
  /** The run, for events that have one. */
  run: string | null;
  /** When it happened, in ms since the epoch. */
  ts: number;
  /** The whole event as JSON. */
  body: string;
}

/**
 * An event that failed validation, kept with the reason.
 *
 * @example
 * ```ts
 * import type { DeadLettersTable } from "./schema.ts";
 *
 * const row: DeadLettersTable = {
 *   id: crypto.randomUUID(), event_id: null, data: "{}", reason: "no id", ts: 1,
 * };
 * ```
 */
export interface DeadLettersTable {
  /** A random UUID given when it is stored. */
  id: string;
  /** The event's id, when it had a usable one. */
  event_id: string | null;
  /** The data as received, as JSON. */
  data: string;
  /** Why it was refused. */
  reason: string;
  /** When it was refused, in ms since the epoch. */
  ts: number;
}

/**
 * An API key of an org, stored as a hash only.
 *
 * @example
 * ```ts
 * import type { ApiKeysTable } from "./schema.ts";
 *
 * const row: ApiKeysTable = {
 *   id: "k1", org: "o", hash: "…", name: null, created_at: 1, revoked_at: null,
 * };
 * ```
 */
export interface ApiKeysTable {
  /** The key id (public part). */
  id: string;
  /** The org the key maps a caller to. */
  org: string;
  /** The hash of the secret. */
  hash: string;
  /** A label for people (migration 0002), or `null`. */
  name: string | null;
  /** When it was created, in ms since the epoch. */
  created_at: number;
  /** When it was revoked, or `null` while valid. */
  revoked_at: number | null;
}

/**
 * The SQL store's schema, for `Kysely<Database>`.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * const query = db.selectFrom("messages").select(["id", "content"]).where("org", "=", "o");
 * console.assert(query.compile().sql.startsWith("select"));
 * await db.destroy();
 * ```
 */
export interface Database {
  /** Sessions with history. */
  sessions: SessionsTable;
  /** History entries. */
  messages: MessagesTable;
  /** Runs, folded from `run.*` events. */
  runs: RunsTable;
  /** Usage of every LLM call. */
  usage_events: UsageEventsTable;
  /** Every event, as written. */
  audit_events: AuditEventsTable;
  /** Events that failed validation. */
  dead_letters: DeadLettersTable;
  /** Hashed API keys. */
  api_keys: ApiKeysTable;
}
