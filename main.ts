// The standalone server's entry script: reads the configuration, serves the HTTP API, shuts down on a signal.

import { errorText, logLine } from "./actors/log.ts";
import { CONFIG_ENV_VARS, LOG_LEVELS, type LogLevel, parseConfig } from "./actors/config.ts";
import { InvalidInputError } from "./actors/errors.ts";
import { createRuntime } from "./actors/runtime.ts";
import { missingPermissions } from "./adapters/_settings_permissions.ts";
import { type ServerAccess, serverAccess } from "./adapters/http/access.ts";
import { createHandler } from "./adapters/http/handler.ts";
import { llmFromSettings } from "./adapters/llm/from_config.ts";
import { createMetrics } from "./adapters/http/metrics.ts";
import { memoryStore } from "./adapters/store/memory_store.ts";
import { openStore, POSTGRES_URL, redactUrl } from "./adapters/store/open_store.ts";
import type { SqlStore } from "./adapters/store/sql_store.ts";

// Runs in flight get this long to finish when a signal asks the server to stop.
const SHUTDOWN_GRACE_MS = 10_000;
// After the runtime has stopped, a client that stops reading cannot hold the exit up longer.
const CONNECTION_DRAIN_MS = 5_000;

type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/**
 * Start the standalone server: parse the configuration from the `TROUPE_*`
 * variables and `args`, serve the HTTP API, and on SIGINT or SIGTERM stop
 * accepting, let runs finish (10 s), close the runtime and exit 0. A bad
 * setting prints one JSON error line naming it and exits 2.
 *
 * Run it as a script (`deno task start`, or `deno run` with the start task's flags on this file).
 *
 * @example A bad setting stops start-up with exit code 2 and a line naming it
 * ```ts
 * const { code, stderr } = await new Deno.Command(Deno.execPath(), {
 *   args: ["run", "--allow-env", import.meta.resolve("./main.ts"), "--port", "abc"],
 *   stdout: "null",
 *   stderr: "piped",
 * }).output();
 * const line = JSON.parse(new TextDecoder().decode(stderr));
 * console.assert(code === 2 && line.level === "error" && line.setting === "--port");
 * ```
 */
export async function main(args: string[]): Promise<void> {
  let config;
  try {
    config = parseConfig(readEnv(), args);
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    logLine("error", error.message, { setting: error.field });
    Deno.exit(2);
  }
  const log = logger(config.logLevel);

  // Workers inherit these permissions, so a host the process may not reach is refused here,
  // before a driver fails on it with a message that does not say a flag is missing.
  const missing = await missingPermissions(config);
  if (missing.length > 0) {
    for (const { setting, message } of missing) {
      log("error", `Cannot start: ${message}`, { setting });
    }
    Deno.exit(2);
  }
  const { provider: llm, pool } = llmFromSettings(config);
  const inMemory = config.databaseUrl === "memory";
  const storeKind = inMemory
    ? "memory"
    : POSTGRES_URL.test(config.databaseUrl)
    ? "postgres"
    : "sqlite";
  const runtime = createRuntime({
    llm,
    store: inMemory ? memoryStore() : config.databaseUrl,
    ...(config.natsUrl === null ? {} : { bus: config.natsUrl }),
    durableReplies: config.durableReplies,
    policy: config.policy,
    debounceMs: config.debounceMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxActiveSessions: config.maxActiveSessions,
    sessionRetentionMs: config.sessionRetentionMs,
    onError: (error, context) =>
      log("error", "runtime error", { ...context, error: errorText(error) }),
  });
  try {
    await Promise.all([runtime.ready(), pool?.ready()]);
  } catch (error) {
    log("error", "Cannot start: the store, the bus or the LLM workers cannot be opened", {
      store: inMemory ? "memory" : redactUrl(config.databaseUrl),
      bus: config.natsUrl === null ? "memory" : redactUrl(config.natsUrl),
      error: errorText(error),
    });
    await runtime.shutdown({ graceMs: 0 }).catch(() => {});
    Deno.exit(1);
  }
  // Auth is on once an API key exists; without one the server may only listen on loopback.
  let keyStore: SqlStore | null = null;
  let access: ServerAccess;
  try {
    // A second, small connection: the keys are read once and then every 10 s, a lookup too
    // small to need the worker the main store's writes run in.
    keyStore = inMemory ? null : await openStore(config.databaseUrl, {
      maxConnections: 1,
      checkpoints: "inline",
      sqliteThread: "main",
    });
    access = await serverAccess({
      keys: keyStore?.apiKeys ?? null,
      sessionLimit: config.rateLimitSession,
      orgLimit: config.rateLimitOrg,
      windowMs: config.rateLimitWindowMs,
      algorithm: config.rateLimitAlgorithm,
      onRefreshError: (error) =>
        log("error", "cannot read the API keys; the ones loaded stay", { error: errorText(error) }),
      onAuthOn: (keys) => log("info", "API keys created: auth is on", { keys }),
    });
  } catch (error) {
    log("error", "Cannot start: the API keys cannot be read", { error: errorText(error) });
    await keyStore?.close();
    await runtime.shutdown({ graceMs: 0 }).catch(() => {});
    Deno.exit(1);
  }
  if (!access.authOn && !isLoopback(config.host)) {
    log(
      "error",
      `Cannot start: TROUPE_HOST (--host) must be a loopback address while no API key exists, current value is ${
        JSON.stringify(config.host)
      }; create a key with \`deno task keys create --org NAME\` or bind 127.0.0.1`,
      { setting: "TROUPE_HOST" },
    );
    await access.close();
    await keyStore?.close();
    await runtime.shutdown({ graceMs: 0 }).catch(() => {});
    Deno.exit(2);
  }
  let draining = false;
  const metrics = createMetrics({
    runtime,
    source: {
      ...(pool === null ? {} : { pools: () => [pool.stats()] }),
      persisterLag: () => runtime.unpersistedEvents,
    },
  });
  const handler = createHandler({
    metrics,
    models: [config.llmModel ?? llm.model ?? "troupe", ...config.llmFallbackModels],
    runtime,
    maxBodyBytes: config.maxBodyBytes,
    isDraining: () => draining,
    auth: access.auth,
    rateLimits: access.rateLimits,
    onError: (error, request) =>
      log("error", "request failed", {
        method: request.method,
        path: new URL(request.url).pathname,
        error: errorText(error),
      }),
  });

  let server: Deno.HttpServer<Deno.NetAddr>;
  // Listen for the stop signals before serving: a SIGTERM that arrives as soon as the
  // server says it listens must find them installed, not the default (exit at once).
  // No await lies between here and Deno.serve, so a signal always finds `server` set.
  let stopping = false;
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (stopping) {
        log("warn", "second signal: exiting without waiting", { signal });
        Deno.exit(1);
      }
      stopping = true;
      void stop(signal);
    });
  }
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      handler,
      onListen: ({ hostname, port }) => {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        log("info", "troupe listening", {
          url: `http://${host}:${port}`,
          llm: llm.name,
          store: storeKind,
          bus: config.natsUrl === null ? "memory" : "nats",
          durableReplies: config.durableReplies,
        });
        if (access.authOn) {
          log("info", "auth is on: every route but /healthz and /readyz needs an API key", {
            keys: access.keys,
          });
        } else {
          log(
            "info",
            'no API key exists: no auth, so the server is bound to loopback only and every caller is in org "default"; `deno task keys create --org NAME` turns auth on',
          );
        }
      },
    });
  } catch (error) {
    log("error", `Cannot start: cannot listen on ${config.host}:${config.port}`, {
      error: errorText(error),
      hint: error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
        ? `allow it with --allow-net=${config.host}`
        : undefined,
    });
    await runtime.shutdown({ graceMs: 0 });
    Deno.exit(1);
  }

  async function stop(signal: Deno.Signal): Promise<void> {
    draining = true;
    log("info", "troupe shutting down", { signal, graceMs: SHUTDOWN_GRACE_MS });
    try {
      // Stop accepting first. Requests in flight end once the runtime has settled their runs,
      // so the server's own drain is awaited after the runtime's.
      const stopped = server.shutdown();
      await runtime.shutdown({ graceMs: SHUTDOWN_GRACE_MS });
      await access.close();
      await keyStore?.close();
      metrics.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        stopped,
        new Promise<void>((resolve) => timer = setTimeout(resolve, CONNECTION_DRAIN_MS)),
      ]);
      clearTimeout(timer);
      log("info", "troupe stopped");
      Deno.exit(0);
    } catch (error) {
      log("error", "shutdown failed", { error: errorText(error) });
      Deno.exit(1);
    }
  }

  await server.finished;
}

/** Read exactly the variables the configuration uses, so a narrow `--allow-env` suffices. */
function readEnv(): Record<string, string | undefined> {
  return Object.fromEntries(CONFIG_ENV_VARS.map((name) => [name, Deno.env.get(name)]));
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function logger(minimum: LogLevel): Log {
  const threshold = LOG_LEVELS.indexOf(minimum);
  return (level, msg, fields) => {
    if (LOG_LEVELS.indexOf(level) >= threshold) logLine(level, msg, fields);
  };
}

if (import.meta.main) await main(Deno.args);
