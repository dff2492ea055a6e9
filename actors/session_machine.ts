// The session actor: orders a session's messages, supersedes stale runs and folds bursts into one call.

import { and, assign, emit, enqueueActions, setup } from "xstate";
import type { HistoryEntry } from "./ports.ts";
import type { Reply, ReplyStatus } from "./reply.ts";
import { toReplyError } from "./reply_error.ts";
import { buildPrompt } from "./build_prompt.ts";
import {
  appended,
  commitEntries,
  idsOf,
  liveOf,
  reply,
  said,
  startContext,
  startEffects,
  superseded,
  told,
} from "./_batch.ts";
import type {
  Batch,
  LlmDoneEvent,
  LlmRunInput,
  MessageReceivedEvent,
  SessionContext,
  SessionEffect,
  SessionEmitted,
  SessionMachineEvent,
  SessionMachineInput,
} from "./session_types.ts";
export { buildPrompt } from "./build_prompt.ts";
export type {
  Batch,
  LlmDoneEvent,
  LlmFailedEvent,
  LlmRunInput,
  LlmRunOutput,
  MessageReceivedEvent,
  QueuedMessage,
  SessionCancelEvent,
  SessionContext,
  SessionEffect,
  SessionEmitted,
  SessionMachineEvent,
  SessionMachineInput,
} from "./session_types.ts";

/** Start the LLM call of `context.running`, as the context stands after the step's `assign`s. */
const START_CALL = {
  type: "startCall",
  params: ({ context }: { context: SessionContext }) => runInput(context),
} as const;

/**
 * The session machine. States: `ready` (at most one LLM call in flight, the
 * run in `context.running`; none when it is `null`) and `pending` (a run is
 * formed and waits out the debounce window; nothing in flight).
 *
 * A message that arrives while work is pending or in flight is handled by its
 * policy: `merge` folds it into the newest run (aborting the call in flight
 * when that run had started), `enqueue` queues its own run, `reject` refuses
 * it, `interrupt` aborts everything before it. Starting a run starts its LLM
 * call (action `startCall`, given the run's prompt) and dropping a run in
 * flight, for any reason, stops it (`stopCall`); the outcome comes back as
 * `llm.done` or `llm.failed` and is taken only if it names the current run.
 * Starting and ending a run change the context, not the state: a change of
 * state costs XState about as much again as the rest of a step. Both actions
 * are supplied with `.provide()`; every other effect leaves the machine in the
 * list of one emitted `session.effects` per step: `session.event` (for the
 * bus), `session.reply` (a caller's outcome), `session.history` (entries to
 * store), in the order they happened.
 *
 * @example Running the machine with a stub LLM call
 * ```ts
 * import { createActor, waitFor } from "xstate";
 * import { type LlmRunInput, sessionMachine } from "./session_machine.ts";
 *
 * const machine = sessionMachine.provide({
 *   actions: {
 *     startCall: ({ self }, params) => {
 *       const input = params as LlmRunInput;
 *       const text = input.messages.at(-1)!.content;
 *       const usage = {
 *         inputTokens: 1, outputTokens: 1, cachedTokens: 0, reasoningTokens: 0,
 *         totalTokens: 2, source: "estimated" as const,
 *       };
 *       queueMicrotask(() =>
 *         self.send({
 *           type: "llm.done",
 *           run: input.run,
 *           output: { completion: { text, finishReason: "stop", model: "stub", usage }, finishedAt: 0 },
 *         })
 *       );
 *     },
 *     stopCall: () => {},
 *   },
 * });
 * const actor = createActor(machine, {
 *   input: { org: "o", session: "s", history: [], debounceMs: 0, join: "\n", historyLimit: 50, system: "" },
 * }).start();
 * const replies: string[] = [];
 * actor.on("session.effects", ({ effects }) => {
 *   for (const effect of effects) if (effect.type === "session.reply") replies.push(effect.reply.status);
 * });
 * actor.send({
 *   type: "message.received",
 *   message: { id: "m1", content: "hi", receivedAt: 0 },
 *   policy: "merge",
 *   run: "r1",
 * });
 * await waitFor(actor, (s) => s.context.running === null, { timeout: 1000 });
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
  delays: {
    debounce: ({ context }) => context.debounceMs,
  },
  guards: {
    isReject: ({ event }) => event.type === "message.received" && event.policy === "reject",
    isEnqueue: ({ event }) => event.type === "message.received" && event.policy === "enqueue",
    isMerge: ({ event }) => event.type === "message.received" && event.policy === "merge",
    isInterrupt: ({ event }) => event.type === "message.received" && event.policy === "interrupt",
    hasQueue: ({ context }) => context.queue.length > 0,
    isCurrentRun: ({ context, event }) => isCurrentRun(context, event),
    /** The current run's call ended and another run waits (one guard: this is the hot path). */
    isCurrentRunWithQueue: ({ context, event }) =>
      context.queue.length > 0 && isCurrentRun(context, event),
    noDebounce: ({ context }) => context.debounceMs <= 0,
    isIdle: ({ context }) => context.running === null,
    /** Nothing runs and there is no debounce window (one guard: this is the hot path). */
    startsNow: ({ context }) => context.running === null && context.debounceMs <= 0,
  },
  // Each step tells the outside world what it did in one `session.effects` emit
  // (`tell...` actions, computed from the context before the step's `assign`):
  // every emitted event and every action costs XState a resolution and an execution.
  actions: {
    /** Start the LLM call of the running run; provided by the runtime. */
    startCall: (_, _input: unknown) => {
      throw new Error("Cannot run: no `startCall` action was provided to the session machine");
    },
    /** Stop the LLM call in flight, if any (its signal aborts); provided by the runtime. */
    stopCall: () => {
      throw new Error("Cannot run: no `stopCall` action was provided to the session machine");
    },
    /** Announce the message; every accepted or refused message is received first. */
    announce: emit(({ event }) => told([received(event as MessageReceivedEvent)])),
    /** Give the message a run of its own at the end of the queue. */
    enqueueMessage: assign({
      queue: ({ context, event }) => [...context.queue, batchOf(event as MessageReceivedEvent)],
    }),
    /** On an idle session: announce the message, which enters history as its run starts. */
    tellStartAlone: emit(({ event }) => {
      const message = event as MessageReceivedEvent;
      return told([received(message), ...startEffects(batchOf(message))]);
    }),
    /** On an idle session: the message's run is the running one at once. */
    startAlone: assign(({ context, event }) =>
      startContext(context, batchOf(event as MessageReceivedEvent), context.queue)
    ),
    /** The head of the queue starts: its new messages enter history, and the run is announced. */
    tellStartHead: emit(({ context }) =>
      told(context.queue.length === 0 ? [] : startEffects(context.queue[0]!))
    ),
    /** Move the head of the queue into the running slot, its messages into history. */
    startHeadBatch: assign(({ context }) =>
      context.queue.length === 0
        ? {}
        : startContext(context, context.queue[0]!, context.queue.slice(1))
    ),
    /** Refuse the message; the run in flight (or next) goes on. */
    rejectMessage: emit(({ context, event }) => {
      const { message } = event as MessageReceivedEvent;
      const current = context.running ?? context.queue[context.queue.length - 1]!;
      return told([
        reply(context, "rejected", message.id, current.run),
        said({ type: "message.rejected", message: message.id, run: current.run, reason: "busy" }),
      ]);
    }),
    /** Fold the message into the newest queued run, which becomes a new run. */
    foldIntoLastBatch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "message.received") return;
      const last = context.queue[context.queue.length - 1]!;
      enqueue.emit(told(superseded(context, last, event.run, "merge", false)));
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
      enqueue.emit(told(superseded(context, running, event.run, "merge", true)));
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
      const effects: SessionEffect[] = [];
      const written: HistoryEntry[] = [];
      if (context.running !== null) {
        effects.push(...superseded(context, context.running, event.run, "interrupt", true));
      }
      for (const batch of context.queue) {
        effects.push(...superseded(context, batch, event.run, "interrupt", false));
        written.push(...commitEntries(batch));
      }
      if (written.length > 0) {
        history = appended(history, written, context.historyLimit);
        effects.push({ type: "session.history", entries: written });
      }
      enqueue.emit(told(effects));
      const batch: Batch = { run: event.run, messages: [{ ...event.message, committed: false }] };
      enqueue.assign({ history, running: null, queue: [batch] });
    }),
    /** The call answered: keep the answer, tell the live caller. */
    tellCompleted: emit(({ context, event }) => {
      const running = context.running!;
      const { completion } = (event as LlmDoneEvent).output;
      const answered = idsOf(running);
      return told([
        { type: "session.history", entries: [answerOf(running, event as LlmDoneEvent)] },
        said({
          type: "run.completed",
          run: running.run,
          messages: answered,
          finishReason: completion.finishReason,
        }),
        reply(context, "completed", liveOf(running).id, running.run, {
          text: completion.text,
          answered,
          usage: completion.usage,
          model: completion.model,
          finishReason: completion.finishReason,
        }),
      ]);
    }),
    /** The answer enters history; nothing runs. */
    completeRun: assign(({ context, event }) => ({
      history: appended(
        context.history,
        [answerOf(context.running!, event as LlmDoneEvent)],
        context.historyLimit,
      ),
      running: null,
    })),
    /** The call failed: tell the live caller why. */
    failRun: enqueueActions(({ context, event, enqueue }) => {
      const running = context.running;
      if (running === null || event.type !== "llm.failed") return;
      const error = toReplyError(event.error);
      enqueue.assign({ running: null });
      enqueue.emit(told([
        said({
          type: "run.failed",
          run: running.run,
          messages: idsOf(running),
          code: error.code,
          error: error.message,
        }),
        reply(context, "failed", liveOf(running).id, running.run, { error }),
      ]));
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
      const effects: SessionEffect[] = [];
      if (context.running !== null) {
        const running = context.running;
        effects.push(reply(context, status, liveOf(running).id, running.run, extra));
        effects.push(said({
          type: "run.cancelled",
          run: running.run,
          messages: idsOf(running),
          reason: event.reason,
        }));
      }
      for (const batch of context.queue) {
        effects.push(reply(context, status, liveOf(batch).id, batch.run, extra));
        for (const m of batch.messages) {
          if (m.committed) continue;
          effects.push(said({ type: "message.dropped", message: m.id, reason: event.reason }));
        }
      }
      enqueue.emit(told(effects));
      enqueue.assign({ running: null, queue: [] });
    }),
  },
}).createMachine({
  id: "session",
  context: ({ input }) => ({ ...input, running: null, queue: [] }),
  initial: "ready",
  states: {
    // The run in flight, if any, is `context.running`: starting and ending a
    // run changes the context, not the state, which halves what XState does
    // per message. Every transition that drops the run in flight names
    // `stopCall` first, and leaving `ready` for `pending` stops it too. (Stopping
    // the actor runs no exit action: the runtime cancels a session's work first.)
    ready: {
      exit: "stopCall",
      on: {
        "message.received": [
          // The hot path: nothing runs and no debounce, so the message runs at once.
          { guard: "startsNow", actions: ["tellStartAlone", "startAlone", START_CALL] },
          { guard: "isIdle", target: "pending", actions: ["announce", "enqueueMessage"] },
          { guard: "isReject", actions: ["announce", "rejectMessage"] },
          { guard: "isEnqueue", actions: ["announce", "enqueueMessage"] },
          {
            guard: and(["isMerge", "hasQueue"]),
            actions: ["announce", "foldIntoLastBatch"],
          },
          {
            guard: and(["isMerge", "noDebounce"]),
            actions: [
              "stopCall",
              "announce",
              "mergeIntoRunning",
              "tellStartHead",
              "startHeadBatch",
              START_CALL,
            ],
          },
          { guard: "isMerge", target: "pending", actions: ["announce", "mergeIntoRunning"] },
          {
            guard: "noDebounce",
            actions: [
              "stopCall",
              "announce",
              "interruptAll",
              "tellStartHead",
              "startHeadBatch",
              START_CALL,
            ],
          },
          { target: "pending", actions: ["announce", "interruptAll"] },
        ],
        "session.cancel": { actions: ["stopCall", "cancelAll"] },
        // The next queued run starts in the same step. Results of a stopped call never match.
        "llm.done": [
          {
            guard: "isCurrentRunWithQueue",
            actions: [
              "tellCompleted",
              "completeRun",
              "tellStartHead",
              "startHeadBatch",
              START_CALL,
            ],
          },
          { guard: "isCurrentRun", actions: ["tellCompleted", "completeRun"] },
        ],
        "llm.failed": [
          {
            guard: "isCurrentRunWithQueue",
            actions: ["failRun", "tellStartHead", "startHeadBatch", START_CALL],
          },
          { guard: "isCurrentRun", actions: "failRun" },
        ],
      },
    },
    pending: {
      // Entered only when debounceMs > 0: the run waits for the burst to end. Nothing is in flight.
      after: {
        debounce: { target: "ready", actions: ["tellStartHead", "startHeadBatch", START_CALL] },
      },
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
        "session.cancel": { target: "ready", actions: "cancelAll" },
      },
    },
  },
});

function isCurrentRun(context: SessionContext, event: SessionMachineEvent): boolean {
  return (event.type === "llm.done" || event.type === "llm.failed") &&
    event.run === context.running?.run;
}

function received(event: MessageReceivedEvent): SessionEffect {
  const { message, policy } = event;
  return said({
    type: "message.received",
    message: message.id,
    policy,
    length: message.content.length,
  });
}

/** The assistant turn of a run that answered. */
function answerOf(running: Batch, event: LlmDoneEvent): HistoryEntry {
  const { completion, finishedAt } = event.output;
  return {
    id: running.run,
    role: "assistant",
    content: completion.text,
    ts: finishedAt,
    answered: idsOf(running),
  };
}

function batchOf(event: MessageReceivedEvent): Batch {
  return {
    run: event.run,
    messages: [{ ...event.message, committed: event.message.committed === true }],
  };
}

function runInput(context: SessionContext): LlmRunInput {
  const running = context.running!;
  const live = liveOf(running);
  const input: LlmRunInput = {
    org: context.org,
    session: context.session,
    run: running.run,
    messages: buildPrompt(context, running),
    answered: idsOf(running),
    live: live.id,
  };
  // A merged run answers its last message as that caller asked: its options, if any.
  if (live.options !== undefined) input.options = live.options;
  return input;
}
