// The load and the exactly-once check the fault tests share: generated events, stored rows counted by SQL.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { TroupeEvent } from "../../actors/events.ts";
import { eventually } from "../_helpers/eventually.ts";
export { eventually };

/** The part of an npm:pg `Client` the check uses. */
interface PgClient {
  connect(): Promise<unknown>;
  query(sql: string): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

/**
 * Event number `n` of a load, with a fresh UUID: even numbers are
 * `usage.recorded` (one row in `audit_events` and one in `usage_events`),
 * odd numbers `run.started` (one row in `audit_events`, one in `runs`).
 */
export function loadEvent(n: number, org = "faults"): TroupeEvent {
  const envelope = {
    id: crypto.randomUUID(),
    ts: 1_700_000_000_000 + n,
    org,
    session: `s${n % 50}`,
  };
  if (n % 2 === 1) {
    return { ...envelope, type: "run.started", run: `r${n}`, messages: [`m${n}`] };
  }
  return {
    ...envelope,
    type: "usage.recorded",
    run: `r${n - 1}`,
    provider: "mock",
    model: "mock-1",
    inputTokens: 10,
    outputTokens: 5,
    cachedTokens: 0,
    reasoningTokens: 0,
    totalTokens: 15,
    source: "estimated",
    status: "completed",
    latencyMs: 1,
    ttftMs: 1,
    messages: [`m${n - 1}`],
  };
}

/** Events published by a test, in order. */
export interface Published {
  /** Every event id, in publish order. */
  ids: string[];
  /** The ids of the `usage.recorded` events. */
  usageIds: Set<string>;
}

/** Publishes events `from` to `to - 1` of a load and records their ids. */
export function publishLoad(
  publish: (event: TroupeEvent) => void,
  published: Published,
  from: number,
  to: number,
): void {
  for (let n = from; n < to; n++) {
    const event = loadEvent(n);
    published.ids.push(event.id);
    if (event.type === "usage.recorded") published.usageIds.add(event.id);
    publish(event);
  }
}

/** What the store holds, counted with direct SQL. */
export interface StoredRows {
  /** Rows of `audit_events`. */
  rows: number;
  /** Distinct ids of `audit_events`. */
  distinct: number;
  /** The ids of `audit_events`. */
  ids: Set<string>;
  /** Rows of `usage_events`. */
  usageRows: number;
  /** Distinct ids of `usage_events`. */
  usageDistinct: number;
}

const COUNT_AUDIT = "select count(*) as n, count(distinct id) as d from audit_events";
const COUNT_USAGE = "select count(*) as n, count(distinct id) as d from usage_events";
const AUDIT_IDS = "select id from audit_events";

type Row = Record<string, unknown>;

/** The stored rows from what either database answered to the three queries (PostgreSQL counts are strings). */
function stored(audit: Row, usage: Row, ids: readonly Row[]): StoredRows {
  return {
    rows: Number(audit.n),
    distinct: Number(audit.d),
    ids: new Set(ids.map((row) => String(row.id))),
    usageRows: Number(usage.n),
    usageDistinct: Number(usage.d),
  };
}

/**
 * Counts the rows of the store at `url` (a `postgres://` URL or a SQLite file
 * path) through a connection of its own: npm:pg's `Client` or `node:sqlite`.
 */
export async function storedRows(url: string): Promise<StoredRows> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const client: PgClient = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const audit = (await client.query(COUNT_AUDIT)).rows[0]!;
      const usage = (await client.query(COUNT_USAGE)).rows[0]!;
      return stored(audit, usage, (await client.query(AUDIT_IDS)).rows);
    } finally {
      await client.end();
    }
  }
  const db = new DatabaseSync(url, { readOnly: true });
  try {
    db.exec("pragma busy_timeout = 5000");
    const audit = db.prepare(COUNT_AUDIT).get() as Row;
    const usage = db.prepare(COUNT_USAGE).get() as Row;
    return stored(audit, usage, db.prepare(AUDIT_IDS).all());
  } finally {
    db.close();
  }
}

/**
 * Polls the store until it holds `expected` rows or `timeout` ms pass, and
 * returns the last count: a shortfall is left to {@linkcode assertExactlyOnce},
 * which says what is missing.
 */
export async function settledRows(
  url: string,
  expected: number,
  timeout = 30_000,
): Promise<StoredRows> {
  const end = performance.now() + timeout;
  for (;;) {
    const stored = await storedRows(url);
    if (stored.rows >= expected || performance.now() > end) return stored;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Stored ids are the published ids, each in exactly one row; usage rows likewise. */
export function assertExactlyOnce(
  stored: StoredRows,
  published: { ids: readonly string[]; usageIds?: ReadonlySet<string> },
): void {
  const expected = new Set(published.ids);
  assert.equal(expected.size, published.ids.length, "the test published distinct ids");
  const lost = published.ids.filter((id) => !stored.ids.has(id));
  const unknown = [...stored.ids].filter((id) => !expected.has(id));
  assert.deepEqual(
    { lost: lost.length, duplicated: stored.rows - stored.distinct, unknown: unknown.length },
    { lost: 0, duplicated: 0, unknown: 0 },
    `stored ${stored.rows} rows (${stored.distinct} ids) for ${expected.size} published; ` +
      `first lost: ${lost.slice(0, 3).join(", ")}`,
  );
  assert.equal(stored.rows, expected.size);
  if (published.usageIds !== undefined) {
    assert.equal(stored.usageRows, published.usageIds.size, "usage rows = usage events published");
    assert.equal(stored.usageDistinct, stored.usageRows, "no usage row twice");
  }
}

/** A temp dir holding a SQLite file path; dispose it to delete the dir. */
export interface TempDatabase extends AsyncDisposable {
  /** The path of the database file (created by whoever opens it). */
  readonly path: string;
}

/** Makes a temp dir for a SQLite database file. */
export async function tempDatabase(): Promise<TempDatabase> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-fault-" });
  return {
    path: `${dir}/events.db`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** How many messages the JetStream stream `stream` holds, read over a connection of its own. */
export async function streamMessages(url: string, stream = "TROUPE"): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}
