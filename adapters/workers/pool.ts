// A bounded, observable pool of Web Workers: least-loaded dispatch, a bounded queue, crash recovery.

import { PoolSaturatedError, ShutdownError, WorkerCrashedError } from "../../actors/errors.ts";
import { CallQueue, type QueueEntry } from "./_call_queue.ts";
import { histogram } from "./_histogram.ts";
import { type PendingCall, spawnSlot, type WorkerSlot } from "./_worker_slot.ts";
import { encodeError, installComlinkErrors } from "./error_codec.ts";
import type { WorkerHandlers } from "./expose_worker.ts";
import type {
  WorkerCallOptions,
  WorkerPool,
  WorkerPoolCloseOptions,
  WorkerPoolOptions,
  WorkerPoolStats,
} from "./pool_types.ts";

// Its types, for callers that import the pool directly (mod.ts lists the public ones).
export type * from "./pool_types.ts";

interface QueuedCall extends QueueEntry {
  method: string;
  args: unknown[];
  options: WorkerCallOptions;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  queuedAt: number;
  onAbort: (() => void) | undefined;
}

function positiveInteger(what: string, value: number, allowZero = false): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    const bound = allowZero ? ">= 0" : ">= 1";
    throw new RangeError(
      `Cannot create the worker pool: ${what} must be an integer ${bound}, current value is ${value}`,
    );
  }
  return value;
}

/**
 * A pool of Deno Web Workers running the module at `url`, which serves its
 * handlers with `exposeWorker`. Each worker multiplexes up to `concurrency`
 * calls; a call goes to the least-loaded worker, waits in a bounded FIFO
 * queue when all are full, and is refused at once past the bound. A worker
 * that dies (uncaught error, `terminate()`, a closed or blocked event loop
 * caught by the liveness ping) is replaced, and its calls fail with
 * `WorkerCrashedError` (retryable): no caller is left hanging.
 *
 * Calls, cancels and progress travel in batches on a `MessagePort` (one
 * message per worker per tick); Comlink carries the worker's control API.
 *
 * @example
 * ```ts
 * import { workerPool } from "./pool.ts";
 *
 * const url = new URL("data:text/javascript," + encodeURIComponent(`
 *   import { exposeWorker } from "${new URL("./expose_worker.ts", import.meta.url)}";
 *   exposeWorker({ double: (_ctx, n) => n * 2 });
 * `));
 * await using pool = workerPool<{ double: (ctx: unknown, n: number) => number }>(url, { size: 1 });
 * console.assert(await pool.call("double", [21]) === 42);
 * ```
 */
export function workerPool<H extends WorkerHandlers>(
  url: string | URL,
  options: WorkerPoolOptions = {},
): WorkerPool<H> {
  const {
    name = "worker",
    size = navigator.hardwareConcurrency,
    concurrency = 64,
    queueBound = 1024,
    init,
    progressFlushMs = 5,
    progressFlushChars = 16_384,
    livenessIntervalMs = 1000,
    livenessTimeoutMs = 5000,
    retryAfterMs = 100,
    onWorkerExit,
  } = options;
  positiveInteger("size", size);
  positiveInteger("concurrency", concurrency);
  positiveInteger("queueBound", queueBound, true);
  for (const [what, value] of Object.entries({ progressFlushMs, livenessIntervalMs })) {
    positiveInteger(what, value, true);
  }
  positiveInteger("progressFlushChars", progressFlushChars);
  positiveInteger("livenessTimeoutMs", livenessTimeoutMs);
  installComlinkErrors();

  const config = { init, progressFlushMs, progressFlushChars };
  const slots: (WorkerSlot | undefined)[] = [];
  const restarts = new Array<number>(size).fill(0);
  const startFailures = new Array<number>(size).fill(0);
  const restartTimers = new Set<ReturnType<typeof setTimeout>>();
  const sent = new Array<number>(size).fill(0);
  const queue = new CallQueue<QueuedCall>();
  const waitMs = histogram();
  const runMs = histogram();
  const counts = { calls: 0, completed: 0, failed: 0, saturated: 0, crashes: 0 };
  let nextId = 0;
  let livenessTimer: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  let idle: PromiseWithResolvers<void> | undefined;

  const events = {
    settled(slot: WorkerSlot, call: PendingCall, ok: boolean) {
      finish(call, ok);
      if (ok && startFailures[slot.index] !== 0) startFailures[slot.index] = 0;
      pump();
    },
    died(slot: WorkerSlot, reason: string, cause: unknown) {
      bury(slot, reason, cause, false);
    },
    progressFailed(slot: WorkerSlot, call: PendingCall, error: unknown) {
      cancel(slot, call, error);
    },
  };

  function spawn(index: number): void {
    const slot = spawnSlot({ index, url, name, config, events });
    slots[index] = slot;
    slot.connected.then(() => (startFailures[index] = 0), () => {});
  }

  function finish(call: PendingCall, ok: boolean): void {
    if (call.onAbort !== undefined) call.signal!.removeEventListener("abort", call.onAbort);
    runMs.observe(performance.now() - call.sentAt);
    if (ok && !call.cancelled) counts.completed++;
    else counts.failed++;
  }

  /** Terminate a slot and fail its calls; replace it unless the pool is closing. */
  function bury(slot: WorkerSlot, reason: string, cause: unknown, shutdown: boolean): void {
    if (slot.dead) return;
    const failed = slot.calls.size;
    const message = `Worker ${slot.index} of the ${name} pool died: ${reason}`;
    const crash = new WorkerCrashedError(message, cause === undefined ? {} : { cause });
    slot.terminate(crash);
    if (slots[slot.index] === slot) slots[slot.index] = undefined;
    for (const call of slot.calls.values()) {
      finish(call, false);
      if (call.cancelled) continue;
      call.reject(
        shutdown
          ? new ShutdownError(`Cannot finish ${call.method}: the ${name} pool closed`)
          : new WorkerCrashedError(`${message} (while running ${call.method})`, { cause: crash }),
      );
    }
    slot.calls.clear();
    if (shutdown) return;
    counts.crashes++;
    onWorkerExit?.({ pool: name, index: slot.index, reason, calls: failed, cause });
    if (closed) return;
    restarts[slot.index]!++;
    if (!slot.ready) startFailures[slot.index]!++;
    const failures = startFailures[slot.index]!;
    // A worker that keeps failing to start is restarted with backoff, not in a hot loop.
    const delay = failures === 0 ? 0 : Math.min(50 * 2 ** (failures - 1), 5000);
    if (delay === 0) spawn(slot.index);
    else {
      const timer = setTimeout(() => {
        restartTimers.delete(timer);
        if (!closed) spawn(slot.index);
        pump();
      }, delay);
      restartTimers.add(timer);
    }
    pump();
  }

  function leastLoaded(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      if (slot === undefined || slot.calls.size >= concurrency) continue;
      if (best === undefined || slot.calls.size < best.calls.size) best = slot;
    }
    return best;
  }

  function send(
    slot: WorkerSlot,
    method: string,
    args: unknown[],
    options: WorkerCallOptions,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ): void {
    const { signal, onProgress, transfer } = options;
    const call: PendingCall = {
      id: ++nextId,
      method,
      resolve,
      reject,
      onProgress,
      signal,
      onAbort: undefined,
      cancelled: false,
      sentAt: performance.now(),
    };
    if (signal !== undefined) {
      call.onAbort = () => cancel(slot, call, signal.reason);
      signal.addEventListener("abort", call.onAbort, { once: true });
    }
    if (slot.calls.size === 0) slot.lastHeard = call.sentAt;
    slot.send(call, args, transfer);
    counts.calls++;
    sent[slot.index]!++;
    if (livenessTimer === undefined) livenessTimer = setInterval(checkLiveness, livenessIntervalMs);
  }

  /** Answer the caller now; the worker aborts the call and its slot frees when it confirms. */
  function cancel(slot: WorkerSlot, call: PendingCall, reason: unknown): void {
    if (call.cancelled || !slot.calls.has(call.id)) return;
    call.cancelled = true;
    call.reject(reason);
    slot.cancel(call.id, encodeError(reason));
  }

  function pump(): void {
    while (queue.size > 0) {
      const slot = leastLoaded();
      if (slot === undefined) break;
      const entry = queue.shift()!;
      const { signal } = entry.options;
      if (entry.onAbort !== undefined) signal!.removeEventListener("abort", entry.onAbort);
      waitMs.observe(performance.now() - entry.queuedAt);
      send(slot, entry.method, entry.args, entry.options, entry.resolve, entry.reject);
    }
    if (idle !== undefined && queue.size === 0 && inFlight() === 0) idle.resolve();
  }

  function inFlight(): number {
    let n = 0;
    for (const slot of slots) n += slot?.calls.size ?? 0;
    return n;
  }

  function checkLiveness(): void {
    const now = performance.now();
    let busy = false;
    for (const slot of slots) {
      if (slot === undefined || slot.calls.size === 0) continue;
      busy = true;
      if (slot.pingSentAt >= 0) {
        if (now - slot.pingSentAt > livenessTimeoutMs) {
          const reason = `it did not answer a ping for ${livenessTimeoutMs} ms ` +
            `(it closed itself, or its event loop is blocked)`;
          bury(slot, reason, undefined, false);
        }
      } else if (now - slot.lastHeard >= livenessIntervalMs) slot.ping();
    }
    if (!busy) {
      clearInterval(livenessTimer);
      livenessTimer = undefined;
    }
  }

  function call(
    method: string,
    args: unknown[],
    options: WorkerCallOptions = {},
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (closed) {
        return reject(new ShutdownError(`Cannot call ${method}: the ${name} pool is closed`));
      }
      if (signal?.aborted) return reject(signal.reason);
      const slot = queue.size === 0 ? leastLoaded() : undefined;
      if (slot !== undefined) {
        waitMs.observe(0);
        return send(slot, method, args, options, resolve, reject);
      }
      if (queue.size >= queueBound) {
        counts.saturated++;
        const message = `Cannot call ${method} in the ${name} pool: ${size} workers run ` +
          `${inFlight()} calls (${concurrency} each) and ${queue.size} wait, the queue bound`;
        return reject(new PoolSaturatedError(message, retryAfterMs));
      }
      const entry: QueuedCall = {
        removed: false,
        method,
        args,
        options,
        resolve,
        reject,
        queuedAt: performance.now(),
        onAbort: undefined,
      };
      if (signal !== undefined) {
        entry.onAbort = () => {
          queue.remove(entry);
          reject(signal.reason);
        };
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      queue.push(entry);
    });
  }

  function stats(): WorkerPoolStats {
    const workers = restarts.map((restarted, index) => {
      const slot = slots[index];
      return {
        index,
        ready: slot?.ready ?? false,
        inFlight: slot?.calls.size ?? 0,
        calls: sent[index]!,
        restarts: restarted,
      };
    });
    return {
      name,
      size,
      concurrency,
      queueBound,
      busy: workers.filter((w) => w.inFlight > 0).length,
      queued: queue.size,
      inFlight: inFlight(),
      workers,
      ...counts,
      waitMs: waitMs.snapshot(),
      runMs: runMs.snapshot(),
    };
  }

  async function drain(graceMs: number): Promise<void> {
    if (graceMs <= 0 || (queue.size === 0 && inFlight() === 0)) return;
    idle = Promise.withResolvers();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    try {
      await Promise.race([idle.promise, grace]);
    } finally {
      clearTimeout(timer);
    }
  }

  function close(closeOptions: WorkerPoolCloseOptions = {}): Promise<void> {
    closing ??= (async () => {
      closed = true;
      await drain(closeOptions.graceMs ?? 0);
      for (const entry of queue.drain()) {
        if (entry.onAbort !== undefined) {
          entry.options.signal!.removeEventListener("abort", entry.onAbort);
        }
        entry.reject(
          new ShutdownError(
            `Cannot call ${entry.method}: the ${name} pool closed before it started`,
          ),
        );
      }
      for (const slot of slots) {
        if (slot !== undefined) bury(slot, "the pool closed", undefined, true);
      }
      for (const timer of restartTimers) clearTimeout(timer);
      restartTimers.clear();
      clearInterval(livenessTimer);
      livenessTimer = undefined;
    })();
    return closing;
  }

  for (let i = 0; i < size; i++) spawn(i);

  return {
    name,
    call: call as WorkerPool<H>["call"],
    async ready() {
      await Promise.all(slots.map((slot) => slot?.connected));
    },
    stats,
    terminateWorker(index, reason = "terminated on request") {
      const slot = slots[index];
      if (slot === undefined) {
        throw new RangeError(
          `Cannot terminate worker ${index} of the ${name} pool: it has workers 0 to ${size - 1}` +
            (index >= 0 && index < size ? " and this one is restarting" : ""),
        );
      }
      bury(slot, reason, undefined, false);
    },
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}
