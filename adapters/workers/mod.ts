/**
 * Worker pools: `workerPool` runs a module's handlers (served with
 * `exposeWorker`) in a bounded pool of Web Workers; `llmPool` is the
 * `LlmProvider` port served by such a pool, its provider built in each worker
 * from a `ProviderSpec`. Errors cross the boundary as their own classes
 * (`encodeError`/`decodeError`).
 *
 * @example An LLM provider off the main thread
 * ```ts
 * import { llmPool } from "./mod.ts";
 *
 * await using llm = llmPool({ provider: { kind: "mock" }, size: 1 });
 * const completion = await llm.complete(
 *   { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hi" }] },
 *   { signal: new AbortController().signal },
 * );
 * console.assert(completion.text === "hi");
 * ```
 *
 * @module
 */
export { workerPool } from "./pool.ts";
export type {
  HandlerArgs,
  HandlerProgress,
  HandlerResult,
  WorkerCallOptions,
  WorkerExit,
  WorkerPool,
  WorkerPoolCloseOptions,
  WorkerPoolOptions,
  WorkerPoolStats,
} from "./pool_types.ts";
export {
  type ControlEndpoint,
  exposeWorker,
  type ExposeWorkerOptions,
  type WorkerCallContext,
  type WorkerHandler,
  type WorkerHandlers,
  type WorkerHandlersFactory,
} from "./expose_worker.ts";
export { type LlmPool, llmPool, type LlmPoolOptions } from "./llm_pool.ts";
export type { LlmProgress, LlmWants, LlmWorkerHandlers } from "./llm_worker.ts";
export { type MockSpecOptions, providerFromSpec, type ProviderSpec } from "./provider_spec.ts";
export {
  decodeError,
  encodeError,
  type ErrorReviver,
  installComlinkErrors,
  registerWireError,
  type WireError,
} from "./error_codec.ts";
export type { HistogramSnapshot } from "./_histogram.ts";
