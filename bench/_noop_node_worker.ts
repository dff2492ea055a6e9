// The task file tinypool and piscina load in bench/worker_pool_bench.ts: a no-op.

/** Returns its argument. */
export default function noop(value: unknown): unknown {
  return value;
}
