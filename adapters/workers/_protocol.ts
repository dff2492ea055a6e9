// The wire format of a pool's hot path: batched call, cancel, progress and result records.

import type { WireError } from "./error_codec.ts";

/**
 * Both directions send one flat array per batch: records of a fixed stride
 * laid end to end. A flat array of primitives and small values clones faster
 * than an array of objects, and one message per batch (rather than per call)
 * is what lets the pool beat a hand-written one-message-per-call pool.
 */

/** Main to worker, stride 4: `[kind, id, a, b]`. */
export const TO_WORKER_STRIDE = 4;
/** Start call `id`: `a` is the method name, `b` the argument list. */
export const CALL = 0;
/** Cancel call `id`: `a` is the encoded abort reason, `b` unused. */
export const CANCEL = 1;

/** Worker to main, stride 3: `[kind, id, payload]`. */
export const TO_MAIN_STRIDE = 3;
/** Progress of call `id`: `payload` is what the handler emitted (strings already concatenated). */
export const PROGRESS = 0;
/** Call `id` returned `payload`. */
export const RESULT = 1;
/** Call `id` threw: `payload` is a {@linkcode WireError}. */
export const FAILURE = 2;

/** One record sent to a worker, before it is laid flat into a batch. */
export type ToWorkerRecord =
  | [kind: typeof CALL, id: number, method: string, args: unknown[]]
  | [kind: typeof CANCEL, id: number, reason: WireError, unused: 0];

/** What the worker's Comlink control API receives when the pool connects it. */
export interface ConnectConfig {
  /** What the pool was given as `init`, handed to the worker's handler factory. */
  init: unknown;
  /** Flush progress that waits this long, in ms. */
  progressFlushMs: number;
  /** Flush at once when this many characters of string progress wait. */
  progressFlushChars: number;
}

/** What `connect` answers once the handlers are ready. */
export interface ConnectReply {
  /** The method names the worker serves. */
  methods: string[];
}

/**
 * The control API each worker exposes through Comlink: cold, rare calls. The
 * calls themselves travel on the port handed over by `connect`.
 */
export interface WorkerControl {
  /** Take the hot-path port, build the handlers, and answer with what they serve. */
  connect(port: MessagePort, config: ConnectConfig): Promise<ConnectReply>;
  /** Liveness probe: answers with how many calls the worker is running. */
  ping(): number;
}
