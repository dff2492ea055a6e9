// Runs the Store and event store contracts against the SQL store on SQLite and on a real PostgreSQL.

import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { type Database, openStore, type SqlStoreOptions } from "../../../adapters/store/mod.ts";
import { type PostgresServer, startPostgres } from "../../_harness/mod.ts";
import {
  type EventStoreFixture,
  runEventStoreContract,
} from "../../contracts/event_store_contract.ts";
import { runStoreContract } from "../../contracts/store_contract.ts";

/** How each table's rows are ordered when a test reads them back. */
const ORDER_BY: Record<keyof Database, string> = {
  sessions: "org, session",
  messages: "org, session, seq",
  runs: "id",
  usage_events: "id",
  audit_events: "id",
  dead_letters: "id",
  api_keys: "id",
};

// ---------------------------------------------------------------- SQLite

runStoreContract({ name: "sqlite", create: () => openStore(":memory:") });
// A file: the connection runs in the store's worker (the default for files).
runStoreContract({
  name: "sqlite file",
  create: async () =>
    openStore(`${await Deno.makeTempDir({ prefix: "troupe_sql_store_" })}/troupe.db`),
});

runEventStoreContract({
  name: "sqlite",
  async create(): Promise<EventStoreFixture> {
    const dir = await Deno.makeTempDir({ prefix: "troupe_sql_store_" });
    const path = `${dir}/troupe.db`;
    return {
      open: (options?: SqlStoreOptions) => openStore(path, options),
      rows(table) {
        const db = new DatabaseSync(path, { readOnly: true });
        try {
          const rows = db.prepare(`select * from ${table} order by ${ORDER_BY[table]}`).all();
          return Promise.resolve(rows.map((row) => ({ ...row })));
        } finally {
          db.close();
        }
      },
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
    };
  },
});

// ------------------------------------------------------------ PostgreSQL

/** The part of an npm:pg `Client` these tests use. */
interface PgClient {
  connect(): Promise<unknown>;
  query<Row>(sql: string): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
}

/** A client whose bigint columns come back as numbers, as the store's pool reads them. */
function pgClient(url: string): PgClient {
  return new pg.Client({
    connectionString: url,
    types: {
      getTypeParser: (oid: number, format?: "text" | "binary") =>
        oid === 20 ? Number : pg.types.getTypeParser(oid, format),
    },
  });
}

/** Makes a fresh database on the server for each test, so tests stay independent. */
function databases(server: PostgresServer, admin: PgClient): () => Promise<string> {
  let count = 0;
  return async () => {
    const name = `t_${++count}`;
    await admin.query(`create database ${name}`);
    return server.url.replace(/\/postgres$/, `/${name}`);
  };
}

/** A test the contracts registered, kept to run as a step of one test that owns the server. */
interface CollectedTest {
  name: string;
  fn: () => void | Promise<void>;
}

/**
 * Runs `register` with `Deno.test` swapped for a collector, so that contract
 * cases can run as steps of one test that starts PostgreSQL once and stops it
 * after the last case.
 */
function collectTests(register: () => void): CollectedTest[] {
  const collected: CollectedTest[] = [];
  const original = Deno.test;
  function collect(name: unknown, fn: unknown): void {
    if (typeof name !== "string" || typeof fn !== "function") {
      throw new TypeError("Cannot collect a test: only Deno.test(name, fn) is supported");
    }
    collected.push({ name, fn: fn as CollectedTest["fn"] });
  }
  // `Deno.test` is typed read-only but is a writable property; Reflect.set says if that changes.
  if (!Reflect.set(Deno, "test", collect)) {
    throw new TypeError("Cannot collect tests: Deno.test cannot be replaced");
  }
  try {
    register();
  } finally {
    Reflect.set(Deno, "test", original);
  }
  return collected;
}

let freshDatabase: () => Promise<string> = () => {
  throw new Error("Cannot make a database: PostgreSQL is not started");
};

const postgresTests = collectTests(() => {
  runStoreContract({
    name: "postgres",
    create: async () => openStore(await freshDatabase()),
  });
  runEventStoreContract({
    name: "postgres",
    async create(): Promise<EventStoreFixture> {
      const url = await freshDatabase();
      return {
        open: (options?: SqlStoreOptions) => openStore(url, options),
        async rows(table) {
          const client = pgClient(url);
          await client.connect();
          try {
            const result = await client.query<Record<string, unknown>>(
              `select * from ${table} order by ${ORDER_BY[table]}`,
            );
            return result.rows;
          } finally {
            await client.end();
          }
        },
        [Symbol.asyncDispose]: () => Promise.resolve(),
      };
    },
  });
});

Deno.test("postgres: the store contracts on one real server, a fresh database a test", async (t) => {
  await using server = await startPostgres();
  const admin = pgClient(server.url);
  await admin.connect();
  try {
    freshDatabase = databases(server, admin);
    for (const { name, fn } of postgresTests) {
      await t.step(name, fn);
    }
  } finally {
    await admin.end();
  }
});
