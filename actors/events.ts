// Every event Troupe emits: one typed union, shared by the actors, the bus and the persisters.

import type { LlmAttempt, Usage } from "./ports.ts";

/** A message's ordering policy for when it arrives while a run is in flight. */
export type Policy = "merge" | "enqueue" | "reject" | "interrupt";

/** The policies, in a stable order. */
export const POLICIES: readonly Policy[] = ["merge", "enqueue", "reject", "interrupt"];

/** Fields every event carries. */
export interface EventEnvelope {
  /** Unique and time-ordered (UUIDv7). */
  id: string;
  /** When it happened, in ms since the epoch. */
  ts: number;
  /** The org of the session. */
  org: string;
  /** The session. */
  session: string;
}

/** A session actor was activated; `historyLength` entries were loaded. */
export interface SessionActivated extends EventEnvelope {
  /** What happened: `session.activated`. */
  type: "session.activated";
  /** How many history entries were loaded. */
  historyLength: number;
}

/** A session actor was stopped; its history stays in the store. */
export interface SessionPassivated extends EventEnvelope {
  /** What happened: `session.passivated`. */
  type: "session.passivated";
  /** Why it happened. */
  reason: "idle" | "evicted" | "shutdown" | "deleted";
}

/**
 * A session's history and state were deleted; its usage and audit records stay,
 * and this event ends its audit trail (until the id is used again).
 */
export interface SessionDeleted extends EventEnvelope {
  /** What happened: `session.deleted`. */
  type: "session.deleted";
  /**
   * Why: `requested` (`deleteSession`, `DELETE /v1/sessions/{session}`) or
   * `retention` (idle for longer than `sessionRetentionMs`).
   */
  reason: "requested" | "retention";
}

/** A message was accepted for ordering. */
export interface MessageReceived extends EventEnvelope {
  /** What happened: `message.received`. */
  type: "message.received";
  /** The message id. */
  message: string;
  /** The policy that applied. */
  policy: Policy;
  /** The content length, in characters. */
  length: number;
}

/** A message was refused because a run was in flight (policy `reject`). */
export interface MessageRejected extends EventEnvelope {
  /** What happened: `message.rejected`. */
  type: "message.rejected";
  /** The message id. */
  message: string;
  /** The run that goes on. */
  run: string;
  /** Why it happened. */
  reason: "busy";
}

/** A message was dropped before any run answered it (a cancel or a shutdown). */
export interface MessageDropped extends EventEnvelope {
  /** What happened: `message.dropped`. */
  type: "message.dropped";
  /** The message id. */
  message: string;
  /** Why it happened. */
  reason: "cancelled" | "shutdown";
}

/** A run started: one LLM call answering `messages`. */
export interface RunStarted extends EventEnvelope {
  /** What happened: `run.started`. */
  type: "run.started";
  /** The run id. */
  run: string;
  /** The ids of the messages the run answers, in arrival order. */
  messages: string[];
}

/**
 * A run (started or still waiting) was replaced by `supersededBy` because of a
 * newer message; `started` says whether its LLM call had begun.
 */
export interface RunSuperseded extends EventEnvelope {
  /** What happened: `run.superseded`. */
  type: "run.superseded";
  /** The run id. */
  run: string;
  /** The run that replaces it. */
  supersededBy: string;
  /** The policy that applied. */
  policy: "merge" | "interrupt";
  /** The ids of the messages the run answers, in arrival order. */
  messages: string[];
  /** Whether its LLM call had started. */
  started: boolean;
}

/** A run completed and its answer was delivered and kept in history. */
export interface RunCompleted extends EventEnvelope {
  /** What happened: `run.completed`. */
  type: "run.completed";
  /** The run id. */
  run: string;
  /** The ids of the messages the run answers, in arrival order. */
  messages: string[];
  /** Why the provider stopped generating. */
  finishReason: string;
}

/** A run's LLM call failed. */
export interface RunFailed extends EventEnvelope {
  /** What happened: `run.failed`. */
  type: "run.failed";
  /** The run id. */
  run: string;
  /** The ids of the messages the run answers, in arrival order. */
  messages: string[];
  /** A stable error code. */
  code: string;
  /** What went wrong, for people. */
  error: string;
}

/** A run was stopped by a cancel or a shutdown. */
export interface RunCancelled extends EventEnvelope {
  /** What happened: `run.cancelled`. */
  type: "run.cancelled";
  /** The run id. */
  run: string;
  /** The ids of the messages the run answers, in arrival order. */
  messages: string[];
  /** Why it happened. */
  reason: "cancelled" | "shutdown";
}

/** What one LLM call used, whatever its outcome. */
export interface UsageRecorded extends EventEnvelope, Omit<Usage, "source"> {
  /** What happened: `usage.recorded`. */
  type: "usage.recorded";
  /** The run id. */
  run: string;
  /** The provider name. */
  provider: string;
  /** The model that answered (or was asked). */
  model: string;
  /** Whether the upstream reported the counts or Troupe estimated them. */
  source: Usage["source"];
  /** How the call ended. */
  status: "completed" | "cancelled" | "failed";
  /** Wall time of the call. */
  latencyMs: number;
  /** Time to the first generated text, or `null` if none came. */
  ttftMs: number | null;
  /** The message ids the run answered. */
  messages: string[];
}

/** One upstream attempt of a run's LLM call ended (a call with retries or fallbacks has several). */
export interface LlmAttempted extends EventEnvelope, LlmAttempt {
  /** What happened: `llm.attempted`. */
  type: "llm.attempted";
  /** The run id. */
  run: string;
}

/** A request was refused before reaching a session (overload, shutdown). */
export interface RequestRejected extends EventEnvelope {
  /** What happened: `request.rejected`. */
  type: "request.rejected";
  /** A stable error code. */
  code: string;
  /** Why it happened. */
  reason: string;
}

/** Every event Troupe emits. */
export type TroupeEvent =
  | SessionActivated
  | SessionPassivated
  | SessionDeleted
  | MessageReceived
  | MessageRejected
  | MessageDropped
  | RunStarted
  | RunSuperseded
  | RunCompleted
  | RunFailed
  | RunCancelled
  | UsageRecorded
  | LlmAttempted
  | RequestRejected;

/** The type names of every event. */
export type TroupeEventType = TroupeEvent["type"];

/** An event without its envelope: what a machine says happened. */
export type EventBody<E extends TroupeEvent = TroupeEvent> = E extends TroupeEvent
  ? Omit<E, keyof EventEnvelope>
  : never;
