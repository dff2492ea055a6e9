// What both SQLite drivers share: the dialect's SQLite parts, the FIFO hand-over of their single connection, savepoints.

import {
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  IdentifierNode,
  type Kysely,
  type QueryCompiler,
  RawNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";

/** A SQLite dialect made of `createDriver` and Kysely's own SQLite compiler, adapter and introspector. */
export function sqliteDialectOf(createDriver: () => Driver): Dialect {
  return {
    createDriver,
    createQueryCompiler: (): QueryCompiler => new SqliteQueryCompiler(),
    createAdapter: (): DialectAdapter => new SqliteAdapter(),
    // deno-lint-ignore no-explicit-any
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => new SqliteIntrospector(db),
  };
}

/**
 * The part of a single-connection SQLite driver that does not depend on where
 * the connection lives: handing it out in FIFO order, and savepoints as SQL.
 */
export abstract class SqliteDriverBase {
  /** Held from `acquireConnection` to `releaseConnection`, and by anything else using the connection. */
  protected readonly mutex: ConnectionMutex = new ConnectionMutex();

  releaseConnection(): Promise<void> {
    this.mutex.unlock();
    return Promise.resolve();
  }

  async savepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await connection.executeQuery(compileSavepoint("savepoint", name, compileQuery));
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await connection.executeQuery(compileSavepoint("rollback to", name, compileQuery));
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await connection.executeQuery(compileSavepoint("release", name, compileQuery));
  }
}

/** Throws a `RangeError` unless `chunkSize` (of `streamQuery`) is a positive integer. */
export function checkChunkSize(chunkSize: number): void {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(
      `Cannot stream query: chunkSize must be a positive integer, current value is ${chunkSize}`,
    );
  }
}

/** The SQL of a savepoint command (`savepoint`, `rollback to`, `release`) on `name`. */
function compileSavepoint(
  command: string,
  name: string,
  compileQuery: QueryCompiler["compileQuery"],
): CompiledQuery {
  // IdentifierNode quotes the name, so a savepoint name cannot inject SQL.
  const node = RawNode.createWithChildren([
    RawNode.createWithSql(`${command} `),
    IdentifierNode.create(name),
  ]);
  return compileQuery(node, { queryId: crypto.randomUUID() });
}

/** Hands out the single connection in FIFO order. */
export class ConnectionMutex {
  #tail: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  async lock(): Promise<void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => release = resolve);
    await previous;
    this.#release = release;
  }

  unlock(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}
