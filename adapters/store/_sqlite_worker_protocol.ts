// The messages between the store and its SQLite worker (`_sqlite_worker.ts`).

/** What the worker opens, given as its `workerData`. */
export interface OpenOptions {
  /** The database file. */
  path: string;
  /** SQLite's `busy_timeout`, in ms. */
  busyTimeoutMs: number;
  /** Checkpoint the WAL in a helper thread. */
  background: boolean;
}

/** From the store to the worker; each carries an id its answer repeats. */
export type HostMessage =
  | { kind: "query"; id: number; sql: string; parameters: readonly unknown[] }
  | { kind: "transaction"; id: number; queries: Statement[] }
  | { kind: "begin" | "commit" | "rollback" | "close"; id: number };

/** A statement as it crosses to the worker. */
export interface Statement {
  /** Its SQL text. */
  sql: string;
  /** Its bound parameters. */
  parameters: readonly unknown[];
}

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  /** The error's class name (`Error`, `StoreError`, ...). */
  name: string;
  /** Its message. */
  message: string;
  /** `node:sqlite`'s `ERR_SQLITE_ERROR`, or a `StoreError`'s code. */
  code?: string;
  /** SQLite's result code. */
  errcode?: number;
  /** SQLite's text for that code. */
  errstr?: string;
}

/** From the worker to the store. */
export type WorkerMessage =
  | { kind: "opened" }
  | { kind: "open-failed"; error: SerializedError }
  | { kind: "checkpoint-error"; error: SerializedError }
  | {
    kind: "result";
    id: number;
    rows: Record<string, unknown>[];
    numAffectedRows?: bigint;
    insertId?: bigint;
  }
  | { kind: "affected"; id: number; counts: bigint[] }
  | { kind: "error"; id: number; error: SerializedError };

/**
 * A message as it is posted: inside a one-entry `Map`. Deno's
 * `node:worker_threads` walks every message it delivers looking for
 * `MessagePort`s to patch, with a `for...in` over each object and array, so a
 * batch of 10,000 parameters cost ≈ 0.8 ms of walking on the receiving side.
 * A `Map` has no enumerable properties: the walk stops at it, and the
 * structured clone copies its entries as it would the message itself.
 */
export type Sealed<T> = Map<0, T>;

/** Wraps a message for `postMessage` (see {@link Sealed}). */
export function seal<T>(message: T): Sealed<T> {
  return new Map([[0, message]]);
}

/** The message inside a sealed one. */
export function unseal<T>(sealed: Sealed<T>): T {
  return sealed.get(0)!;
}
