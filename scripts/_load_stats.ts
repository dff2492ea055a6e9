// Latency percentiles and tallies of a load run: the numbers the load driver prints.

/** Latency figures of a set of samples, in ms; all `0` when there are no samples. */
export interface LatencySummary {
  /** How many samples. */
  count: number;
  /** The arithmetic mean. */
  mean: number;
  /** The median (nearest rank). */
  p50: number;
  /** The 90th percentile (nearest rank). */
  p90: number;
  /** The 99th percentile (nearest rank). */
  p99: number;
  /** The largest sample. */
  max: number;
}

/**
 * The `p`th percentile of samples sorted in ascending order, by the nearest-rank
 * method: the smallest sample with at least `p`% of the samples at or below it.
 * An empty input gives `0`; `p` outside `(0, 100]` is a `RangeError`.
 *
 * @example
 * ```ts
 * import { percentile } from "./_load_stats.ts";
 *
 * const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
 * console.assert(percentile(sorted, 50) === 50 && percentile(sorted, 99) === 99);
 * console.assert(percentile([7], 99) === 7);
 * ```
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p > 0 && p <= 100)) {
    throw new RangeError(`Cannot take a percentile: p must be in (0, 100], current value is ${p}`);
  }
  if (sorted.length === 0) return 0;
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
}

/**
 * Summarise latency samples (ms): count, mean, p50, p90, p99 and max, rounded to the
 * microsecond. The input is not modified.
 *
 * @example
 * ```ts
 * import { summarizeLatencies } from "./_load_stats.ts";
 *
 * const summary = summarizeLatencies([4, 1, 3, 2]);
 * console.assert(summary.count === 4 && summary.p50 === 2 && summary.max === 4);
 * console.assert(summary.mean === 2.5);
 * ```
 */
export function summarizeLatencies(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const sample of sorted) sum += sample;
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? 0 : round(sum / sorted.length),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!),
  };
}

/**
 * Add one to `key` in a tally.
 *
 * @example
 * ```ts
 * import { tally } from "./_load_stats.ts";
 *
 * const errors: Record<string, number> = {};
 * tally(errors, "http 503 overloaded");
 * tally(errors, "http 503 overloaded");
 * console.assert(errors["http 503 overloaded"] === 2);
 * ```
 */
export function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
