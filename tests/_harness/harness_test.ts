// Proves the harness starts real nats-server and PostgreSQL, survives crashes, and cleans up.

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { freePort, HarnessError, startNatsServer, startPostgres } from "./mod.ts";

/** The part of an npm:pg `Client` these tests use. */
interface PgClient {
  connect(): Promise<unknown>;
  query<Row>(sql: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
}

async function withPg<T>(url: string, use: (client: PgClient) => Promise<T>): Promise<T> {
  const client: PgClient = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("freePort returns a port that can be listened on", () => {
  const port = freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

Deno.test("nats-server keeps an acknowledged message and its id across kill -9", async () => {
  let storeDir: string;
  {
    await using nats = await startNatsServer();
    storeDir = nats.storeDir;
    assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);

    const before = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(before);
      await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"], storage: "file" });
      const ack = await jetstream(before).publish("events.test", "hello", { msgID: "event-1" });
      assert.equal(ack.seq, 1);
      assert.equal(ack.duplicate, false);
    } finally {
      await before.close();
    }

    await nats.kill("SIGKILL");
    await assert.rejects(connect({ servers: nats.url, reconnect: false }));
    await nats.restart();

    const after = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(after);
      const info = await jsm.streams.info("EVENTS");
      assert.equal(info.config.storage, "file");
      assert.equal(info.state.messages, 1);
      const message = await jsm.streams.getMessage("EVENTS", { seq: 1 });
      assert.ok(message);
      assert.equal(message.string(), "hello");
      assert.equal(message.header?.get("Nats-Msg-Id"), "event-1");
      // The dedupe window survived too: the same id is dropped.
      const again = await jetstream(after).publish("events.test", "hello", { msgID: "event-1" });
      assert.equal(again.duplicate, true);
    } finally {
      await after.close();
    }
  }
  assert.equal(await exists(storeDir), false);
});

Deno.test("nats-server that cannot start throws a HarnessError with its stderr", async () => {
  await assert.rejects(startNatsServer({ config: "this is { not valid" }), (error) => {
    assert.ok(error instanceof HarnessError);
    assert.match(error.message, /^Cannot start nats-server on 127\.0\.0\.1:\d+/);
    assert.match(error.message, /Parse error/, "the message carries the server's stderr");
    return true;
  });
});

Deno.test("startNatsServer rejects a bad timeout at once", async () => {
  await assert.rejects(startNatsServer({ timeout: -1 }), RangeError);
});

Deno.test("postgres keeps committed rows across stop/start and a SIGKILL crash", async () => {
  let dataDir: string;
  {
    await using postgres = await startPostgres();
    dataDir = postgres.dataDir;
    assert.equal(postgres.url, `postgres://postgres@127.0.0.1:${postgres.port}/postgres`);

    await withPg(postgres.url, async (client) => {
      const { rows } = await client.query<{ one: number }>("SELECT 1 AS one");
      assert.deepEqual(rows, [{ one: 1 }]);
      await client.query("CREATE TABLE events (id text PRIMARY KEY)");
      await client.query("INSERT INTO events (id) VALUES ($1)", ["event-1"]);
    });

    await postgres.stop();
    await assert.rejects(withPg(postgres.url, () => Promise.resolve()));
    await postgres.start();
    await withPg(postgres.url, async (client) => {
      const { rows } = await client.query<{ id: string }>("SELECT id FROM events");
      assert.deepEqual(rows, [{ id: "event-1" }]);
      await client.query("INSERT INTO events (id) VALUES ($1)", ["event-2"]);
    });

    await postgres.kill();
    await assert.rejects(withPg(postgres.url, () => Promise.resolve()));
    await postgres.start();
    await withPg(postgres.url, async (client) => {
      const { rows } = await client.query<{ id: string }>("SELECT id FROM events ORDER BY id");
      assert.deepEqual(rows, [{ id: "event-1" }, { id: "event-2" }]);
    });
    assert.match(postgres.log(), /not properly shut down|automatic recovery/);
  }
  assert.equal(await exists(dataDir), false);
});

Deno.test("startPostgres rejects a bad setting name at once", async () => {
  await assert.rejects(startPostgres({ settings: { "bad name": 1 } }), RangeError);
});
