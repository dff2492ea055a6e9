// Starts a real PostgreSQL server in a fresh temp data directory on a free port, for tests.

import pg from "pg";
import { freePort } from "./free_port.ts";
import { HarnessError } from "./harness_error.ts";
import { runCommand, type ServiceProcess, spawnService } from "./_process.ts";
import { crashPostgres } from "./_postgres_crash.ts";
import { findPostgresBinDir, postgresUser } from "./_postgres_install.ts";
import { waitUntil } from "./_wait_until.ts";

/** Options for {@linkcode startPostgres}. */
export interface PostgresOptions {
  /**
   * Milliseconds to wait for the server to answer `SELECT 1` on start (crash
   * recovery included) and for `pg_ctl stop`.
   *
   * @default {30_000}
   */
  timeout?: number;
  /**
   * Extra `postgresql.conf` settings, written after the harness's own
   * (`listen_addresses`, `unix_socket_directories`, `fsync = off`), so they
   * may override `fsync`.
   *
   * @default {{}}
   */
  settings?: Readonly<Record<string, string | number | boolean>>;
}

/** A running PostgreSQL server; dispose it to stop it and delete its data directory. */
export interface PostgresServer extends AsyncDisposable {
  /** Connection URL, `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  readonly url: string;
  /** The TCP port, kept across restarts. */
  readonly port: number;
  /** The data directory, kept across restarts. */
  readonly dataDir: string;
  /** The last part of what the server wrote to stderr. */
  log(): string;
  /** Stops the server with `pg_ctl stop -m fast` and waits for it to exit. */
  stop(): Promise<void>;
  /**
   * Starts the stopped server again on the same port and data, and waits
   * until it answers `SELECT 1`.
   */
  start(): Promise<void>;
  /**
   * Simulates a crash: SIGKILLs the postmaster and then its child processes,
   * and waits until all have exited. The next `start()` runs crash recovery.
   * Finds the children through `/proc`, so Linux only.
   */
  kill(): Promise<void>;
}

const START_ATTEMPTS = 3;

/** The part of an npm:pg `Client` the harness uses. */
interface PgClient {
  connect(): Promise<unknown>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

/**
 * Creates a data directory with `initdb` (trust auth, `fsync = off`) in a
 * fresh temp dir, starts `postgres` on 127.0.0.1 and a free port, and waits
 * until it answers `SELECT 1`. Running as root, every PostgreSQL program runs
 * as the `postgres` user through `runuser`, and the temp dir is chowned to it.
 * Throws a {@linkcode HarnessError} if PostgreSQL is not installed (with how
 * to install it) or does not come up (with its log).
 *
 * @example Start a server for one test
 * ```ts
 * import assert from "node:assert/strict";
 * import { startPostgres } from "./postgres_server.ts";
 *
 * await using postgres = await startPostgres();
 * assert.equal(postgres.url, `postgres://postgres@127.0.0.1:${postgres.port}/postgres`);
 * ```
 *
 * @param options How long to wait and extra settings.
 * @returns The running server.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const { timeout = 30_000, settings = {} } = options;
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new RangeError(
      "Cannot start PostgreSQL: timeout must be a positive number of milliseconds, " +
        `current value is ${timeout}`,
    );
  }
  for (const name of Object.keys(settings)) {
    if (!/^[a-z_][a-z0-9_.]*$/i.test(name)) {
      throw new RangeError(
        "Cannot start PostgreSQL: settings names must be PostgreSQL parameter names, " +
          `current value is ${JSON.stringify(name)}`,
      );
    }
  }
  const bin = await findPostgresBinDir();
  const runAs = await postgresUser();

  const dir = await Deno.makeTempDir({ prefix: "troupe-pg-" });
  const dataDir = `${dir}/data`;
  let port = 0;
  let server: ServiceProcess | undefined;
  const url = () => `postgres://postgres@127.0.0.1:${port}/postgres`;
  const running = () => server !== undefined && !server.exited();

  async function launch(): Promise<void> {
    const process = spawnService([...runAs.prefix, `${bin}/postgres`, "-D", dataDir], { cwd: dir });
    server = process;
    try {
      await waitUntil(() => {
        if (process.exited()) throw new HarnessError("postgres exited");
        return answersQueries(url());
      }, { what: `PostgreSQL to answer SELECT 1 on 127.0.0.1:${port}`, timeout });
    } catch (error) {
      await crashPostgres(process);
      const status = await process.status;
      throw new HarnessError(
        `Cannot start PostgreSQL on 127.0.0.1:${port} (exit code ${status.code}); ` +
          `its log:\n${process.log()}`,
        { cause: error },
      );
    }
  }

  async function stop(): Promise<void> {
    if (server === undefined) return;
    if (running()) {
      await runCommand(
        [
          ...runAs.prefix,
          `${bin}/pg_ctl`,
          "stop",
          "-D",
          dataDir,
          "-m",
          "fast",
          "-w",
          "-t",
          String(Math.ceil(timeout / 1000)),
        ],
        { cwd: dir, what: "stop PostgreSQL" },
      );
    }
    await server.status;
  }

  try {
    if (runAs.owner !== undefined) await Deno.chown(dir, runAs.owner.uid, runAs.owner.gid);
    await runCommand(
      [
        ...runAs.prefix,
        `${bin}/initdb`,
        "-D",
        dataDir,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        // Skipping fsync makes initdb several times faster; the data is thrown away.
        "--no-sync",
      ],
      { cwd: dir, what: "create a PostgreSQL data directory" },
    );
    const config = {
      listen_addresses: "127.0.0.1",
      unix_socket_directories: dir,
      fsync: false,
      ...settings,
    };
    await appendSettings(dataDir, config);
    // Another process may take the free port before postgres binds it; a
    // later `port` line in postgresql.conf overrides an earlier one.
    for (let attempt = 1;; attempt++) {
      port = freePort();
      await appendSettings(dataDir, { port });
      try {
        await launch();
        break;
      } catch (error) {
        const portTaken = server?.log().includes("could not bind") ?? false;
        if (!portTaken || attempt === START_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    if (server !== undefined) await crashPostgres(server);
    await Deno.remove(dir, { recursive: true });
    throw error;
  }

  return {
    url: url(),
    port,
    dataDir,
    log: () => server?.log() ?? "",
    stop,
    async start() {
      if (running()) {
        throw new HarnessError(`Cannot start PostgreSQL: it is already running on port ${port}`);
      }
      await launch();
    },
    async kill() {
      if (server !== undefined) await crashPostgres(server);
    },
    async [Symbol.asyncDispose]() {
      try {
        await stop();
      } catch (error) {
        if (server !== undefined) await crashPostgres(server);
        throw error;
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** Appends settings to `postgresql.conf`; later lines override earlier ones. */
async function appendSettings(
  dataDir: string,
  settings: Readonly<Record<string, string | number | boolean>>,
): Promise<void> {
  const lines = Object.entries(settings).map(([name, value]) => {
    const text = typeof value === "string"
      ? `'${value.replaceAll("'", "''")}'`
      : typeof value === "boolean"
      ? (value ? "on" : "off")
      : String(value);
    return `${name} = ${text}\n`;
  });
  await Deno.writeTextFile(`${dataDir}/postgresql.conf`, lines.join(""), { append: true });
}

/** Whether the server at `url` answers `SELECT 1`; false while it refuses or is starting up. */
async function answersQueries(url: string): Promise<boolean> {
  const client: PgClient = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch (error) {
    // ECONNREFUSED: not listening yet; 57P03: starting up or recovering.
    const code = (error as { code?: unknown }).code;
    if (code === "ECONNREFUSED" || code === "57P03") return false;
    throw error;
  } finally {
    await client.end();
  }
}
