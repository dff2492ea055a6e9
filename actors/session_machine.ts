// The session actor: orders a session's messages, supersedes stale runs and folds bursts into one call.

import { and, enqueueActions, fromPromise, setup } from "xstate";
import type { EventBody, Policy } from "./events.ts";
import type { ChatMessage, HistoryEntry, LlmCompletion } from "./ports.ts";
import type { Reply, ReplyStatus } from "./reply.ts";
import { toReplyError } from "./reply_error.ts";

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

/** The events a session actor accepts. */
export type SessionMachineEvent = MessageReceivedEvent | SessionCancelEvent;

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

function liveOf(batch: Batch): QueuedMessage {
  return batch.messages[batch.messages.length - 1]!;
}

function idsOf(batch: Batch): string[] {
  return batch.messages.map((m) => m.id);
}

function reply(
  context: SessionContext,
  status: ReplyStatus,
  messageId: string,
  runId: string,
  extra: Partial<Reply> = {},
): SessionEmitted {
  return {
    type: "session.reply",
    reply: {
      status,
      org: context.org,
      session: context.session,
      messageId,
      runId,
      text: "",
      answered: [],
      ...extra,
    },
  };
}

function said(body: EventBody): SessionEmitted {
  return { type: "session.event", body };
}

/** Keep the newest `limit` entries. */
function trimmed(history: HistoryEntry[], limit: number): HistoryEntry[] {
  return history.length > limit ? history.slice(history.length - limit) : history;
}

/** Commit the batch's new messages to history, in order; returns the entries written. */
function commitEntries(batch: Batch): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const m of batch.messages) {
    if (m.committed) continue;
    entries.push({ id: m.id, role: "user", content: m.content, ts: m.receivedAt });
  }
  return entries;
}

function markCommitted(batch: Batch): Batch {
  return { run: batch.run, messages: batch.messages.map((m) => ({ ...m, committed: true })) };
}

/** Tell a batch's live caller it was superseded by `by`, and say so as an event. */
function superseded(
  context: SessionContext,
  batch: Batch,
  by: string,
  policy: "merge" | "interrupt",
  started: boolean,
): SessionEmitted[] {
  return [
    reply(context, "superseded", liveOf(batch).id, batch.run, { supersededBy: by }),
    said({
      type: "run.superseded",
      run: batch.run,
      supersededBy: by,
      policy,
      messages: idsOf(batch),
      started,
    }),
  ];
}

/** Build the prompt of a run: system, history before the run's messages, then the joined turn. */
export function buildPrompt(context: SessionContext, batch: Batch): ChatMessage[] {
  const inBatch = new Set(batch.messages.map((m) => m.id));
  const prompt: ChatMessage[] = [];
  if (context.system !== "") prompt.push({ role: "system", content: context.system });
  for (const entry of context.history) {
    if (!inBatch.has(entry.id)) prompt.push({ role: entry.role, content: entry.content });
  }
  prompt.push({
    role: "user",
    content: batch.messages.length === 1
      ? batch.messages[0]!.content
      : batch.messages.map((m) => m.content).join(context.join),
  });
  return prompt;
}

/**
 * The session machine. States: `idle` (nothing to do), `pending` (a run is
 * formed and waits out the debounce window), `running` (one LLM call in
 * flight; leaving this state aborts it) and the transient `next`.
 *
 * A message that arrives while work is pending or in flight is handled by its
 * policy: `merge` folds it into the newest run (aborting the call in flight
 * when that run had started), `enqueue` queues its own run, `reject` refuses
 * it, `interrupt` aborts everything before it. The LLM call is the invoked
 * actor `llm`, supplied with `.provide()`; effects leave the machine only as
 * emitted `session.event`, `session.reply` and `session.history` events.
 *
 * @example Running the machine with a stub LLM
 * ```ts
 * import { createActor, fromPromise, waitFor } from "xstate";
 * import { sessionMachine, type LlmRunInput, type LlmRunOutput } from "./session_machine.ts";
 *
 * const machine = sessionMachine.provide({
 *   actors: {
 *     llm: fromPromise<LlmRunOutput, LlmRunInput>(({ input }) =>
 *       Promise.resolve({
 *         completion: {
 *           text: input.messages.at(-1)!.content,
 *           finishReason: "stop",
 *           model: "stub",
 *           usage: {
 *             inputTokens: 1, outputTokens: 1, cachedTokens: 0, reasoningTokens: 0,
 *             totalTokens: 2, source: "estimated",
 *           },
 *         },
 *         finishedAt: 0,
 *       })
 *     ),
 *   },
 * });
 * const actor = createActor(machine, {
 *   input: { org: "o", session: "s", history: [], debounceMs: 0, join: "\n", historyLimit: 50, system: "" },
 * }).start();
 * const replies: string[] = [];
 * actor.on("session.reply", (e) => replies.push(e.reply.status));
 * actor.send({
 *   type: "message.received",
 *   message: { id: "m1", content: "hi", receivedAt: 0 },
 *   policy: "merge",
 *   run: "r1",
 * });
 * await waitFor(actor, (s) => s.matches("idle"), { timeout: 1000 });
 * console.assert(replies[0] === "completed");
 * actor.stop();
 * ```
 */
export const sessionMachine = setup({
  types: {} as {
    context: SessionContext;
    input: SessionMachineInput;
    events: SessionMachineEvent;
    emitted: SessionEmitted;
  },
  actors: {
    llm: fromPromise<LlmRunOutput, LlmRunInput>(() =>
      Promise.reject(new Error("Cannot run: no `llm` actor was provided to the session machine"))
    ),
  },
  delays: {
    debounce: ({ context }) => context.debounceMs,
  },
  guards: {
    isReject: ({ event }) => event.type === "message.received" && event.policy === "reject",
    isEnqueue: ({ event }) => event.type === "message.received" && event.policy === "enqueue",
    isMerge: ({ event }) => event.type === "message.received" && event.policy === "merge",
    isInterrupt: ({ event }) => event.type === "message.received" && event.policy === "interrupt",
    hasQueue: ({ context }) => context.queue.length > 0,
    noDebounce: ({ context }) => context.debounceMs <= 0,
  },
  actions: {
    /** Announce the message; every accepted or refused message is received first. */
    announce: enqueueActions(({ event, enqueue }) => {
      if (event.type !== "message.received") return;
      enqueue.emit(said({
        type: "message.received",
        message: event.message.id,
        policy: event.policy,
        length: event.message.content.length,
      }));
    }),
    /** Give the message a run of its own at the end of the queue. */
    enqueueMessage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received") return;
      const batch: Batch = { run: event.run, messages: [{ ...event.message, committed: false }] };
      enqueue.assign({ queue: [...context.queue, batch] });
    }),
    /** Refuse the message; the run in flight (or next) goes on. */
    rejectMessage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received") return;
      const current = context.running ?? context.queue[context.queue.length - 1]!;
      enqueue.emit(reply(context, "rejected", event.message.id, current.run));
      enqueue.emit(said({
        type: "message.rejected",
        message: event.message.id,
        run: current.run,
        reason: "busy",
      }));
    }),
    /** Fold the message into the newest queued run, which becomes a new run. */
    foldIntoLastBatch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received") return;
      const last = context.queue[context.queue.length - 1]!;
      for (const e of superseded(context, last, event.run, "merge", false)) enqueue.emit(e);
      const merged: Batch = {
        run: event.run,
        messages: [...last.messages, { ...event.message, committed: false }],
      };
      enqueue.assign({ queue: [...context.queue.slice(0, -1), merged] });
    }),
    /** Abort the run in flight and fold its messages and this one into a new run. */
    mergeIntoRunning: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received" || context.running === null) return;
      const running = context.running;
      for (const e of superseded(context, running, event.run, "merge", true)) enqueue.emit(e);
      const merged: Batch = {
        run: event.run,
        messages: [...running.messages, { ...event.message, committed: false }],
      };
      enqueue.assign({ running: null, queue: [merged, ...context.queue] });
    }),
    /**
     * Abort the run in flight and every queued run; the new run answers only
     * this message. Superseded messages that never ran still enter history.
     */
    interruptAll: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received") return;
      let history = context.history;
      const written: HistoryEntry[] = [];
      if (context.running !== null) {
        for (const e of superseded(context, context.running, event.run, "interrupt", true)) {
          enqueue.emit(e);
        }
      }
      for (const batch of context.queue) {
        for (const e of superseded(context, batch, event.run, "interrupt", false)) enqueue.emit(e);
        written.push(...commitEntries(batch));
      }
      if (written.length > 0) {
        history = trimmed([...history, ...written], context.historyLimit);
        enqueue.emit({ type: "session.history", entries: written });
      }
      const batch: Batch = { run: event.run, messages: [{ ...event.message, committed: false }] };
      enqueue.assign({ history, running: null, queue: [batch] });
    }),
    /** Move the head of the queue into the running slot. */
    startHeadBatch: enqueueActions(({ context, enqueue }) => {
      const [head, ...rest] = context.queue;
      if (head === undefined) return;
      enqueue.assign({ running: head, queue: rest });
    }),
    /** The running run's messages enter history, and the run is announced. */
    commitRunning: enqueueActions(({ context, enqueue }) => {
      const running = context.running;
      if (running === null) return;
      const entries = commitEntries(running);
      if (entries.length > 0) {
        enqueue.emit({ type: "session.history", entries });
        enqueue.assign({
          history: trimmed([...context.history, ...entries], context.historyLimit),
          running: markCommitted(running),
        });
      }
      enqueue.emit(said({ type: "run.started", run: running.run, messages: idsOf(running) }));
    }),
    /** The call answered: keep the answer, tell the live caller. */
    completeRun: enqueueActions(({ context, event, enqueue }) => {
      const running = context.running;
      if (running === null || !("output" in event)) return;
      const { completion, finishedAt } = event.output as LlmRunOutput;
      const answered = idsOf(running);
      const entry: HistoryEntry = {
        id: running.run,
        role: "assistant",
        content: completion.text,
        ts: finishedAt,
        answered,
      };
      enqueue.emit({ type: "session.history", entries: [entry] });
      enqueue.assign({
        history: trimmed([...context.history, entry], context.historyLimit),
        running: null,
      });
      enqueue.emit(said({
        type: "run.completed",
        run: running.run,
        messages: answered,
        finishReason: completion.finishReason,
      }));
      enqueue.emit(reply(context, "completed", liveOf(running).id, running.run, {
        text: completion.text,
        answered,
        usage: completion.usage,
      }));
    }),
    /** The call failed: tell the live caller why. */
    failRun: enqueueActions(({ context, event, enqueue }) => {
      const running = context.running;
      if (running === null || !("error" in event)) return;
      const error = toReplyError(event.error);
      enqueue.assign({ running: null });
      enqueue.emit(said({
        type: "run.failed",
        run: running.run,
        messages: idsOf(running),
        code: error.code,
        error: error.message,
      }));
      enqueue.emit(reply(context, "failed", liveOf(running).id, running.run, { error }));
    }),
    /** Stop the run in flight and drop the queue; callers are told `cancelled` (or `failed` on shutdown). */
    cancelAll: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "session.cancel") return;
      const status: ReplyStatus = event.reason === "shutdown" ? "failed" : "cancelled";
      const extra: Partial<Reply> = event.reason === "shutdown"
        ? {
          error: {
            code: "shutting_down",
            message: "The runtime shut down before the run finished",
            retryable: true,
          },
        }
        : {};
      if (context.running !== null) {
        const running = context.running;
        enqueue.emit(reply(context, status, liveOf(running).id, running.run, extra));
        enqueue.emit(said({
          type: "run.cancelled",
          run: running.run,
          messages: idsOf(running),
          reason: event.reason,
        }));
      }
      for (const batch of context.queue) {
        enqueue.emit(reply(context, status, liveOf(batch).id, batch.run, extra));
        for (const m of batch.messages) {
          if (m.committed) continue;
          enqueue.emit(said({ type: "message.dropped", message: m.id, reason: event.reason }));
        }
      }
      enqueue.assign({ running: null, queue: [] });
    }),
  },
}).createMachine({
  id: "session",
  context: ({ input }) => ({ ...input, running: null, queue: [] }),
  initial: "idle",
  states: {
    idle: {
      on: {
        "message.received": [
          {
            guard: "noDebounce",
            target: "running",
            actions: ["announce", "enqueueMessage", "startHeadBatch"],
          },
          { target: "pending", actions: ["announce", "enqueueMessage"] },
        ],
      },
    },
    pending: {
      // Entered only when debounceMs > 0: the run waits for the burst to end.
      after: { debounce: { target: "running", actions: "startHeadBatch" } },
      on: {
        "message.received": [
          { guard: "isReject", actions: ["announce", "rejectMessage"] },
          { guard: "isEnqueue", actions: ["announce", "enqueueMessage"] },
          {
            guard: "isMerge",
            target: "pending",
            reenter: true,
            actions: ["announce", "foldIntoLastBatch"],
          },
          { target: "pending", reenter: true, actions: ["announce", "interruptAll"] },
        ],
        "session.cancel": { target: "idle", actions: "cancelAll" },
      },
    },
    running: {
      entry: "commitRunning",
      invoke: {
        src: "llm",
        input: ({ context }): LlmRunInput => {
          const running = context.running!;
          return {
            org: context.org,
            session: context.session,
            run: running.run,
            messages: buildPrompt(context, running),
            answered: idsOf(running),
            live: liveOf(running).id,
          };
        },
        onDone: { target: "next", actions: "completeRun" },
        onError: { target: "next", actions: "failRun" },
      },
      on: {
        "message.received": [
          { guard: "isReject", actions: ["announce", "rejectMessage"] },
          { guard: "isEnqueue", actions: ["announce", "enqueueMessage"] },
          {
            guard: and(["isMerge", "hasQueue"]),
            actions: ["announce", "foldIntoLastBatch"],
          },
          {
            guard: and(["isMerge", "noDebounce"]),
            target: "running",
            reenter: true,
            actions: ["announce", "mergeIntoRunning", "startHeadBatch"],
          },
          { guard: "isMerge", target: "pending", actions: ["announce", "mergeIntoRunning"] },
          {
            guard: "noDebounce",
            target: "running",
            reenter: true,
            actions: ["announce", "interruptAll", "startHeadBatch"],
          },
          { target: "pending", actions: ["announce", "interruptAll"] },
        ],
        "session.cancel": { target: "idle", actions: "cancelAll" },
      },
    },
    next: {
      always: [
        { guard: "hasQueue", target: "running", actions: "startHeadBatch" },
        { target: "idle" },
      ],
    },
  },
});
