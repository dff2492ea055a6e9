// The public types of a worker pool: its options, per-call options, stats and the pool itself.

import type { HistogramSnapshot } from "./_histogram.ts";
import type { WorkerCallContext, WorkerHandlers } from "./expose_worker.ts";

/** Options of `workerPool`. */
export interface WorkerPoolOptions {
  /**
   * The pool's name, in errors, stats and worker names (`llm`, `tools`).
   * @default {"worker"}
   */
  name?: string;
  /**
   * How many workers.
   * @default {navigator.hardwareConcurrency}
   */
  size?: number;
  /**
   * Calls one worker runs at once; more wait in the pool's queue.
   * @default {64}
   */
  concurrency?: number;
  /**
   * Calls that may wait for a worker; past it a call fails with `PoolSaturatedError`.
   * @default {1024}
   */
  queueBound?: number;
  /**
   * Handed to the worker's handler factory (must be structured-cloneable).
   * @default {undefined}
   */
  init?: unknown;
  /**
   * Progress waits at most this long in a worker before it is sent, in ms.
   * @default {5}
   */
  progressFlushMs?: number;
  /**
   * Progress is sent at once when this many characters of text wait in a worker.
   * @default {16384}
   */
  progressFlushChars?: number;
  /**
   * A worker with calls in flight that said nothing for this long is pinged, in ms.
   * @default {1000}
   */
  livenessIntervalMs?: number;
  /**
   * A ping unanswered for this long means the worker is gone (it closed
   * itself or its event loop is blocked): it is replaced, its calls fail.
   * @default {5000}
   */
  livenessTimeoutMs?: number;
  /**
   * The retry hint of a `PoolSaturatedError`, in ms.
   * @default {100}
   */
  retryAfterMs?: number;
  /**
   * Told when a worker dies and is replaced (for logs and metrics).
   * @default {undefined}
   */
  onWorkerExit?: (exit: WorkerExit) => void;
}

/**
 * A worker that died, as told to `onWorkerExit`.
 *
 * @example
 * ```ts
 * import type { WorkerExit } from "./pool.ts";
 *
 * const exit: WorkerExit = { pool: "llm", index: 0, reason: "it threw", calls: 2, cause: undefined };
 * console.assert(exit.calls === 2);
 * ```
 */
export interface WorkerExit {
  /** The pool's name. */
  pool: string;
  /** Which worker, 0-based. */
  index: number;
  /** How it died, for people. */
  reason: string;
  /** How many calls it failed. */
  calls: number;
  /** The underlying error, when there is one. */
  cause: unknown;
}

/** Per-call options of {@linkcode WorkerPool.call}. */
export interface WorkerCallOptions<P = unknown> {
  /** Aborting it removes a queued call, or cancels a running one inside the worker. */
  signal?: AbortSignal;
  /** Receives what the handler emits, in order, before the call settles. */
  onProgress?: (progress: P) => void;
  /** Objects in the arguments to transfer rather than copy. */
  transfer?: Transferable[];
}

/**
 * What the pool reports for `/metrics`.
 *
 * @example
 * ```ts
 * import type { WorkerPoolStats } from "./pool.ts";
 *
 * const idle = (stats: WorkerPoolStats) => stats.inFlight === 0 && stats.queued === 0;
 * console.assert(typeof idle === "function");
 * ```
 */
export interface WorkerPoolStats {
  /** The pool's name. */
  name: string;
  /** Workers the pool keeps. */
  size: number;
  /** Calls one worker runs at once. */
  concurrency: number;
  /** Calls that may wait. */
  queueBound: number;
  /** Workers with at least one call in flight. */
  busy: number;
  /** Calls waiting for a worker. */
  queued: number;
  /** Calls running in workers. */
  inFlight: number;
  /** Per worker: calls in flight, calls sent, and how often the slot was restarted. */
  workers: { index: number; ready: boolean; inFlight: number; calls: number; restarts: number }[];
  /** Calls sent to a worker since the start. */
  calls: number;
  /** Calls that returned. */
  completed: number;
  /** Calls that threw, crashed or were cancelled. */
  failed: number;
  /** Calls refused because the queue was full. */
  saturated: number;
  /** Workers that died (and were replaced). */
  crashes: number;
  /** Time calls waited in the queue, in ms. */
  waitMs: HistogramSnapshot;
  /** Time calls ran in a worker, in ms. */
  runMs: HistogramSnapshot;
}

/** Options of {@linkcode WorkerPool.close}. */
export interface WorkerPoolCloseOptions {
  /**
   * Let calls in flight and queued calls finish for up to this long, in ms;
   * then the rest fail with `ShutdownError` and the workers are terminated.
   * @default {0}
   */
  graceMs?: number;
}

/** The arguments a handler takes after its call context: what `call` passes. */
// deno-lint-ignore no-explicit-any
export type HandlerArgs<F> = F extends (ctx: any, ...args: infer A) => unknown ? A : never;
/** What a handler emits through its context: what `onProgress` receives. */
export type HandlerProgress<F> = F extends
  (ctx: WorkerCallContext<infer P>, ...args: never[]) => unknown ? P
  : unknown;
/** What a handler returns, awaited: what `call` resolves with. */
// deno-lint-ignore no-explicit-any
export type HandlerResult<F> = F extends (...args: any[]) => infer R ? Awaited<R> : never;

/** A pool of workers serving the handlers `H` (the type of what the worker module exposes). */
export interface WorkerPool<H extends WorkerHandlers> extends AsyncDisposable {
  /** The pool's name. */
  readonly name: string;
  /**
   * Run `method` in the least-loaded worker. Fails with `PoolSaturatedError`
   * when every worker is full and the queue is at its bound, with
   * `WorkerCrashedError` when the worker died first, with the signal's reason
   * when aborted, with `ShutdownError` once the pool is closed, and with what
   * the handler threw (rebuilt as the same class) otherwise.
   */
  call<K extends keyof H & string>(
    method: K,
    args: HandlerArgs<H[K]>,
    options?: WorkerCallOptions<HandlerProgress<H[K]>>,
  ): Promise<HandlerResult<H[K]>>;
  /** Resolves once every worker is connected; rejects with `WorkerCrashedError` if one failed to start. */
  ready(): Promise<void>;
  /** Counters and gauges for `/metrics`. */
  stats(): WorkerPoolStats;
  /** Terminate worker `index` as if it crashed (a wedged worker, a test): its calls fail, it is replaced. */
  terminateWorker(index: number, reason?: string): void;
  /** Stop taking calls, let running ones finish within `graceMs`, fail the rest, terminate the workers. */
  close(options?: WorkerPoolCloseOptions): Promise<void>;
}
