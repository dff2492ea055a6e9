// The bench's COPY writer stores exactly what the store's own batch write stores, once.

import assert from "node:assert/strict";
import pg from "pg";
import type { TroupeEvent } from "../../actors/events.ts";
import { openStore } from "../../adapters/store/mod.ts";
import { runEvents } from "../../bench/_persist_events.ts";
import { copyWriter } from "../../bench/_pg_copy.ts";
import { startPostgres } from "../_harness/mod.ts";

const TABLES = ["audit_events", "usage_events", "runs"] as const;

Deno.test("bench COPY writer: the same rows as the store's unnest write, and a redelivered batch adds none", async () => {
  await using postgres = await startPostgres();
  await using store = await openStore(postgres.url);
  const copy = copyWriter(postgres.url);
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    // CSV has to carry quotes, commas, newlines and backslashes through intact.
    const events: TroupeEvent[] = runEvents(40).map((event, i) =>
      i % 4 === 0 ? { ...event, session: `s"1,\n\\x ${i}` } : event
    );
    const snapshot = async () => {
      const all: Record<string, unknown[]> = {};
      for (const table of TABLES) {
        all[table] = (await client.query(`select * from ${table} order by id`)).rows;
      }
      return all;
    };
    const clear = async () => {
      for (const table of TABLES) await client.query(`delete from ${table}`);
    };

    await copy.writeEvents(events);
    const copied = await snapshot();
    assert.equal(copied.audit_events!.length, 40);
    assert.equal(copied.usage_events!.length, 10);
    assert.equal(copied.runs!.length, 10);

    await copy.writeEvents(events);
    assert.deepEqual(await snapshot(), copied, "a redelivered batch changed the tables");

    await clear();
    await store.writeEvents(events);
    assert.deepEqual(await snapshot(), copied);
  } finally {
    await client.end();
    await copy.close();
  }
});
