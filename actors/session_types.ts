// The data of a session actor: its input, context, events, what it emits and what its LLM actor gets.

import type { EventBody, Policy } from "./events.ts";
import type { ChatMessage, HistoryEntry, LlmCompletion } from "./ports.ts";
import type { Reply } from "./reply.ts";

/** A message waiting for, or part of, a run. */
export interface QueuedMessage {
  /** The message id. */
  id: string;
  /** The text as sent. */
  content: string;
  /** When it arrived, in ms since the epoch. */
  receivedAt: number;
  /** Whether it is already in history (it was part of a run that started, or was superseded). */
  committed: boolean;
}

/** Messages that one run answers. Every message but the last has already been told it was superseded. */
export interface Batch {
  /** The run id. */
  run: string;
  /** The messages, in arrival order. */
  messages: QueuedMessage[];
}

/** What a session actor is started with. */
export interface SessionMachineInput {
  /** The org of the session. */
  org: string;
  /** The session. */
  session: string;
  /** History loaded from the store, oldest first. */
  history: HistoryEntry[];
  /** Wait this long after a message before starting its run, so a burst becomes one call. */
  debounceMs: number;
  /** Joins the messages of a merged run into one user turn. */
  join: string;
  /** How many history entries the actor keeps for building prompts. */
  historyLimit: number;
  /** A system prompt put before the history, or `""` for none. */
  system: string;
}

/** The actor's state beyond its state value. */
export interface SessionContext extends SessionMachineInput {
  /** The run whose LLM call is in flight. */
  running: Batch | null;
  /** Runs waiting to start, in order. */
  queue: Batch[];
}

/** A message arrived. `run` is the id to give a run this message forms. */
export interface MessageReceivedEvent {
  type: "message.received";
  message: Omit<QueuedMessage, "committed">;
  policy: Policy;
  run: string;
}

/** Stop the run in flight and drop every queued message. */
export interface SessionCancelEvent {
  type: "session.cancel";
  reason: "cancelled" | "shutdown";
}

/** The LLM call of run `run` answered. */
export interface LlmDoneEvent {
  type: "llm.done";
  run: string;
  output: LlmRunOutput;
}

/** The LLM call of run `run` failed (not sent for a call that was stopped). */
export interface LlmFailedEvent {
  type: "llm.failed";
  run: string;
  error: unknown;
}

/** The events a session actor accepts. */
export type SessionMachineEvent =
  | MessageReceivedEvent
  | SessionCancelEvent
  | LlmDoneEvent
  | LlmFailedEvent;

/** What the LLM actor is given: one run's call. */
export interface LlmRunInput {
  org: string;
  session: string;
  run: string;
  messages: ChatMessage[];
  /** The message ids the run answers, in order. */
  answered: string[];
  /** The message whose caller receives the run's deltas and reply. */
  live: string;
}

/** What the LLM actor returns. */
export interface LlmRunOutput {
  completion: LlmCompletion;
  /** When the call finished, in ms since the epoch. */
  finishedAt: number;
}

/** What a session actor tells the outside world (listen with `actor.on`). */
export type SessionEmitted =
  | { type: "session.event"; body: EventBody }
  | { type: "session.reply"; reply: Reply }
  | { type: "session.history"; entries: HistoryEntry[] };
