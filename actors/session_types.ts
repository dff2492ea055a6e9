// The data of a session actor: its input, context, events, what it emits and what its LLM actor gets.

import type { EventBody, Policy } from "./events.ts";
import type { ChatMessage, HistoryEntry, LlmCompletion, LlmOptions } from "./ports.ts";
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
  /** The caller's conversation before this message; replaces the history in its run's prompt. */
  context?: ChatMessage[];
  /** Options for the provider; a run uses those of its last message. */
  options?: LlmOptions;
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
  /** What happened: `message.received`. */
  type: "message.received";
  /**
   * The message: id, content and arrival time; `committed` when the stored history
   * already holds it (sent again after a restart, its first run never ended).
   */
  message: Omit<QueuedMessage, "committed"> & { committed?: boolean };
  /** The policy that applies to it. */
  policy: Policy;
  /** The id a run formed by this message gets (or the run whose call ended). */
  run: string;
}

/** Stop the run in flight and drop every queued message. */
export interface SessionCancelEvent {
  /** What happened: `session.cancel`. */
  type: "session.cancel";
  /** `cancelled` (the stop button) or `shutdown`. */
  reason: "cancelled" | "shutdown";
}

/** The LLM call of run `run` answered. */
export interface LlmDoneEvent {
  /** What happened: `llm.done`. */
  type: "llm.done";
  /** The run whose call ended. */
  run: string;
  /** What the call returned. */
  output: LlmRunOutput;
}

/** The LLM call of run `run` failed (not sent for a call that was stopped). */
export interface LlmFailedEvent {
  /** What happened: `llm.failed`. */
  type: "llm.failed";
  /** The run whose call ended. */
  run: string;
  /** Why the call failed. */
  error: unknown;
}

/** The events a session actor accepts. */
export type SessionMachineEvent =
  | MessageReceivedEvent
  | SessionCancelEvent
  | LlmDoneEvent
  | LlmFailedEvent;

/** What the LLM call is given: one run's prompt and identity. */
export interface LlmRunInput {
  /** The org of the session. */
  org: string;
  /** The session. */
  session: string;
  /** The run id. */
  run: string;
  /** The prompt: system, history, then the run's joined turn. */
  messages: ChatMessage[];
  /** The message ids the run answers, in order. */
  answered: string[];
  /** The message whose caller receives the run's deltas and reply. */
  live: string;
  /** The provider options of the live message, if it had any. */
  options?: LlmOptions;
}

/** What the LLM call returns. */
export interface LlmRunOutput {
  /** The provider's completion. */
  completion: LlmCompletion;
  /** When the call finished, in ms since the epoch. */
  finishedAt: number;
}

/** One thing a session actor tells the outside world. */
export type SessionEffect =
  /** An event for the bus. */
  | { type: "session.event"; body: EventBody }
  /** The outcome for one caller. */
  | { type: "session.reply"; reply: Reply }
  /** Entries to append to the stored history, in order. */
  | { type: "session.history"; entries: HistoryEntry[] };

/**
 * What a session actor emits (listen with `actor.on("session.effects", ...)`):
 * everything one step tells the outside world, in order, as one emitted event
 * (each emitted event costs XState a resolved and executed action).
 */
export type SessionEmitted = { type: "session.effects"; effects: SessionEffect[] };
