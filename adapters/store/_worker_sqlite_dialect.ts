// A Kysely dialect whose SQLite connection lives in a worker: no query, commit or file write blocks the event loop.

import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from "kysely";
import { Worker } from "node:worker_threads";
import { checkChunkSize, sqliteDialectOf, SqliteDriverBase } from "./_sqlite_shared.ts";
import {
  type HostMessage,
  type OpenOptions,
  seal,
  type Sealed,
  type SerializedError,
  type Statement,
  unseal,
  type WorkerMessage,
} from "./_sqlite_worker_protocol.ts";
import { StoreError } from "./errors.ts";

/** The SQLite worker could not start (for example without read access to its module). */
export class SqliteWorkerUnavailable extends StoreError {
  constructor(cause: unknown) {
    const said = cause instanceof Error ? cause.message : String(cause);
    super(
      "open_failed",
      `Cannot start the SQLite worker (adapters/store/_sqlite_worker.ts): ${said}`,
      { cause },
    );
  }
}

/** Where the worker opens its database, and how. */
export interface WorkerSqliteOptions {
  /** The database file. */
  path: string;
  /** How long a statement waits for another process's lock, in ms. */
  busyTimeoutMs: number;
  /** Checkpoint the WAL in a helper thread of the worker (otherwise inline, in the worker). */
  background: boolean;
  /** Told when the helper thread fails (the worker then checkpoints inline). */
  onCheckpointError: (error: StoreError) => void;
}

/**
 * The SQLite dialect of the store on a file: Kysely builds and compiles on
 * the event loop; the statements run in a worker (`_sqlite_worker.ts`) that
 * holds the only connection. `node:sqlite` is synchronous, so on the event
 * loop every statement, commit and WAL write would stall the HTTP server and
 * the session actors for as long as it takes (≈ 4 ms for a 500-event batch,
 * more when the disk is busy); here they cost one message each way.
 *
 * The worker runs requests in the order they were sent. If it dies, the
 * queries it held fail with the cause (SQLite rolls back the open
 * transaction with the connection), and the next query opens a new worker.
 */
export function workerSqliteDialect(options: WorkerSqliteOptions): WorkerSqliteDialect {
  let driver: WorkerSqliteDriver | undefined;
  return {
    ...sqliteDialectOf(() => driver = new WorkerSqliteDriver(options)),
    runTransaction: (queries) => {
      if (driver === undefined) {
        return Promise.reject(
          new StoreError("closed", "Cannot run the transaction: the database is not open"),
        );
      }
      return driver.runTransaction(queries);
    },
    terminateWorker: () => driver?.terminateWorker() ?? Promise.resolve(),
  };
}

/** The dialect, and a way to run a whole transaction in one message to the worker. */
export interface WorkerSqliteDialect extends Dialect {
  /**
   * Runs `queries` in one transaction in the worker (rolled back if one
   * fails), waiting its turn for the connection like any Kysely query;
   * answers each statement's affected rows.
   */
  runTransaction(queries: readonly CompiledQuery[]): Promise<Array<{ numAffectedRows: bigint }>>;
  /**
   * Stops the worker as a crash would: the queries it holds fail and its open
   * transaction is gone with its connection; the next query starts a new
   * worker. For fault tests.
   */
  terminateWorker(): Promise<void>;
}

type Request =
  | { kind: "query"; sql: string; parameters: readonly unknown[] }
  | { kind: "transaction"; queries: Statement[] }
  | { kind: "begin" | "commit" | "rollback" | "close" };

interface Answer {
  rows?: Record<string, unknown>[];
  numAffectedRows?: bigint;
  insertId?: bigint;
  counts?: bigint[];
}

/** One worker and the requests waiting on it. */
class SqliteWorker {
  #worker: Worker;
  #pending = new Map<number, PromiseWithResolvers<Answer>>();
  #next = 1;
  #failure: Error | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** Starts a worker and opens the database in it; rejects if either fails. */
  static async open(options: WorkerSqliteOptions): Promise<SqliteWorker> {
    let worker: Worker;
    try {
      worker = new Worker(new URL("./_sqlite_worker.ts", import.meta.url), {
        workerData: pick(options),
      });
    } catch (error) {
      throw new SqliteWorkerUnavailable(error);
    }
    const link = new SqliteWorker(worker);
    const opened = Promise.withResolvers<void>();
    worker.on("message", (sealed: Sealed<WorkerMessage>) => {
      const message = unseal(sealed);
      switch (message.kind) {
        case "opened":
          opened.resolve();
          return;
        case "open-failed":
          opened.reject(revive(message.error));
          return;
        case "checkpoint-error":
          options.onCheckpointError(
            new StoreError("checkpoint_failed", message.error.message, { cause: message.error }),
          );
          return;
        default:
          link.#answer(message);
      }
    });
    // Heard here: unheard, a worker's uncaught error would end the process.
    worker.on("error", (error: Error) => {
      const failure = new StoreError(
        "closed",
        `Cannot run the query: the SQLite worker failed: ${error.message}`,
        { cause: error },
      );
      opened.reject(failure);
      link.#fail(failure);
    });
    worker.on("exit", (code: number) => {
      const failure = new StoreError(
        "closed",
        `Cannot run the query: the SQLite worker exited with code ${code}`,
      );
      opened.reject(failure);
      link.#fail(failure);
    });
    try {
      await opened.promise;
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    // Idle, the worker does not keep the process alive; a request in flight does.
    worker.unref();
    return link;
  }

  /** Whether the worker has died. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Sends a request at once; answers come back in the order sent. */
  request(request: Request): Promise<Answer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#next++;
    const waiter = Promise.withResolvers<Answer>();
    try {
      // Structured clone: a parameter it cannot copy (a function, a symbol) throws here.
      this.#worker.postMessage(seal({ ...request, id } satisfies HostMessage));
    } catch (error) {
      return Promise.reject(
        new TypeError(
          `Cannot run the query: a parameter cannot be sent to SQLite (${
            (error as Error).message
          })`,
        ),
      );
    }
    if (this.#pending.size === 0) this.#worker.ref();
    this.#pending.set(id, waiter);
    return waiter.promise;
  }

  /** Stops the thread at once, as a crash would; its `exit` fails what it held. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }

  /** Closes the database and stops the worker. */
  async close(): Promise<void> {
    try {
      if (this.#failure === undefined) await this.request({ kind: "close" });
    } finally {
      this.#fail(new StoreError("closed", "Cannot run the query: the store is closed"));
      await this.#worker.terminate();
    }
  }

  #answer(message: Extract<WorkerMessage, { id: number }>): void {
    const waiter = this.#pending.get(message.id);
    if (waiter === undefined) return;
    this.#pending.delete(message.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (message.kind === "error") waiter.reject(revive(message.error));
    else if (message.kind === "affected") waiter.resolve({ counts: message.counts });
    else waiter.resolve(message);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
    this.#worker.unref();
  }
}

class WorkerSqliteDriver extends SqliteDriverBase implements Driver {
  #options: WorkerSqliteOptions;
  #worker: SqliteWorker | undefined;
  #opening: Promise<SqliteWorker> | undefined;
  #destroyed = false;
  // The worker a transaction began on: its statements, commit and rollback go there and
  // nowhere else. If it dies, the transaction died with its connection; a statement of it run
  // on a new worker would commit on its own.
  #pinned: SqliteWorker | undefined;
  #connection = new WorkerSqliteConnection(() =>
    this.#pinned === undefined ? this.#live() : Promise.resolve(this.#pinned)
  );

  constructor(options: WorkerSqliteOptions) {
    super();
    this.#options = options;
  }

  async init(): Promise<void> {
    await this.#live();
  }

  /** The worker, started again if the last one died. */
  #live(): Promise<SqliteWorker> {
    if (this.#destroyed) {
      return Promise.reject(new StoreError("closed", "Cannot run the query: the store is closed"));
    }
    if (this.#worker !== undefined && !this.#worker.failed) return Promise.resolve(this.#worker);
    return this.#opening ??= SqliteWorker.open(this.#options).then(
      (worker) => {
        this.#opening = undefined;
        this.#worker = worker;
        return worker;
      },
      (error) => {
        this.#opening = undefined;
        throw error;
      },
    );
  }

  /** Stops the current worker as a crash would (see `WorkerSqliteDialect.terminateWorker`). */
  async terminateWorker(): Promise<void> {
    await this.#worker?.terminate();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    // One connection: wait until whoever holds it releases it.
    await this.mutex.lock();
    return this.#connection;
  }

  async runTransaction(
    queries: readonly CompiledQuery[],
  ): Promise<Array<{ numAffectedRows: bigint }>> {
    await this.mutex.lock();
    try {
      const { counts = [] } = await (await this.#live()).request({
        kind: "transaction",
        queries: queries.map(({ sql, parameters }) => ({ sql, parameters })),
      });
      return counts.map((numAffectedRows) => ({ numAffectedRows }));
    } finally {
      this.mutex.unlock();
    }
  }

  async beginTransaction(): Promise<void> {
    const worker = await this.#live();
    await worker.request({ kind: "begin" });
    this.#pinned = worker;
  }

  async commitTransaction(): Promise<void> {
    // The worker commits, then waits for a checkpoint when the WAL has grown too long.
    // A commit that fails leaves the pin for the rollback Kysely sends next.
    await this.#transactionWorker("commit").request({ kind: "commit" });
    this.#pinned = undefined;
  }

  async rollbackTransaction(): Promise<void> {
    const worker = this.#transactionWorker("roll back");
    this.#pinned = undefined;
    // A dead worker's transaction was rolled back with its connection; its error is the cause.
    if (worker.failed) return;
    await worker.request({ kind: "rollback" });
  }

  #transactionWorker(action: string): SqliteWorker {
    if (this.#pinned === undefined) {
      throw new StoreError("closed", `Cannot ${action}: no transaction is open`);
    }
    return this.#pinned;
  }

  async destroy(): Promise<void> {
    this.#destroyed = true;
    const worker = this.#worker ?? await this.#opening?.catch(() => undefined);
    this.#worker = undefined;
    await worker?.close();
  }
}

class WorkerSqliteConnection implements DatabaseConnection {
  #live: () => Promise<SqliteWorker>;

  constructor(live: () => Promise<SqliteWorker>) {
    this.#live = live;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const answer = await (await this.#live()).request({
      kind: "query",
      sql: compiledQuery.sql,
      parameters: compiledQuery.parameters,
    });
    return {
      rows: (answer.rows ?? []) as R[],
      ...(answer.numAffectedRows === undefined ? {} : { numAffectedRows: answer.numAffectedRows }),
      ...(answer.insertId === undefined ? {} : { insertId: answer.insertId }),
    };
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    checkChunkSize(chunkSize);
    // The rows come over in one message; they are handed out in chunks as Kysely expects.
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let i = 0; i < rows.length; i += chunkSize) yield { rows: rows.slice(i, i + chunkSize) };
  }
}

function pick(options: WorkerSqliteOptions): OpenOptions {
  const { path, busyTimeoutMs, background } = options;
  return { path, busyTimeoutMs, background };
}

/** The worker's error rebuilt on this side, with SQLite's codes. */
function revive(serialized: SerializedError): Error {
  if (serialized.name === "StoreError") {
    return new StoreError(
      (serialized.code ?? "open_failed") as ConstructorParameters<typeof StoreError>[0],
      serialized.message,
    );
  }
  const error = new Error(serialized.message) as Error & Record<string, unknown>;
  error.name = serialized.name;
  if (serialized.code !== undefined) error.code = serialized.code;
  if (serialized.errcode !== undefined) error.errcode = serialized.errcode;
  if (serialized.errstr !== undefined) error.errstr = serialized.errstr;
  return error;
}
