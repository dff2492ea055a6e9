// The worker module bench/worker_pool_bench.ts runs in workerPool: one no-op method.

import { exposeWorker, type WorkerCallContext } from "../adapters/workers/expose_worker.ts";

const handlers = {
  /** Returns its argument. */
  noop: (_ctx: WorkerCallContext, value: number): number => value,
};

/** What this worker serves. */
export type NoopHandlers = typeof handlers;

exposeWorker(handlers);
