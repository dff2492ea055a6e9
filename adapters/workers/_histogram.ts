// A fixed-bucket histogram of durations, cheap enough to record every call of a pool.

/**
 * A histogram snapshot in Prometheus's shape: cumulative counts per upper
 * bound (`le`), plus the sum and count of every observation.
 */
export interface HistogramSnapshot {
  /** Upper bounds in ms, ascending; the last is `Infinity`. */
  le: number[];
  /** Observations `<= le[i]`, cumulative. */
  counts: number[];
  /** Sum of every observation, in ms. */
  sum: number;
  /** How many observations. */
  count: number;
}

/** Bucket bounds for pool wait and run times, in ms. */
export const DURATION_BUCKETS_MS: readonly number[] = [
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1_000,
  2_500,
  5_000,
  10_000,
  30_000,
  Infinity,
];

/** Records durations into {@linkcode DURATION_BUCKETS_MS}. */
export interface Histogram {
  /** Record one duration in ms. */
  observe(ms: number): void;
  /** A copy of the counts so far. */
  snapshot(): HistogramSnapshot;
}

/** Make an empty histogram over {@linkcode DURATION_BUCKETS_MS}. */
export function histogram(): Histogram {
  const le = DURATION_BUCKETS_MS;
  const counts = new Array<number>(le.length).fill(0);
  let sum = 0;
  let count = 0;
  return {
    observe(ms) {
      let i = 0;
      while (ms > le[i]!) i++;
      counts[i]!++;
      sum += ms;
      count++;
    },
    snapshot() {
      let running = 0;
      return { le: [...le], counts: counts.map((n) => (running += n)), sum, count };
    },
  };
}
