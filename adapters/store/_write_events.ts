// Writes the rows of one event batch inside a transaction: multi-row VALUES in chunks, or unnest arrays.

import { type Compilable, CompiledQuery, type Kysely, type RawBuilder, sql } from "kysely";
import type { EventRows } from "./_event_rows.ts";
import type { AuditEventsTable, Database, RunsTable, UsageEventsTable } from "./schema.ts";
import { shapeCache } from "./_shape_cache.ts";

/** How a batch is written. */
export interface WritePlan {
  /** `values`: multi-row `INSERT ... VALUES` in chunks; `unnest`: one statement of arrays (PostgreSQL). */
  mode: "values" | "unnest";
  /** Most bound parameters one `values` statement may carry. */
  maxParameters: number;
}

type Row = Record<string, unknown>;
type PgType = "text" | "bigint";

// The columns of each table with their PostgreSQL type (for `unnest`), in insert order;
// `satisfies` keeps each list in step with the schema.
/** The columns of `audit_events` with their PostgreSQL types, in insert order. */
export const AUDIT_TYPES = {
  id: "text",
  type: "text",
  org: "text",
  session: "text",
  run: "text",
  ts: "bigint",
  body: "text",
} as const satisfies Record<keyof AuditEventsTable, PgType>;
/** The columns of `usage_events` with their PostgreSQL types, in insert order. */
export const USAGE_TYPES = {
  id: "text",
  org: "text",
  session: "text",
  run: "text",
  provider: "text",
  model: "text",
  input_tokens: "bigint",
  output_tokens: "bigint",
  cached_tokens: "bigint",
  reasoning_tokens: "bigint",
  total_tokens: "bigint",
  source: "text",
  status: "text",
  latency_ms: "bigint",
  ttft_ms: "bigint",
  messages: "text",
  ts: "bigint",
} as const satisfies Record<keyof UsageEventsTable, PgType>;
const RUN_TYPES = {
  id: "text",
  org: "text",
  session: "text",
  status: "text",
  messages: "text",
  started_at: "bigint",
  ended_at: "bigint",
} as const satisfies Record<keyof RunsTable, PgType>;

/** One table a batch writes: its columns, and the insert around a row source. */
interface TableWrite {
  /** Column names with their PostgreSQL types, in insert order. */
  types: Readonly<Record<string, PgType>>;
  /** The insert with its conflict clause, reading rows from `source`. */
  build(db: Kysely<Database>, source: RawBuilder<unknown>): Compilable;
}

const AUDIT: TableWrite = {
  types: AUDIT_TYPES,
  build: (db, source) =>
    db.insertInto("audit_events").columns(keys(AUDIT_TYPES)).expression(source)
      .onConflict((oc) => oc.column("id").doNothing()),
};

const USAGE: TableWrite = {
  types: USAGE_TYPES,
  build: (db, source) =>
    db.insertInto("usage_events").columns(keys(USAGE_TYPES)).expression(source)
      .onConflict((oc) => oc.column("id").doNothing()),
};

// One row per run (see `eventRows`): a start time replaces the stored one; an ending replaces
// status, messages and end time unless a later ending is already stored (redelivery out of
// order). Folding both into one statement writes a run started and ended in a batch once.
const RUNS: TableWrite = {
  types: RUN_TYPES,
  build: (db, source) =>
    db.insertInto("runs").columns(keys(RUN_TYPES)).expression(source)
      .onConflict((oc) =>
        oc.column("id").doUpdateSet((eb) => {
          const newer = eb.and([
            eb("excluded.ended_at", "is not", null),
            eb.or([
              eb("runs.ended_at", "is", null),
              eb("runs.ended_at", "<=", eb.ref("excluded.ended_at")),
            ]),
          ]);
          const ending = <C extends "status" | "messages" | "ended_at">(column: C) =>
            eb.case().when(newer).then(eb.ref(`excluded.${column}`))
              .else(eb.ref(`runs.${column}`)).end();
          return {
            started_at: eb.fn.coalesce("excluded.started_at", "runs.started_at"),
            status: ending("status"),
            messages: ending("messages"),
            ended_at: ending("ended_at"),
          };
        })
      ),
};

/** The statements that write one batch: audit inserts first, then usage inserts and run upserts. */
export interface EventWrite {
  /** Every statement, in order; to run in one transaction. */
  queries: CompiledQuery[];
  /** How many of the first `queries` insert audit rows (their affected rows count the new events). */
  audit: number;
}

/** Makes the statements that write the rows of one batch, compiled for `db`'s dialect. */
export type EventWriter = (db: Kysely<Database>, rows: EventRows) => EventWrite;

/**
 * Makes the function that turns a batch's rows into its statements, to run
 * in one transaction.
 * Existing event ids are skipped; run rows are upserted so that the latest
 * ending wins whatever the arrival order.
 *
 * Kysely builds each statement once per shape (table and row count); the
 * SQL text is kept and later batches of that shape only bind new parameters,
 * which skips building and compiling a query tree of thousands of values per
 * batch. Rows go in chunks of power-of-two sizes (see `chunkSizes`), so the
 * shapes, and the driver's prepared statements, stay few whatever the batch
 * sizes are.
 */
export function eventWriter(plan: WritePlan): EventWriter {
  const sqlOf = shapeCache();

  /** The SQL text of `table`'s insert for `count` rows (`0`: the unnest form). */
  function shape(db: Kysely<Database>, name: string, table: TableWrite, count: number): string {
    return sqlOf(`${name}:${count}`, () => build(db, table, count));
  }

  function build(db: Kysely<Database>, table: TableWrite, count: number): string {
    const columns = Object.keys(table.types);
    const source = count === 0
      ? sql`select * from unnest(${
        sql.join(columns.map((c) => sql`${sql.val(null)}::${sql.raw(table.types[c]!)}[]`))
      })`
      : sql`values ${
        sql.join(
          Array.from({ length: count }, () => sql`(${sql.join(columns.map(() => null))})`),
        )
      }`;
    return table.build(db, source).compile().sql;
  }

  /** The statements that write `rows` of `table`. */
  function statements(
    db: Kysely<Database>,
    name: string,
    table: TableWrite,
    rows: readonly object[],
  ): CompiledQuery[] {
    if (rows.length === 0) return [];
    const columns = Object.keys(table.types);
    if (plan.mode === "unnest") {
      // One parameter per column whatever the row count: the driver sends each array as one value.
      const parameters = columns.map((column) => rows.map((row) => (row as Row)[column]));
      return [CompiledQuery.raw(shape(db, name, table, 0), parameters)];
    }
    const queries: CompiledQuery[] = [];
    const most = Math.max(1, Math.floor(plan.maxParameters / columns.length));
    let start = 0;
    for (const size of chunkSizes(rows.length, most)) {
      const parameters = new Array(size * columns.length);
      let i = 0;
      for (let r = start; r < start + size; r++) {
        const row = rows[r] as Row;
        for (const column of columns) parameters[i++] = row[column];
      }
      start += size;
      queries.push(CompiledQuery.raw(shape(db, name, table, size), parameters));
    }
    return queries;
  }

  return (db, rows) => {
    const audit = statements(db, "audit", AUDIT, rows.audit);
    return {
      queries: [
        ...audit,
        ...statements(db, "usage", USAGE, rows.usage),
        ...statements(db, "runs", RUNS, rows.runs),
      ],
      audit: audit.length,
    };
  };
}

/**
 * How many rows each statement of a `count`-row write takes: powers of two of
 * at most `most` rows (the largest first), so that whatever the batch sizes,
 * a table has at most ~log2(most) statement shapes to compile and prepare.
 * Exact sizes would compile and prepare a new statement (≈ 3 ms for 500
 * rows of seven columns) for each new row count a persister's age-based
 * flushes produce; the extra statements of a split cost far less.
 */
function chunkSizes(count: number, most: number): number[] {
  const cap = 2 ** Math.floor(Math.log2(most));
  const sizes: number[] = [];
  let left = count;
  while (left > 0) {
    const size = Math.min(cap, 2 ** Math.floor(Math.log2(left)));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

function keys<T extends object>(types: T): Array<keyof T & string> {
  return Object.keys(types) as Array<keyof T & string>;
}
