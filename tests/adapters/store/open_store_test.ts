// Proves openStore picks the dialect from the URL, migrates once, and names a bad database safely.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Kysely, Migrator, NO_MIGRATIONS } from "kysely";
import {
  type Database,
  migrations,
  nodeSqliteDialect,
  openSqlite,
  openStore,
  redactUrl,
  sqlStore,
  StoreError,
} from "../../../adapters/store/mod.ts";
import { freePort } from "../../_harness/mod.ts";

function isStoreError(code: StoreError["code"], ...absent: string[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoreError, `expected a StoreError, got ${error}`);
    assert.equal(error.code, code);
    for (const text of absent) assert.ok(!error.message.includes(text), error.message);
    return true;
  };
}

Deno.test("redactUrl hides the password of a URL and leaves everything else", () => {
  assert.equal(
    redactUrl("postgres://app:s3cret@db:5432/troupe"),
    "postgres://app:***@db:5432/troupe",
  );
  assert.equal(redactUrl("postgresql://app:p@ss@db/troupe"), "postgresql://app:***@db/troupe");
  assert.equal(redactUrl("postgres://app@db/troupe"), "postgres://app@db/troupe");
  assert.equal(redactUrl("./data/troupe.db"), "./data/troupe.db");
});

Deno.test("openStore refuses an empty URL with a StoreError invalid_url", async () => {
  await assert.rejects(openStore(""), isStoreError("invalid_url"));
  await assert.rejects(openStore("   "), isStoreError("invalid_url"));
});

Deno.test("openStore refuses another scheme instead of making a directory named after it", async () => {
  const cwd = Deno.cwd();
  const dir = await Deno.makeTempDir();
  Deno.chdir(dir);
  try {
    for (const url of ["sqlite:./data/t.db", "file:t.db", "mysql://app:hunter2@db/t"]) {
      await assert.rejects(openStore(url), (error: unknown) => {
        isStoreError("invalid_url", "hunter2")(error);
        assert.match((error as Error).message, /current value is a "(sqlite|file|mysql):" URL/);
        return true;
      });
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was created");
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore names a malformed PostgreSQL URL without its password", async () => {
  await assert.rejects(
    openStore("postgres://app:hunter2@[not-a-host/db"),
    (error: unknown) =>
      isStoreError("invalid_url", "hunter2")(error) &&
      (error as Error).message.includes("postgres://app:***@"),
  );
});

Deno.test("openStore reports an unreachable PostgreSQL with the cause and no password", async () => {
  const url = `postgres://app:hunter2@127.0.0.1:${freePort()}/troupe`;
  await assert.rejects(openStore(url), (error: unknown) => {
    isStoreError("open_failed", "hunter2")(error);
    const { message, cause } = error as StoreError;
    assert.ok(message.includes(`127.0.0.1`) && message.includes("app:***@"), message);
    assert.ok(cause instanceof Error);
    return true;
  });
});

Deno.test("openStore reports a SQLite path it cannot open", async () => {
  const file = await Deno.makeTempFile();
  try {
    // A regular file where a directory is expected.
    await assert.rejects(openStore(`${file}/troupe.db`), isStoreError("open_failed"));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("openStore migrates a SQLite file once and keeps it migrated on reopen", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nested/troupe.db`;
  try {
    for (let i = 0; i < 2; i++) {
      await using store = await openStore(path);
      await store.appendHistory("o", "s", [{ id: `m${i}`, role: "user", content: "hi", ts: i }]);
    }
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const names = db.prepare("select name from kysely_migration").all().map((r) => r.name);
      assert.deepEqual(names, [
        "0001_init",
        "0002_keys_and_deletes",
        "0003_event_write_speed",
        "0004_session_retention",
      ]);
      const tables = db.prepare(
        "select name from sqlite_master where type = 'table' and name not like 'kysely%' order by name",
      ).all().map((r) => r.name);
      assert.deepEqual(tables, [
        "api_keys",
        "audit_events",
        "dead_letters",
        "messages",
        "runs",
        "sessions",
        "usage_events",
      ]);
      assert.equal(db.prepare("select count(*) as n from messages").get()?.n, 2);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every migration goes down cleanly and up again", async () => {
  const db = new Kysely<Database>({
    dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
  });
  try {
    const migrator = new Migrator({ db, provider: migrations });
    assert.equal((await migrator.migrateToLatest()).error, undefined);
    const down = await migrator.migrateTo(NO_MIGRATIONS);
    assert.equal(down.error, undefined);
    const tables = await db.introspection.getTables();
    assert.deepEqual(tables.map((t) => t.name), []);
    assert.equal((await migrator.migrateToLatest()).error, undefined);
    assert.equal((await db.introspection.getTables()).length, 7);
  } finally {
    await db.destroy();
  }
});

Deno.test("sqlStore refuses options it cannot honour", async () => {
  const db = new Kysely<Database>({
    dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
  });
  try {
    assert.throws(() => sqlStore(db, { maxParameters: 16 }), RangeError);
    assert.throws(
      () => sqlStore(db, { dialect: "mysql" as "sqlite" }),
      /dialect must be "sqlite" or "postgres"/,
    );
    assert.throws(
      () => sqlStore(db, { postgresBulk: "copy" as "values" }),
      /postgresBulk must be/,
    );
  } finally {
    await db.destroy();
  }
});
