// Prometheus metrics of a Troupe server: HTTP requests, sessions, runs, tokens, pools, persisters, event loop.

import type { TroupeEvent } from "../../actors/events.ts";
import type { Runtime } from "../../actors/runtime.ts";
import { sampleEventLoopLag } from "./_event_loop_lag.ts";
import { family, histogramSamples, PROMETHEUS_CONTENT_TYPE, sample } from "./_prometheus.ts";
import { routeTemplate } from "./_route_template.ts";
import type { Route } from "./route.ts";

/** A histogram as a worker pool reports it: cumulative counts per upper bound, in ms. */
export interface MsHistogram {
  /** Upper bounds in ms, ascending; the last may be `Infinity`. */
  le: readonly number[];
  /** Observations `<= le[i]`, cumulative. */
  counts: readonly number[];
  /** Sum of every observation, in ms. */
  sum: number;
  /** How many observations. */
  count: number;
}

/** What `/metrics` shows of one worker pool (a `WorkerPool`'s `stats()` fits as it is). */
export interface PoolMetrics {
  /** The pool's name, e.g. `llm`. */
  name: string;
  /** Calls waiting for a worker. */
  queued: number;
  /** Calls running in workers. */
  inFlight: number;
  /** Time calls waited in the queue. */
  waitMs?: MsHistogram;
  /** Time calls ran in a worker. */
  runMs?: MsHistogram;
}

/**
 * Gauges the HTTP layer cannot see, read at each scrape. A family whose
 * method is absent is left out of `/metrics`.
 */
export interface MetricsSource {
  /** The worker pools. */
  pools?(): readonly PoolMetrics[];
  /** Events published and not yet stored by the persisters (bus backlog plus persister buffer). */
  persisterLag?(): number;
}

/** Options of {@linkcode createMetrics}. */
export interface MetricsOptions {
  /**
   * The runtime whose sessions and events are counted (active sessions, runs
   * in flight, superseded runs, tokens). Its events are counted from now on.
   * @default {undefined} no runtime figures
   */
  runtime?: Pick<Runtime, "subscribe" | "activeSessions" | "unstoredHistory">;
  /**
   * Pools and persisters.
   * @default {{}}
   */
  source?: MetricsSource;
  /**
   * Sample event-loop lag every this many ms (an unref'd timer; `close()` stops it); 0 turns it off.
   * @default {100}
   */
  eventLoopSampleMs?: number;
  /**
   * Report the largest event-loop lag of the newest this many samples.
   * @default {50}
   */
  eventLoopWindow?: number;
}

/** Counts what the server does and renders it in Prometheus's text format. */
export interface Metrics extends Disposable {
  /** Count one answered request: its route (`null`: none matched), method, status and duration. */
  observeRequest(route: Route | null, method: string, status: number, seconds: number): void;
  /** Every metric, in Prometheus's text exposition format 0.0.4. */
  render(): string;
  /** Stop the event-loop sampler and stop counting the runtime's events. */
  close(): void;
}

/** Upper bounds of the request latency histogram, in seconds. */
export const REQUEST_SECONDS_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  Infinity,
];

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

interface RouteSeries {
  statuses: Map<number, number>;
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * Create the server's metrics. Requests are counted by route template (so
 * the label set stays bounded whatever the paths), method and status, with a
 * latency histogram (time to the response head: a stream counts until its
 * headers). From the runtime's events come runs in flight, superseded runs,
 * runs finished by outcome and tokens by model and kind; from the runtime
 * itself active sessions; from `source` pool queues and persister lag; and
 * from a timer, event-loop lag.
 *
 * @example
 * ```ts
 * import { createMetrics } from "./metrics.ts";
 *
 * using metrics = createMetrics({ eventLoopSampleMs: 0 });
 * const route = { path: /^\/healthz$/, methods: {} };
 * metrics.observeRequest(route, "GET", 200, 0.002);
 * console.assert(
 *   metrics.render().includes('troupe_http_requests_total{route="/healthz",method="GET",status="200"} 1'),
 * );
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const { runtime, source = {}, eventLoopSampleMs = 100, eventLoopWindow = 50 } = options;
  if (!(Number.isFinite(eventLoopSampleMs) && eventLoopSampleMs >= 0)) {
    throw new RangeError(
      `Cannot create the metrics: eventLoopSampleMs must be a number >= 0, current value is ${eventLoopSampleMs}`,
    );
  }
  if (!Number.isInteger(eventLoopWindow) || eventLoopWindow < 1) {
    throw new RangeError(
      `Cannot create the metrics: eventLoopWindow must be a whole number >= 1, current value is ${eventLoopWindow}`,
    );
  }

  // route template -> method -> series
  const requests = new Map<string, Map<string, RouteSeries>>();
  const runsInFlight = new Set<string>();
  const superseded = new Map<string, number>();
  const finished = new Map<string, number>();
  const tokens = new Map<string, Map<string, number>>();
  const lag = eventLoopSampleMs > 0 ? sampleEventLoopLag(eventLoopSampleMs, eventLoopWindow) : null;
  const unsubscribe = runtime?.subscribe(count) ?? (() => {});

  function count(event: TroupeEvent): void {
    switch (event.type) {
      case "run.started":
        runsInFlight.add(event.run);
        break;
      case "run.superseded":
        runsInFlight.delete(event.run);
        increment(superseded, event.policy, 1);
        increment(finished, "superseded", 1);
        break;
      case "run.completed":
        runsInFlight.delete(event.run);
        increment(finished, "completed", 1);
        break;
      case "run.failed":
        runsInFlight.delete(event.run);
        increment(finished, "failed", 1);
        break;
      case "run.cancelled":
        runsInFlight.delete(event.run);
        increment(finished, "cancelled", 1);
        break;
      case "usage.recorded": {
        let byKind = tokens.get(event.model);
        if (byKind === undefined) tokens.set(event.model, byKind = new Map());
        increment(byKind, "input", event.inputTokens);
        increment(byKind, "output", event.outputTokens);
        increment(byKind, "cached", event.cachedTokens);
        increment(byKind, "reasoning", event.reasoningTokens);
        break;
      }
    }
  }

  function observeRequest(
    route: Route | null,
    method: string,
    status: number,
    seconds: number,
  ): void {
    const template = route === null ? "unmatched" : routeTemplate(route);
    const methodLabel = METHODS.has(method) ? method : "OTHER";
    let byMethod = requests.get(template);
    if (byMethod === undefined) requests.set(template, byMethod = new Map());
    let series = byMethod.get(methodLabel);
    if (series === undefined) {
      series = {
        statuses: new Map(),
        buckets: new Array(REQUEST_SECONDS_BUCKETS.length).fill(0),
        sum: 0,
        count: 0,
      };
      byMethod.set(methodLabel, series);
    }
    increment(series.statuses, status, 1);
    let i = 0;
    while (seconds > REQUEST_SECONDS_BUCKETS[i]!) i++;
    series.buckets[i]!++;
    series.sum += seconds;
    series.count++;
  }

  function render(): string {
    const out: string[] = [];
    family(
      out,
      "troupe_http_requests_total",
      "counter",
      "HTTP requests answered, by route template, method and status.",
    );
    for (const [route, byMethod] of requests) {
      for (const [method, series] of byMethod) {
        for (const [status, n] of series.statuses) {
          sample(out, "troupe_http_requests_total", { route, method, status: String(status) }, n);
        }
      }
    }
    family(
      out,
      "troupe_http_request_duration_seconds",
      "histogram",
      "Time from a request's arrival to its response head (a stream counts until its headers).",
    );
    for (const [route, byMethod] of requests) {
      for (const [method, series] of byMethod) {
        let running = 0;
        histogramSamples(out, "troupe_http_request_duration_seconds", { route, method }, {
          le: REQUEST_SECONDS_BUCKETS,
          cumulative: series.buckets.map((n) => (running += n)),
          sum: series.sum,
          count: series.count,
        });
      }
    }
    if (runtime !== undefined) {
      family(out, "troupe_active_sessions", "gauge", "Session actors live in memory.");
      sample(out, "troupe_active_sessions", {}, runtime.activeSessions);
      family(
        out,
        "troupe_history_backlog_entries",
        "gauge",
        "History entries waiting to be stored (they wait while the store is unreachable).",
      );
      sample(out, "troupe_history_backlog_entries", {}, runtime.unstoredHistory);
      family(
        out,
        "troupe_runs_in_flight",
        "gauge",
        "Runs whose LLM call has started and not ended.",
      );
      sample(out, "troupe_runs_in_flight", {}, runsInFlight.size);
      family(
        out,
        "troupe_runs_superseded_total",
        "counter",
        "Runs replaced by a newer message, by policy (merge or interrupt).",
      );
      for (const policy of ["merge", "interrupt"]) {
        sample(out, "troupe_runs_superseded_total", { policy }, superseded.get(policy) ?? 0);
      }
      family(out, "troupe_runs_finished_total", "counter", "Runs that ended, by outcome.");
      for (const outcome of ["completed", "superseded", "cancelled", "failed"]) {
        sample(out, "troupe_runs_finished_total", { outcome }, finished.get(outcome) ?? 0);
      }
      family(
        out,
        "troupe_llm_tokens_total",
        "counter",
        "Tokens of LLM calls, by model and kind (input, output, cached, reasoning).",
      );
      for (const [model, byKind] of tokens) {
        for (const [kind, n] of byKind) sample(out, "troupe_llm_tokens_total", { model, kind }, n);
      }
    }
    if (source.pools !== undefined) renderPools(out, source.pools());
    if (source.persisterLag !== undefined) {
      family(
        out,
        "troupe_persister_lag_events",
        "gauge",
        "Events published and not yet stored by the persisters.",
      );
      sample(out, "troupe_persister_lag_events", {}, source.persisterLag());
    }
    if (lag !== null) {
      family(
        out,
        "troupe_event_loop_lag_seconds",
        "gauge",
        `Largest event-loop delay (timer drift) over the last ${eventLoopWindow} samples taken every ${eventLoopSampleMs} ms.`,
      );
      sample(out, "troupe_event_loop_lag_seconds", {}, lag.maxSeconds());
    }
    out.push("");
    return out.join("\n");
  }

  function close(): void {
    lag?.close();
    unsubscribe();
  }

  return { observeRequest, render, close, [Symbol.dispose]: close };
}

/**
 * The `GET /metrics` route, for the handler's route table.
 *
 * @example
 * ```ts
 * import { createMetrics, metricsRoute } from "./metrics.ts";
 *
 * using metrics = createMetrics({ eventLoopSampleMs: 0 });
 * const request = new Request("http://localhost/metrics");
 * const response = await metricsRoute(metrics).methods.GET!({
 *   request, url: new URL(request.url), params: [], org: "default",
 * });
 * console.assert((await response.text()).includes("# TYPE troupe_http_requests_total counter"));
 * ```
 */
export function metricsRoute(metrics: Metrics): Route {
  return {
    path: /^\/metrics$/,
    methods: {
      GET: () =>
        Promise.resolve(
          new Response(metrics.render(), {
            headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
          }),
        ),
    },
  };
}

function renderPools(out: string[], pools: readonly PoolMetrics[]): void {
  family(out, "troupe_pool_queue_depth", "gauge", "Calls waiting for a worker, by pool.");
  for (const pool of pools) {
    sample(out, "troupe_pool_queue_depth", { pool: pool.name }, pool.queued);
  }
  family(out, "troupe_pool_in_flight", "gauge", "Calls running in workers, by pool.");
  for (const pool of pools) {
    sample(out, "troupe_pool_in_flight", { pool: pool.name }, pool.inFlight);
  }
  const histograms = [
    ["troupe_pool_wait_seconds", "waitMs", "Time calls waited for a worker, by pool."],
    ["troupe_pool_run_seconds", "runMs", "Time calls ran in a worker, by pool."],
  ] as const;
  for (const [name, field, help] of histograms) {
    if (pools.every((pool) => pool[field] === undefined)) continue;
    family(out, name, "histogram", help);
    for (const pool of pools) {
      const ms = pool[field];
      if (ms !== undefined) histogramSamples(out, name, { pool: pool.name }, seconds(ms));
    }
  }
}

function seconds(ms: MsHistogram) {
  return {
    le: ms.le.map((le) => le / 1000),
    cumulative: ms.counts,
    sum: ms.sum / 1000,
    count: ms.count,
  };
}

function increment<K>(map: Map<K, number>, key: K, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
