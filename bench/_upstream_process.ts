// Starts scripts/mock_upstream.ts in its own process for the pool scripts, so its work stays off their event loop.

import { denoEnv, type ServerProcess, spawnServer } from "../scripts/_perf_processes.ts";

/** How the mock upstream answers. */
export interface UpstreamProcessOptions {
  /** Time before the first byte, in ms. */
  latencyMs: number;
  /** Streaming speed; all tokens at once when absent. */
  tokensPerSecond?: number;
}

/**
 * Start the mock upstream on a free loopback port; its `url` ends in `/v1`.
 *
 * @example
 * ```ts
 * import { startUpstreamProcess } from "./_upstream_process.ts";
 *
 * await using upstream = await startUpstreamProcess({ latencyMs: 0 });
 * console.assert(upstream.url.endsWith("/v1"));
 * ```
 */
export function startUpstreamProcess(options: UpstreamProcessOptions): Promise<ServerProcess> {
  const args = [
    "run",
    "--allow-net=127.0.0.1,localhost",
    "scripts/mock_upstream.ts",
    "--port",
    "0",
    "--latency-ms",
    String(options.latencyMs),
  ];
  if (options.tokensPerSecond !== undefined) {
    args.push("--tokens-per-second", String(options.tokensPerSecond));
  }
  return spawnServer({
    name: "mock upstream",
    args,
    cwd: new URL("..", import.meta.url).pathname,
    env: denoEnv(),
    readyUrl: (line) => typeof line.url === "string" ? line.url : undefined,
  });
}

/**
 * The `p`-th percentile (0 to 100) of `values`, nearest rank; `NaN` when empty.
 *
 * @example
 * ```ts
 * import { percentile } from "./_upstream_process.ts";
 *
 * console.assert(percentile([3, 1, 2], 50) === 2);
 * ```
 */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}
