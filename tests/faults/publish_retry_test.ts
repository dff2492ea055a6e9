// Fault: publishes time out (server paused or stopped) and are retried with the same msgID; stored once.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { startPersister } from "../../actors/persister.ts";
import { BusError } from "../../adapters/bus/errors.ts";
import { natsBus } from "../../adapters/bus/nats_bus.ts";
import { openStore } from "../../adapters/store/open_store.ts";
import { type NatsServer, startNatsServer } from "../_harness/mod.ts";
import {
  assertExactlyOnce,
  eventually,
  type Published,
  publishLoad,
  settledRows,
  streamMessages,
  tempDatabase,
} from "./_exactly_once.ts";

const TOTAL = 3_000;
// The bus's publish timeout (5 s) and a margin for the first retries (100 ms backoff) to go out.
const RETRIED_AFTER_MS = 6_000;

/** The pid of the nats-server using `server`'s store dir, found through `/proc` (Linux). */
async function natsServerPid(server: NatsServer): Promise<number> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    const argv = cmdline.split("\0");
    if (argv.some((arg) => arg.endsWith("nats-server")) && argv.includes(server.storeDir)) {
      return Number(entry.name);
    }
  }
  throw new Error(`Cannot find the nats-server process of ${server.storeDir} in /proc`);
}

/**
 * Runs a load through a NATS bus into a persister and a SQLite file, with an
 * outage made by `outage` after the first third; the outage lasts until a
 * publish timed out and its first retry went out. Checks that the stream and
 * the store hold each event once.
 */
async function publishThroughOutage(
  outage: (server: NatsServer) => Promise<{ end(): Promise<void> }>,
): Promise<void> {
  await using nats = await startNatsServer();
  await using db = await tempDatabase();
  await using store = await openStore(db.path);
  const publishErrors: BusError[] = [];
  await using bus = await natsBus({
    servers: nats.url,
    ackWaitMs: 2_000,
    onError: (error) => {
      if (error instanceof BusError && error.code === "publish_failed") publishErrors.push(error);
    },
  });
  await using _persister = startPersister({ bus, store, group: "fault-publish-retry" });
  const published: Published = { ids: [], usageIds: new Set() };

  publishLoad(bus.publish, published, 0, TOTAL / 3);
  await deadline(bus.flush(), 30_000);
  const down = await outage(nats);
  const downAt = performance.now();
  try {
    publishLoad(bus.publish, published, TOTAL / 3, TOTAL);
    await eventually(
      "publishes to time out and be retried",
      () => publishErrors.length > 0 && performance.now() - downAt >= RETRIED_AFTER_MS,
      30_000,
    );
  } finally {
    await down.end();
  }
  assert.equal((publishErrors[0]!.cause as Error).name, "TimeoutError", "a publish timed out");
  await deadline(bus.flush(), 60_000);

  assert.equal(await streamMessages(nats.url), TOTAL, "the stream holds each event once");
  const stored = await settledRows(db.path, TOTAL, 60_000);
  assertExactlyOnce(stored, published);
}

Deno.test("publishes retried after timing out on a paused nats-server are stored once", async () => {
  // SIGSTOP keeps the connection open: the first attempt of each publish waits in the socket,
  // its retry follows on the same connection, and the resumed server reads both copies.
  await publishThroughOutage(async (server) => {
    const pid = await natsServerPid(server);
    Deno.kill(pid, "SIGSTOP");
    return { end: () => Promise.resolve(Deno.kill(pid, "SIGCONT")) };
  });
});

Deno.test("publishes retried after timing out on a stopped nats-server are stored once", async () => {
  // While it reconnects the client drops what it buffered, so a timed-out publish is only
  // stored if the bus retries it once the server is back.
  await publishThroughOutage(async (server) => {
    await server.stop();
    return { end: () => server.restart() };
  });
});
