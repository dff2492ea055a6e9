/**
 * Real services for integration tests: `nats-server` with JetStream and
 * PostgreSQL, each on a free port with its data in a temp dir, returned as an
 * `AsyncDisposable` for `await using`. A missing binary throws a
 * {@linkcode HarnessError} that says how to install it; nothing skips.
 *
 * @example Start both services for one test
 * ```ts
 * import assert from "node:assert/strict";
 * import { startNatsServer, startPostgres } from "./mod.ts";
 *
 * await using nats = await startNatsServer();
 * await using postgres = await startPostgres();
 * assert.notEqual(nats.port, postgres.port);
 * ```
 *
 * @module
 */

export { freePort } from "./free_port.ts";
export { HarnessError } from "./harness_error.ts";
export { type NatsServer, type NatsServerOptions, startNatsServer } from "./nats_server.ts";
export { type PostgresOptions, type PostgresServer, startPostgres } from "./postgres_server.ts";
