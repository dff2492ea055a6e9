// One live session: its XState actor, the callers waiting on it, and its ordered history writes.

import { type AnyActorLogic, createActor } from "xstate";
import { sleep } from "./clock.ts";
import { backoffDelay } from "./persister_write.ts";
import type { Policy } from "./events.ts";
import type { EventBody } from "./events.ts";
import type { ChatMessage, Clock, HistoryEntry, LlmOptions, Store } from "./ports.ts";
import type { Reply } from "./reply.ts";
import type { PassivationReason } from "./session_directory.ts";
import type { SessionEmitted, sessionMachine, SessionMachineInput } from "./session_machine.ts";

/** Someone waiting for a message's outcome. */
export interface Caller {
  /** Receives the reply, once. */
  settle(reply: Reply): void;
  /** Receives generated text as it arrives, when the caller streams. */
  onDelta?: (text: string) => void;
}

/** What a session handle needs from the runtime. */
export interface SessionHandleDeps {
  /** The machine with its LLM actor provided. */
  machine: typeof sessionMachine;
  /** Where history is appended. */
  store: Store;
  /** Timers for debounce, and the time messages arrive. */
  clock: Clock;
  /** Publish one of the session's events. */
  publish(org: string, session: string, body: EventBody): void;
  /** A caller was settled (the runtime marks the session used and counts what is pending). */
  onSettled(handle: SessionHandle): void;
  /** A history write, or the wait of a durable reply, failed: report it (the session goes on). */
  onWriteError(error: unknown, handle: SessionHandle): void;
  /**
   * History entries were handed to the writes (`delta > 0`) or left them, stored or
   * given up on (`delta < 0`): the runtime bounds what waits across sessions.
   */
  onBacklog?: (delta: number) => void;
  /**
   * Durable replies: resolves once every event published so far is stored.
   * Given, a reply is delivered only after it and the history written before
   * it; replies of the session still leave in the order they were settled.
   */
  durable?: () => Promise<void>;
}

/** A live session. */
export interface SessionHandle {
  readonly org: string;
  readonly session: string;
  /** The session's own default policy. */
  readonly policy: Policy;
  /** When the session was last used; kept by the session directory. */
  lastActive: number;
  /** Callers not yet settled, by message id. */
  readonly callers: Map<string, Caller>;
  /** Hand a message to the actor; `caller` is settled with its outcome. */
  send(
    message: { id: string; content: string; context?: ChatMessage[]; options?: LlmOptions },
    policy: Policy,
    run: string,
    caller: Caller,
  ): void;
  /** Stop the run in flight and drop queued messages (callers get `cancelled`); returns how many. */
  cancel(reason: "cancelled" | "shutdown"): number;
  /** True when no caller waits (nothing queued or in flight). */
  isIdle(): boolean;
  /** Resolves once every history write so far is stored. */
  flushed(): Promise<void>;
  /** Stop the actor; resolves once its writes are stored. */
  stop(reason: PassivationReason): Promise<void>;
}

// How long a history append is retried before it is reported lost, and its backoff: 100 ms
// doubling to 5 s, a quarter of it random so that sessions do not retry in step.
const HISTORY_RETRY_MS = 60_000;
const NEVER = new AbortController().signal;

/**
 * Start a session actor and wire what it emits: replies settle callers,
 * events go to the bus, history is appended to the store strictly in order
 * (one promise chain per session, so a write never overtakes an earlier one).
 *
 * @example
 * ```ts
 * import { startSession } from "./session_handle.ts";
 * import { sessionMachine } from "./session_machine.ts";
 * import { systemClock } from "./clock.ts";
 * import { memoryStore } from "../adapters/store/memory_store.ts";
 *
 * const handle = startSession(
 *   { org: "o", session: "s", history: [], debounceMs: 0, join: "\n", historyLimit: 50, system: "" },
 *   "merge",
 *   {
 *     machine: sessionMachine.provide({ actions: { startCall: () => {}, stopCall: () => {} } }),
 *     store: memoryStore(),
 *     clock: systemClock,
 *     publish: () => {},
 *     onSettled: () => {},
 *     onWriteError: () => {},
 *   },
 * );
 * handle.send({ id: "m1", content: "hi" }, "merge", "r1", { settle: () => {} });
 * console.assert(!handle.isIdle() && handle.cancel("cancelled") === 1 && handle.isIdle());
 * await handle.stop("shutdown");
 * ```
 */
export function startSession(
  input: SessionMachineInput,
  policy: Policy,
  deps: SessionHandleDeps,
): SessionHandle {
  const { org, session } = input;
  const { store, clock, publish, onSettled, onWriteError, durable } = deps;
  const callers = new Map<string, Caller>();
  let writes: Promise<void> = Promise.resolve();
  // Durable replies settled by the actor, not yet delivered, and the chain that keeps their order.
  let undelivered = 0;
  let delivering: Promise<void> = Promise.resolve();

  const actor = createActor(deps.machine as AnyActorLogic, { input, clock });
  // The runtime remembers the outcome of a caller's message id in memory only. After a
  // restart, an id the session's stored history already holds is answered from there.
  const recall = input.history.length === 0 ? null : recallFrom(input.history);

  const handle: SessionHandle = {
    org,
    session,
    policy,
    lastActive: clock.now(),
    callers,
    send(message, messagePolicy, run, caller) {
      const prior = recall?.recall(org, session, message.id, run);
      if (typeof prior === "object") return deliver(caller, prior);
      callers.set(message.id, caller);
      actor.send({
        type: "message.received",
        message: prior === "unanswered"
          ? { ...message, receivedAt: clock.now(), committed: true }
          : { ...message, receivedAt: clock.now() },
        policy: messagePolicy,
        run,
      });
    },
    cancel(reason) {
      const count = callers.size;
      if (count > 0) actor.send({ type: "session.cancel", reason });
      return count;
    },
    isIdle: () => callers.size === 0 && undelivered === 0,
    flushed: () => writes,
    stop(reason) {
      // A session with callers is never passivated; on shutdown the runtime cancels first.
      if (callers.size > 0) handle.cancel("shutdown");
      actor.stop();
      publish(org, session, { type: "session.passivated", reason });
      return writes;
    },
  };

  // Entries emitted while a write is queued join it: one append per turn of the
  // chain, not one per step (a message and its answer are often one write).
  let batch: HistoryEntry[] | null = null;
  const reportWrite = (error: unknown) => onWriteError(error, handle);
  const onBacklog = deps.onBacklog ?? (() => {});
  const writeBatch = async () => {
    const entries = batch!;
    batch = null;
    try {
      return await appendWithRetry(entries);
    } finally {
      onBacklog(-entries.length);
    }
  };
  const appendWithRetry = async (entries: HistoryEntry[]) => {
    // A store that is briefly unreachable (a database restart) must not cost the history its
    // turns: the same append is tried again, with backoff, for a bounded time. Later appends
    // wait behind it, so the order holds. The store skips an entry whose id it already has,
    // which makes a retry of an append that was committed unseen harmless.
    const startedAt = clock.now();
    for (let failures = 1;; failures++) {
      try {
        return await store.appendHistory(org, session, entries);
      } catch (error) {
        if (clock.now() - startedAt >= HISTORY_RETRY_MS) throw error;
        if (failures === 1) {
          reportWrite(
            new Error(
              `Cannot append the history of session ${session} yet: retrying for up to ${HISTORY_RETRY_MS} ms`,
              { cause: error },
            ),
          );
        }
        await sleep(clock, backoffDelay(failures, 100, 5_000, 0.25 * Math.random()), NEVER);
      }
    }
  };
  const append = (entries: HistoryEntry[]) => {
    onBacklog(entries.length);
    recall?.saw(entries);
    if (batch !== null) {
      for (const entry of entries) batch.push(entry);
      return;
    }
    batch = entries.slice();
    writes = writes.then(writeBatch).catch(reportWrite);
  };
  const deliver = (caller: Caller, reply: Reply) => {
    caller.settle(reply);
    onSettled(handle);
  };
  const settle = (reply: Reply) => {
    const caller = callers.get(reply.messageId);
    if (caller === undefined) return;
    callers.delete(reply.messageId);
    if (durable === undefined) return deliver(caller, reply);
    // `writes` already holds this step's history (its effect comes before the reply).
    undelivered++;
    const stored = Promise.all([writes, durable()]);
    stored.catch(() => {}); // handled in turn below; not an unhandled rejection meanwhile
    const done = () => {
      undelivered--;
      deliver(caller, reply);
    };
    delivering = delivering.then(() => stored).then(done, (error) => {
      // The bus was closed under the wait: the reply is still its caller's.
      reportWrite(error);
      done();
    });
  };
  actor.on("session.effects", ({ effects }: SessionEmitted) => {
    for (const effect of effects) {
      if (effect.type === "session.event") publish(org, session, effect.body);
      else if (effect.type === "session.history") append(effect.entries);
      else settle(effect.reply);
    }
  });
  actor.start();
  return handle;
}

/** What a session knows of the message ids in the history it started from. */
export interface Recall {
  /**
   * The first outcome of message `id`, as the history says:
   * - an answer lists it: that answer, `completed` (without the usage and model,
   *   which history does not keep);
   * - a later answer does not: the message was superseded (or its run failed or was
   *   cancelled) and a newer one was answered since; running it now would answer a
   *   stale message, so it is `superseded` by that answer;
   * - no answer follows it yet (the process stopped during its run): `"unanswered"`;
   *   it runs again, and is not stored twice.
   *
   * An id not in that history gives `undefined`.
   */
  recall(org: string, session: string, id: string, run: string): Reply | "unanswered" | undefined;
  /** Entries appended since: an answer settles the messages still unanswered. */
  saw(entries: readonly HistoryEntry[]): void;
}

/**
 * Index the message ids of `history` (the entries a session started from) for
 * {@linkcode Recall}. Only those ids are tracked: the runtime remembers the ids
 * sent since.
 */
export function recallFrom(history: readonly HistoryEntry[]): Recall {
  const answeredBy = new Map<string, HistoryEntry>();
  const staleBy = new Map<string, string>();
  const unanswered = new Set<string>();
  // An answer settles every message waiting before it: answered if it lists it, else stale.
  const answer = (entry: HistoryEntry) => {
    for (const id of entry.answered ?? []) answeredBy.set(id, entry);
    for (const id of unanswered) if (!answeredBy.has(id)) staleBy.set(id, entry.id);
    unanswered.clear();
  };
  for (const entry of history) {
    if (entry.role === "user") unanswered.add(entry.id);
    else answer(entry);
  }
  return {
    recall(org, session, id, run) {
      const answer = answeredBy.get(id);
      if (answer !== undefined) {
        return {
          status: "completed",
          org,
          session,
          messageId: id,
          runId: answer.id,
          text: answer.content,
          answered: answer.answered ?? [id],
        };
      }
      const by = staleBy.get(id);
      if (by === undefined) return unanswered.has(id) ? "unanswered" : undefined;
      return {
        status: "superseded",
        org,
        session,
        messageId: id,
        runId: run,
        text: "",
        answered: [],
        supersededBy: by,
      };
    },
    saw(entries) {
      if (unanswered.size === 0) return;
      for (const entry of entries) if (entry.role === "assistant") answer(entry);
    },
  };
}
