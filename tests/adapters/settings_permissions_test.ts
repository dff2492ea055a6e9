// Tests the permission check of the settings: which hosts and directories the flags must cover, and what it says.

import assert from "node:assert/strict";
import { resolve } from "node:path";
import {
  missingPermissions,
  type PermissionQuery,
  type ReachedSettings,
} from "../../adapters/_settings_permissions.ts";

/** A query that grants exactly `granted` (`net:host:port`, `read:/dir`, `write:/dir`) and records every ask. */
function permissions(...granted: string[]): { query: PermissionQuery; asked: string[] } {
  const asked: string[] = [];
  const query: PermissionQuery = (descriptor) => {
    const key = descriptor.name === "net"
      ? `net:${descriptor.host}`
      : `${descriptor.name}:${(descriptor as { path: string }).path}`;
    asked.push(key);
    return Promise.resolve(granted.includes(key) ? "granted" : "prompt");
  };
  return { query, asked };
}

const NONE: ReachedSettings = { databaseUrl: "memory", natsUrl: null, llmBaseUrl: null };

Deno.test("nothing outside the process: no question asked, nothing missing", async () => {
  for (const databaseUrl of ["memory", ":memory:"]) {
    const { query, asked } = permissions();
    assert.deepEqual(await missingPermissions({ ...NONE, databaseUrl }, query), []);
    assert.deepEqual(asked, []);
  }
});

Deno.test("every host is asked with its port, the scheme's default when the URL has none", async () => {
  const { query, asked } = permissions();
  const missing = await missingPermissions({
    databaseUrl: "postgresql://troupe:hunter2@db.internal/troupe",
    natsUrl: "tls://nats.internal",
    llmBaseUrl: "https://api.example.com/v1",
  }, query);
  assert.deepEqual(asked, [
    "net:api.example.com:443",
    "net:nats.internal:4222",
    "net:db.internal:5432",
  ]);
  assert.deepEqual(missing.map((m) => m.setting), [
    "TROUPE_LLM_BASE_URL",
    "TROUPE_NATS_URL",
    "TROUPE_DATABASE_URL",
  ]);
  const database = missing[2]!.message;
  assert.match(
    database,
    /^TROUPE_DATABASE_URL's host db\.internal:5432 is not allowed by --allow-net/,
  );
  assert.match(database, /--allow-net=127\.0\.0\.1,localhost,db\.internal:5432$/);
  assert(!missing.some((m) => m.message.includes("hunter2")), "a password never reaches a message");
});

Deno.test("explicit ports and IPv6 hosts are asked as given; granted hosts are not reported", async () => {
  const { query, asked } = permissions("net:127.0.0.1:5433", "net:[::1]:4223");
  const missing = await missingPermissions({
    databaseUrl: "postgres://u@127.0.0.1:5433/db",
    natsUrl: "nats://[::1]:4223",
    llmBaseUrl: "http://localhost:8080/v1",
  }, query);
  assert.deepEqual(asked, ["net:localhost:8080", "net:[::1]:4223", "net:127.0.0.1:5433"]);
  assert.deepEqual(missing.map((m) => m.setting), ["TROUPE_LLM_BASE_URL"]);
  assert(missing[0]!.message.includes("localhost:8080"), missing[0]!.message);
});

Deno.test("a PostgreSQL URL without a host (a Unix socket) is left to the driver", async () => {
  const { query, asked } = permissions();
  assert.deepEqual(
    await missingPermissions({ ...NONE, databaseUrl: "postgres:///troupe?host=/run/pg" }, query),
    [],
  );
  assert.deepEqual(asked, []);
});

Deno.test("a SQLite file needs read and write on its directory, resolved, and says which is missing", async () => {
  const directory = resolve("some/where");
  const { query, asked } = permissions(`read:${directory}`);
  const missing = await missingPermissions({ ...NONE, databaseUrl: "some/where/t.db" }, query);
  assert.deepEqual(asked, [`read:${directory}`, `write:${directory}`]);
  assert.equal(missing.length, 1);
  assert.equal(missing[0]!.setting, "TROUPE_DATABASE_URL");
  const { message } = missing[0]!;
  assert(
    message.startsWith(
      `TROUPE_DATABASE_URL's directory ${directory} is not allowed by --allow-write;`,
    ),
    message,
  );
  assert(!message.includes("--allow-read"), "read is granted, so only write is named");
  assert(message.endsWith(`add ${directory} to --allow-write`), message);

  const both = permissions(`read:${directory}`, `write:${directory}`);
  assert.deepEqual(
    await missingPermissions({ ...NONE, databaseUrl: "some/where/t.db" }, both.query),
    [],
  );
});
