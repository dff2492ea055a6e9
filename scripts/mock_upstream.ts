// An OpenAI-compatible LLM upstream stand-in over real HTTP, for tests and load scripts.

/**
 * A mock OpenAI chat completions server. It echoes the content of the last
 * `user` message (streamed as words with their trailing whitespace) and
 * counts tokens as `ceil(length / 4)` per text: `prompt_tokens` sums that
 * over every message, `completion_tokens` is that of the reply. Like an
 * upstream, it ends the reply before the first `stop` sequence and cuts it to
 * `max_completion_tokens` (or `max_tokens`) tokens, with `finish_reason`
 * `length` when that cap cut it.
 *
 * Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /stats`,
 * `POST /stats/reset`; anything else is a 404 JSON error.
 *
 * Per-request controls, as request headers:
 * - `x-mock-scenario`: `ok` (default), `429` (with `Retry-After`), `500`,
 *   `400`, `hang` (no answer until the client aborts), `drop` (a few chunks,
 *   then the connection closes short of its `Content-Length`), `slow` (`ok`
 *   after `x-mock-latency-ms`, default 1000).
 * - `x-mock-retry-after`: the 429's `Retry-After`, sent verbatim (default `1`).
 * - `x-mock-latency-ms`, `x-mock-tokens-per-second`: replace the server's.
 * - `x-mock-usage-dialect`: `openai` (default), `anthropic`, `gemini`, `none`.
 * - `x-mock-fail-times: n` with `x-mock-request-key: k`: the first n requests
 *   with key k play the scenario (`500` if none or `ok` is named), later ones `ok`.
 * - `x-mock-cached-tokens`, `x-mock-reasoning-tokens`: token counts to report.
 *
 * A malformed control header is a 400 naming it. Run it with
 * `deno task mock-upstream --port 8080 --latency-ms 200`: it prints
 * `{"url":"http://127.0.0.1:8080/v1"}` and stops on SIGINT or SIGTERM.
 *
 * @module
 */

import { parseMockUpstreamArgs } from "./_mock_upstream_cli.ts";
import { answerCompletion, type CompletionContext } from "./_mock_upstream_completions.ts";
import { optionsProblem } from "./_mock_upstream_options.ts";
import { seededRandom } from "./_mock_upstream_request.ts";
import { createStatsRecorder, type MockUpstreamStats } from "./_mock_upstream_stats.ts";
import { errorResponse, jsonResponse } from "./_mock_upstream_wire.ts";

export type { MockUpstreamStats } from "./_mock_upstream_stats.ts";

/**
 * Options of {@linkcode startMockUpstream}.
 *
 * @example
 * ```ts
 * import type { MockUpstreamOptions } from "./mock_upstream.ts";
 *
 * const options: MockUpstreamOptions = { latencyMs: 50, tokensPerSecond: 100, seed: 7 };
 * console.assert(options.seed === 7);
 * ```
 */
export interface MockUpstreamOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default {0}
   */
  port?: number;
  /**
   * Address to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Time before the first byte of a chat completion answer, in ms.
   * @default {0}
   */
  latencyMs?: number;
  /**
   * Streaming speed; a non-streaming answer waits as long as its stream would.
   * With the default, every token is sent at once.
   * @default {undefined}
   */
  tokensPerSecond?: number;
  /**
   * Fraction of requests without `x-mock-scenario` answered 500.
   * @default {0}
   */
  errorRate?: number;
  /**
   * Fraction of requests without `x-mock-scenario` that never answer until the client aborts.
   * @default {0}
   */
  hangRate?: number;
  /**
   * Seed of the PRNG that applies `errorRate` and `hangRate`: one draw per
   * request without `x-mock-scenario`, so the same order of requests gets the same answers.
   * @default {0}
   */
  seed?: number;
  /**
   * Model named in replies when a request names none, and listed by `GET /v1/models`.
   * @default {"mock-model"}
   */
  model?: string;
  /**
   * The clock for `created`, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * A running mock upstream; close it, or dispose of it with `await using`.
 *
 * @example
 * ```ts
 * import { type MockUpstream, startMockUpstream } from "./mock_upstream.ts";
 *
 * await using upstream: MockUpstream = startMockUpstream();
 * console.assert(upstream.url === `http://127.0.0.1:${upstream.port}/v1`);
 * ```
 */
export interface MockUpstream extends AsyncDisposable {
  /** Base URL of the OpenAI API, e.g. `http://127.0.0.1:40123/v1`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** A copy of the counters, as `GET /stats` returns them. */
  stats(): MockUpstreamStats;
  /** Zero the counters and forget `x-mock-fail-times` attempts, as `POST /stats/reset` does. */
  resetStats(): void;
  /** Answer hanging requests 503, end streams early, and stop listening. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a mock upstream on `hostname:port`. It listens once this returns
 * (synchronously); a bad option throws a `RangeError` at once.
 *
 * @example
 * ```ts
 * import { startMockUpstream } from "./mock_upstream.ts";
 *
 * await using upstream = startMockUpstream({ model: "echo" });
 * const response = await fetch(`${upstream.url}/chat/completions`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ messages: [{ role: "user", content: "hello" }] }),
 * });
 * const body = await response.json();
 * console.assert(body.choices[0].message.content === "hello");
 * console.assert(upstream.stats().completed === 1);
 * ```
 */
export function startMockUpstream(options: MockUpstreamOptions = {}): MockUpstream {
  const {
    port = 0,
    hostname = "127.0.0.1",
    latencyMs = 0,
    tokensPerSecond,
    errorRate = 0,
    hangRate = 0,
    seed = 0,
    model = "mock-model",
    now = Date.now,
  } = options;
  const problem = optionsProblem({ port, latencyMs, tokensPerSecond, errorRate, hangRate, seed });
  if (problem) throw new RangeError(`Cannot start mock upstream: ${problem}`);
  for (const [name, value] of [["hostname", hostname], ["model", model]]) {
    if (!value) throw new TypeError(`Cannot start mock upstream: ${name} is empty`);
  }

  const stats = createStatsRecorder();
  const attempts = new Map<string, number>();
  const closing = new AbortController();
  let sequence = 0;
  const context: CompletionContext = {
    model,
    latencyMs,
    tokensPerSecond,
    stats,
    choice: { errorRate, hangRate, random: seededRandom(seed), attempts },
    closing: closing.signal,
    nextId: () => `chatcmpl-mock${++sequence}`,
    now,
  };
  const resetStats = () => {
    stats.reset();
    attempts.clear();
  };
  const routes: Routes = { context, resetStats, model, created: Math.floor(now() / 1000) };
  const server = Deno.serve({
    hostname,
    port,
    onListen() {},
    onError: (error) =>
      errorResponse(500, `Mock upstream failed: ${error}`, "server_error", "server_error"),
  }, (request) => route(request, routes));

  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${host}:${server.addr.port}/v1`;
  let closed: Promise<void> | undefined;
  const close = () => {
    closing.abort(new DOMException("The mock upstream is closing", "AbortError"));
    closed ??= server.shutdown();
    return closed;
  };
  return {
    url,
    port: server.addr.port,
    stats: () => stats.snapshot(),
    resetStats,
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface Routes {
  context: CompletionContext;
  resetStats: () => void;
  model: string;
  created: number;
}

const ALLOWED: Record<string, string> = {
  "/v1/chat/completions": "POST",
  "/v1/models": "GET",
  "/stats": "GET",
  "/stats/reset": "POST",
};

function route(request: Request, routes: Routes): Response | Promise<Response> {
  const { pathname } = new URL(request.url);
  const { context } = routes;
  switch (`${request.method} ${pathname}`) {
    case "POST /v1/chat/completions":
      return answerCompletion(request, context);
    case "GET /v1/models":
      return jsonResponse({
        object: "list",
        data: [{ id: routes.model, object: "model", created: routes.created, owned_by: "mock" }],
      });
    case "GET /stats":
      return jsonResponse(context.stats.snapshot());
    case "POST /stats/reset":
      routes.resetStats();
      return jsonResponse(context.stats.snapshot());
  }
  const allowed = ALLOWED[pathname];
  if (allowed !== undefined) {
    const message = `Cannot ${request.method} ${pathname}: use ${allowed}`;
    return errorResponse(405, message, "invalid_request_error", "method_not_allowed", {
      allow: allowed,
    });
  }
  const message = `Unknown request URL: ${request.method} ${pathname}`;
  return errorResponse(404, message, "invalid_request_error", "unknown_url");
}

function main(args: string[]): void {
  let upstream: MockUpstream;
  try {
    upstream = startMockUpstream(parseMockUpstreamArgs(args));
  } catch (error) {
    // A bad flag is a usage error (2); a busy port or a missing permission is not (1).
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(error instanceof RangeError || error instanceof TypeError ? 2 : 1);
  }
  console.log(JSON.stringify({ url: upstream.url }));
  const stop = () => {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    void upstream.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) main(Deno.args);
