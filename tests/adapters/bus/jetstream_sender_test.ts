// Proves the JetStream sender on a real nats-server: acks matched to their publishes, dedupe, and each failure.

import assert from "node:assert/strict";
import {
  connect,
  type NatsConnection,
  NoRespondersError,
  TimeoutError,
} from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { jetStreamSender } from "../../../adapters/bus/_jetstream_sender.ts";
import { AckLostError } from "../../../adapters/bus/_nats_publisher.ts";
import { BusError } from "../../../adapters/bus/errors.ts";
import { startNatsServer } from "../../_harness/mod.ts";

/** A server with a stream on `ev.>` (max 100 messages, new ones refused when full), and a connection. */
async function setup() {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1 });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: "EV",
    subjects: ["ev.>"],
    storage: "file",
    max_msgs: 100,
    discard: "new",
  });
  return {
    server,
    nc,
    jsm,
    async [Symbol.asyncDispose]() {
      await nc.close();
      await server[Symbol.asyncDispose]();
    },
  };
}

/**
 * Stops the server and resolves once the client has seen the disconnect: a publish racing the
 * socket's close makes the client write after end.
 */
async function stopServer(env: Awaited<ReturnType<typeof setup>>): Promise<void> {
  const statuses = env.nc.status()[Symbol.asyncIterator]();
  const disconnected = (async () => {
    for (let next = await statuses.next(); !next.done; next = await statuses.next()) {
      if (next.value.type === "disconnect") return;
    }
  })();
  await env.server.stop();
  await disconnected;
  await statuses.return?.();
}

async function streamMessages(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info("EV")).state.messages;
}

Deno.test("jetStreamSender: many publishes in flight each resolve on their own ack with their stream sequence; a msgID is stored once", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 5_000 });
  try {
    const ids = Array.from({ length: 60 }, (_, i) => `e${i}`);
    // Every id twice: the stream's duplicate window keeps the first of each.
    const seqs = await Promise.all(
      [...ids, ...ids].map((id) => sender.send(`ev.${id}`, `{"id":"${id}"}`, id)),
    );
    assert.equal(await streamMessages(env.nc), ids.length);
    // The duplicate's ack names the sequence the first copy is stored under.
    assert.deepEqual(seqs.slice(ids.length), seqs.slice(0, ids.length));
    const jsm = await jetstreamManager(env.nc);
    for (const [i, seq] of seqs.slice(0, ids.length).entries()) {
      const stored = await jsm.streams.getMessage("EV", { seq });
      assert.deepEqual(stored?.json(), { id: ids[i] });
    }
  } finally {
    sender.close();
  }
});

Deno.test("jetStreamSender: a subject no stream takes rejects with NoRespondersError", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 5_000 });
  try {
    await assert.rejects(sender.send("elsewhere.x", "{}", "x1"), NoRespondersError);
    // The sender goes on working for other publishes.
    await sender.send("ev.ok", "{}", "ok1");
  } finally {
    sender.close();
  }
});

Deno.test("jetStreamSender: each ack settles its own publish, the stream's refusals included", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 5_000 });
  try {
    // All in flight at once; the stream stores them in publish order and, once full, refuses
    // the rest with an error in their ack: exactly the last ten must reject, and only them.
    const results = await Promise.allSettled(
      Array.from({ length: 110 }, (_, i) => sender.send("ev.a", `{"n":${i}}`, `a${i}`)),
    );
    const rejected = results.flatMap((result, i) => result.status === "rejected" ? [i] : []);
    assert.deepEqual(rejected, Array.from({ length: 10 }, (_, i) => 100 + i));
    for (const i of rejected) {
      assert.ok((results[i] as PromiseRejectedResult).reason instanceof JetStreamApiError);
    }
  } finally {
    sender.close();
  }
});

Deno.test("jetStreamSender: with the server stopped a publish rejects with TimeoutError", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 300 });
  try {
    await stopServer(env);
    await assert.rejects(sender.send("ev.late", "{}", "late1"), TimeoutError);
  } finally {
    sender.close();
  }
});

Deno.test("jetStreamSender: close() rejects the publishes still waiting for their ack", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 60_000 });
  await stopServer(env);
  const waiting = sender.send("ev.w", "{}", "w1");
  sender.close();
  await assert.rejects(
    waiting,
    (error: unknown) => error instanceof BusError && error.code === "closed",
  );
});

Deno.test("jetStreamSender: reconnected() releases the publishes still waiting, with AckLostError", async () => {
  await using env = await setup();
  const sender = jetStreamSender(env.nc, { timeoutMs: 600_000 });
  try {
    await stopServer(env);
    const waiting = [sender.send("ev.a", "{}", "a1"), sender.send("ev.b", "{}", "b1")];
    sender.reconnected();
    for (const publish of waiting) await assert.rejects(publish, AckLostError);
  } finally {
    sender.close();
  }
});
