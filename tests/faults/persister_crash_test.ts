// Fault: a persister dies after its write commits and before its acks; another one stores the redeliveries once.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { startPersister } from "../../actors/persister.ts";
import type { Delivery, EventBus, EventStore } from "../../actors/ports.ts";
import { natsBus } from "../../adapters/bus/nats_bus.ts";
import { openStore } from "../../adapters/store/open_store.ts";
import { startNatsServer, startPostgres } from "../_harness/mod.ts";
import {
  assertExactlyOnce,
  type Published,
  publishLoad,
  settledRows,
  storedRows,
} from "./_exactly_once.ts";

const TOTAL = 5_000;
const GROUP = "fault-persister-crash";

/**
 * A process that can die: its store commits, then on the `crashAt`-th write
 * the process is dead, and from then on nothing it sends (ack or nak)
 * reaches the server. The deliveries it held are redelivered after the
 * consumer's ack wait, as after a `kill -9` of the process.
 */
function mortalProcess(bus: EventBus, store: EventStore, crashAt: number) {
  let writes = 0;
  let dead = false;
  const crashed = Promise.withResolvers<string[]>();
  const mortalStore: EventStore = {
    async writeEvents(events) {
      if (dead) throw new Error("the process is dead");
      const written = await store.writeEvents(events);
      if (++writes === crashAt) {
        dead = true;
        crashed.resolve(events.map((event) => event.id));
      }
      return written;
    },
    writeDeadLetters: (letters) => store.writeDeadLetters(letters),
    close: () => Promise.resolve(),
  };
  const mortalBus: EventBus = {
    ...bus,
    consume(group, options) {
      const batches = bus.consume!(group, options);
      return (async function* () {
        for await (const batch of batches) {
          yield batch.map((delivery): Delivery => ({
            data: delivery.data,
            attempt: delivery.attempt,
            ack: () => dead ? Promise.resolve() : delivery.ack(),
            nak: (delayMs) => {
              if (!dead) delivery.nak(delayMs);
            },
          }));
        }
      })();
    },
  };
  return { bus: mortalBus, store: mortalStore, crashed: crashed.promise };
}

Deno.test("a persister crashing between commit and ack: the next one stores the redeliveries once", async () => {
  await using nats = await startNatsServer();
  await using postgres = await startPostgres();
  await using store = await openStore(postgres.url);
  await using bus = await natsBus({ servers: nats.url, ackWaitMs: 2_000, onError: () => {} });
  const published: Published = { ids: [], usageIds: new Set() };
  publishLoad(bus.publish, published, 0, TOTAL / 2);

  const mortal = mortalProcess(bus, store, 3);
  const first = startPersister({
    bus: mortal.bus,
    store: mortal.store,
    group: GROUP,
    batchSize: 200,
    maxAgeMs: 20,
  });
  const committedUnacked = await deadline(mortal.crashed, 30_000);
  // The dead process's persister stops without a word to the server (its naks go nowhere).
  await first.close({ signal: AbortSignal.abort() });
  const atCrash = await storedRows(postgres.url);
  assert.ok(
    committedUnacked.every((id) => atCrash.ids.has(id)),
    "the last batch was committed before the crash",
  );

  publishLoad(bus.publish, published, TOTAL / 2, TOTAL);
  const redelivered = new Set<string>();
  const observed: EventBus = {
    ...bus,
    consume(group, options) {
      const batches = bus.consume!(group, options);
      return (async function* () {
        for await (const batch of batches) {
          for (const delivery of batch) {
            if (delivery.attempt > 1) redelivered.add((delivery.data as { id: string }).id);
          }
          yield batch;
        }
      })();
    },
  };
  await using second = startPersister({ bus: observed, store, group: GROUP, maxAgeMs: 20 });
  await deadline(bus.flush(), 60_000);

  const stored = await settledRows(postgres.url, TOTAL, 60_000);
  assertExactlyOnce(stored, published);
  for (const id of committedUnacked) {
    assert.ok(redelivered.has(id), `the committed, unacked event ${id} was redelivered`);
  }
  assert.equal(
    first.stats().written + second.stats().written,
    TOTAL,
    `each event written once (${atCrash.rows} rows at the crash); the redelivered copies were no-ops`,
  );
});
