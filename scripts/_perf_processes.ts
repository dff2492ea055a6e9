// Starts the processes the performance report measures (Troupe, the baseline, the mock upstream) and stops them.

/** A server started as a subprocess; `close()` stops it (SIGTERM, then SIGKILL after 10 s). */
export interface ServerProcess extends AsyncDisposable {
  /** A name for messages: `troupe`, `baseline`, `upstream`. */
  readonly name: string;
  /** Its origin, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The JSON line it announced itself with. */
  readonly ready: Record<string, unknown>;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  logTail(): string[];
  /** Stop it and wait for its exit. Idempotent. */
  close(): Promise<void>;
}

/** How to start one server and recognise that it listens. */
export interface SpawnSpec {
  /** A name for messages. */
  name: string;
  /** Arguments to `deno`. */
  args: string[];
  /** The working directory. */
  cwd: string;
  /** The whole environment of the child (nothing else is inherited). */
  env: Record<string, string>;
  /** Reads a JSON line; returns the origin it announces, or `undefined` if not this line. */
  readyUrl: (line: Record<string, unknown>) => string | undefined;
  /**
   * How long to wait for the ready line, in ms.
   * @default {30000}
   */
  timeoutMs?: number;
}

const TAIL_LINES = 40;

/**
 * Spawn `deno` with `spec.args` and resolve once a JSON line on stdout or stderr
 * gives `spec.readyUrl` an origin. An exit or a timeout before that rejects
 * with the child's last lines.
 *
 * @example
 * ```ts
 * import { spawnServer } from "./_perf_processes.ts";
 *
 * const code = `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) =>
 *   console.log(JSON.stringify({ url: "http://127.0.0.1:" + port })) }, () => new Response("ok"));`;
 * await using server = await spawnServer({
 *   name: "tiny",
 *   args: ["eval", code],
 *   cwd: ".",
 *   env: {},
 *   readyUrl: (line) => typeof line.url === "string" ? line.url : undefined,
 * });
 * console.assert((await (await fetch(server.url)).text()) === "ok");
 * ```
 */
export async function spawnServer(spec: SpawnSpec): Promise<ServerProcess> {
  const { name, timeoutMs = 30_000 } = spec;
  const child = new Deno.Command(denoCommand(), {
    args: spec.args,
    cwd: spec.cwd,
    env: spec.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  let announce: ((line: Record<string, unknown>, url: string) => void) | undefined;
  const ready = new Promise<{ line: Record<string, unknown>; url: string }>((resolve) => {
    announce = (line, url) => resolve({ line, url });
  });
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (announce === undefined || !line.startsWith("{")) return;
    try {
      const parsed = JSON.parse(line);
      const url = spec.readyUrl(parsed);
      if (url !== undefined) {
        announce(parsed, url);
        announce = undefined;
      }
    } catch {
      // Not JSON: only kept in the tail.
    }
  };
  const drained = Promise.all([readLines(child.stdout, onLine), readLines(child.stderr, onLine)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failure = new Promise<never>((_, reject) => {
    const fail = (why: string) =>
      reject(new Error(`Cannot start ${name}: ${why}; its last lines:\n${tail.join("\n")}`));
    timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
    child.status.then((status) => fail(`it exited with code ${status.code}`));
  });

  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      clearTimeout(timer);
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const killer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 10_000);
      await child.status;
      clearTimeout(killer);
      await drained;
    })();

  try {
    const { line, url } = await Promise.race([ready, failure]);
    clearTimeout(timer);
    failure.catch(() => {}); // it rejects when the child exits later, which close() awaits
    return {
      name,
      url,
      ready: line,
      logTail: () => tail.slice(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * This very `deno` if allowed to run it, else the `deno` on PATH (what `--allow-run=deno` allows).
 *
 * @example
 * ```ts
 * import { denoCommand } from "./_perf_processes.ts";
 *
 * console.assert(denoCommand().endsWith("deno"));
 * ```
 */
export function denoCommand(): string {
  const self = Deno.execPath();
  return Deno.permissions.querySync({ name: "run", command: self }).state === "granted"
    ? self
    : "deno";
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + text).split("\n");
    rest = lines.pop()!;
    for (const line of lines) onLine(line.trimEnd());
  }
  if (rest) onLine(rest);
}

/**
 * The variables a `deno` child needs to find its cache; everything else is left out.
 *
 * @example
 * ```ts
 * import { denoEnv } from "./_perf_processes.ts";
 *
 * console.assert(!("TROUPE_NATS_URL" in denoEnv()));
 * ```
 */
export function denoEnv(): Record<string, string> {
  // No colour codes in the lines kept for error messages.
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Where Troupe runs and with which LLM. */
export interface TroupeSpec {
  /** The repository root (where deno.json is). */
  root: string;
  /** `TROUPE_DATABASE_URL`, relative to the root. */
  databaseUrl: string;
  /** `TROUPE_LLM_BASE_URL` and `TROUPE_LLM_MODEL`; without it Troupe answers from its embedded mock. */
  llm?: { baseUrl: string; model: string };
  /**
   * More `TROUPE_*` settings, e.g. `{ TROUPE_DEBOUNCE_MS: "30" }`.
   * @default {{}}
   */
  env?: Record<string, string>;
}

/**
 * Start Troupe as `deno task start` would (the start task's own flags, read from
 * deno.json) on a free loopback port. Resolves once it logs "troupe listening".
 *
 * @example
 * ```ts
 * import { startTroupe } from "./_perf_processes.ts";
 *
 * const root = new URL("..", import.meta.url).pathname;
 * await using troupe = await startTroupe({ root, databaseUrl: "memory" });
 * const health = await fetch(`${troupe.url}/healthz`);
 * console.assert(health.ok && (await health.json()).status === "ok");
 * ```
 */
export async function startTroupe(spec: TroupeSpec): Promise<ServerProcess> {
  const config = JSON.parse(await Deno.readTextFile(`${spec.root}/deno.json`));
  const words = String(config.tasks.start).trim().split(/\s+/);
  if (words[0] !== "deno") {
    throw new Error(`Cannot start troupe: the start task does not begin with "deno": ${words[0]}`);
  }
  return spawnServer({
    name: "troupe",
    args: words.slice(1),
    cwd: spec.root,
    env: {
      ...denoEnv(),
      TROUPE_PORT: "0",
      TROUPE_DATABASE_URL: spec.databaseUrl,
      TROUPE_LOG_LEVEL: "info",
      // One org drives the whole load: the default per-org and per-session limits
      // (1,000/s and 10/s after their bursts) would measure the limiter, not the server.
      TROUPE_RATE_LIMIT_ORG: "0",
      TROUPE_RATE_LIMIT_SESSION: "0",
      ...spec.env,
      ...(spec.llm === undefined
        ? {}
        : { TROUPE_LLM_BASE_URL: spec.llm.baseUrl, TROUPE_LLM_MODEL: spec.llm.model }),
    },
    readyUrl: (line) =>
      line.msg === "troupe listening" && typeof line.url === "string" ? line.url : undefined,
  });
}

/**
 * Start `scripts/baseline_server.ts`, with an upstream base URL or `null` (echo).
 *
 * @example
 * ```ts
 * import { startBaseline } from "./_perf_processes.ts";
 *
 * await using baseline = await startBaseline(new URL("..", import.meta.url).pathname, null);
 * console.assert((await fetch(`${baseline.url}/healthz`)).ok);
 * ```
 */
export function startBaseline(root: string, upstream: string | null): Promise<ServerProcess> {
  return spawnServer({
    name: "baseline",
    args: [
      "run",
      "--allow-net=127.0.0.1,localhost",
      "scripts/baseline_server.ts",
      "--upstream",
      upstream ?? "none",
    ],
    cwd: root,
    env: denoEnv(),
    readyUrl: (line) => typeof line.url === "string" ? line.url : undefined,
  });
}

/**
 * Start `scripts/mock_upstream.ts` (its `startMockUpstream`, in its own process so
 * that its work stays off the load driver's event loop), streaming at `tokensPerSecond`
 * when given (all at once otherwise). The origin is without `/v1`.
 *
 * @example
 * ```ts
 * import { startUpstream } from "./_perf_processes.ts";
 *
 * await using upstream = await startUpstream(new URL("..", import.meta.url).pathname, 0);
 * const stats = await (await fetch(`${upstream.url}/stats`)).json();
 * console.assert(stats.requests === 0);
 * ```
 */
export function startUpstream(
  root: string,
  latencyMs: number,
  tokensPerSecond?: number,
): Promise<ServerProcess> {
  return spawnServer({
    name: `upstream (${latencyMs} ms)`,
    args: [
      "run",
      "--allow-net=127.0.0.1,localhost",
      "scripts/mock_upstream.ts",
      "--port",
      "0",
      "--latency-ms",
      String(latencyMs),
      ...(tokensPerSecond === undefined ? [] : ["--tokens-per-second", String(tokensPerSecond)]),
    ],
    cwd: root,
    env: denoEnv(),
    readyUrl: (line) => typeof line.url === "string" ? line.url.replace(/\/v1$/, "") : undefined,
  });
}
