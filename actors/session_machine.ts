// The session actor: orders a session's messages, supersedes stale runs and folds bursts into one call.

import { and, assign, emit, enqueueActions, setup } from "xstate";
import type { HistoryEntry } from "./ports.ts";
import type { Reply, ReplyStatus } from "./reply.ts";
import { toReplyError } from "./reply_error.ts";
import { buildPrompt } from "./build_prompt.ts";
import {
  commitEntries,
  idsOf,
  liveOf,
  markCommitted,
  reply,
  said,
  superseded,
  trimmed,
} from "./_batch.ts";
import type {
  Batch,
  LlmDoneEvent,
  LlmRunInput,
  MessageReceivedEvent,
  SessionContext,
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
  SessionEmitted,
  SessionMachineEvent,
  SessionMachineInput,
} from "./session_types.ts";

/**
 * The session machine. States: `idle` (nothing to do), `pending` (a run is
 * formed and waits out the debounce window), `running` (one LLM call in
 * flight; leaving this state aborts it).
 *
 * A message that arrives while work is pending or in flight is handled by its
 * policy: `merge` folds it into the newest run (aborting the call in flight
 * when that run had started), `enqueue` queues its own run, `reject` refuses
 * it, `interrupt` aborts everything before it. Entering `running` starts
 * the LLM call (action `startCall`, given the run's prompt) and leaving it,
 * for any reason, stops it (`stopCall`); the outcome comes back as `llm.done`
 * or `llm.failed` and is taken only if it names the current run. Both actions
 * are supplied with `.provide()`; every other effect leaves the machine as an
 * emitted `session.event`, `session.reply` or `session.history`.
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
  delays: {
    debounce: ({ context }) => context.debounceMs,
  },
  guards: {
    isReject: ({ event }) => event.type === "message.received" && event.policy === "reject",
    isEnqueue: ({ event }) => event.type === "message.received" && event.policy === "enqueue",
    isMerge: ({ event }) => event.type === "message.received" && event.policy === "merge",
    isInterrupt: ({ event }) => event.type === "message.received" && event.policy === "interrupt",
    hasQueue: ({ context }) => context.queue.length > 0,
    isCurrentRun: ({ context, event }) =>
      (event.type === "llm.done" || event.type === "llm.failed") &&
      event.run === context.running?.run,
    noDebounce: ({ context }) => context.debounceMs <= 0,
  },
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
    announce: emit(({ event }) => {
      const { message, policy } = event as MessageReceivedEvent;
      return said({
        type: "message.received",
        message: message.id,
        policy,
        length: message.content.length,
      });
    }),
    /** Give the message a run of its own at the end of the queue. */
    enqueueMessage: assign({
      queue: ({ context, event }) => [...context.queue, batchOf(event as MessageReceivedEvent)],
    }),
    /** On an idle session: the message's run is the running one at once. */
    startAlone: assign({
      running: ({ event }) => batchOf(event as MessageReceivedEvent),
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
    startHeadBatch: assign(({ context }) =>
      context.queue.length === 0
        ? {}
        : { running: context.queue[0]!, queue: context.queue.slice(1) }
    ),
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
      if (running === null || event.type !== "llm.done") return;
      const { completion, finishedAt } = (event as LlmDoneEvent).output;
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
        model: completion.model,
        finishReason: completion.finishReason,
      }));
    }),
    /** The call failed: tell the live caller why. */
    failRun: enqueueActions(({ context, event, enqueue }) => {
      const running = context.running;
      if (running === null || event.type !== "llm.failed") return;
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
          { guard: "noDebounce", target: "running", actions: ["announce", "startAlone"] },
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
      entry: [
        "commitRunning",
        {
          type: "startCall",
          params: ({ context }: { context: SessionContext }) => runInput(context),
        },
      ],
      // Leaving `running` for any reason aborts the call's signal.
      exit: "stopCall",
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
        // The next queued run starts in the same step. Results of a stopped call never match.
        "llm.done": [
          {
            guard: and(["isCurrentRun", "hasQueue"]),
            target: "running",
            reenter: true,
            actions: ["completeRun", "startHeadBatch"],
          },
          { guard: "isCurrentRun", target: "idle", actions: "completeRun" },
        ],
        "llm.failed": [
          {
            guard: and(["isCurrentRun", "hasQueue"]),
            target: "running",
            reenter: true,
            actions: ["failRun", "startHeadBatch"],
          },
          { guard: "isCurrentRun", target: "idle", actions: "failRun" },
        ],
      },
    },
  },
});

function batchOf(event: MessageReceivedEvent): Batch {
  return { run: event.run, messages: [{ ...event.message, committed: false }] };
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
