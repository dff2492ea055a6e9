// What a caller gets back for a message, and what it sends.

import type { Policy } from "./events.ts";
import type { ChatMessage, FinishReason, LlmOptions, Usage } from "./ports.ts";

/** How a message ended. */
export type ReplyStatus = "completed" | "superseded" | "rejected" | "cancelled" | "failed";

/** A plain, serialisable description of a failure. */
export interface ReplyError {
  /** Stable code, e.g. `"provider_error"`, `"shutting_down"`. */
  code: string;
  /** For people. */
  message: string;
  /** Whether sending again later may succeed. */
  retryable: boolean;
}

/** The outcome of one message. */
export interface Reply {
  /** How it ended. */
  status: ReplyStatus;
  /** The org of the session. */
  org: string;
  /** The session. */
  session: string;
  /** The message this reply is for. */
  messageId: string;
  /**
   * The run the message was part of when it ended. For `rejected`, the run in
   * flight that caused the refusal.
   */
  runId: string;
  /** The answer (`completed`), or `""`. */
  text: string;
  /** The ids of the messages the run answered, in arrival order (`completed`), else `[]`. */
  answered: string[];
  /** Token counts of the run (`completed`). */
  usage?: Usage;
  /** The model that answered (`completed`). */
  model?: string;
  /** Why the provider stopped generating (`completed`). */
  finishReason?: FinishReason;
  /** The run that now answers this message (`superseded`). */
  supersededBy?: string;
  /** What went wrong (`failed`). */
  error?: ReplyError;
}

/** A message to send to a session. */
export interface SendInput {
  /** The org; `"default"` when absent. */
  org?: string;
  /** The session id: 1–128 characters of letters, digits, `.`, `_`, `:`, `@` or `-`. */
  session: string;
  /** The text of the message. */
  content: string;
  /**
   * The caller's own id for the message; sending the same id again returns the first
   * outcome without a second run (a `rejected` message left no trace: its id may be sent again).
   * After a restart, an id in the history its session starts from is answered from there:
   * the stored answer, or `superseded` when a newer message was answered in its place; a
   * message whose run never ended runs again.
   */
  id?: string;
  /** The policy for this message; the session's or the runtime's when absent. */
  policy?: Policy;
  /**
   * The conversation before this message, as the caller keeps it (an
   * OpenAI-style client sends it with every call). When given, the run that
   * answers this message builds its prompt from it instead of the stored
   * history; the message and the answer are still stored as usual.
   */
  context?: ChatMessage[];
  /**
   * Options for the provider on this message's run ({@linkcode LlmOptions}:
   * `model`, `maxTokens`, `temperature`, `topP`, `stop`, `seed`, the
   * penalties, `responseFormat`, `reasoningEffort`). A merged run uses those
   * of its last message (the one it answers as); without them the provider's
   * defaults apply.
   */
  options?: LlmOptions;
}

/**
 * Marks a {@linkcode SendInput} whose session id the sender made up just now
 * (a one-shot call of the OpenAI route), so that nothing can be stored under
 * it: activating its session skips the history read. Internal to Troupe's own
 * adapters; not exported by `mod.ts`.
 */
export const NEW_SESSION: unique symbol = Symbol("troupe.newSession");

/** One item of a streamed reply: text as it is generated, then the final reply. */
export type StreamEvent =
  | { type: "delta"; text: string }
  | { type: "reply"; reply: Reply };
