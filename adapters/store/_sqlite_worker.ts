// The store's SQLite worker: holds the `node:sqlite` connection so that its synchronous calls and file I/O stay off the event loop.
//
// It runs the messages of `_sqlite_worker_protocol.ts` one after another, in the order they
// came, on the connection `localSqliteDialect` opens (the same pragmas and background
// checkpoints as a connection on the main thread).

import { parentPort, workerData } from "node:worker_threads";
import { CompiledQuery, type DatabaseConnection, type Driver } from "kysely";
import { localSqliteDialect } from "./_local_sqlite.ts";
import {
  type HostMessage,
  type OpenOptions,
  seal,
  type Sealed,
  type SerializedError,
  unseal,
  type WorkerMessage,
} from "./_sqlite_worker_protocol.ts";

let driver: Driver | undefined;
let connection: DatabaseConnection | undefined;
// Each message waits for the one before it: a commit may wait for a checkpoint.
let tail: Promise<void> = Promise.resolve();

tail = open(workerData as OpenOptions);
parentPort!.on("message", (sealed: Sealed<HostMessage>) => {
  const message = unseal(sealed);
  tail = tail.then(() => handle(message));
});

function post(message: WorkerMessage): void {
  parentPort!.postMessage(seal(message));
}

async function open(options: OpenOptions): Promise<void> {
  try {
    const dialect = localSqliteDialect(
      options.path,
      options.busyTimeoutMs,
      options.background,
      (error) => post({ kind: "checkpoint-error", error: serialize(error) }),
    );
    driver = dialect.createDriver();
    await driver.init();
    connection = await driver.acquireConnection();
    post({ kind: "opened" });
  } catch (error) {
    post({ kind: "open-failed", error: serialize(error) });
  }
}

async function handle(message: HostMessage): Promise<void> {
  const { id } = message;
  try {
    if (driver === undefined || connection === undefined) {
      throw new Error("Cannot run the query: the SQLite worker has no open database");
    }
    switch (message.kind) {
      case "query": {
        const result = await connection.executeQuery(
          CompiledQuery.raw(message.sql, message.parameters as unknown[]),
        );
        post({
          kind: "result",
          id,
          rows: result.rows as Record<string, unknown>[],
          ...(result.numAffectedRows === undefined
            ? {}
            : { numAffectedRows: result.numAffectedRows }),
          ...(result.insertId === undefined ? {} : { insertId: result.insertId }),
        });
        return;
      }
      case "transaction": {
        // A whole transaction in one message: begin, every statement, commit; a failure rolls back.
        await driver.beginTransaction(connection, {});
        const counts: bigint[] = [];
        try {
          for (const query of message.queries) {
            const result = await connection.executeQuery(
              CompiledQuery.raw(query.sql, query.parameters as unknown[]),
            );
            counts.push(result.numAffectedRows ?? 0n);
          }
        } catch (error) {
          await driver.rollbackTransaction(connection).catch(() => {});
          throw error;
        }
        await driver.commitTransaction(connection);
        post({ kind: "affected", id, counts });
        return;
      }
      case "begin":
        await driver.beginTransaction(connection, {});
        break;
      case "commit":
        await driver.commitTransaction(connection);
        break;
      case "rollback":
        await driver.rollbackTransaction(connection);
        break;
      case "close": {
        const closing = driver;
        driver = undefined;
        connection = undefined;
        await closing.destroy();
        break;
      }
    }
    post({ kind: "result", id, rows: [] });
  } catch (error) {
    post({ kind: "error", id, error: serialize(error) });
  }
}

/** The parts of an error that cross to the host: its class name, message, and SQLite's codes. */
function serialize(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const { code, errcode, errstr } = error as Error & Record<string, unknown>;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === "string" ? { code } : {}),
    ...(typeof errcode === "number" ? { errcode } : {}),
    ...(typeof errstr === "string" ? { errstr } : {}),
  };
}
