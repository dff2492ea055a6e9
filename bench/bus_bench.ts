// Measures the NATS bus on a real nats-server: pipelined publish against one-ack-at-a-time, and publish to consume.

import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { TroupeEvent } from "../actors/events.ts";
import type { EventBus } from "../actors/ports.ts";
import { memoryBus } from "../adapters/bus/memory_bus.ts";
import { natsBus } from "../adapters/bus/nats_bus.ts";
import { natsSubject } from "../adapters/bus/nats_subject.ts";
import { startNatsServer } from "../tests/_harness/mod.ts";

// Events per iteration: events/s = EVENTS / (time per iteration).
const EVENTS = 2_000;
// Each iteration starts its own server, so keep the number of iterations small.
const RUNS = { n: 8, warmup: 2 } as const;

let next = 0;
function events(): TroupeEvent[] {
  return Array.from({ length: EVENTS }, () => {
    const n = next++;
    return {
      id: `bench-${n}`,
      ts: n,
      org: "acme",
      session: `s${n % 50}`,
      type: "usage.recorded",
      run: `r${n}`,
      provider: "mock",
      model: "mock-1",
      inputTokens: 120,
      outputTokens: 80,
      cachedTokens: 0,
      reasoningTokens: 0,
      totalTokens: 200,
      source: "reported",
      status: "completed",
      latencyMs: 850,
      ttftMs: 120,
      messages: [`m${n}`],
    };
  });
}

/** Publish everything, then consume it through a group, acking each batch, until all came. */
async function publishAndConsume(bus: EventBus, batch: TroupeEvent[]): Promise<void> {
  const controller = new AbortController();
  const consuming = (async () => {
    let seen = 0;
    for await (
      const deliveries of bus.consume!("bench", {
        signal: controller.signal,
        batchSize: 500,
        maxWaitMs: 5,
      })
    ) {
      await Promise.all(deliveries.map((delivery) => delivery.ack()));
      seen += deliveries.length;
      if (seen >= batch.length) controller.abort();
    }
  })();
  for (const event of batch) bus.publish(event);
  await bus.flush();
  await consuming;
}

/** Start a server and a bus, then time `run` alone on a fresh batch (the bench fn must be `async`). */
async function timedOnNatsBus(
  b: Deno.BenchContext,
  run: (bus: EventBus, batch: TroupeEvent[]) => Promise<void>,
): Promise<void> {
  await using server = await startNatsServer();
  await using bus = await natsBus({ servers: server.url });
  const batch = events();
  b.start();
  await run(bus, batch);
  b.end();
}

Deno.bench({
  name: `JetStream publish, awaiting each ack in turn (${EVENTS} events)`,
  group: "publish",
  baseline: true,
  ...RUNS,
  async fn(b) {
    await using server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "TROUPE", subjects: ["troupe.>"], storage: "file" });
      const js = jetstream(nc);
      const batch = events();
      b.start();
      for (const event of batch) {
        await js.publish(natsSubject("troupe", event), JSON.stringify(event), { msgID: event.id });
      }
      b.end();
    } finally {
      await nc.close();
    }
  },
});

Deno.bench({
  name: `natsBus publish, pipelined, then flush (${EVENTS} events)`,
  group: "publish",
  ...RUNS,
  async fn(b) {
    await timedOnNatsBus(b, async (bus, batch) => {
      for (const event of batch) bus.publish(event);
      await bus.flush();
    });
  },
});

Deno.bench({
  name: `memoryBus publish -> consume -> ack (${EVENTS} events)`,
  group: "end to end",
  baseline: true,
  ...RUNS,
  async fn(b) {
    await using bus = memoryBus({ groups: ["bench"] });
    const batch = events();
    b.start();
    await publishAndConsume(bus, batch);
    b.end();
  },
});

Deno.bench({
  name: `natsBus publish -> durable consume -> ack (${EVENTS} events)`,
  group: "end to end",
  ...RUNS,
  async fn(b) {
    await timedOnNatsBus(b, publishAndConsume);
  },
});
