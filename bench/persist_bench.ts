// Rows per second of persister batches (writeEvents of 500) against one write per event, SQLite and
// PostgreSQL; and events per second end to end, published to JetStream until persisted in SQLite.
//
// The events are whole runs as the session actor emits them (message.received,
// run.started, usage.recorded, run.completed): a batch of 500 writes 500 audit
// rows, 125 usage rows and 125 run rows (a run's start and end fold into one
// upsert), 750 rows in all; the bench prints that count, taken from the rows
// a batch really becomes. rows/s = 750 / (time per iteration), events/s =
// 500 / (time per iteration).
// The baseline of each group writes the same events one `writeEvents` call
// (one autocommit transaction) per event: a persister that does not batch.
// PostgreSQL is written three ways: multi-row VALUES, unnest arrays (the
// store's default, the fastest when this was written) and COPY through staging
// tables (`_pg_copy.ts`; COPY has no ON CONFLICT, so redelivery needs them).
//
// events/s end to end = E2E_EVENTS / (time per iteration): an iteration
// publishes that many new events on a NATS bus and ends when its persister
// has written them all to SQLite. The baseline publishes one event at a time
// (each waits for the stream's ack before the next goes out) into a persister
// that writes one event per transaction.

import { readFileSync } from "node:fs";
import type { TroupeEvent } from "../actors/events.ts";
import { type Persister, startPersister } from "../actors/persister.ts";
import { natsBus } from "../adapters/bus/nats_bus.ts";
import { openStore, type SqlStore } from "../adapters/store/mod.ts";
import { eventRows } from "../adapters/store/_event_rows.ts";
import { startNatsServer, startPostgres } from "../tests/_harness/mod.ts";
import { runEvents } from "./_persist_events.ts";
import { copyWriter } from "./_pg_copy.ts";

const BATCH = 500;
const batch = () => runEvents(BATCH);

{
  const rows = eventRows(batch());
  const total = rows.audit.length + rows.usage.length + rows.runs.length;
  console.log(
    `A batch of ${BATCH} events writes ${total} rows (${rows.audit.length} audit, ` +
      `${rows.usage.length} usage, ${rows.runs.length} run): rows/s = ${total} / time, ` +
      `events/s = ${BATCH} / time.`,
  );
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
// The default: the connection lives in the store's worker and a batch crosses in one message.
const sqliteBatched = await openStore(`${dir}/batched.db`);
const sqliteSingle = await openStore(`${dir}/single.db`);
// The connection on the event loop (`sqliteThread: "main"`): faster per batch, but each write
// holds the event loop for its whole length (see persist_stall.ts).
const sqliteMain = await openStore(`${dir}/main.db`, { sqliteThread: "main" });

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

Deno.bench({
  name: "sqlite: writeEvents batch of 500 events, connection on the event loop",
  group: "sqlite 500 events",
  fn: timed((events) => sqliteMain.writeEvents(events)),
});

// ------------------------------------------------------------ PostgreSQL

const postgres = await startPostgres();
const pgUnnest = await openStore(postgres.url, { postgresBulk: "unnest" });
const pgValues = await openStore(postgres.url, { postgresBulk: "values" });
const pgSingle = await openStore(postgres.url);
const pgCopy = copyWriter(postgres.url);

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

Deno.bench({
  name: "postgres: batch of 500 events, COPY into staging tables + INSERT ... SELECT",
  group: "postgres 500 events",
  fn: timed((events) => pgCopy.writeEvents(events)),
});

// ------------------------------------------------- End to end over JetStream

const E2E_EVENTS = 5_000;
const nats = await startNatsServer();

/** A NATS bus on its own stream, a SQLite store and a persister between them. */
async function pipeline(name: string, options: { maxInFlight?: number; batchSize?: number }) {
  const store = await openStore(`${dir}/${name}.db`);
  const bus = await natsBus({
    servers: nats.url,
    stream: name.toUpperCase(),
    subjectPrefix: name,
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
  });
  const persister = startPersister({
    bus,
    store,
    group: name,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize, maxAgeMs: 0 }),
  });
  return { bus, persister };
}

/** Resolves once the persister has written `target` events in all. */
async function written(persister: Persister, target: number): Promise<void> {
  while (persister.stats().written < target) await new Promise((r) => setTimeout(r, 1));
}

/** Bench publishing a fresh load until it is persisted; making the events is not timed. */
function endToEnd(line: Awaited<ReturnType<typeof pipeline>>) {
  return async (b: Deno.BenchContext): Promise<void> => {
    const events = Array.from({ length: E2E_EVENTS / BATCH }, batch).flat();
    const target = line.persister.stats().written + events.length;
    b.start();
    for (const event of events) line.bus.publish(event);
    await written(line.persister, target);
    b.end();
  };
}

const oneByOne = await pipeline("e2e_single", { maxInFlight: 1, batchSize: 1 });
const batched = await pipeline("e2e_batched", {});

Deno.bench({
  name:
    `jetstream -> sqlite: one publish awaited at a time, one event a write (${E2E_EVENTS} events)`,
  group: "end to end",
  baseline: true,
  n: 2,
  warmup: 1,
  fn: endToEnd(oneByOne),
});

Deno.bench({
  name: `jetstream -> sqlite: pipelined publishes, batches of 500 (${E2E_EVENTS} events)`,
  group: "end to end",
  n: 10,
  warmup: 2,
  fn: endToEnd(batched),
});

// deno bench has no teardown hook and `unload` cannot await, so the servers are
// stopped synchronously: SIGINT is PostgreSQL's fast shutdown, SIGKILL ends nats-server
// (its store is deleted with it).
globalThis.addEventListener("unload", () => {
  void nats.kill("SIGKILL");
  Deno.removeSync(nats.storeDir.replace(/\/store$/, ""), { recursive: true });
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
