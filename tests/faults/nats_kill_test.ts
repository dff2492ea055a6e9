// Fault: nats-server killed with SIGKILL in the middle of a load; every event still stored exactly once.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { startPersister } from "../../actors/persister.ts";
import { natsBus } from "../../adapters/bus/nats_bus.ts";
import { openStore } from "../../adapters/store/open_store.ts";
import { startNatsServer } from "../_harness/mod.ts";
import {
  assertExactlyOnce,
  eventually,
  type Published,
  publishLoad,
  settledRows,
  storedRows,
  streamMessages,
  tempDatabase,
} from "./_exactly_once.ts";

const TOTAL = 10_000;

Deno.test("nats-server SIGKILLed mid-load and restarted: 10,000 events stored once each", async () => {
  await using nats = await startNatsServer();
  await using db = await tempDatabase();
  await using store = await openStore(db.path);
  const busErrors: unknown[] = [];
  // Deliveries whose acks died with the server come again after the ack wait: keep it short.
  await using bus = await natsBus({
    servers: nats.url,
    ackWaitMs: 2_000,
    onError: (error) => busErrors.push(error),
  });
  const persisterErrors: unknown[] = [];
  await using persister = startPersister({
    bus,
    store,
    group: "fault-nats-kill",
    batchSize: 500,
    maxAgeMs: 20,
    maxBackoffMs: 1_000,
    onError: (error) => persisterErrors.push(error),
  });
  const published: Published = { ids: [], usageIds: new Set() };

  publishLoad(bus.publish, published, 0, 4_000);
  // Crash while the persister is part-way through: some rows stored, more in flight.
  await eventually("a first part of the load to be stored", async () => {
    return (await storedRows(db.path)).rows >= 1_000;
  });
  const beforeCrash = (await storedRows(db.path)).rows;
  await nats.kill("SIGKILL");
  publishLoad(bus.publish, published, 4_000, 7_000);
  await nats.restart();
  publishLoad(bus.publish, published, 7_000, TOTAL);
  await deadline(bus.flush(), 60_000);

  const stored = await settledRows(db.path, TOTAL, 60_000);
  assert.ok(beforeCrash < TOTAL, `the crash came mid-load (${beforeCrash} rows before it)`);
  assertExactlyOnce(stored, published);
  assert.equal(await streamMessages(nats.url), TOTAL, "retried publishes were deduplicated");
  assert.ok(busErrors.length > 0, "the bus saw the outage");
  assert.equal(persister.stats().written, TOTAL, "the persister wrote each event once");
});
