// Starts a real nats-server with JetStream on a free port and a temp store dir, for tests.

import { freePort } from "./free_port.ts";
import { HarnessError } from "./harness_error.ts";
import { findExecutable, type ServiceProcess, spawnService } from "./_process.ts";
import { waitUntil } from "./_wait_until.ts";

/** Options for {@linkcode startNatsServer}. */
export interface NatsServerOptions {
  /**
   * Milliseconds to wait for the server to accept connections, on start and
   * on restart.
   *
   * @default {10_000}
   */
  timeout?: number;
  /**
   * JetStream `sync_interval`: how often the file store is fsynced, e.g.
   * `"always"` or `"1s"`. Needs nats-server 2.10 or newer; older servers
   * refuse to start with `unknown field "sync_interval"`.
   *
   * @default {undefined} (the server's default, two minutes)
   */
  syncInterval?: string;
  /**
   * Extra nats-server configuration text, written to a file passed with
   * `-c`. Command-line flags (`-js`, `-a`, `-p`, `-sd`) take precedence.
   *
   * @default {undefined}
   */
  config?: string;
}

/** A running nats-server; dispose it to stop it and delete its store. */
export interface NatsServer extends AsyncDisposable {
  /** Client URL, `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** The TCP port, kept across restarts. */
  readonly port: number;
  /** The JetStream store directory, kept across restarts. */
  readonly storeDir: string;
  /** The last part of what the server wrote to stderr. */
  log(): string;
  /** Sends `signal` (default `SIGKILL`, a crash) and waits for the server to exit. */
  kill(signal?: Deno.Signal): Promise<void>;
  /**
   * Stops the server if it runs, starts it again on the same port and store
   * dir, and waits until it accepts connections.
   */
  restart(): Promise<void>;
  /** Stops the server with SIGTERM (SIGKILL after `timeout`) and waits for it to exit. */
  stop(): Promise<void>;
}

const INSTALL_HINT = "install it with `apt-get install -y nats-server` or `bash scripts/setup.sh`";
const START_ATTEMPTS = 3;

/**
 * Starts `nats-server -js -a 127.0.0.1 -p <free port> -sd <temp dir>` and
 * waits until it accepts TCP connections. Throws a {@linkcode HarnessError}
 * if the binary is missing (with how to install it), if the server exits, or
 * if it does not come up in time (with its stderr).
 *
 * @example Start a server for one test
 * ```ts
 * import assert from "node:assert/strict";
 * import { startNatsServer } from "./nats_server.ts";
 *
 * await using nats = await startNatsServer();
 * assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
 * ```
 *
 * @param options How long to wait and extra configuration.
 * @returns The running server.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const { timeout = 10_000, syncInterval, config } = options;
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new RangeError(
      "Cannot start nats-server: timeout must be a positive number of milliseconds, " +
        `current value is ${timeout}`,
    );
  }
  if (syncInterval !== undefined && !/^(always|\d+(ns|us|ms|s|m|h))$/.test(syncInterval)) {
    throw new RangeError(
      'Cannot start nats-server: syncInterval must be "always" or a duration like "1s", ' +
        `current value is ${JSON.stringify(syncInterval)}`,
    );
  }
  const binary = await findExecutable("nats-server");
  if (binary === undefined) {
    throw new HarnessError(
      "Cannot start nats-server: it is not on PATH nor in /usr/sbin, /usr/bin or /usr/local/bin; " +
        INSTALL_HINT,
    );
  }

  const dir = await Deno.makeTempDir({ prefix: "troupe-nats-" });
  const storeDir = `${dir}/store`;
  const argv = [binary, "-js", "-a", "127.0.0.1", "-sd", storeDir];
  let port = 0;
  let server: ServiceProcess | undefined;

  async function launch(): Promise<void> {
    const process = spawnService([...argv, "-p", String(port)], { cwd: dir });
    server = process;
    try {
      await waitUntil(() => {
        if (process.exited()) throw new HarnessError("nats-server exited");
        return acceptsConnections(port);
      }, { what: `nats-server to accept connections on 127.0.0.1:${port}`, timeout });
    } catch (error) {
      process.signal("SIGKILL");
      const status = await process.status;
      throw new HarnessError(
        `Cannot start nats-server on 127.0.0.1:${port} ` +
          `(exit code ${status.code}, signal ${status.signal}); its stderr:\n${process.log()}`,
        { cause: error },
      );
    }
  }

  async function stop(): Promise<void> {
    const process = server;
    if (process === undefined) return;
    process.signal("SIGTERM");
    const escalate = setTimeout(() => process.signal("SIGKILL"), timeout);
    try {
      await process.status;
    } finally {
      clearTimeout(escalate);
    }
  }

  try {
    await Deno.mkdir(storeDir);
    const configText = [
      syncInterval === undefined
        ? ""
        : `jetstream {\n  sync_interval: ${JSON.stringify(syncInterval)}\n}\n`,
      config ?? "",
    ].join("");
    if (configText !== "") {
      await Deno.writeTextFile(`${dir}/nats.conf`, configText);
      argv.push("-c", `${dir}/nats.conf`);
    }
    // Another process may take the free port before the server binds it.
    for (let attempt = 1;; attempt++) {
      port = freePort();
      try {
        await launch();
        break;
      } catch (error) {
        const portTaken = server?.log().includes("address already in use") ?? false;
        if (!portTaken || attempt === START_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    log: () => server?.log() ?? "",
    async kill(signal: Deno.Signal = "SIGKILL") {
      const process = server;
      if (process === undefined) return;
      process.signal(signal);
      await process.status;
    },
    async restart() {
      await stop();
      await launch();
    },
    stop,
    async [Symbol.asyncDispose]() {
      try {
        await stop();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
async function acceptsConnections(port: number): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
    connection.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    throw error;
  }
}
