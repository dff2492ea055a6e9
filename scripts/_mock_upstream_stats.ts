// Counters of the mock upstream's chat completion requests: how they ended and how many are open.

/** Counters of `POST /v1/chat/completions` requests (other routes are not counted). */
export interface MockUpstreamStats {
  /** Requests received, valid or not. */
  requests: number;
  /** Responses delivered to the end (the whole body, `[DONE]` included). */
  completed: number;
  /** Answers with a 4xx/5xx status, and dropped responses. */
  errors: number;
  /** Requests the client (or `close()`) gave up on before the response finished. */
  aborts: number;
  /** Requests in flight now: received and not yet completed, failed or aborted. */
  openConnections: number;
  /** The most requests in flight at once since the start or the last reset. */
  maxOpenConnections: number;
  /** Requests per scenario played (`ok`, `429`, `hang`, ...); invalid requests have none. */
  byScenario: Record<string, number>;
}

/** How a request ended. */
export type Outcome = "completed" | "errors" | "aborts";

/** Records requests; {@linkcode createStatsRecorder} makes one. */
export interface StatsRecorder {
  /** Count a request in; the returned function records its end, once (later calls do nothing). */
  begin(): (outcome: Outcome) => void;
  /** Count the scenario a request plays. */
  scenario(name: string): void;
  /** A copy of the counters. */
  snapshot(): MockUpstreamStats;
  /** Zero the counters; requests in flight stay counted as open. */
  reset(): void;
}

/**
 * Make an empty recorder.
 *
 * @example
 * ```ts
 * import { createStatsRecorder } from "./_mock_upstream_stats.ts";
 *
 * const stats = createStatsRecorder();
 * const end = stats.begin();
 * end("completed");
 * end("aborts");
 * console.assert(stats.snapshot().completed === 1 && stats.snapshot().aborts === 0);
 * ```
 */
export function createStatsRecorder(): StatsRecorder {
  let stats = empty(0);
  return {
    begin() {
      stats.requests++;
      stats.openConnections++;
      stats.maxOpenConnections = Math.max(stats.maxOpenConnections, stats.openConnections);
      let ended = false;
      return (outcome) => {
        if (ended) return;
        ended = true;
        stats.openConnections--;
        stats[outcome]++;
      };
    },
    scenario(name) {
      stats.byScenario[name] = (stats.byScenario[name] ?? 0) + 1;
    },
    snapshot() {
      return { ...stats, byScenario: { ...stats.byScenario } };
    },
    reset() {
      stats = empty(stats.openConnections);
    },
  };
}

function empty(open: number): MockUpstreamStats {
  return {
    requests: 0,
    completed: 0,
    errors: 0,
    aborts: 0,
    openConnections: open,
    maxOpenConnections: open,
    byScenario: {},
  };
}
