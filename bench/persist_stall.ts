// How long a 500-event SQLite batch holds the event loop: node:sqlite is synchronous, so the store runs it in a worker.
//
// deno run -A bench/persist_stall.ts [batches=300]
//
// A 1 ms interval timer runs while a persister-like loop writes batches (a macrotask
// between batches, as a persister awaiting the bus has). A timer that fires late was held
// up by a write: its lateness is the stall. Prints, for the connection on the event loop
// (`sqliteThread: "main"`, with each checkpoint mode) and in its worker (the default), the
// batch times (what `deno bench` reports) and the stalls (what callers of the event loop feel).
// The events are the ones of `persist_bench.ts`: whole runs over 50 sessions.

import { openStore } from "../adapters/store/mod.ts";
import { runEvents } from "./_persist_events.ts";

const BATCH = 500;
const BATCHES = Number(Deno.args[0] ?? 300);

function percentile(sorted: number[], p: number): string {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!.toFixed(1);
}

const dir = await Deno.makeTempDir({ prefix: "troupe_persist_stall_" });
try {
  const modes = [
    { name: "main, inline", sqliteThread: "main", checkpoints: "inline" },
    { name: "main, background", sqliteThread: "main", checkpoints: "background" },
    { name: "worker (default)", sqliteThread: "worker", checkpoints: "background" },
  ] as const;
  for (const { name, ...options } of modes) {
    await using store = await openStore(`${dir}/${name.replace(/\W+/g, "_")}.db`, options);
    const batches = Array.from({ length: BATCHES }, () => runEvents(BATCH));
    const times: number[] = [];
    const stalls: number[] = [];
    let expected = performance.now() + 1;
    const probe = setInterval(() => {
      const now = performance.now();
      if (now > expected + 1) stalls.push(now - expected);
      expected = now + 1;
    }, 1);
    const started = performance.now();
    for (const events of batches) {
      const start = performance.now();
      await store.writeEvents(events);
      times.push(performance.now() - start);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const elapsed = performance.now() - started;
    clearInterval(probe);
    times.sort((a, b) => a - b);
    stalls.sort((a, b) => a - b);
    const average = times.reduce((sum, t) => sum + t, 0) / times.length;
    console.log(
      `${name.padEnd(17)} batch avg ${average.toFixed(2)} ms (${
        Math.round(BATCH / average * 1000)
      } rows/s), p50 ${percentile(times, 0.5)}, p99 ${percentile(times, 0.99)}, max ${
        percentile(times, 1)
      } ms | event loop stalls p50 ${percentile(stalls, 0.5)}, p99 ${
        percentile(stalls, 0.99)
      }, max ${percentile(stalls, 1)} ms | ${Math.round(BATCHES * BATCH / elapsed * 1000)} rows/s`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
