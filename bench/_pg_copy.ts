// The COPY way of writing an event batch to PostgreSQL, for `persist_bench.ts` to compare with the
// store's multi-row VALUES and unnest arrays (the issue asks for all three, keeping the fastest).
//
// COPY cannot skip rows that exist (no ON CONFLICT), and a redelivered batch must not fail or
// duplicate, so the audit and usage rows are copied into session-local staging tables and moved
// with `INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING`; the folded run rows keep the store's
// unnest upsert (their conflict rule is not a plain skip). All in one transaction, as the store
// writes a batch.

import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import copyStreams from "pg-copy-streams";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { TroupeEvent } from "../actors/events.ts";
import { eventRows } from "../adapters/store/_event_rows.ts";
import { AUDIT_TYPES, eventWriter, USAGE_TYPES } from "../adapters/store/_write_events.ts";
import type { Database } from "../adapters/store/schema.ts";

// The store's own column lists: the COPY writes exactly the columns its inserts write.
const AUDIT_COLUMNS = Object.keys(AUDIT_TYPES);
const USAGE_COLUMNS = Object.keys(USAGE_TYPES);

/** A writer of event batches over COPY, on its own pool to `url`'s database (already migrated). */
export function copyWriter(url: string): {
  writeEvents(events: TroupeEvent[]): Promise<void>;
  close(): Promise<void>;
} {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  // Only to compile the store's run upsert for this dialect; it never runs a query itself.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const runsWrite = eventWriter({ mode: "unnest", maxParameters: 65_535 });

  async function copy(
    client: pg.PoolClient,
    table: string,
    columns: readonly string[],
    rows: readonly object[],
  ): Promise<void> {
    if (rows.length === 0) return;
    const stage = `stage_${table}`;
    await client.query(
      `create temp table if not exists ${stage} (like ${table}) on commit delete rows`,
    );
    const list = columns.join(", ");
    await pipeline(
      Readable.from([csv(rows, columns)]),
      client.query(copyStreams.from(`copy ${stage} (${list}) from stdin with (format csv)`)),
    );
    await client.query(
      `insert into ${table} (${list}) select ${list} from ${stage} on conflict (id) do nothing`,
    );
  }

  return {
    async writeEvents(events) {
      const rows = eventRows(events);
      const client = await pool.connect();
      try {
        await client.query("begin");
        await copy(client, "audit_events", AUDIT_COLUMNS, rows.audit);
        await copy(client, "usage_events", USAGE_COLUMNS, rows.usage);
        for (const query of runsWrite(db, { audit: [], usage: [], runs: rows.runs }).queries) {
          await client.query(query.sql, query.parameters as unknown[]);
        }
        await client.query("commit");
      } catch (error) {
        await client.query("rollback").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      // The Kysely instance only compiled (its driver never started); the pool is ended here.
      await pool.end();
    },
  };
}

/** Rows as CSV: every value quoted (quotes doubled), null as an empty unquoted field. */
function csv(rows: readonly object[], columns: readonly string[]): string {
  let text = "";
  for (const row of rows) {
    const values = row as Record<string, unknown>;
    text += columns.map((column) => {
      const value = values[column];
      return value === null || value === undefined
        ? ""
        : `"${String(value).replaceAll('"', '""')}"`;
    }).join(",") + "\n";
  }
  return text;
}
