// Fault: PostgreSQL down for ~5 s mid-load; the persister retries with backoff, the pool reconnects, nothing lost.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { startPersister } from "../../actors/persister.ts";
import { natsBus } from "../../adapters/bus/nats_bus.ts";
import { openStore } from "../../adapters/store/open_store.ts";
import { type PostgresServer, startNatsServer, startPostgres } from "../_harness/mod.ts";
import {
  assertExactlyOnce,
  eventually,
  type Published,
  publishLoad,
  settledRows,
  storedRows,
} from "./_exactly_once.ts";

const TOTAL = 4_000;
const OUTAGE_MS = 5_000;

/** Runs a load through NATS and a persister into PostgreSQL, taking the database down mid-load. */
async function loadThroughOutage(takeDown: (postgres: PostgresServer) => Promise<void>) {
  await using nats = await startNatsServer();
  await using postgres = await startPostgres();
  const connectionErrors: Error[] = [];
  await using store = await openStore(postgres.url, {
    onConnectionError: (error) => connectionErrors.push(error),
  });
  await using bus = await natsBus({ servers: nats.url, ackWaitMs: 2_000, onError: () => {} });
  const writeErrors: unknown[] = [];
  await using persister = startPersister({
    bus,
    store,
    group: "fault-postgres-down",
    batchSize: 200,
    maxAgeMs: 20,
    maxBackoffMs: 1_000,
    onError: (error, failure) => {
      if (failure.phase === "write") writeErrors.push(error);
    },
  });
  const published: Published = { ids: [], usageIds: new Set() };

  publishLoad(bus.publish, published, 0, TOTAL / 2);
  await eventually("a first part of the load to be stored", async () => {
    return (await storedRows(postgres.url)).rows >= 400;
  });
  await takeDown(postgres);
  const downAt = performance.now();
  publishLoad(bus.publish, published, TOTAL / 2, (TOTAL * 3) / 4);
  // Down for at least OUTAGE_MS, and long enough for the persister to fail and back off twice.
  await eventually(
    "the persister to retry while the database is down",
    () => writeErrors.length >= 2 && performance.now() - downAt >= OUTAGE_MS,
  );
  const retriesWhileDown = persister.stats().retries;
  await postgres.start();
  publishLoad(bus.publish, published, (TOTAL * 3) / 4, TOTAL);
  await deadline(bus.flush(), 60_000);

  const stored = await settledRows(postgres.url, TOTAL, 60_000);
  assertExactlyOnce(stored, published);
  assert.ok(retriesWhileDown >= 1, "the failed batch was retried with backoff");
  assert.ok(connectionErrors.length > 0, "the pool reported its broken connections");
  assert.equal(persister.stats().written, TOTAL, "each event written once");
  // The store's own pool, not only fresh clients, works again after the restart.
  const totals = await store.usageTotals({ org: "faults" });
  assert.equal(totals[0]?.calls, published.usageIds.size);
}

Deno.test("PostgreSQL stopped for 5 s mid-load: the persister retries and stores every event once", async () => {
  await loadThroughOutage((postgres) => postgres.stop());
});

Deno.test("PostgreSQL crashed (SIGKILL) for 5 s mid-load: the persister retries and stores every event once", async () => {
  await loadThroughOutage((postgres) => postgres.kill());
});
