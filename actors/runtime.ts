// The composition root: wires the session machine to the provider, bus, store and clock.

import { deadline } from "@std/async";
import { defaultLlm } from "./_default_llm.ts";
import { persisted, PERSISTER_GROUP, resolveAdapters } from "./_adapters.ts";
import { systemClock } from "./clock.ts";
import { OverloadedError, ShutdownError, UnsupportedError } from "./errors.ts";
import type { EventBody, TroupeEvent } from "./events.ts";
import { idGenerator } from "./ids.ts";
import { llmCallActions } from "./llm_call.ts";
import { errorText, logLine } from "./log.ts";
import { type Persister, startPersister } from "./persister.ts";
import type { AuditTrailPage, SessionPage, Store, UsageTotals } from "./ports.ts";
import { NEW_SESSION, type Reply, type SendInput, type StreamEvent } from "./reply.ts";
import type {
  AuditInput,
  HistoryInput,
  HistoryResult,
  Runtime,
  RuntimeOptions,
  SessionListInput,
  SessionRef,
  ShutdownOptions,
  UsageInput,
} from "./runtime_types.ts";
import { type SessionDirectory, sessionDirectory } from "./session_directory.ts";
import { type Caller, type SessionHandle, startSession } from "./session_handle.ts";
import { checkLlmOptions } from "./llm_options.ts";
import { sessionMachine } from "./session_machine.ts";
import { streamChannel } from "./stream_channel.ts";
import {
  AUDIT_PAGE_SIZE,
  checkContent,
  checkContext,
  checkCursor,
  checkId,
  checkObject,
  checkPageSize,
  checkPolicy,
} from "./validate.ts";

export type {
  AuditInput,
  HistoryInput,
  HistoryResult,
  Runtime,
  RuntimeOptions,
  SessionListInput,
  SessionRef,
  SessionSettings,
  ShutdownOptions,
  UsageInput,
} from "./runtime_types.ts";

function logError(error: unknown, context?: { org: string; session: string }): void {
  logLine("error", "runtime error", { ...context, error: errorText(error) });
}

/**
 * Create a Troupe runtime. Every option has a default that is safe on a
 * laptop: the mock LLM (unless `TROUPE_LLM_*` names an upstream), an
 * in-memory bus and store, the `merge` policy.
 *
 * @example Double texting: the first message is folded into the second's run
 * ```ts
 * import { createRuntime } from "./runtime.ts";
 * import { mockLlm } from "../adapters/llm/mock_llm.ts";
 *
 * await using runtime = createRuntime({ llm: mockLlm({ latencyMs: 20 }) });
 * const [a, b] = await Promise.all([
 *   runtime.send({ session: "s1", content: "book a table" }),
 *   runtime.send({ session: "s1", content: "for four, at 8" }),
 * ]);
 * console.assert(a.status === "superseded" && a.supersededBy === b.runId);
 * console.assert(b.status === "completed" && b.text === "book a table\n---\nfor four, at 8");
 * ```
 */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const {
    join = "\n---\n",
    system = "",
    sessionSettings,
    clock = systemClock,
    onError = logError,
  } = options;
  // Without a provider, the TROUPE_LLM_* variables pick one (the mock when unset).
  const llm = options.llm ?? defaultLlm().provider;
  const policy = checkPolicy("policy", options.policy ?? "merge", "create the runtime");
  const debounceMs = option("debounceMs", options.debounceMs, 0, 0);
  const idleTimeoutMs = option("idleTimeoutMs", options.idleTimeoutMs, 300_000, 1);
  const maxActiveSessions = option("maxActiveSessions", options.maxActiveSessions, 10_000, 1);
  const historyLimit = option("historyLimit", options.historyLimit, 50, 0);
  const maxContentLength = option("maxContentLength", options.maxContentLength, 100_000, 1);
  const dedupeWindow = option("dedupeWindow", options.dedupeWindow, 100_000, 0);
  const maxHistoryBacklog = option("maxHistoryBacklog", options.maxHistoryBacklog, 50_000, 1);
  const sessionRetentionMs = option("sessionRetentionMs", options.sessionRetentionMs, 0, 0);
  if (typeof join !== "string") {
    throw new TypeError(
      `Cannot create the runtime: join must be a string, current value is ${join}`,
    );
  }

  const durableReplies = options.durableReplies ?? false;
  if (typeof durableReplies !== "boolean") {
    throw new TypeError(
      `Cannot create the runtime: durableReplies must be a boolean, current value is ${durableReplies}`,
    );
  }

  const { store, bus, events, queries, ready } = resolveAdapters({
    store: options.store,
    bus: options.bus,
    persist: options.persist ?? true,
    durableReplies,
  });
  // Events reach the store through a persister whenever both sides allow it.
  // With durable replies on the in-process bus, a reply waits for the persister's write:
  // it writes what it has at once, and whatever arrives meanwhile joins the next write.
  const persister: Persister | null = events !== null && bus.consume !== undefined
    ? startPersister({
      bus,
      store: events,
      group: PERSISTER_GROUP,
      clock,
      ...(durableReplies && typeof options.bus !== "string" ? { maxAgeMs: 0 } : {}),
    })
    : null;
  const durable = durableReplies ? () => persisted(bus) : undefined;

  const nextId = idGenerator(clock);
  // Idempotency: every message in flight, and the newest `dedupeWindow` settled outcomes.
  const inFlight = new Map<string, Promise<Reply>>();
  const recent = new Map<string, Promise<Reply>>();
  let unsettled = 0;
  /** History entries handed to the sessions' writes and not yet stored (or given up on). */
  let historyBacklog = 0;
  const onBacklog = (delta: number) => historyBacklog += delta;
  let onAllSettled: (() => void) | null = null;
  let closing: Promise<void> | null = null;
  let sweepTimer: unknown;

  function publish(org: string, session: string, body: EventBody): void {
    const ts = clock.now();
    bus.publish({ id: nextId(ts), ts, org, session, ...body } as TroupeEvent);
  }

  /** Live sessions whose id their sender made up for one call (see `NEW_SESSION`). */
  const oneShots = new WeakSet<SessionHandle>();

  const machine = sessionMachine.provide({
    actions: llmCallActions({
      llm,
      clock,
      publish,
      deltaSink: (input) => {
        const caller = directory.peek(keyOf(input.org, input.session))?.callers.get(input.live);
        return caller?.onDelta;
      },
    }),
  });

  const directory: SessionDirectory<SessionHandle> = sessionDirectory({
    maxActiveSessions,
    idleTimeoutMs,
    retryAfterMs: 1000,
    now: () => clock.now(),
    async activate(key, ready, isNew) {
      await ready;
      const [org, session] = key.split("\u0000") as [string, string];
      // A session id made up by its sender just now has nothing stored: no read.
      const page = isNew
        ? { entries: [], next: null }
        : await store.readHistory(org, session, { limit: historyLimit });
      const settings = sessionSettings?.({ org, session }) ?? {};
      const handle = startSession(
        {
          org,
          session,
          history: page.entries,
          debounceMs: settings.debounceMs ?? debounceMs,
          join,
          historyLimit,
          system,
        },
        settings.policy ?? policy,
        {
          machine,
          store,
          clock,
          publish,
          onSettled: settled,
          onWriteError: (error, h) => onError(error, { org: h.org, session: h.session }),
          onBacklog,
          ...(durable === undefined ? {} : { durable }),
        },
      );
      publish(org, session, { type: "session.activated", historyLength: page.entries.length });
      if (isNew) oneShots.add(handle);
      return handle;
    },
  });

  function settled(handle: SessionHandle): void {
    const key = keyOf(handle.org, handle.session);
    if (oneShots.has(handle)) {
      // No one knew a one-shot session's id before its reply, so once idle it will most
      // likely never hear again: passivate it now (after this step of its actor) instead
      // of holding it for idleTimeoutMs. A message that does come back reactivates it.
      queueMicrotask(() => {
        if (handle.isIdle() && directory.peek(key) === handle) void directory.remove(key, "idle");
      });
    } else {
      directory.get(key);
    }
    if (--unsettled === 0 && onAllSettled !== null) onAllSettled();
  }

  // Retention: a session idle for longer than `sessionRetentionMs` is deleted like
  // `deleteSession` would (its usage and audit records stay), a batch at a time.
  let retentionTimer: unknown;
  let expiring: Promise<void> = Promise.resolve();

  function scheduleRetention(expire: () => Promise<void>): void {
    if (closing !== null) return;
    const every = Math.min(Math.max(Math.floor(sessionRetentionMs / 10), 1_000), 600_000);
    retentionTimer = clock.setTimeout(() => {
      expiring = expire().catch((error) => onError(error)).finally(() => scheduleRetention(expire));
    }, every);
  }

  /** Delete the stored sessions idle since before `now - sessionRetentionMs`. */
  async function expireIdleSessions(
    find: NonNullable<Store["idleSessions"]>,
    remove: NonNullable<Store["deleteSession"]>,
  ): Promise<void> {
    await ready;
    const before = clock.now() - sessionRetentionMs;
    // At most RETENTION_ROUNDS batches a sweep: a large backlog goes over several sweeps
    // rather than holding the store at once.
    for (let round = 0; round < RETENTION_ROUNDS && closing === null; round++) {
      const idle = await find(before, RETENTION_BATCH);
      let deleted = 0;
      for (const { org, session } of idle) {
        const key = keyOf(org, session);
        // A live session is in use (it may be about to append): never under it.
        if (directory.peek(key) !== undefined || directory.activating(key) !== undefined) continue;
        // Held like a deletion: a message that comes meanwhile activates after it. The
        // store deletes only if nothing was appended since the session was found idle.
        await directory.remove(key, "deleted", async () => {
          if (!await remove(org, session, { idleBefore: before })) return;
          deleted++;
          publish(org, session, { type: "session.deleted", reason: "retention" });
        });
        if (closing !== null) break;
      }
      if (idle.length < RETENTION_BATCH || deleted === 0) break;
    }
  }
  if (sessionRetentionMs > 0) {
    const find = store.idleSessions?.bind(store);
    const remove = store.deleteSession?.bind(store);
    if (find === undefined || remove === undefined) {
      throw new UnsupportedError(
        "Cannot create the runtime: sessionRetentionMs needs a store that can find and delete idle sessions (idleSessions, deleteSession)",
      );
    }
    scheduleRetention(() => expireIdleSessions(find, remove));
  }

  function scheduleSweep(): void {
    const every = Math.max(1, Math.min(Math.floor(idleTimeoutMs / 2), 5_000));
    sweepTimer = clock.setTimeout(() => {
      directory.sweep(clock.now());
      scheduleSweep();
    }, every);
  }
  scheduleSweep();

  function refOf(input: SessionRef, action: string): { org: string; session: string } {
    checkObject(input, action);
    return {
      org: input.org === undefined ? "default" : checkId("org", input.org, action),
      session: checkId("session", input.session, action),
    };
  }

  function dispatch(input: SendInput, caller: Caller | null): Promise<Reply> {
    const { org, session } = refOf(input, "send");
    const content = checkContent(input.content, maxContentLength);
    const context = input.context === undefined
      ? undefined
      : checkContext(input.context, maxContentLength, MAX_CONTEXT_MESSAGES);
    const id = input.id === undefined ? nextId() : checkId("id", input.id, "send");
    const messagePolicy = input.policy === undefined
      ? undefined
      : checkPolicy("policy", input.policy, "send");
    const options = input.options === undefined
      ? undefined
      : checkLlmOptions(input.options, "send");
    if (closing !== null) throw new ShutdownError("Cannot send: the runtime is shutting down");
    if (bus.saturated?.() === true) {
      throw new OverloadedError(
        "Cannot send: events cannot be delivered right now and the event buffer is full",
        1000,
      );
    }
    if (historyBacklog >= maxHistoryBacklog) {
      throw new OverloadedError(
        `Cannot send: session history cannot be stored right now and ${historyBacklog} entries wait (maxHistoryBacklog)`,
        1000,
      );
    }

    const key = keyOf(org, session);
    // Only a caller's own id can come again: a generated one needs no outcome kept.
    const outcomeKey = input.id === undefined ? null : `${key}\u0000${id}`;
    if (outcomeKey !== null) {
      const prior = inFlight.get(outcomeKey) ?? recent.get(outcomeKey);
      if (prior !== undefined) return prior;
    }

    unsettled++;
    let resolveReply!: (reply: Reply) => void;
    const reply = new Promise<Reply>((resolve) => resolveReply = resolve);
    const target: Caller = {
      settle: outcomeKey === null
        ? (r) => {
          resolveReply(r);
          caller?.settle(r);
        }
        : (r) => {
          const outcome = inFlight.get(outcomeKey);
          inFlight.delete(outcomeKey);
          // A refused message left no trace, so the same id may be sent again.
          if (r.status !== "rejected" && outcome !== undefined) remember(outcomeKey, outcome);
          resolveReply(r);
          caller?.settle(r);
        },
    };
    if (caller?.onDelta !== undefined) target.onDelta = caller.onDelta;
    const message: Parameters<SessionHandle["send"]>[0] = { id, content };
    if (context !== undefined) message.context = context;
    if (options !== undefined) message.options = options;
    const deliver = (handle: SessionHandle) =>
      handle.send(
        message,
        messagePolicy ?? handle.policy,
        nextId(),
        target,
      );

    const live = directory.get(key);
    if (live !== undefined) {
      if (outcomeKey !== null) inFlight.set(outcomeKey, reply);
      deliver(live);
      return reply;
    }
    const activated = directory.acquire(
      key,
      (input as { [NEW_SESSION]?: boolean })[NEW_SESSION] === true,
    ).then((handle) => {
      deliver(handle);
      return reply;
    }, (error) => {
      if (outcomeKey !== null) inFlight.delete(outcomeKey);
      if (--unsettled === 0 && onAllSettled !== null) onAllSettled();
      publish(org, session, {
        type: "request.rejected",
        code: error?.code ?? "internal_error",
        reason: error instanceof Error ? error.message : String(error),
      });
      throw error;
    });
    if (outcomeKey !== null) inFlight.set(outcomeKey, activated);
    return activated;
  }

  function remember(key: string, reply: Promise<Reply>): void {
    if (dedupeWindow === 0) return;
    recent.set(key, reply);
    if (recent.size > dedupeWindow) recent.delete(recent.keys().next().value!);
  }

  function send(input: SendInput): Promise<Reply> {
    try {
      return dispatch(input, null);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function stream(input: SendInput): AsyncIterableIterator<StreamEvent> {
    const channel = streamChannel();
    try {
      dispatch(input, {
        settle: (reply) => {
          channel.push({ type: "reply", reply });
          channel.end();
        },
        onDelta: (text) => channel.push({ type: "delta", text }),
      }).then((reply) => {
        // A duplicate id settles from the first send's outcome, without deltas.
        channel.push({ type: "reply", reply });
        channel.end();
      }, (error) => channel.fail(error));
    } catch (error) {
      channel.fail(error);
    }
    return channel.iterator;
  }

  async function history(input: HistoryInput): Promise<HistoryResult> {
    const { org, session } = refOf(input, "read history");
    const limit = checkPageSize(input.limit, "read history");
    checkCursor("before", input.before, "read history");
    const key = keyOf(org, session);
    // Read your writes: wait for the session's history writes that are under way.
    await (directory.peek(key)?.flushed() ?? directory.settled(key));
    const page = await store.readHistory(org, session, {
      limit,
      ...(input.before === undefined ? {} : { before: input.before }),
    });
    return { messages: page.entries, next: page.next };
  }

  async function cancel(input: SessionRef): Promise<number> {
    const { org, session } = refOf(input, "cancel");
    const key = keyOf(org, session);
    const handle = directory.peek(key) ?? await directory.activating(key);
    return handle?.cancel("cancelled") ?? 0;
  }

  async function sessions(input: SessionListInput = {}): Promise<SessionPage> {
    const action = "list sessions";
    checkObject(input, action);
    const org = input.org === undefined ? "default" : checkId("org", input.org, action);
    const limit = checkPageSize(input.limit, action);
    checkCursor("after", input.after, action);
    if (store.listSessions === undefined) throw missing(action, "listSessions");
    // Read your writes: wait for the history writes under way in the org's live sessions.
    const live = [...directory.entries()].filter(([, handle]) => handle.org === org);
    await Promise.all(live.map(([, handle]) => handle.flushed()));
    return await store.listSessions(org, {
      limit,
      ...(input.after === undefined ? {} : { after: input.after }),
    });
  }

  async function deleteSession(input: SessionRef): Promise<boolean> {
    const { org, session } = refOf(input, "delete the session");
    const deleteStored = store.deleteSession?.bind(store);
    if (deleteStored === undefined) throw missing("delete the session", "deleteSession");
    const key = keyOf(org, session);
    // No await unless an activation is under way, so that the removal below is in place
    // before any message sent after this call is dispatched.
    const activating = directory.peek(key) === undefined ? directory.activating(key) : undefined;
    const handle = directory.peek(key) ??
      (activating === undefined ? undefined : await activating.catch(() => undefined));
    // Cancel the run and the queue (upstream is aborted), stop the actor once its writes end,
    // then delete what is stored; a message sent meanwhile activates the session after that.
    handle?.cancel("cancelled");
    // Outcomes kept for idempotent sends are state too: the same id starts afresh.
    for (const outcome of recent.keys()) {
      if (outcome.startsWith(`${key}\u0000`)) recent.delete(outcome);
    }
    let existed = handle !== undefined;
    await directory.remove(key, "deleted", async () => {
      // The cancelled run's events reach the store before its rows are deleted. With the bus
      // or the store down, the deletion goes on after a while: late run rows hold no content.
      const stored = await storedSoFar().catch((error) => onError(error, { org, session }));
      if (stored === false) {
        onError(
          new Error(
            `Deleting the session before its last events are stored (waited ${STORED_WAIT_MS} ms): ` +
              "rows of its runs may be written after the deletion",
          ),
          { org, session },
        );
      }
      existed = (await deleteStored(org, session)) || existed;
      if (existed) publish(org, session, { type: "session.deleted", reason: "requested" });
    });
    return existed;
  }

  function shutdown(shutdownOptions: ShutdownOptions = {}): Promise<void> {
    if (closing !== null) return closing;
    let graceMs: number;
    try {
      graceMs = option("graceMs", shutdownOptions.graceMs, 10_000, 0, "shut down");
    } catch (error) {
      return Promise.reject(error);
    }
    closing = (async () => {
      clock.clearTimeout(sweepTimer);
      clock.clearTimeout(retentionTimer);
      if (unsettled > 0) {
        let timer: unknown;
        await new Promise<void>((resolve) => {
          onAllSettled = resolve;
          timer = clock.setTimeout(resolve, graceMs);
        });
        clock.clearTimeout(timer);
      }
      for (const [, handle] of directory.entries()) handle.cancel("shutdown");
      await directory.passivateAll("shutdown");
      // The order of the design: drain the pools (the cancelled calls settle and
      // record their usage), flush the bus, drain the persisters, close the store.
      await llm.close?.().catch((error) => onError(error));
      await bus.flush().catch((error) => onError(error));
      await persister?.close();
      await bus.close().catch((error) => onError(error));
      await expiring;
      await store.close();
    })();
    return closing;
  }

  /**
   * Read your writes: wait until the events emitted so far are stored (not later ones), for
   * at most STORED_WAIT_MS, since with the bus or the store down that could be long. Resolves
   * with false when that was not enough.
   */
  async function storedSoFar(): Promise<boolean> {
    try {
      await deadline(bus.flush(), STORED_WAIT_MS);
      return true;
    } catch (error) {
      if (error instanceof DOMException && error.name === "TimeoutError") return false;
      throw error;
    }
  }

  /** A read of stored events is refused as overloaded (retry shortly), not answered without them. */
  async function readYourWrites(action: string): Promise<void> {
    if (await storedSoFar()) return;
    throw new OverloadedError(
      `Cannot ${action}: the events emitted before this request are not stored yet ` +
        `(the event bus or the store is behind or unavailable); try again shortly`,
      STORED_RETRY_AFTER_MS,
    );
  }

  async function usage(input: UsageInput): Promise<UsageTotals[]> {
    checkObject(input, "read usage");
    const org = input.org === undefined ? "default" : checkId("org", input.org, "read usage");
    if (queries === null) throw noQueries("read usage");
    await readYourWrites("read usage");
    return queries.usageTotals({ ...input, org });
  }

  async function audit(input: AuditInput): Promise<AuditTrailPage> {
    const action = "read the audit trail";
    const { org, session } = refOf(input, action);
    // Checked before the wait below: a bad page is refused at once, not after up to 15 s.
    const limit = checkPageSize(input.limit, action, AUDIT_PAGE_SIZE);
    checkCursor("before", input.before, action);
    if (queries === null) throw noQueries(action);
    await readYourWrites(action);
    return queries.auditTrail({
      org,
      session,
      limit,
      ...(input.before === undefined ? {} : { before: input.before }),
    });
  }

  return {
    send,
    stream,
    history,
    cancel,
    sessions,
    deleteSession,
    ready: () => ready,
    usage,
    audit,
    subscribe: (handler) => bus.subscribe(handler),
    shutdown,
    close: () => shutdown(),
    [Symbol.asyncDispose]: () => shutdown(),
    get activeSessions() {
      return directory.size;
    },
    get unpersistedEvents() {
      return persister?.stats().buffered ?? 0;
    },
    get unstoredHistory() {
      return historyBacklog;
    },
  };
}

// How long a read of stored events (usage, audit) or a deletion waits for the events emitted
// before it to be stored, and the Retry-After of a read refused when that is not enough. Longer
// than the NATS bus's own bound on waiting for its consumer groups (10 s): after a crash of the
// server, a group can hold its ack floor back until an event whose ack it forgot comes again,
// and a read then goes on, after that bound, with what is stored rather than being refused.
const STORED_WAIT_MS = 15_000;
const STORED_RETRY_AFTER_MS = 1_000;

// A retention sweep deletes at most RETENTION_ROUNDS batches of RETENTION_BATCH sessions.
const RETENTION_BATCH = 500;
const RETENTION_ROUNDS = 10;

// A bound on a caller's conversation, whatever the body limit in front of the runtime.
const MAX_CONTEXT_MESSAGES = 10_000;

function noQueries(action: string): UnsupportedError {
  return new UnsupportedError(
    `Cannot ${action}: the store keeps no events; give the runtime a SQL store (a file path or a postgres:// URL)`,
  );
}

function missing(action: string, method: string): UnsupportedError {
  return new UnsupportedError(
    `Cannot ${action}: the store has no ${method}; give the runtime one that has`,
  );
}

function keyOf(org: string, session: string): string {
  return `${org}\u0000${session}`;
}

function option(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  action = "create the runtime",
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be a number >= ${min}, current value is ${value}`,
    );
  }
  return value;
}
