// Every event Troupe emits: one typed union, shared by the actors, the bus and the persisters.

import type { Usage } from "./ports.ts";

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
  type: "session.activated";
  historyLength: number;
}

/** A session actor was stopped; its history stays in the store. */
export interface SessionPassivated extends EventEnvelope {
  type: "session.passivated";
  reason: "idle" | "evicted" | "shutdown";
}

/** A message was accepted for ordering. */
export interface MessageReceived extends EventEnvelope {
  type: "message.received";
  message: string;
  policy: Policy;
  length: number;
}

/** A message was refused because a run was in flight (policy `reject`). */
export interface MessageRejected extends EventEnvelope {
  type: "message.rejected";
  message: string;
  /** The run that goes on. */
  run: string;
  reason: "busy";
}

/** A message was dropped before any run answered it (a cancel or a shutdown). */
export interface MessageDropped extends EventEnvelope {
  type: "message.dropped";
  message: string;
  reason: "cancelled" | "shutdown";
}

/** A run started: one LLM call answering `messages`. */
export interface RunStarted extends EventEnvelope {
  type: "run.started";
  run: string;
  messages: string[];
}

/**
 * A run (started or still waiting) was replaced by `supersededBy` because of a
 * newer message; `started` says whether its LLM call had begun.
 */
export interface RunSuperseded extends EventEnvelope {
  type: "run.superseded";
  run: string;
  supersededBy: string;
  policy: "merge" | "interrupt";
  messages: string[];
  started: boolean;
}

/** A run completed and its answer was delivered and kept in history. */
export interface RunCompleted extends EventEnvelope {
  type: "run.completed";
  run: string;
  messages: string[];
  finishReason: string;
}

/** A run's LLM call failed. */
export interface RunFailed extends EventEnvelope {
  type: "run.failed";
  run: string;
  messages: string[];
  code: string;
  error: string;
}

/** A run was stopped by a cancel or a shutdown. */
export interface RunCancelled extends EventEnvelope {
  type: "run.cancelled";
  run: string;
  messages: string[];
  reason: "cancelled" | "shutdown";
}

/** What one LLM call used, whatever its outcome. */
export interface UsageRecorded extends EventEnvelope, Omit<Usage, "source"> {
  type: "usage.recorded";
  run: string;
  provider: string;
  model: string;
  source: Usage["source"];
  status: "completed" | "cancelled" | "failed";
  /** Wall time of the call. */
  latencyMs: number;
  /** Time to the first generated text, or `null` if none came. */
  ttftMs: number | null;
  /** The message ids the run answered. */
  messages: string[];
}

/** A request was refused before reaching a session (overload, shutdown). */
export interface RequestRejected extends EventEnvelope {
  type: "request.rejected";
  code: string;
  reason: string;
}

/** Every event Troupe emits. */
export type TroupeEvent =
  | SessionActivated
  | SessionPassivated
  | MessageReceived
  | MessageRejected
  | MessageDropped
  | RunStarted
  | RunSuperseded
  | RunCompleted
  | RunFailed
  | RunCancelled
  | UsageRecorded
  | RequestRejected;

/** The type names of every event. */
export type TroupeEventType = TroupeEvent["type"];

/** An event without its envelope: what a machine says happened. */
export type EventBody<E extends TroupeEvent = TroupeEvent> = E extends TroupeEvent
  ? Omit<E, keyof EventEnvelope>
  : never;
