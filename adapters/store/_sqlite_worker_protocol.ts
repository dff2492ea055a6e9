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
