// The LlmProvider port served by a pool of workers: each call's provider work runs off the main thread.

import type { LlmCallOptions, LlmCompletion, LlmProvider, LlmRequest } from "../../actors/ports.ts";
import type { LlmProgress, LlmWorkerHandlers } from "./llm_worker.ts";
import { workerPool } from "./pool.ts";
import type { WorkerExit, WorkerPoolCloseOptions, WorkerPoolStats } from "./pool_types.ts";
import { providerFromSpec, type ProviderSpec } from "./provider_spec.ts";

/** Options of {@linkcode llmPool}. */
export interface LlmPoolOptions {
  /** The provider each worker builds. */
  provider: ProviderSpec;
  /**
   * How many workers.
   * @default {navigator.hardwareConcurrency}
   */
  size?: number;
  /**
   * Calls one worker runs at once. LLM calls wait on the network, so a worker takes many.
   * @default {1000}
   */
  concurrency?: number;
  /**
   * Calls that may wait for a worker; past it a call fails with `PoolSaturatedError`.
   * @default {10000}
   */
  queueBound?: number;
  /**
   * Streamed text waits at most this long in a worker before it is sent, in ms.
   * @default {5}
   */
  progressFlushMs?: number;
  /**
   * A worker with calls in flight that does not answer a ping for this long is replaced, in ms.
   * @default {5000}
   */
  livenessTimeoutMs?: number;
  /**
   * Told when a worker dies and is replaced.
   * @default {undefined}
   */
  onWorkerExit?: (exit: WorkerExit) => void;
}

/** An LLM provider whose calls run in a worker pool, plus the pool's controls. */
export interface LlmPool extends LlmProvider, AsyncDisposable {
  /** The provider's name, as the spec's provider reports it (`mock`, `openai-compatible`, ...). */
  readonly name: string;
  /** The spec's default model. */
  readonly model: string;
  /**
   * Run the call in the least-loaded worker; `onDelta`, `onAttempt` and
   * `onUsage` are called on this thread, in order, before the call settles.
   */
  complete(request: LlmRequest, options: LlmCallOptions): Promise<LlmCompletion>;
  /** Resolves once every worker has built its provider. */
  ready(): Promise<void>;
  /** Queue depth, calls in flight per worker, crashes: for `/metrics`. */
  stats(): WorkerPoolStats;
  /** Terminate worker `index` as if it crashed; it is replaced. */
  terminateWorker(index: number, reason?: string): void;
  /** Fail calls still running after `graceMs` with `ShutdownError` and terminate the workers. */
  close(options?: WorkerPoolCloseOptions): Promise<void>;
}

/**
 * An `LlmProvider` whose `complete()` runs inside a pool of Web Workers, so
 * that SSE parsing, token counting and the provider's own retries never
 * stall the main event loop. Aborting the call's signal cancels the call by
 * id inside its worker, whose provider aborts its `fetch` (the upstream sees
 * the connection close). Streamed text crosses in batches (every
 * `progressFlushMs`, or sooner when much has piled up), never one message
 * per token. Errors come back as the classes they were thrown as
 * (`ProviderError` with `status`, `retryable` and `retryAfterMs`,
 * `CancelledError`, ...); a worker that dies fails its calls with a
 * retryable `WorkerCrashedError`, a full pool refuses with
 * `PoolSaturatedError`.
 *
 * Wrap it in `resilient()` on the main thread to retry crashed workers and
 * upstream errors alike.
 *
 * @example
 * ```ts
 * import { llmPool } from "./llm_pool.ts";
 *
 * await using llm = llmPool({ provider: { kind: "mock", options: { latencyMs: 5 } }, size: 1 });
 * const deltas: string[] = [];
 * const completion = await llm.complete(
 *   { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hello" }] },
 *   { signal: new AbortController().signal, onDelta: (text) => deltas.push(text) },
 * );
 * console.assert(completion.text === "hello" && deltas.join("") === "hello");
 * ```
 */
export function llmPool(options: LlmPoolOptions): LlmPool {
  const {
    provider: spec,
    size = navigator.hardwareConcurrency,
    concurrency = 1000,
    queueBound = 10_000,
    progressFlushMs = 5,
    livenessTimeoutMs = 5000,
    onWorkerExit,
  } = options;
  // Build it here once: a bad spec fails now, with its own message, not in every worker.
  const local = providerFromSpec(spec);
  const pool = workerPool<LlmWorkerHandlers>(new URL("./llm_worker.ts", import.meta.url), {
    name: "llm",
    size,
    concurrency,
    queueBound,
    init: spec,
    progressFlushMs,
    livenessTimeoutMs,
    ...(onWorkerExit === undefined ? {} : { onWorkerExit }),
  });

  function complete(request: LlmRequest, call: LlmCallOptions): Promise<LlmCompletion> {
    const { signal, onDelta, onAttempt, onUsage } = call;
    const wants = {
      deltas: onDelta !== undefined,
      attempts: onAttempt !== undefined,
      usage: onUsage !== undefined,
    };
    const onProgress = (progress: LlmProgress) => {
      if (typeof progress === "string") onDelta?.(progress);
      else if ("attempt" in progress) onAttempt?.(progress.attempt);
      else onUsage?.(progress.usage, progress.model);
    };
    return pool.call("complete", [requestText(request), wants], { signal, onProgress });
  }

  return {
    name: local.name,
    model: local.model ?? "",
    complete,
    ready: () => pool.ready(),
    stats: () => pool.stats(),
    terminateWorker: (index, reason) => pool.terminateWorker(index, reason),
    close: (closeOptions) => pool.close(closeOptions),
    [Symbol.asyncDispose]: () => pool.close(),
  };
}

/**
 * The request as the worker gets it: JSON text whose turns carry only `role`
 * and `content`. A session's prompt is its history entries as they are (with
 * their ids, times and answered ids): structured-cloning them cost the main
 * thread ≈ 20 µs for 50 turns, this ≈ 5 µs plus a string copy.
 */
function requestText(request: LlmRequest): string {
  return JSON.stringify({
    ...request,
    messages: request.messages.map(({ role, content }) => ({ role, content })),
  });
}
