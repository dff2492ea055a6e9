// A Kysely dialect over Deno's built-in `node:sqlite`, shaped like Kysely's own SqliteDialect.

import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from "kysely";
import { checkChunkSize, sqliteDialectOf, SqliteDriverBase } from "./_sqlite_shared.ts";

/**
 * A value `node:sqlite` can bind to a statement parameter.
 *
 * @example
 * ```ts
 * import type { NodeSqliteValue } from "./node_sqlite_dialect.ts";
 *
 * const values: NodeSqliteValue[] = [null, 1, 2n, "three", new Uint8Array([4])];
 * ```
 */
export type NodeSqliteValue = null | number | bigint | string | Uint8Array;

/**
 * The part of `node:sqlite`'s `StatementSync` the driver uses.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import type { NodeSqliteStatement } from "./node_sqlite_dialect.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * const statement: NodeSqliteStatement = db.prepare("select ? as answer");
 * console.assert(statement.columns().length === 1);
 * db.close();
 * ```
 */
export interface NodeSqliteStatement {
  /** Runs the statement and returns every row. */
  all(...parameters: NodeSqliteValue[]): unknown[];
  /** Runs a statement that returns no rows. */
  run(...parameters: NodeSqliteValue[]): {
    changes: number | bigint;
    lastInsertRowid: number | bigint;
  };
  /** Runs the statement and yields its rows one at a time. */
  iterate(...parameters: NodeSqliteValue[]): Iterator<unknown>;
  /** Describes the result columns; empty for statements that return no rows. */
  columns(): ReadonlyArray<unknown>;
}

/**
 * The part of `node:sqlite`'s `DatabaseSync` the driver uses; a `DatabaseSync` satisfies it.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import type { NodeSqliteDatabase } from "./node_sqlite_dialect.ts";
 *
 * const db: NodeSqliteDatabase = new DatabaseSync(":memory:");
 * db.exec("create table t (id integer primary key)");
 * db.close();
 * ```
 */
export interface NodeSqliteDatabase {
  /** Compiles one SQL statement. */
  prepare(sql: string): NodeSqliteStatement;
  /** Runs one or more SQL statements without parameters. */
  exec(sql: string): void;
  /**
   * Closes the database; statements prepared from it stop working. It may
   * return a promise (a wrapper that stops helpers first); the driver awaits it.
   */
  close(): void | Promise<void>;
}

/**
 * Options for {@linkcode nodeSqliteDialect}.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import type { NodeSqliteDialectOptions } from "./node_sqlite_dialect.ts";
 *
 * const options: NodeSqliteDialectOptions = {
 *   database: () => new DatabaseSync(":memory:"),
 *   statementCacheSize: 64,
 * };
 * ```
 */
export interface NodeSqliteDialectOptions {
  /**
   * The database, or a function that opens it when Kysely first needs it.
   * The driver owns it from then on: `db.destroy()` closes it.
   */
  database: NodeSqliteDatabase | (() => NodeSqliteDatabase | Promise<NodeSqliteDatabase>);
  /**
   * Called once with the single connection, before any query runs
   * (for example to set pragmas through Kysely).
   */
  onCreateConnection?: (connection: DatabaseConnection) => Promise<void>;
  /**
   * Called after each transaction commits, for example to wake a thread that
   * checkpoints the WAL. It must not throw; a promise it returns is awaited
   * before the transaction's connection is released.
   *
   * @default {undefined}
   */
  onCommit?: () => Promise<void> | void;
  /**
   * How many prepared statements to keep, keyed by SQL text; the least recently
   * used one is dropped first. `0` prepares every query afresh.
   *
   * @default {256}
   */
  statementCacheSize?: number;
}

/**
 * Creates a Kysely dialect that runs queries on a `node:sqlite` database.
 *
 * SQLite has one connection, so queries and transactions take turns on it: a
 * transaction holds the connection until it commits or rolls back, and others
 * wait in order. Parameters are bound as `node:sqlite` takes them, except that
 * booleans become `1`/`0`, a `Date` becomes its ISO-8601 string and any other
 * `ArrayBufferView` becomes a `Uint8Array` over the same bytes; anything else
 * (`undefined`, plain objects, arrays) throws a `TypeError` naming the parameter.
 * Rows come back as plain objects; integers beyond 2^53 lose precision, as in
 * `node:sqlite`'s default mode. Transaction isolation settings are ignored:
 * SQLite transactions are serializable.
 *
 * @example
 * ```ts
 * import { Kysely } from "kysely";
 * import { DatabaseSync } from "node:sqlite";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 *
 * interface Database {
 *   person: { id: number; name: string };
 * }
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: new DatabaseSync(":memory:") }),
 * });
 * await db.schema.createTable("person")
 *   .addColumn("id", "integer", (c) => c.primaryKey())
 *   .addColumn("name", "text", (c) => c.notNull())
 *   .execute();
 * await db.insertInto("person").values({ id: 1, name: "Ada" }).execute();
 * const people = await db.selectFrom("person").selectAll().execute();
 * console.assert(people[0]?.name === "Ada");
 * await db.destroy();
 * ```
 */
export function nodeSqliteDialect(options: NodeSqliteDialectOptions): Dialect {
  const { database, onCreateConnection, onCommit, statementCacheSize = 256 } = options;
  if (typeof database !== "function" && (typeof database !== "object" || database === null)) {
    throw new TypeError(
      `Cannot create node:sqlite dialect: database must be a database or a function, current value is ${
        String(database)
      }`,
    );
  }
  if (!Number.isSafeInteger(statementCacheSize) || statementCacheSize < 0) {
    throw new RangeError(
      `Cannot create node:sqlite dialect: statementCacheSize must be a non-negative integer, current value is ${statementCacheSize}`,
    );
  }
  return sqliteDialectOf(() =>
    new NodeSqliteDriver(database, onCreateConnection, onCommit, statementCacheSize)
  );
}

class NodeSqliteDriver extends SqliteDriverBase implements Driver {
  #open: NodeSqliteDialectOptions["database"];
  #onCreateConnection: NodeSqliteDialectOptions["onCreateConnection"];
  #onCommit: NodeSqliteDialectOptions["onCommit"];
  #statementCacheSize: number;
  #db: NodeSqliteDatabase | undefined;
  #connection: NodeSqliteConnection | undefined;

  constructor(
    open: NodeSqliteDialectOptions["database"],
    onCreateConnection: NodeSqliteDialectOptions["onCreateConnection"],
    onCommit: NodeSqliteDialectOptions["onCommit"],
    statementCacheSize: number,
  ) {
    super();
    this.#open = open;
    this.#onCreateConnection = onCreateConnection;
    this.#onCommit = onCommit;
    this.#statementCacheSize = statementCacheSize;
  }

  async init(): Promise<void> {
    this.#db = typeof this.#open === "function" ? await this.#open() : this.#open;
    this.#connection = new NodeSqliteConnection(this.#db, this.#statementCacheSize);
    await this.#onCreateConnection?.(this.#connection);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    // SQLite has a single connection: wait until whoever holds it releases it.
    await this.mutex.lock();
    if (this.#connection === undefined) {
      this.mutex.unlock();
      throw new Error(
        "Cannot acquire a node:sqlite connection: current state is destroyed or not initialised",
      );
    }
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
    await this.#onCommit?.();
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async destroy(): Promise<void> {
    this.#connection?.clearStatements();
    this.#connection = undefined;
    const db = this.#db;
    this.#db = undefined;
    await db?.close();
  }
}

interface CachedStatement {
  statement: NodeSqliteStatement;
  returnsRows: boolean;
}

class NodeSqliteConnection implements DatabaseConnection {
  #db: NodeSqliteDatabase;
  #cacheSize: number;
  // A Map iterates in insertion order; re-inserting on use makes the first key the
  // least recently used one.
  #statements = new Map<string, CachedStatement>();

  constructor(db: NodeSqliteDatabase, cacheSize: number) {
    this.#db = db;
    this.#cacheSize = cacheSize;
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // node:sqlite is synchronous; throwing inside the promise keeps errors async.
    return new Promise((resolve) => {
      const { statement, returnsRows } = this.#prepare(compiledQuery.sql);
      const parameters = toSqliteParameters(compiledQuery.parameters);
      if (returnsRows) {
        resolve({ rows: toPlainRows<R>(statement.all(...parameters)) });
        return;
      }
      const { changes, lastInsertRowid } = statement.run(...parameters);
      resolve({
        rows: [],
        numAffectedRows: BigInt(changes),
        insertId: BigInt(lastInsertRowid),
      });
    });
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    checkChunkSize(chunkSize);
    // A fresh statement: a cached one could be reset by a query run while this
    // stream is paused between chunks.
    const statement = this.#db.prepare(compiledQuery.sql);
    if (statement.columns().length === 0) {
      throw new TypeError(
        `Cannot stream query: current statement returns no rows (${compiledQuery.sql})`,
      );
    }
    const rows = statement.iterate(...toSqliteParameters(compiledQuery.parameters));
    try {
      let chunk: R[] = [];
      for (let next = rows.next(); !next.done; next = rows.next()) {
        chunk.push({ ...(next.value as R) });
        if (chunk.length >= chunkSize) {
          yield { rows: chunk };
          chunk = [];
        }
      }
      if (chunk.length > 0) yield { rows: chunk };
    } finally {
      rows.return?.();
    }
  }

  clearStatements(): void {
    this.#statements.clear();
  }

  #prepare(sql: string): CachedStatement {
    const cached = this.#statements.get(sql);
    if (cached !== undefined) {
      this.#statements.delete(sql);
      this.#statements.set(sql, cached);
      return cached;
    }
    const statement = this.#db.prepare(sql);
    const entry = { statement, returnsRows: statement.columns().length > 0 };
    if (this.#cacheSize === 0) return entry;
    if (this.#statements.size >= this.#cacheSize) {
      const oldest = this.#statements.keys().next();
      if (!oldest.done) this.#statements.delete(oldest.value);
    }
    this.#statements.set(sql, entry);
    return entry;
  }
}

function toSqliteParameters(parameters: ReadonlyArray<unknown>): NodeSqliteValue[] {
  // Usually every value binds as it is (a batch of events has thousands): then the
  // array itself is handed over, which node:sqlite only reads.
  let i = 0;
  while (i < parameters.length && bindsAsIs(parameters[i])) i++;
  if (i === parameters.length) return parameters as NodeSqliteValue[];
  const values = parameters.slice(0, i) as NodeSqliteValue[];
  for (; i < parameters.length; i++) values.push(toSqliteValue(parameters[i], i));
  return values;
}

function bindsAsIs(value: unknown): boolean {
  const type = typeof value;
  return type === "string" || type === "number" || type === "bigint" || value === null;
}

function toSqliteValue(value: unknown, index: number): NodeSqliteValue {
  switch (typeof value) {
    case "string":
    case "number":
    case "bigint":
      return value;
    case "boolean":
      return value ? 1 : 0;
    case "object":
      if (value === null || value instanceof Uint8Array) return value;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) {
          throw new TypeError(
            `Cannot bind SQLite parameter ${index + 1}: current value is an invalid Date`,
          );
        }
        return value.toISOString();
      }
      if (ArrayBuffer.isView(value)) {
        return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      }
  }
  const description = typeof value === "object"
    ? `an instance of ${value?.constructor?.name ?? "Object"}`
    : typeof value === "function"
    ? "a function"
    : String(value);
  throw new TypeError(
    `Cannot bind SQLite parameter ${
      index + 1
    }: current value is ${description} (${typeof value}); pass null, a number, bigint, string, boolean, Date or Uint8Array`,
  );
}

function toPlainRows<R>(rows: unknown[]): R[] {
  // node:sqlite returns null-prototype objects; other Kysely drivers return plain ones.
  for (let i = 0; i < rows.length; i++) rows[i] = { ...(rows[i] as object) };
  return rows as R[];
}
