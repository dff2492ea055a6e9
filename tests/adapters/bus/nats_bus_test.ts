// Runs the EventBus contract against the JetStream bus on a real nats-server, plus durability and consumption.

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { deadline, delay } from "@std/async";
import type { TroupeEvent } from "../../../actors/events.ts";
import type { Delivery, EventBus } from "../../../actors/ports.ts";
import { BusError } from "../../../adapters/bus/errors.ts";
import { natsBus, type NatsBusOptions } from "../../../adapters/bus/nats_bus.ts";
import { natsSubject } from "../../../adapters/bus/nats_subject.ts";
import { type NatsServer, startNatsServer } from "../../_harness/mod.ts";
import { runBusContract } from "../../contracts/bus_contract.ts";
import { eventually } from "../../_helpers/eventually.ts";

runBusContract({
  name: "nats",
  async create({ onError }) {
    const server = await startNatsServer();
    const orphans: unknown[] = [];
    try {
      const bus = await natsBus({
        servers: server.url,
        onError: (error, event) =>
          event === undefined ? orphans.push(error) : onError(error, event),
      });
      return {
        ...bus,
        async [Symbol.asyncDispose]() {
          try {
            await bus.close();
          } finally {
            await server[Symbol.asyncDispose]();
          }
          assert.deepEqual(orphans, []);
        },
      };
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw error;
    }
  },
});

/** A valid event numbered `n` of a run of events tagged `tag`. */
function eventOf(n: number, org = "o", tag = "t"): TroupeEvent {
  return {
    id: `${tag}-${n}`,
    ts: 1_700_000_000_000 + n,
    org,
    session: `s${n % 7}`,
    type: "message.received",
    message: `m${n}`,
    policy: "merge",
    length: n,
  };
}

/** Opens a management connection to the server for checks, closed on dispose. */
async function manager(server: NatsServer): Promise<JetStreamManager & AsyncDisposable> {
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  return Object.assign(jsm, { [Symbol.asyncDispose]: () => nc.close() });
}

/** Consume `group`, acking each batch, until `done(counts)` holds; returns how often each id came. */
async function consumeUntil(
  bus: EventBus,
  group: string,
  done: (counts: Map<string, number>) => boolean,
  timeout = 60_000,
): Promise<Map<string, number>> {
  const controller = new AbortController();
  const counts = new Map<string, number>();
  const consuming = (async () => {
    for await (
      const batch of bus.consume!(group, {
        signal: controller.signal,
        batchSize: 500,
        maxWaitMs: 20,
      })
    ) {
      for (const delivery of batch) {
        const id = (delivery.data as TroupeEvent).id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      // An ack lost to a server restart is fine: the event comes again, like for a persister.
      await Promise.allSettled(batch.map((delivery) => delivery.ack()));
      if (done(counts)) controller.abort();
    }
  })();
  try {
    await deadline(consuming, timeout);
  } finally {
    controller.abort();
    await consuming.catch(() => {});
  }
  return counts;
}

async function withBus(
  options: Partial<NatsBusOptions>,
  use: (bus: EventBus, server: NatsServer, errors: unknown[]) => Promise<void>,
): Promise<void> {
  await using server = await startNatsServer();
  const errors: unknown[] = [];
  await using bus = await natsBus({
    servers: server.url,
    onError: (error) => errors.push(error),
    ...options,
  });
  await use(bus, server, errors);
}

Deno.test("nats bus: 10,000 published events are consumed by a durable group exactly as published", async () => {
  await withBus({}, async (bus, server, errors) => {
    const events = Array.from({ length: 10_000 }, (_, n) => eventOf(n));
    for (const event of events) bus.publish(event);
    await bus.flush();
    const counts = await consumeUntil(bus, "persister", (seen) => seen.size === events.length);
    assert.deepEqual(new Set(counts.keys()), new Set(events.map((event) => event.id)));
    assert.ok([...counts.values()].every((count) => count === 1), "no event came twice");
    await using jsm = await manager(server);
    await eventually("every ack to reach the server", async () => {
      const info = await jsm.consumers.info("TROUPE", "persister");
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    assert.deepEqual(errors, []);
  });
});

Deno.test("nats bus: the same event id published twice is stored once", async () => {
  await withBus({}, async (bus, server) => {
    bus.publish(eventOf(1));
    bus.publish(eventOf(1));
    await bus.flush();
    bus.publish(eventOf(1));
    bus.publish(eventOf(2));
    await bus.flush();
    await using jsm = await manager(server);
    const info = await jsm.streams.info("TROUPE");
    assert.equal(info.state.messages, 2);
  });
});

Deno.test("nats bus: an org with dots, spaces and wildcards stays in one subject token", async () => {
  await withBus({}, async (bus, server) => {
    const event = eventOf(1, "a.b *>");
    bus.publish(event);
    await bus.flush();
    await using jsm = await manager(server);
    const stored = await jsm.streams.getMessage("TROUPE", { seq: 1 });
    assert.equal(stored?.subject, "troupe.a%2Eb%20%2A%3E.message.received");
    assert.equal(stored?.subject, natsSubject("troupe", event));
    assert.deepEqual(stored?.json(), event);
    assert.equal(stored?.subject.split(".").length, 4);
  });
});

Deno.test("nats bus: kill -9 of the server mid-publish loses nothing, saturates and recovers", async () => {
  // Deliveries lost with the crash come again after the ack wait: keep it short.
  await withBus({ maxBuffered: 1_000, ackWaitMs: 3_000 }, async (bus, server) => {
    const total = 10_000;
    const consumed = consumeUntil(bus, "survivor", (seen) => seen.size === total, 120_000);
    for (let n = 0; n < total / 2; n++) bus.publish(eventOf(n));
    {
      await using jsm = await manager(server);
      await eventually("a first part to be stored", async () => {
        const info = await jsm.streams.info("TROUPE");
        return info.state.messages >= 500;
      });
    }
    await server.kill("SIGKILL");
    for (let n = total / 2; n < total; n++) bus.publish(eventOf(n));
    assert.equal(bus.saturated!(), true, "saturated while the server is down");
    await server.restart();
    await deadline(bus.flush(), 60_000);
    assert.equal(bus.saturated!(), false, "not saturated once flushed");
    {
      // Retried publishes were deduplicated: any event consumed twice is a redelivery.
      await using jsm = await manager(server);
      assert.equal((await jsm.streams.info("TROUPE")).state.messages, total);
    }
    const counts = await consumed;
    assert.equal(counts.size, total);
    for (let n = 0; n < total; n++) assert.ok(counts.has(`t-${n}`), `t-${n} consumed`);
  });
});

Deno.test("nats bus: a nak'd delivery comes again with a higher attempt", async () => {
  await withBus({}, async (bus) => {
    bus.publish(eventOf(1));
    await bus.flush();
    const controller = new AbortController();
    const attempts: number[] = [];
    for await (
      const batch of bus.consume!("retry", {
        signal: controller.signal,
        batchSize: 10,
        maxWaitMs: 10,
      })
    ) {
      const delivery: Delivery = batch[0]!;
      attempts.push(delivery.attempt);
      if (delivery.attempt === 1) {
        delivery.nak(10);
      } else {
        await delivery.ack();
        controller.abort();
      }
    }
    assert.deepEqual(attempts, [1, 2]);
  });
});

Deno.test("nats bus: a delivery that is not JSON is handed over as its raw text", async () => {
  await withBus({}, async (bus, server) => {
    const nc = await connect({ servers: server.url });
    try {
      nc.publish("troupe.o.garbage", "not json {");
      await nc.flush();
    } finally {
      await nc.close();
    }
    const controller = new AbortController();
    let data: unknown;
    for await (
      const batch of bus.consume!("raw", {
        signal: controller.signal,
        batchSize: 10,
        maxWaitMs: 10,
      })
    ) {
      data = batch[0]!.data;
      await batch[0]!.ack();
      controller.abort();
    }
    assert.equal(data, "not json {");
  });
});

Deno.test("nats bus: consume ends when its signal aborts while waiting", async () => {
  await withBus({}, async (bus, server) => {
    const controller = new AbortController();
    let batches = 0;
    const consuming = (async () => {
      for await (
        const _ of bus.consume!("usage persister.v1", {
          signal: controller.signal,
          batchSize: 10,
          maxWaitMs: 10,
        })
      ) {
        batches++;
      }
    })();
    await using jsm = await manager(server);
    await eventually(
      "the durable consumer, its name sanitised, to exist",
      () => jsm.consumers.info("TROUPE", "usage%20persister%2Ev1").then(() => true, () => false),
    );
    controller.abort();
    await deadline(consuming, 5_000);
    assert.equal(batches, 0);
  });
});

Deno.test("nats bus: consume ends when the bus closes", async () => {
  await using server = await startNatsServer();
  const bus = await natsBus({ servers: server.url });
  const consuming = (async () => {
    for await (
      const batch of bus.consume!("closing", {
        signal: new AbortController().signal,
        batchSize: 10,
        maxWaitMs: 10,
      })
    ) {
      await Promise.all(batch.map((delivery) => delivery.ack()));
    }
  })();
  bus.publish(eventOf(1));
  await bus.flush();
  await bus.close();
  await deadline(consuming, 5_000);
});

Deno.test("nats bus: bad options throw at once", async () => {
  await assert.rejects(natsBus({ servers: "nats://127.0.0.1:1", maxBuffered: 0 }), RangeError);
  await assert.rejects(natsBus({ servers: "nats://127.0.0.1:1", subjectPrefix: "a.*" }), TypeError);
  await assert.rejects(natsBus({ servers: "nats://127.0.0.1:1", stream: "A.B" }), TypeError);
  await assert.rejects(
    natsBus({ servers: "nats://127.0.0.1:1", publishTimeoutMs: 0 }),
    (error) => error instanceof RangeError && /publishTimeoutMs/.test(error.message),
  );
});

Deno.test("nats bus: close() with the server down gives up after closeTimeoutMs and says how many were lost", async () => {
  await using server = await startNatsServer();
  const errors: unknown[] = [];
  const bus = await natsBus({
    servers: server.url,
    closeTimeoutMs: 200,
    onError: (error) => errors.push(error),
  });
  await server.kill("SIGKILL");
  bus.publish(eventOf(1));
  bus.publish(eventOf(2));
  const flushed = bus.flush();
  const closed = bus.close();
  await assert.rejects(
    flushed,
    (error) => error instanceof BusError && error.code === "undelivered",
  );
  await assert.rejects(
    closed,
    (error) => error instanceof BusError && error.code === "undelivered" && error.undelivered === 2,
  );
  bus.publish(eventOf(3));
  assert.ok(
    errors.some((error) => error instanceof BusError && error.code === "closed"),
    "a publish after close is reported",
  );
});

Deno.test("nats bus: persisted() resolves once the stream holds the events, whatever the groups do", async () => {
  await withBus({}, async (bus, server) => {
    // A member that takes a batch and never acks it: persisted() does not wait for groups.
    const controller = new AbortController();
    const held = Promise.withResolvers<Delivery[]>();
    const consuming = (async () => {
      for await (
        const batch of bus.consume!("holder", {
          signal: controller.signal,
          batchSize: 100,
          maxWaitMs: 10,
        })
      ) held.resolve(batch);
    })();
    const events = Array.from({ length: 50 }, (_, n) => eventOf(n));
    for (const event of events) bus.publish(event);
    await bus.persisted!();
    await using jsm = await manager(server);
    assert.equal((await jsm.streams.info("TROUPE")).state.messages, events.length);
    assert.ok((await held.promise).length > 0);
    controller.abort();
    await consuming;
  });
});

Deno.test("nats bus: persisted() waits out an outage, reported once; what was published during it is sent again on reconnect, not after the publish timeout", async () => {
  // A publish timeout far beyond the test's bound: only the reconnect can get the event through.
  await withBus({ publishTimeoutMs: 600_000 }, async (bus, server, errors) => {
    bus.publish(eventOf(1, "o", "before"));
    await bus.persisted!();
    await server.kill("SIGKILL");
    // Sent on a connection that is gone: its ack can never come on it.
    bus.publish(eventOf(2, "o", "during"));
    const waiting = bus.persisted!();
    await delay(300);
    let settled = false;
    waiting.then(() => settled = true, () => settled = true);
    await delay(0);
    assert.equal(settled, false, "persisted() waits out the outage");
    await server.restart();
    await deadline(waiting, 60_000);
    await using jsm = await manager(server);
    const stored = await jsm.streams.getMessage("TROUPE", { seq: 2 });
    assert.equal((stored?.json() as TroupeEvent).id, "during-2");
    assert.equal((await jsm.streams.info("TROUPE")).state.messages, 2, "stored once");
    const disconnects = errors.filter((e) => e instanceof BusError && e.code === "disconnected");
    assert.equal(disconnects.length, 1, "the lost connection is reported once");
    assert.match(String(disconnects[0]), /Lost the connection to NATS/);
  });
});
