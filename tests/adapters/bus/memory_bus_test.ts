// Runs the EventBus contract against the in-memory bus, plus what only the memory bus promises.

import assert from "node:assert/strict";
import type { TroupeEvent } from "../../../actors/events.ts";
import { memoryBus } from "../../../adapters/bus/memory_bus.ts";
import { runBusContract } from "../../contracts/bus_contract.ts";

runBusContract({ name: "memory", create: memoryBus });

function activated(n: number): TroupeEvent {
  return {
    id: `e${n}`,
    ts: n,
    org: "o",
    session: "s",
    type: "session.activated",
    historyLength: n,
  };
}

Deno.test("memory bus: publish never runs a subscriber inside publish", async () => {
  await using bus = memoryBus();
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  bus.publish(activated(1));
  bus.publish(activated(2));
  assert.deepEqual(seen, []);
  await bus.flush();
  assert.deepEqual(seen, ["e1", "e2"]);
});

Deno.test("memory bus: delivers on its own after publish returns, without flush", async () => {
  await using bus = memoryBus();
  const delivered = Promise.withResolvers<TroupeEvent>();
  bus.subscribe((event) => delivered.resolve(event));
  bus.publish(activated(1));
  assert.deepEqual(await delivered.promise, activated(1));
});

Deno.test("memory bus: a subscriber that publishes does not run re-entrantly", async () => {
  await using bus = memoryBus();
  const trace: string[] = [];
  bus.subscribe((event) => {
    trace.push(`start ${event.id}`);
    if (event.id === "e1") bus.publish(activated(2));
    trace.push(`end ${event.id}`);
  });
  bus.publish(activated(1));
  await bus.flush();
  await bus.flush();
  assert.deepEqual(trace, ["start e1", "end e1", "start e2", "end e2"]);
});

Deno.test("memory bus: drops events published while nobody is subscribed", async () => {
  await using bus = memoryBus();
  bus.publish(activated(1));
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  bus.publish(activated(2));
  await bus.flush();
  assert.deepEqual(seen, ["e2"]);
});

Deno.test("memory bus: publish after close neither throws nor delivers", async () => {
  await using bus = memoryBus();
  const seen: string[] = [];
  bus.subscribe((event) => seen.push(event.id));
  await bus.close();
  bus.publish(activated(1));
  await bus.flush();
  assert.deepEqual(seen, []);
});
