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

/** Per-call options a caller may pass through to the provider. */
export interface LlmOptions {
  /** The model to ask for; the provider's default when absent. */
  model?: string;
  /** Upper bound on generated tokens. */
  maxTokens?: number;
  /** Sampling temperature. */
  temperature?: number;
}

/** What a provider is asked: the conversation plus the context that identifies the call. */
export interface LlmRequest {
  /** The org the session belongs to. */
  org: string;
  /** The session the run belongs to. */
  session: string;
  /** The run this call serves. */
  run: string;
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
 * Where session history lives between activations.
 *
 * Failure: a rejected promise. A failed append is reported and does not
 * corrupt what is already stored; entries of one session are appended in the
 * order they are given.
 */
export interface Store {
  /** Append entries to a session's history, in order. */
  appendHistory(org: string, session: string, entries: HistoryEntry[]): Promise<void>;
  /** Read the newest entries (older pages through `before`), returned oldest first. */
  readHistory(org: string, session: string, query: HistoryQuery): Promise<HistoryPage>;
  /** Release what the store holds. */
  close(): Promise<void>;
}

/** Stop receiving events. */
export type Unsubscribe = () => void;

/**
 * Carries events from the actors to whoever records them.
 *
 * Failure: `publish` never throws for a valid event; a bus that cannot keep
 * up buffers with a bound and reports backpressure through `flush`, which
 * rejects if events could not be delivered.
 */
export interface EventBus {
  /** Hand over one event. */
  publish(event: TroupeEvent): void;
  /** Receive every event published after this call. */
  subscribe(handler: (event: TroupeEvent) => void): Unsubscribe;
  /** Resolve once every event published so far has been delivered. */
  flush(): Promise<void>;
  /** Flush and release. */
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
