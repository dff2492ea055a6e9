// Tests the node:sqlite Kysely dialect and openSqlite against real SQLite databases.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Generated, Kysely, type Migration, Migrator, sql } from "kysely";
import {
  type NodeSqliteDatabase,
  nodeSqliteDialect,
} from "../../../adapters/store/node_sqlite_dialect.ts";
import { openSqlite } from "../../../adapters/store/open_sqlite.ts";

interface Database {
  event: { id: string; seq: number; body: string | null };
  counter: { id: Generated<number>; n: number };
}

interface TestStore extends AsyncDisposable {
  db: Kysely<Database>;
  sqlite: NodeSqliteDatabase;
}

async function createEventTable(db: Kysely<Database>): Promise<void> {
  await db.schema.createTable("event")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("body", "text")
    .execute();
}

async function memoryStore(): Promise<TestStore> {
  const sqlite = openSqlite(":memory:");
  const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ database: sqlite }) });
  await createEventTable(db);
  return { db, sqlite, [Symbol.asyncDispose]: () => db.destroy() };
}

async function fileStore(): Promise<TestStore & { path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "troupe_sqlite_" });
  const path = `${dir}/nested/store.db`;
  const sqlite = openSqlite(path);
  const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ database: sqlite }) });
  await createEventTable(db);
  return {
    db,
    sqlite,
    path,
    [Symbol.asyncDispose]: async () => {
      await db.destroy();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function events(count: number, from = 0): Database["event"][] {
  return Array.from({ length: count }, (_, i) => ({
    id: `e${String(from + i).padStart(4, "0")}`,
    seq: from + i,
    body: i % 2 === 0 ? `body ${from + i}` : null,
  }));
}

for (const [name, open] of [["memory", memoryStore], ["file", fileStore]] as const) {
  Deno.test(`${name}: inserts one row and 500 rows in a transaction, then selects them in order`, async () => {
    await using store = await open();
    const { db } = store;
    const one = await db.insertInto("event").values({ id: "a", seq: -1, body: "first" })
      .executeTakeFirstOrThrow();
    assert.equal(one.numInsertedOrUpdatedRows, 1n);
    await db.transaction().execute(async (trx) => {
      const result = await trx.insertInto("event").values(events(500)).executeTakeFirstOrThrow();
      assert.equal(result.numInsertedOrUpdatedRows, 500n);
    });
    const rows = await db.selectFrom("event").selectAll()
      .where("seq", ">=", 498).orderBy("seq", "desc").execute();
    assert.deepEqual(rows, [
      { id: "e0499", seq: 499, body: null },
      { id: "e0498", seq: 498, body: "body 498" },
    ]);
    const { count } = await db.selectFrom("event").select((eb) =>
      eb.fn.countAll<number>().as("count")
    )
      .executeTakeFirstOrThrow();
    assert.equal(count, 501);
  });
}

Deno.test("on conflict do nothing skips duplicates and counts only new rows", async () => {
  await using store = await memoryStore();
  const { db } = store;
  await db.insertInto("event").values(events(10)).execute();
  const result = await db.insertInto("event").values(events(10, 5))
    .onConflict((oc) => oc.column("id").doNothing())
    .executeTakeFirstOrThrow();
  assert.equal(result.numInsertedOrUpdatedRows, 5n);
  const again = await db.insertInto("event").values(events(15))
    .onConflict((oc) => oc.column("id").doNothing())
    .executeTakeFirstOrThrow();
  assert.equal(again.numInsertedOrUpdatedRows, 0n);
  const rows = await db.selectFrom("event").select("seq").orderBy("seq").execute();
  assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 15 }, (_, i) => i));
});

Deno.test("insert returning gives the rows back and insertId is the last rowid", async () => {
  await using store = await memoryStore();
  const { db } = store;
  await db.schema.createTable("counter")
    .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
    .addColumn("n", "integer", (c) => c.notNull())
    .execute();
  const first = await db.insertInto("counter").values({ n: 7 }).executeTakeFirstOrThrow();
  assert.equal(first.insertId, 1n);
  const returned = await db.insertInto("counter").values([{ n: 8 }, { n: 9 }])
    .returning(["id", "n"]).execute();
  assert.deepEqual(returned, [{ id: 2, n: 8 }, { id: 3, n: 9 }]);
  const updated = await db.updateTable("counter").set({ n: 0 }).where("n", ">", 7)
    .executeTakeFirstOrThrow();
  assert.equal(updated.numUpdatedRows, 2n);
});

Deno.test("a failing statement inside a transaction rolls back everything", async () => {
  await using store = await memoryStore();
  const { db } = store;
  await db.insertInto("event").values({ id: "kept", seq: 0, body: null }).execute();
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.insertInto("event").values(events(100, 1)).execute();
      // Duplicate primary key: fails after the 100 rows were written.
      await trx.insertInto("event").values({ id: "kept", seq: 1, body: null }).execute();
    }),
    /UNIQUE constraint failed/,
  );
  const rows = await db.selectFrom("event").select("id").execute();
  assert.deepEqual(rows, [{ id: "kept" }]);
  // The connection is usable again after the rollback.
  await db.transaction().execute((trx) => trx.insertInto("event").values(events(1, 1)).execute());
});

Deno.test("savepoints roll back part of a transaction", async () => {
  await using store = await memoryStore();
  const { db } = store;
  const trx = await db.startTransaction().execute();
  await trx.insertInto("event").values(events(1)).execute();
  const inner = await trx.savepoint("before second").execute();
  await inner.insertInto("event").values(events(1, 1)).execute();
  const outer = await inner.rollbackToSavepoint("before second").execute();
  await outer.releaseSavepoint("before second").execute();
  await outer.commit().execute();
  const rows = await db.selectFrom("event").select("id").execute();
  assert.deepEqual(rows, [{ id: "e0000" }]);
});

Deno.test("concurrent transactions are serialised on the single connection", async () => {
  await using store = await memoryStore();
  const { db } = store;
  const order: string[] = [];
  await Promise.all(Array.from({ length: 20 }, (_, t) =>
    db.transaction().execute(async (trx) => {
      order.push(`begin ${t}`);
      for (let i = 0; i < 5; i++) {
        await trx.insertInto("event").values(events(1, t * 5 + i)).execute();
      }
      order.push(`end ${t}`);
    })));
  // Each transaction ran to its end before the next began, in arrival order.
  assert.deepEqual(order, Array.from({ length: 20 }, (_, t) => [`begin ${t}`, `end ${t}`]).flat());
  const { count } = await db.selectFrom("event").select((eb) =>
    eb.fn.countAll<number>().as("count")
  )
    .executeTakeFirstOrThrow();
  assert.equal(count, 100);
});

Deno.test("stream yields every row in chunks and stops early on break", async () => {
  await using store = await memoryStore();
  const { db } = store;
  await db.insertInto("event").values(events(250)).execute();
  const seen: number[] = [];
  for await (const row of db.selectFrom("event").select("seq").orderBy("seq").stream(100)) {
    seen.push(row.seq);
  }
  assert.deepEqual(seen, Array.from({ length: 250 }, (_, i) => i));
  let taken = 0;
  for await (const _ of db.selectFrom("event").selectAll().stream(10)) {
    if (++taken === 15) break;
  }
  assert.equal(taken, 15);
  // Breaking out released the connection.
  const row = await db.selectFrom("event").select("id").where("seq", "=", 3).executeTakeFirst();
  assert.deepEqual(row, { id: "e0003" });
});

Deno.test("parameters: booleans become 0/1, dates ISO strings, bytes blobs; others are rejected", async () => {
  await using store = await memoryStore();
  const { db } = store;
  const result = await sql<{ t: number; f: number; d: string; b: Uint8Array; n: null }>`
    select ${true} as t, ${false} as f, ${new Date(Date.UTC(2025, 0, 2))} as d,
      ${new Uint8Array([1, 2])} as b, ${null} as n`.execute(db);
  assert.deepEqual(result.rows, [{
    t: 1,
    f: 0,
    d: "2025-01-02T00:00:00.000Z",
    b: new Uint8Array([1, 2]),
    n: null,
  }]);
  await assert.rejects(
    sql`select ${1} as a, ${{ no: "objects" }} as b`.execute(db),
    (error) =>
      error instanceof TypeError && /Cannot bind SQLite parameter 2: .*Object/.test(error.message),
  );
  await assert.rejects(
    sql`select ${new Date(Number.NaN)} as d`.execute(db),
    { name: "TypeError", message: /parameter 1: current value is an invalid Date/ },
  );
});

Deno.test("openSqlite turns on WAL, foreign keys and the busy timeout for a file database", async () => {
  await using store = await fileStore();
  const pragma = (name: string) => store.sqlite.prepare(`pragma ${name}`).all()[0];
  assert.deepEqual({ ...pragma("journal_mode") as object }, { journal_mode: "wal" });
  assert.deepEqual({ ...pragma("foreign_keys") as object }, { foreign_keys: 1 });
  assert.deepEqual({ ...pragma("busy_timeout") as object }, { timeout: 5000 });
  assert.deepEqual({ ...pragma("synchronous") as object }, { synchronous: 1 });
  const stat = await Deno.stat(`${store.path}-wal`);
  assert.ok(stat.isFile);
});

Deno.test("openSqlite rejects bad arguments at once", () => {
  assert.throws(() => openSqlite(""), { name: "TypeError", message: /current value is ""/ });
  assert.throws(() => openSqlite(":memory:", { busyTimeoutMs: -1 }), {
    name: "RangeError",
    message: /busyTimeoutMs .* current value is -1/,
  });
  assert.throws(
    () => nodeSqliteDialect({ database: new DatabaseSync(":memory:"), statementCacheSize: 1.5 }),
    {
      name: "RangeError",
    },
  );
});

Deno.test("Migrator runs migrations from an object provider, up and down", async () => {
  const up: Migration["up"] = async (db) => {
    await db.schema.createTable("note").addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("text", "text", (c) => c.notNull()).execute();
    await db.schema.createIndex("note_text").on("note").column("text").execute();
  };
  const down: Migration["down"] = async (db) => {
    await db.schema.dropTable("note").execute();
  };
  // deno-lint-ignore no-explicit-any
  const db = new Kysely<any>({
    dialect: nodeSqliteDialect({ database: () => openSqlite(":memory:") }),
  });
  try {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: () => Promise.resolve({ "0001_init": { up, down } }) },
    });
    const latest = await migrator.migrateToLatest();
    assert.equal(latest.error, undefined);
    assert.deepEqual(latest.results?.map((r) => [r.migrationName, r.status]), [
      ["0001_init", "Success"],
    ]);
    await db.insertInto("note").values({ id: 1, text: "hi" }).execute();
    const tables = await db.introspection.getTables();
    assert.ok(tables.some((t) => t.name === "note"));
    const down1 = await migrator.migrateDown();
    assert.equal(down1.error, undefined);
    assert.ok(!(await db.introspection.getTables()).some((t) => t.name === "note"));
  } finally {
    await db.destroy();
  }
});

Deno.test("onCreateConnection runs once before the first query", async () => {
  const calls: string[] = [];
  const db = new Kysely<Database>({
    dialect: nodeSqliteDialect({
      database: new DatabaseSync(":memory:"),
      onCreateConnection: async (connection) => {
        calls.push("create");
        await connection.executeQuery(
          sql`create table event (id text primary key, seq integer, body text)`.compile(db),
        );
      },
    }),
  });
  try {
    await db.insertInto("event").values(events(1)).execute();
    await db.selectFrom("event").selectAll().execute();
    assert.deepEqual(calls, ["create"]);
  } finally {
    await db.destroy();
  }
});

Deno.test("a small statement cache still runs many distinct queries correctly", async () => {
  const db = new Kysely<Database>({
    dialect: nodeSqliteDialect({ database: new DatabaseSync(":memory:"), statementCacheSize: 2 }),
  });
  try {
    await createEventTable(db);
    for (let round = 0; round < 3; round++) {
      for (let width = 1; width <= 5; width++) {
        await db.insertInto("event").values(events(width, round * 100 + width * 10)).execute();
      }
    }
    const { count } = await db.selectFrom("event").select((eb) =>
      eb.fn.countAll<number>().as("count")
    )
      .executeTakeFirstOrThrow();
    assert.equal(count, 45);
  } finally {
    await db.destroy();
  }
});

Deno.test("destroy closes the database and later queries fail clearly", async () => {
  const sqlite = new DatabaseSync(":memory:");
  const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ database: sqlite }) });
  await createEventTable(db);
  await db.destroy();
  assert.equal(sqlite.isOpen, false);
  assert.throws(() => sqlite.exec("select 1"), /not open/);
});
