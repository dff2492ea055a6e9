// The performance report's results: their shape, and how they read against the targets of the server issue.

import type { LoadResult } from "./load.ts";

/** A measurement that could not be taken, and why. */
export interface Skipped {
  /** Why, for the reader. */
  skipped: string;
}

/** A load result, or why there is none. */
export type Measured = LoadResult | Skipped;

/** The scenarios swept over concurrency. */
export type ScenarioId = "a" | "b" | "c";

/** One concurrency of a sweep: Troupe and the baseline under the same load, in the same run. */
export interface SweepPoint {
  /** Sessions sending at once. */
  sessions: number;
  /** Troupe's figures. */
  troupe: Measured;
  /** The naive baseline's figures. */
  baseline: Measured;
}

/** A scenario measured at several concurrencies. */
export interface Sweep {
  /** Which scenario. */
  scenario: ScenarioId;
  /** A short title, e.g. "Embedded mock LLM, 0 ms". */
  title: string;
  /** The load, in words. */
  load: string;
  /** One point per concurrency, smallest first. */
  points: SweepPoint[];
}

/** The same one-shot requests sent straight to the upstream, through Troupe and through the baseline. */
export interface LatencyRow {
  /** Straight to the mock upstream. */
  direct: Measured;
  /** Through Troupe. */
  troupe: Measured;
  /** Through the baseline server. */
  baseline: Measured;
}

/** Added latency, measured the way LLM gateway benchmarks measure it. */
export interface AddedLatency {
  /** The mock upstream's latency. */
  upstreamLatencyMs: number;
  /** The API sent to Troupe and the baseline: the OpenAI-compatible one if Troupe has it. */
  api: "openai" | "native";
  /** One request at a time. */
  sequential: LatencyRow;
  /** A fixed open-loop rate; latency counts from each request's scheduled time. */
  openLoop: LatencyRow & { rate: number };
}

/** The machine the report ran on. */
export interface Machine {
  /** CPU model. */
  cpu: string;
  /** Logical cores. */
  cores: number;
  /** Memory, GiB. */
  memoryGiB: number;
  /** Kernel and OS. */
  os: string;
  /** Deno version. */
  deno: string;
  /** 1, 5 and 15 minute load averages when the report started (other work shares the CPU). */
  loadAverage: number[];
}

/** How fast the driver itself is, against the baseline's echo (0 ms). */
export interface Calibration {
  /** The client. */
  client: string;
  /** Connections. */
  concurrency: number;
  /** Requests per second it reached. */
  requestsPerSecond: number;
  /** Its p99 latency, ms. */
  p99: number;
}

/** Everything one run of the report measured. */
export interface PerfResults {
  /** When the report ran (ISO 8601). */
  generatedAt: string;
  /** How long the whole report took, in seconds. */
  seconds: number;
  /** The machine. */
  machine: Machine;
  /** `TROUPE_*` settings given to Troupe beyond the report's own (empty: the defaults). */
  troupeEnv: Record<string, string>;
  /** The driver's own ceiling per client. */
  calibration: Calibration[];
  /** The scenarios (a), (b) and (c). */
  sweeps: Sweep[];
  /** Scenario (d). */
  addedLatency: AddedLatency;
  /** What could not be measured and other remarks. */
  notes: string[];
}

/** One target of the issue, and whether this run met it (`null`: not measured). */
export interface Verdict {
  /** Which scenario. */
  scenario: ScenarioId | "d";
  /** The target, in words. */
  target: string;
  /** What was measured, in words. */
  measured: string;
  /** Met, missed, or not measured. */
  met: boolean | null;
}

/**
 * Whether a measurement was skipped.
 *
 * @example
 * ```ts
 * import { isSkipped } from "./_perf_results.ts";
 *
 * console.assert(isSkipped({ skipped: "no upstream support" }));
 * ```
 */
export function isSkipped(measured: Measured): measured is Skipped {
  return "skipped" in measured;
}

/**
 * Read the results against the targets of the server issue: (a) ≥ 15,000 requests/s
 * at 0 ms, (b) ≥ 0.9x the baseline's throughput and ≤ 1.2x its p99 at 200 sessions,
 * (c) ≥ 25% fewer upstream calls and more answered turns/s with 30% double texting,
 * (d) ≤ 2 ms added p99 at the open-loop rate.
 *
 * @example
 * ```ts
 * import { verdicts } from "./_perf_results.ts";
 *
 * const none = { skipped: "not run" };
 * const list = verdicts({
 *   generatedAt: "", seconds: 0, calibration: [], notes: [], troupeEnv: {},
 *   machine: { cpu: "", cores: 2, memoryGiB: 1, os: "", deno: "", loadAverage: [] },
 *   sweeps: [],
 *   addedLatency: {
 *     upstreamLatencyMs: 0, api: "native",
 *     sequential: { direct: none, troupe: none, baseline: none },
 *     openLoop: { rate: 1000, direct: none, troupe: none, baseline: none },
 *   },
 * });
 * console.assert(list.length === 4 && list.every((verdict) => verdict.met === null));
 * ```
 */
export function verdicts(results: PerfResults): Verdict[] {
  const sweep = (id: ScenarioId) => results.sweeps.find((s) => s.scenario === id);
  return [
    throughputVerdict(sweep("a")),
    parityVerdict(sweep("b")),
    doubleTextVerdict(sweep("c")),
    addedLatencyVerdict(results.addedLatency),
  ];
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** The largest concurrency where both servers were measured. */
function lastPair(sweep: Sweep | undefined): [number, LoadResult, LoadResult] | undefined {
  const points = sweep?.points ?? [];
  for (let i = points.length - 1; i >= 0; i--) {
    const { sessions, troupe, baseline } = points[i]!;
    if (!isSkipped(troupe) && !isSkipped(baseline)) return [sessions, troupe, baseline];
  }
  return undefined;
}

function notMeasured(scenario: Verdict["scenario"], target: string, sweep?: Sweep): Verdict {
  const reason = sweep?.points.map((p) => p.troupe).find(isSkipped)?.skipped ?? "not run";
  return { scenario, target, measured: `not measured: ${reason}`, met: null };
}

function throughputVerdict(sweep: Sweep | undefined): Verdict {
  const target = "≥ 15,000 requests/s through the native API, events persisted (SQLite)";
  let best: SweepPoint | undefined;
  for (const point of sweep?.points ?? []) {
    if (isSkipped(point.troupe)) continue;
    if (
      best === undefined ||
      point.troupe.requestsPerSecond > (best.troupe as LoadResult).requestsPerSecond
    ) {
      best = point;
    }
  }
  if (best === undefined) return notMeasured("a", target, sweep);
  const troupe = best.troupe as LoadResult;
  const baseline = isSkipped(best.baseline)
    ? ""
    : `; baseline ${fmt(best.baseline.requestsPerSecond)}`;
  return {
    scenario: "a",
    target,
    measured: `best ${
      fmt(troupe.requestsPerSecond)
    } requests/s at ${best.sessions} sessions${baseline}`,
    met: troupe.requestsPerSecond >= 15_000,
  };
}

function parityVerdict(sweep: Sweep | undefined): Verdict {
  const target = "≥ 0.9x the baseline's throughput and p99 ≤ 1.2x the baseline's (200 sessions)";
  const pair = lastPair(sweep);
  if (pair === undefined) return notMeasured("b", target, sweep);
  const [sessions, troupe, baseline] = pair;
  const throughput = troupe.requestsPerSecond / baseline.requestsPerSecond;
  const p99 = troupe.requestLatencyMs.p99 / baseline.requestLatencyMs.p99;
  return {
    scenario: "b",
    target,
    measured: `${sessions} sessions: ${fmt(throughput, 2)}x throughput (${
      fmt(troupe.requestsPerSecond)
    } vs ${fmt(baseline.requestsPerSecond)} requests/s), p99 ${fmt(p99, 2)}x (${
      fmt(troupe.requestLatencyMs.p99, 1)
    } vs ${fmt(baseline.requestLatencyMs.p99, 1)} ms)`,
    met: throughput >= 0.9 && p99 <= 1.2,
  };
}

function doubleTextVerdict(sweep: Sweep | undefined): Verdict {
  const target = "≥ 25% fewer upstream calls than the baseline and more answered turns/s";
  const pair = lastPair(sweep);
  if (pair === undefined) return notMeasured("c", target, sweep);
  const [sessions, troupe, baseline] = pair;
  if (troupe.upstreamCalls === null || baseline.upstreamCalls === null) {
    return notMeasured("c", target);
  }
  const fewer = 1 - troupe.upstreamCalls / baseline.upstreamCalls;
  return {
    scenario: "c",
    target,
    measured: `${sessions} sessions: ${fmt(fewer * 100, 1)}% fewer upstream calls (${
      fmt(troupe.upstreamCalls)
    } vs ${fmt(baseline.upstreamCalls)}), ${fmt(troupe.turnsPerSecond)} vs ${
      fmt(baseline.turnsPerSecond)
    } turns/s`,
    met: fewer >= 0.25 && troupe.turnsPerSecond > baseline.turnsPerSecond,
  };
}

function addedLatencyVerdict(added: AddedLatency): Verdict {
  const target = `≤ 2 ms added p99 at ${fmt(added.openLoop.rate)} requests/s`;
  const { direct, troupe } = added.openLoop;
  if (isSkipped(troupe)) {
    return { scenario: "d", target, measured: `not measured: ${troupe.skipped}`, met: null };
  }
  if (isSkipped(direct)) {
    return { scenario: "d", target, measured: `not measured: ${direct.skipped}`, met: null };
  }
  const p99 = troupe.requestLatencyMs.p99 - direct.requestLatencyMs.p99;
  const p50 = troupe.requestLatencyMs.p50 - direct.requestLatencyMs.p50;
  return {
    scenario: "d",
    target,
    measured: `added p99 ${fmt(p99, 2)} ms, p50 ${fmt(p50, 2)} ms (${added.api} API)`,
    met: p99 <= 2,
  };
}
