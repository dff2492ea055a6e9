// The ports the core owns: small interfaces that adapters implement and machines depend on.

import type { TroupeEvent } from "./events.ts";

/** The role of one turn in a conversation sent to an LLM. */
export type ChatRole = "system" | "user" | "assistant";

/** One turn of the conversation a provider receives. */
export interface ChatMessage {
  /** Who said it. */
  role: ChatRole;
  /** What was said. */
  content: string;
}

/**
 * The shape a reply must take: plain text, any JSON object, or JSON that
 * matches a schema (OpenAI's `response_format`; the upstream enforces it).
 */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; jsonSchema: JsonSchemaFormat };

/** The schema of a `json_schema` {@linkcode ResponseFormat}, sent as OpenAI's `json_schema`. */
export interface JsonSchemaFormat {
  /** The schema's name: letters, digits, `_` and `-`, at most 64 characters. */
  name: string;
  /** What the reply is for, to help the model. */
  description?: string;
  /** The JSON Schema the reply must match, as an object. */
  schema?: Record<string, unknown>;
  /** Ask the upstream to follow the schema exactly. */
  strict?: boolean;
}

/**
 * Per-call options a caller may pass through to the provider. An
 * OpenAI-compatible provider sends each under its wire name (`max_tokens`,
 * `top_p`, `stop`, `seed`, `presence_penalty`, `frequency_penalty`,
 * `response_format`, `reasoning_effort`); whether the model honours it is up to the upstream.
 */
export interface LlmOptions {
  /** The model to ask for; the provider's default when absent. */
  model?: string;
  /** Upper bound on generated tokens. */
  maxTokens?: number;
  /** Sampling temperature, 0 to 2. */
  temperature?: number;
  /** Nucleus sampling: sample only from the tokens of this top probability mass, 0 to 1. */
  topP?: number;
  /** Up to 4 sequences at which generation stops (not included in the reply). */
  stop?: string[];
  /** Ask for repeatable sampling (best effort, as upstreams document it). */
  seed?: number;
  /** Penalise tokens that already appeared at all, -2 to 2. */
  presencePenalty?: number;
  /** Penalise tokens by how often they already appeared, -2 to 2. */
  frequencyPenalty?: number;
  /** The shape the reply must take. */
  responseFormat?: ResponseFormat;
  /** How hard a reasoning model thinks before it answers, e.g. `"low"`, `"medium"`, `"high"`. */
  reasoningEffort?: string;
}

/** What a provider is asked: the conversation plus the context that identifies the call. */
export interface LlmRequest {
  /** The org the session belongs to. */
  org: string;
  /** The session the run belongs to. */
  session: string;
  /** The run this call serves. */
  run: string;
  /** The id of this upstream attempt, sent upstream as `X-Request-Id`; set by a provider that retries. */
  request?: string;
  /** The conversation, oldest first; the last turn is the user turn to answer. */
  messages: ChatMessage[];
  /** Per-call options. */
  options?: LlmOptions;
}

/** How a provider is called: cancellation and streaming. */
export interface LlmCallOptions {
  /** Aborted when the run is superseded, cancelled or shut down; the call must stop its work. */
  signal: AbortSignal;
  /** Receives each piece of generated text as it arrives, in order. */
  onDelta?: (text: string) => void;
  /** Receives one report per upstream attempt (a provider with retries or fallbacks makes several). */
  onAttempt?: (attempt: LlmAttempt) => void;
  /**
   * Receives the token usage (reported, or estimated) of each upstream attempt
   * that may have cost tokens, whatever its outcome, as it ends and before the
   * call settles: the only usage a cancelled or failed call has. A failed (not
   * cancelled) call whose provider reported attempts (`onAttempt`) and no usage
   * is recorded as costing nothing (an error status, a refused connection);
   * otherwise a call without usage is recorded with an estimate of its prompt.
   */
  onUsage?: (usage: Usage, model: string) => void;
}

/** One upstream attempt of a call: what was asked of whom, and how it ended. */
export interface LlmAttempt {
  /** The id of this upstream request (sent upstream as `X-Request-Id`). */
  request: string;
  /** 1 for the first attempt of the call, counting across fallbacks. */
  attempt: number;
  /** The provider name. */
  provider: string;
  /** The model asked for. */
  model: string;
  /** How the attempt ended. */
  outcome: "completed" | "failed" | "cancelled";
  /** The upstream HTTP status, or `null` when none came (network error, timeout, cancel). */
  status: number | null;
  /** A stable error code when it failed, else `null`. */
  code: string | null;
  /** What went wrong, for people, when it failed; else `null`. Never holds a secret. */
  error: string | null;
  /** The wait before the next attempt, or `null` when there is none. */
  retryInMs: number | null;
  /** Wall time of the attempt. */
  latencyMs: number;
}

/** Token counts of one call. */
export interface Usage {
  /** Prompt tokens. */
  inputTokens: number;
  /** Generated tokens. */
  outputTokens: number;
  /** Prompt tokens served from a cache. */
  cachedTokens: number;
  /** Generated tokens spent on reasoning. */
  reasoningTokens: number;
  /** Input plus output. */
  totalTokens: number;
  /** Whether the upstream reported the counts or Troupe estimated them. */
  source: "reported" | "estimated";
}

/** Why a provider stopped generating. */
export type FinishReason = "stop" | "length" | "content_filter" | "tool_calls" | "error";

/** What a provider returns for a call that completed. */
export interface LlmCompletion {
  /** The whole generated text. */
  text: string;
  /** Token counts. */
  usage: Usage;
  /** Why generation stopped. */
  finishReason: FinishReason;
  /** The model that answered. */
  model: string;
}

/**
 * An LLM provider: answers one request, honouring the signal.
 *
 * Failure: the returned promise rejects. A call stopped by its signal rejects
 * with the signal's reason; any other failure rejects with an `Error` (a
 * `ProviderError` where the provider can say whether a retry may help).
 */
export interface LlmProvider {
  /** A short name for usage records, e.g. `"mock"` or `"openai-compatible"`. */
  readonly name: string;
  /** The model it asks for by default, for usage records of calls that returned none. */
  readonly model?: string;
  /** Answer the request. */
  complete(request: LlmRequest, options: LlmCallOptions): Promise<LlmCompletion>;
  /** Release what the provider holds. */
  close?(): Promise<void>;
}

/** A stored turn of a session's history. */
export interface HistoryEntry {
  /** The message id (user turns) or the run id (assistant turns). */
  id: string;
  /** `user` for a message as sent; `assistant` for a run's answer. */
  role: "user" | "assistant";
  /** The text. */
  content: string;
  /** When it was received or produced, in ms since the epoch. */
  ts: number;
  /** On assistant turns: the ids of the user messages the run answered. */
  answered?: string[];
}

/** One page of a session's history. */
export interface HistoryPage {
  /** Entries, oldest first. */
  entries: HistoryEntry[];
  /** Cursor for the page before this one, or `null` at the start of the history. */
  next: string | null;
}

/** Which slice of history to read. */
export interface HistoryQuery {
  /** At most this many entries. */
  limit: number;
  /** Only entries before this cursor (from a previous page's `next`). */
  before?: string;
}

/**
 * A session that has stored history.
 *
 * @example
 * ```ts
 * import type { SessionSummary } from "./ports.ts";
 *
 * const summary: SessionSummary = { session: "s1", createdAt: 1, lastSeenAt: 5 };
 * ```
 */
export interface SessionSummary {
  /** The session id. */
  session: string;
  /** The `ts` of its first stored entry, in ms since the epoch. */
  createdAt: number;
  /** The newest `ts` of its stored entries, in ms since the epoch. */
  lastSeenAt: number;
}

/**
 * Which page of an org's sessions to read, for `Store.listSessions`.
 *
 * @example
 * ```ts
 * import type { SessionListQuery } from "./ports.ts";
 *
 * const query: SessionListQuery = { limit: 50 };
 * ```
 */
export interface SessionListQuery {
  /** At most this many sessions. */
  limit: number;
  /** Only sessions after this cursor (from a previous page's `next`). */
  after?: string;
}

/**
 * One page of an org's sessions, ordered by session id.
 *
 * @example
 * ```ts
 * import type { SessionPage } from "./ports.ts";
 *
 * const page: SessionPage = { sessions: [], next: null };
 * ```
 */
export interface SessionPage {
  /** Sessions in ascending order of id (code-point order). */
  sessions: SessionSummary[];
  /** Cursor for the page after this one, or `null` on the last page. */
  next: string | null;
}

/**
 * One session of one org.
 *
 * @example
 * ```ts
 * import type { SessionKey } from "./ports.ts";
 *
 * const key: SessionKey = { org: "acme", session: "s1" };
 * ```
 */
export interface SessionKey {
  /** The org. */
  org: string;
  /** The session. */
  session: string;
}

/**
 * Options of `Store.deleteSession`.
 *
 * @example
 * ```ts
 * import type { DeleteSessionOptions } from "./ports.ts";
 *
 * const options: DeleteSessionOptions = { idleBefore: Date.now() - 86_400_000 };
 * ```
 */
export interface DeleteSessionOptions {
  /**
   * Delete only if the session's newest history entry is older than this (ms
   * since the epoch): a retention sweep never deletes a session that was used
   * after it was found idle.
   */
  idleBefore?: number;
}

/**
 * Where session history lives between activations.
 *
 * Failure: a rejected promise. A failed append is retried for a while, then
 * reported, and does not corrupt what is already stored; entries of one
 * session are appended in the order they are given. A store that outlives the
 * process skips an appended entry whose id the session already has, so that a
 * retried append committed unseen, or an id sent again after a restart, costs
 * no other entry. A cursor the store did not make rejects with an
 * `InvalidInputError` naming the cursor's field.
 */
export interface Store {
  /** Append entries to a session's history, in order. */
  appendHistory(org: string, session: string, entries: HistoryEntry[]): Promise<void>;
  /** Read the newest entries (older pages through `before`), returned oldest first. */
  readHistory(org: string, session: string, query: HistoryQuery): Promise<HistoryPage>;
  /** List an org's sessions that have history, by session id, a page at a time. */
  listSessions?(org: string, query: SessionListQuery): Promise<SessionPage>;
  /**
   * Delete a session's history and state (usage and audit records are kept);
   * resolves with whether it had any. Deleting again does nothing.
   */
  deleteSession?(org: string, session: string, options?: DeleteSessionOptions): Promise<boolean>;
  /**
   * Sessions whose newest history entry is older than `before` (ms since the
   * epoch), idle the longest first, at most `limit` of them, across every org:
   * what a retention sweep deletes.
   */
  idleSessions?(before: number, limit: number): Promise<SessionKey[]>;
  /** Release what the store holds. */
  close(): Promise<void>;
}

/**
 * A valid API key as authentication needs it: never the key, only its hash.
 *
 * @example
 * ```ts
 * import type { ApiKeyRecord } from "./ports.ts";
 *
 * const record: ApiKeyRecord = { id: "0123456789abcdef", org: "acme", hash: "9f86d0…" };
 * ```
 */
export interface ApiKeyRecord {
  /** The key's public id (also written inside the key). */
  id: string;
  /** The org the key maps its caller to. */
  org: string;
  /** The SHA-256 of the whole key, as 64 lower-case hex digits. */
  hash: string;
}

/** Stop receiving events. */
export type Unsubscribe = () => void;

/**
 * Carries events from the actors to whoever records them.
 *
 * Failure: `publish` never throws and never drops an event. A bus that
 * cannot deliver (its server is down) keeps undelivered events in a buffer
 * and reports it through `saturated()` once the buffer reaches its bound; the
 * runtime then refuses new messages (`OverloadedError`) until it drains, so
 * the buffer stays bounded by the events of runs already in flight. `flush`
 * rejects if events could not be delivered in the end.
 */
export interface EventBus {
  /** Hand over one event. */
  publish(event: TroupeEvent): void;
  /** Receive every event published after this call (live, in-process observers). */
  subscribe(handler: (event: TroupeEvent) => void): Unsubscribe;
  /**
   * Durable, at-least-once consumption by a named group (the persisters): an
   * event is handed to one member of the group, in batches, and delivered
   * again until a member acknowledges it. Iteration ends when the signal aborts.
   */
  consume?(group: string, options: ConsumeOptions): AsyncIterable<Delivery[]>;
  /** True while the buffer of undelivered events is at its bound. */
  saturated?(): boolean;
  /**
   * Resolve once every event published before this call has been delivered:
   * to the subscribers, and to the consumer groups consuming in this process,
   * which have acknowledged it (a persister acks only after its write
   * committed, so the runtime reads its own writes after a flush). Events
   * published after the call are not waited for, so it ends under a steady
   * load.
   */
  flush(): Promise<void>;
  /**
   * Resolve once every event published before this call is durable: stored by
   * the consumer groups that are consuming (in process) or acknowledged by the
   * stream (JetStream, where a crash of this process can no longer lose it,
   * whether or not a group has consumed it yet). Later events are not waited
   * for. A bus without it is waited on with `flush`.
   */
  persisted?(): Promise<void>;
  /** Flush and release. */
  close(): Promise<void>;
}

/** How a consumer group pulls. */
export interface ConsumeOptions {
  /** Stops the consumption; the iterator then ends. */
  signal: AbortSignal;
  /** At most this many deliveries a batch. */
  batchSize: number;
  /** Hand over a partial batch after waiting this long, in ms. */
  maxWaitMs: number;
}

/** One event delivered to a durable consumer. */
export interface Delivery {
  /** The event as received: a persister validates it before storing it. */
  readonly data: unknown;
  /** 1 on the first delivery, more when it is delivered again. */
  readonly attempt: number;
  /** It is stored: never deliver it again. Call only after the write committed. */
  ack(): Promise<void>;
  /** It is not stored: deliver it again after `delayMs`. */
  nak(delayMs?: number): void;
}

/** An event that failed validation, kept with the reason instead of blocking the stream. */
export interface DeadLetter {
  /** The event's id, when it had a usable one. */
  id: string | null;
  /** The data as received, serialised as JSON. */
  data: string;
  /** Why it was refused. */
  reason: string;
  /** When it was refused, in ms since the epoch. */
  ts: number;
}

/**
 * Where events end up: usage and audit records, written in batches.
 *
 * Failure: a rejected promise, and then nothing of the batch was written (one
 * transaction). Writing an event whose id is already stored does nothing, so
 * a redelivered batch never counts twice.
 */
export interface EventStore {
  /** Write a batch in one transaction; returns how many events were new. */
  writeEvents(events: TroupeEvent[]): Promise<number>;
  /** Keep events that failed validation. */
  writeDeadLetters(letters: DeadLetter[]): Promise<void>;
  /** Release what the store holds. */
  close(): Promise<void>;
}

/** Time, injected so that tests can drive it. The timer half matches XState's `Clock`. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run `fn` after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancel a timer made by `setTimeout`. */
  clearTimeout(id: unknown): void;
}

/**
 * Which usage to sum, for `EventQueries.usageTotals`.
 *
 * @example
 * ```ts
 * import type { UsageTotalsQuery } from "./ports.ts";
 *
 * const query: UsageTotalsQuery = { org: "acme", from: 0, to: Date.now(), groupBy: "model" };
 * ```
 */
export interface UsageTotalsQuery {
  /** Only this org's usage. */
  org: string;
  /** Only calls with `ts >= from` (ms since the epoch). @default {undefined} no lower bound */
  from?: number;
  /** Only calls with `ts < to` (ms since the epoch). @default {undefined} no upper bound */
  to?: number;
  /** One row per session, per model, or one row in all. @default {"none"} */
  groupBy?: "session" | "model" | "none";
}

/**
 * Token sums and call count of one group.
 *
 * @example
 * ```ts
 * import type { UsageTotals } from "./ports.ts";
 *
 * const row: UsageTotals = {
 *   key: "gpt-4o", calls: 2, inputTokens: 30, outputTokens: 12, cachedTokens: 0,
 *   reasoningTokens: 0, totalTokens: 42,
 * };
 * ```
 */
export interface UsageTotals {
  /** The session or model of the group; `null` when not grouped. */
  key: string | null;
  /** How many calls. */
  calls: number;
  /** Sum of prompt tokens. */
  inputTokens: number;
  /** Sum of generated tokens. */
  outputTokens: number;
  /** Sum of cached prompt tokens. */
  cachedTokens: number;
  /** Sum of reasoning tokens. */
  reasoningTokens: number;
  /** Sum of total tokens. */
  totalTokens: number;
}

/**
 * Which slice of a session's audit trail to read, for `EventQueries.auditTrail`.
 *
 * @example
 * ```ts
 * import type { AuditTrailQuery } from "./ports.ts";
 *
 * const query: AuditTrailQuery = { org: "acme", session: "s1", limit: 50 };
 * ```
 */
export interface AuditTrailQuery {
  /** The org. */
  org: string;
  /** The session. */
  session: string;
  /** At most this many events, 1 to 1000. @default {100} */
  limit?: number;
  /** Only events before this cursor (a previous page's `next`). @default {undefined} the newest */
  before?: string;
}

/**
 * One page of an audit trail.
 *
 * @example
 * ```ts
 * import type { AuditTrailPage } from "./ports.ts";
 *
 * const page: AuditTrailPage = { events: [], next: null };
 * ```
 */
export interface AuditTrailPage {
  /** The events as they were written, oldest first. */
  events: TroupeEvent[];
  /** Cursor for the page before this one, or `null` at the start of the trail. */
  next: string | null;
}

/**
 * Reads over stored events: what users ask of usage and audit records.
 *
 * Failure: a rejected promise; an invalid query rejects with an `InvalidInputError`.
 */
export interface EventQueries {
  /** Token sums and call counts of an org's usage. */
  usageTotals(query: UsageTotalsQuery): Promise<UsageTotals[]>;
  /** A page of a session's events as written, oldest first. */
  auditTrail(query: AuditTrailQuery): Promise<AuditTrailPage>;
}
