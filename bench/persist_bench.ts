// Rows per second of persister batches (writeEvents of 500) against one write per event, SQLite and PostgreSQL.
//
// rows/s = 500 / (time per iteration). The events are whole runs as the
// session actor emits them (message.received, run.started, usage.recorded,
// run.completed), so a batch also writes usage rows and upserts run rows.
// The baseline of each group writes the same events one `writeEvents` call
// (one autocommit transaction) per event: a persister that does not batch.

import { readFileSync } from "node:fs";
import type { TroupeEvent } from "../actors/events.ts";
import { openStore, type SqlStore } from "../adapters/store/mod.ts";
import { startPostgres } from "../tests/_harness/mod.ts";

const BATCH = 500;

let next = 0;

/** `BATCH` new events: whole runs of four events each, spread over 50 sessions. */
function batch(): TroupeEvent[] {
  const events: TroupeEvent[] = [];
  const ts = Date.now();
  while (events.length < BATCH) {
    const n = next++;
    const base = { org: "acme", session: `s${n % 50}`, ts };
    const run = `run-${n}`;
    const messages = [`msg-${n}`];
    events.push(
      {
        ...base,
        id: `${n}-a`,
        type: "message.received",
        message: messages[0]!,
        policy: "merge",
        length: 42,
      },
      { ...base, id: `${n}-b`, type: "run.started", run, messages },
      {
        ...base,
        id: `${n}-c`,
        type: "usage.recorded",
        run,
        provider: "mock",
        model: n % 2 === 0 ? "small" : "large",
        inputTokens: 120,
        outputTokens: 48,
        cachedTokens: 0,
        reasoningTokens: 0,
        totalTokens: 168,
        source: "reported",
        status: "completed",
        latencyMs: 230,
        ttftMs: 40,
        messages,
      },
      { ...base, id: `${n}-d`, type: "run.completed", run, messages, finishReason: "stop" },
    );
  }
  return events;
}

/** Bench a write of a fresh batch; making the events is not timed. */
function timed(write: (events: TroupeEvent[]) => Promise<unknown>) {
  return async (b: Deno.BenchContext): Promise<void> => {
    const events = batch();
    b.start();
    await write(events);
    b.end();
  };
}

async function onePerEvent(store: SqlStore, events: TroupeEvent[]): Promise<void> {
  for (const event of events) await store.writeEvents([event]);
}

// ---------------------------------------------------------------- SQLite

const dir = await Deno.makeTempDir({ prefix: "troupe_persist_bench_" });
const sqliteBatched = await openStore(`${dir}/batched.db`);
const sqliteSingle = await openStore(`${dir}/single.db`);

Deno.bench({
  name: "sqlite: one writeEvents per event (autocommit), 500 events",
  group: "sqlite 500 events",
  baseline: true,
  fn: timed((events) => onePerEvent(sqliteSingle, events)),
});

Deno.bench({
  name: "sqlite: writeEvents batch of 500 events",
  group: "sqlite 500 events",
  fn: timed((events) => sqliteBatched.writeEvents(events)),
});

// ------------------------------------------------------------ PostgreSQL

const postgres = await startPostgres();
const pgUnnest = await openStore(postgres.url, { postgresBulk: "unnest" });
const pgValues = await openStore(postgres.url, { postgresBulk: "values" });
const pgSingle = await openStore(postgres.url);

Deno.bench({
  name: "postgres: one writeEvents per event (autocommit), 500 events",
  group: "postgres 500 events",
  baseline: true,
  fn: timed((events) => onePerEvent(pgSingle, events)),
});

Deno.bench({
  name: "postgres: writeEvents batch of 500 events, multi-row VALUES",
  group: "postgres 500 events",
  fn: timed((events) => pgValues.writeEvents(events)),
});

Deno.bench({
  name: "postgres: writeEvents batch of 500 events, unnest arrays (default)",
  group: "postgres 500 events",
  fn: timed((events) => pgUnnest.writeEvents(events)),
});

// deno bench has no teardown hook and `unload` cannot await, so the server is
// stopped synchronously: SIGINT is PostgreSQL's fast shutdown.
globalThis.addEventListener("unload", () => {
  const pid = Number(readFileSync(`${postgres.dataDir}/postmaster.pid`, "utf8").split("\n")[0]);
  Deno.kill(pid, "SIGINT");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const end = performance.now() + 15_000;
  while (existsSync(`/proc/${pid}`) && performance.now() < end) Atomics.wait(pause, 0, 0, 20);
  Deno.removeSync(postgres.dataDir.replace(/\/data$/, ""), { recursive: true });
  Deno.removeSync(dir, { recursive: true });
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
