// Proves the SQLite connection in its worker behaves as one on the event loop: results, errors, transactions, streams, closing.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CompiledQuery, Kysely, sql } from "kysely";
import {
  type WorkerSqliteDialect,
  workerSqliteDialect,
} from "../../../adapters/store/_worker_sqlite_dialect.ts";
import { openStore, type StoreError } from "../../../adapters/store/mod.ts";

interface Db {
  items: { id: number; name: string; data: Uint8Array | null };
}

async function tempDb(): Promise<
  & { path: string; db: Kysely<Db>; dialect: WorkerSqliteDialect; errors: StoreError[] }
  & AsyncDisposable
> {
  const dir = await Deno.makeTempDir({ prefix: "troupe_worker_sqlite_" });
  const path = `${dir}/w.db`;
  const errors: StoreError[] = [];
  const dialect = workerSqliteDialect({
    path,
    busyTimeoutMs: 1000,
    background: true,
    onCheckpointError: (error) => errors.push(error),
  });
  const db = new Kysely<Db>({ dialect });
  await db.schema.createTable("items")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("data", "blob")
    .execute();
  return {
    path,
    db,
    dialect,
    errors,
    async [Symbol.asyncDispose]() {
      await db.destroy();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("the worker connection returns rows, affected counts and insert ids, and binds blobs", async () => {
  await using t = await tempDb();
  const inserted = await t.db.insertInto("items")
    .values([{ id: 1, name: "a", data: new Uint8Array([1, 2, 3]) }, {
      id: 2,
      name: "b",
      data: null,
    }])
    .executeTakeFirstOrThrow();
  assert.equal(inserted.numInsertedOrUpdatedRows, 2n);
  assert.equal(inserted.insertId, 2n);
  const rows = await t.db.selectFrom("items").selectAll().orderBy("id").execute();
  assert.deepEqual(rows, [
    { id: 1, name: "a", data: new Uint8Array([1, 2, 3]) },
    { id: 2, name: "b", data: null },
  ]);
  // Plain objects, as from the connection on the event loop.
  assert.equal(Object.getPrototypeOf(rows[0]), Object.prototype);
  const updated = await t.db.updateTable("items").set({ name: "c" }).where("id", "=", 2)
    .executeTakeFirstOrThrow();
  assert.equal(updated.numUpdatedRows, 1n);
  // What the worker wrote is in the file, for any other connection.
  const peek = new DatabaseSync(t.path, { readOnly: true });
  try {
    assert.deepEqual(peek.prepare("select name from items order by id").all().map((r) => r.name), [
      "a",
      "c",
    ]);
  } finally {
    peek.close();
  }
});

Deno.test("a SQLite error crosses from the worker with its message and codes, and the connection goes on", async () => {
  await using t = await tempDb();
  await t.db.insertInto("items").values({ id: 1, name: "a", data: null }).execute();
  await assert.rejects(
    t.db.insertInto("items").values({ id: 2, name: "a", data: null }).execute(),
    (error: Error & { code?: string; errcode?: number }) => {
      assert.match(error.message, /UNIQUE constraint failed: items\.name/);
      assert.equal(error.code, "ERR_SQLITE_ERROR");
      assert.equal(error.errcode, 2067); // SQLITE_CONSTRAINT_UNIQUE
      return true;
    },
  );
  await assert.rejects(sql`select * from missing`.execute(t.db), /no such table: missing/);
  assert.equal((await t.db.selectFrom("items").selectAll().execute()).length, 1);
});

Deno.test("a parameter that cannot cross to the worker is refused with a TypeError, and nothing is written", async () => {
  await using t = await tempDb();
  await assert.rejects(
    t.db.executeQuery(CompiledQuery.raw("insert into items (id, name) values (1, ?)", [() => "x"])),
    (error: Error) => error instanceof TypeError && /cannot be sent to SQLite/.test(error.message),
  );
  assert.equal((await t.db.selectFrom("items").selectAll().execute()).length, 0);
});

Deno.test("transactions in the worker commit, roll back, and do not interleave with other queries", async () => {
  await using t = await tempDb();
  await assert.rejects(
    t.db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ id: 1, name: "kept?", data: null }).execute();
      throw new Error("changed my mind");
    }),
    /changed my mind/,
  );
  assert.equal((await t.db.selectFrom("items").selectAll().execute()).length, 0);

  // A query sent while a transaction holds the connection waits for it to end.
  const order: string[] = [];
  const transaction = t.db.transaction().execute(async (trx) => {
    await trx.insertInto("items").values({ id: 1, name: "in", data: null }).execute();
    order.push("inserted");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await trx.insertInto("items").values({ id: 2, name: "in2", data: null }).execute();
    order.push("committing");
  });
  await new Promise((resolve) => setTimeout(resolve, 5));
  const count = t.db.selectFrom("items").select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow().then((row) => {
      order.push(`counted ${row.n}`);
    });
  await Promise.all([transaction, count]);
  assert.deepEqual(order, ["inserted", "committing", "counted 2"]);
});

Deno.test("runTransaction writes every statement in one step, or none of them if one fails", async () => {
  await using t = await tempDb();
  const insert = (id: number, name: string) =>
    CompiledQuery.raw("insert into items (id, name) values (?, ?) on conflict do nothing", [
      id,
      name,
    ]);
  const counts = await t.dialect.runTransaction([insert(1, "a"), insert(2, "b"), insert(1, "a")]);
  assert.deepEqual(counts.map((c) => c.numAffectedRows), [1n, 1n, 0n]);
  await assert.rejects(
    t.dialect.runTransaction([insert(3, "c"), CompiledQuery.raw("insert into nowhere values (1)")]),
    /no such table: nowhere/,
  );
  const names = await t.db.selectFrom("items").select("name").orderBy("id").execute();
  assert.deepEqual(names.map((r) => r.name), ["a", "b"]);
  // The connection is usable after the rollback, in and out of transactions.
  await t.dialect.runTransaction([insert(3, "c")]);
  assert.equal((await t.db.selectFrom("items").selectAll().execute()).length, 3);
});

Deno.test("streaming from the worker yields every row in chunks", async () => {
  await using t = await tempDb();
  await t.db.insertInto("items")
    .values(Array.from({ length: 250 }, (_, i) => ({ id: i + 1, name: `n${i}`, data: null })))
    .execute();
  const ids: number[] = [];
  for await (const row of t.db.selectFrom("items").select("id").orderBy("id").stream(100)) {
    ids.push(row.id);
  }
  assert.deepEqual(ids, Array.from({ length: 250 }, (_, i) => i + 1));
});

Deno.test("a store opened and closed at once stops its threads without waiting or reporting a checkpoint error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe_worker_sqlite_" });
  try {
    for (const sqliteThread of ["worker", "main"] as const) {
      const errors: StoreError[] = [];
      const store = await openStore(`${dir}/${sqliteThread}.db`, {
        sqliteThread,
        onCheckpointError: (error) => errors.push(error),
      });
      await store.close();
      assert.deepEqual(errors, [], sqliteThread);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore refuses an unknown sqliteThread, naming the option", async () => {
  await assert.rejects(
    // @ts-expect-error: not a thread
    openStore(":memory:", { sqliteThread: "elsewhere" }),
    (error: Error) =>
      error instanceof TypeError && /sqliteThread must be "worker" or "main"/.test(error.message),
  );
});

Deno.test("a worker that dies fails what it held, loses its open transaction, and the next query starts a new one", async () => {
  await using t = await tempDb();
  await t.db.insertInto("items").values({ id: 1, name: "kept", data: null }).execute();
  const crashed = t.db.transaction().execute(async (trx) => {
    await trx.insertInto("items").values({ id: 2, name: "lost", data: null }).execute();
    await t.dialect.terminateWorker();
    await trx.insertInto("items").values({ id: 3, name: "never", data: null }).execute();
  });
  await assert.rejects(crashed, /SQLite worker exited/);
  // A new worker on the same file: the committed row is there, the dead transaction's is not.
  const names = await t.db.selectFrom("items").select("name").orderBy("id").execute();
  assert.deepEqual(names, [{ name: "kept" }]);
  await t.db.insertInto("items").values({ id: 4, name: "after", data: null }).execute();
  assert.equal((await t.db.selectFrom("items").select("id").execute()).length, 2);
});
