// Read queries over the SQL store's event tables: usage totals and a session's audit trail.

import type { TroupeEvent } from "../../actors/events.ts";
import type {
  AuditTrailPage,
  AuditTrailQuery,
  UsageTotals,
  UsageTotalsQuery,
} from "../../actors/ports.ts";
export type { AuditTrailPage, AuditTrailQuery, UsageTotals, UsageTotalsQuery };
import type { Kysely } from "kysely";
import { InvalidInputError } from "../../actors/errors.ts";
import { AUDIT_PAGE_SIZE } from "../../actors/validate.ts";
import { decodeAuditPosition, encodeCursor } from "./_cursor.ts";
import type { Database } from "./schema.ts";

const GROUPS = ["session", "model", "none"] as const;

/**
 * Sums the usage of an org's LLM calls over a time range, grouped by session
 * or model (ordered by that key) or in one row (zeros when there is none).
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { usageTotals } from "./sql_queries.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await new Migrator({ db, provider: migrations }).migrateToLatest();
 * const [all] = await usageTotals(db, { org: "acme" });
 * console.assert(all?.calls === 0 && all.key === null);
 * await db.destroy();
 * ```
 */
export async function usageTotals(
  db: Kysely<Database>,
  query: UsageTotalsQuery,
): Promise<UsageTotals[]> {
  const { org, from, to, groupBy = "none" } = query;
  if (!GROUPS.includes(groupBy)) {
    throw new InvalidInputError(
      "groupBy",
      `Cannot sum usage: groupBy must be one of ${GROUPS.join(", ")}, current value is ${
        JSON.stringify(groupBy)
      }`,
    );
  }
  for (const [field, value] of [["from", from], ["to", to]] as const) {
    if (value !== undefined && !Number.isFinite(value)) {
      throw new InvalidInputError(
        field,
        `Cannot sum usage: ${field} must be a finite number of ms, current value is ${value}`,
      );
    }
  }
  let select = db.selectFrom("usage_events").where("org", "=", org)
    .select((eb) => [
      eb.fn.countAll().as("calls"),
      eb.fn.sum("input_tokens").as("input_tokens"),
      eb.fn.sum("output_tokens").as("output_tokens"),
      eb.fn.sum("cached_tokens").as("cached_tokens"),
      eb.fn.sum("reasoning_tokens").as("reasoning_tokens"),
      eb.fn.sum("total_tokens").as("total_tokens"),
    ]);
  if (from !== undefined) select = select.where("ts", ">=", from);
  if (to !== undefined) select = select.where("ts", "<", to);
  const rows = groupBy === "none"
    ? (await select.execute()).map((row) => ({ ...row, key: null }))
    : await select.select(`${groupBy} as key`).groupBy(groupBy).orderBy(groupBy).execute();
  // PostgreSQL returns count and sum as strings (bigint, numeric); sum of no rows is null.
  return rows.map((row) => ({
    key: row.key,
    calls: Number(row.calls),
    inputTokens: Number(row.input_tokens ?? 0),
    outputTokens: Number(row.output_tokens ?? 0),
    cachedTokens: Number(row.cached_tokens ?? 0),
    reasoningTokens: Number(row.reasoning_tokens ?? 0),
    totalTokens: Number(row.total_tokens ?? 0),
  }));
}

/**
 * Reads a session's audit trail: the newest `limit` events before the
 * cursor, returned oldest first, as the original event objects. Events are
 * ordered by `ts`, then id. A cursor this function did not make throws an
 * `InvalidInputError` naming `before`.
 *
 * @example
 * ```ts
 * import { Kysely, Migrator } from "kysely";
 * import { migrations } from "./migrations/mod.ts";
 * import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
 * import { openSqlite } from "./open_sqlite.ts";
 * import type { Database } from "./schema.ts";
 * import { auditTrail } from "./sql_queries.ts";
 *
 * const db = new Kysely<Database>({
 *   dialect: nodeSqliteDialect({ database: openSqlite(":memory:") }),
 * });
 * await new Migrator({ db, provider: migrations }).migrateToLatest();
 * const page = await auditTrail(db, { org: "acme", session: "s1", limit: 10 });
 * console.assert(page.events.length === 0 && page.next === null);
 * await db.destroy();
 * ```
 */
export async function auditTrail(
  db: Kysely<Database>,
  query: AuditTrailQuery,
): Promise<AuditTrailPage> {
  const { org, session, limit = AUDIT_PAGE_SIZE.default, before } = query;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > AUDIT_PAGE_SIZE.max) {
    throw new InvalidInputError(
      "limit",
      `Cannot read the audit trail: limit must be an integer from 1 to ${AUDIT_PAGE_SIZE.max}, current value is ${limit}`,
    );
  }
  let select = db.selectFrom("audit_events").select(["id", "ts", "body"])
    .where("org", "=", org).where("session", "=", session);
  if (before !== undefined) {
    const { ts, id } = decodeAuditPosition(before);
    // `ts <= ts` repeats what the `or` implies so that the index seeks to the cursor
    // instead of walking every newer event of the session first.
    select = select.where("ts", "<=", ts).where((eb) =>
      eb.or([eb("ts", "<", ts), eb.and([eb("ts", "=", ts), eb("id", "<", id)])])
    );
  }
  // One extra row says whether an older page exists.
  const rows = await select.orderBy("ts", "desc").orderBy("id", "desc").limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit);
  const oldest = page.at(-1);
  return {
    events: page.reverse().map((row) => JSON.parse(row.body) as TroupeEvent),
    next: rows.length > limit && oldest !== undefined
      ? encodeCursor("a", [Number(oldest.ts), oldest.id])
      : null,
  };
}
