// Measures the node:sqlite Kysely driver's overhead on a 500-row batch against raw node:sqlite.

import { Kysely } from "kysely";
import { nodeSqliteDialect } from "../../adapters/store/node_sqlite_dialect.ts";
import { openSqlite } from "../../adapters/store/open_sqlite.ts";

interface Database {
  event: { id: string; org: string; type: string; ts: number; body: string };
}

const BATCH = 500;
const TABLE_SQL =
  "create table event (id text primary key, org text not null, type text not null, ts integer not null, body text not null)";

const dir = Deno.makeTempDirSync({ prefix: "troupe_sqlite_bench_" });
const raw = openSqlite(`${dir}/raw.db`);
raw.exec(TABLE_SQL);
const kyselySqlite = openSqlite(`${dir}/kysely.db`);
kyselySqlite.exec(TABLE_SQL);
const db = new Kysely<Database>({ dialect: nodeSqliteDialect({ database: kyselySqlite }) });

let next = 0;
function batch(): Database["event"][] {
  return Array.from({ length: BATCH }, () => {
    const n = next++;
    return { id: `e${n}`, org: "acme", type: "usage.recorded", ts: n, body: `{"tokens":${n}}` };
  });
}

// The raw baseline binds the same multi-row statement Kysely compiles, so the
// difference is query building, compiling, parameter checks and the mutex.
const placeholders = Array.from({ length: BATCH }, () => "(?, ?, ?, ?, ?)").join(", ");
const rawInsert = raw.prepare(
  `insert into event (id, org, type, ts, body) values ${placeholders} on conflict (id) do nothing`,
);
const rawBegin = raw.prepare("begin");
const rawCommit = raw.prepare("commit");

Deno.bench({
  name: "raw node:sqlite: 500-row insert in a transaction",
  group: "insert 500 rows",
  baseline: true,
  fn() {
    const rows = batch();
    const parameters = rows.flatMap((r) => [r.id, r.org, r.type, r.ts, r.body]);
    rawBegin.run();
    rawInsert.run(...parameters);
    rawCommit.run();
  },
});

Deno.bench({
  name: "kysely + nodeSqliteDialect: 500-row insert in a transaction",
  group: "insert 500 rows",
  async fn() {
    const rows = batch();
    await db.transaction().execute((trx) =>
      trx.insertInto("event").values(rows).onConflict((oc) => oc.column("id").doNothing())
        .execute()
    );
  },
});

globalThis.addEventListener("unload", () => {
  raw.close();
  kyselySqlite.close();
  Deno.removeSync(dir, { recursive: true });
});
