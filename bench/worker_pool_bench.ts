// No-op calls through the worker pool against a hand-written postMessage pool, Comlink and piscina.
//
// Run: deno bench --allow-all bench/worker_pool_bench.ts
// Every contender gets the same number of workers; each iteration spawns its
// pool, warms it up, times the calls alone, and closes it.
//
// tinypool 2.2 is left out: under Deno 2.9 its calls never settle when many
// are queued before its threads are up, and again in the third pool created
// after two were destroyed (the process then hangs), so it cannot run here.

import * as Comlink from "comlink";
import { Piscina } from "npm:piscina@^5.3.2";
import { workerPool } from "../adapters/workers/pool.ts";
import type { NoopHandlers } from "./_noop_pool_worker.ts";

const SIZE = navigator.hardwareConcurrency;
const BURST = 10_000;
const SEQUENTIAL = 300;
const SPREAD = 2_000;
const RUNS = { n: 10, warmup: 2 } as const;

function moduleUrl(source: string): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

const poolWorker = new URL("./_noop_pool_worker.ts", import.meta.url);
const rawWorker = moduleUrl(`
  self.onmessage = (event) => self.postMessage({ id: event.data.id, value: event.data.args[0] });
`);
const comlinkWorker = moduleUrl(`
  import * as Comlink from "npm:comlink@^4.4.2";
  Comlink.expose({ noop: (value) => value });
`);
const nodeWorker = new URL("./_noop_node_worker.ts", import.meta.url).href;

/** A contender: call a no-op once; close everything. */
interface Contender {
  call(value: number): Promise<unknown>;
  close(): Promise<void>;
}

/** The baseline: what one writes by hand, one message per call each way, round-robin. */
function handWrittenPool(): Contender {
  const workers = Array.from({ length: SIZE }, () => new Worker(rawWorker, { type: "module" }));
  const pending = new Map<number, (value: unknown) => void>();
  let next = 0;
  for (const worker of workers) {
    worker.onmessage = (event) => {
      pending.get(event.data.id)!(event.data.value);
      pending.delete(event.data.id);
    };
  }
  return {
    call: (value) =>
      new Promise((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        workers[id % SIZE]!.postMessage({ id, args: [value] });
      }),
    close: () => Promise.resolve(workers.forEach((worker) => worker.terminate())),
  };
}

function troupePool(): Contender {
  const pool = workerPool<NoopHandlers>(poolWorker, {
    name: "bench",
    size: SIZE,
    concurrency: BURST,
  });
  return { call: (value) => pool.call("noop", [value]), close: () => pool.close() };
}

function comlinkPerCall(): Contender {
  const workers = Array.from({ length: SIZE }, () => new Worker(comlinkWorker, { type: "module" }));
  const remotes = workers.map((w) => Comlink.wrap<{ noop(value: number): number }>(w));
  let next = 0;
  return {
    call: (value) => remotes[next++ % SIZE]!.noop(value),
    close: () => Promise.resolve(workers.forEach((worker) => worker.terminate())),
  };
}

function piscina(): Contender {
  const pool = new Piscina({ filename: nodeWorker, minThreads: SIZE, maxThreads: SIZE });
  return { call: (value) => pool.run(value), close: () => pool.destroy() };
}

/** Spawn, warm up (which waits for every worker to start), time `run`, close. */
async function timed(
  b: Deno.BenchContext,
  make: () => Contender,
  run: (c: Contender) => Promise<unknown>,
): Promise<void> {
  const contender = make();
  try {
    await contender.call(0);
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => contender.call(i)));
    b.start();
    await run(contender);
    b.end();
  } finally {
    await contender.close();
  }
}

const burst = (c: Contender) => Promise.all(Array.from({ length: BURST }, (_, i) => c.call(i)));

async function oneAtATime(c: Contender): Promise<void> {
  for (let i = 0; i < SEQUENTIAL; i++) await c.call(i);
}

/** One call per macrotask, as calls arrive from separate HTTP requests. */
function spread(c: Contender): Promise<unknown> {
  const { port1, port2 } = new MessageChannel();
  const calls: Promise<unknown>[] = [];
  return new Promise<unknown>((resolve) => {
    port1.onmessage = () => {
      calls.push(c.call(calls.length));
      if (calls.length < SPREAD) port2.postMessage(0);
      else resolve(Promise.all(calls));
    };
    port2.postMessage(0);
  }).finally(() => {
    port1.close();
    port2.close();
  });
}

const contenders: [name: string, make: () => Contender, baseline?: boolean][] = [
  ["hand-written postMessage pool", handWrittenPool, true],
  ["workerPool (batched MessagePort)", troupePool],
  ["Comlink, one message per call", comlinkPerCall],
  ["piscina", piscina],
];

for (const [name, make, baseline = false] of contenders) {
  Deno.bench({
    name: `${name}: ${BURST} no-op calls in flight at once, ${SIZE} workers`,
    group: "burst",
    baseline,
    ...RUNS,
    async fn(b) {
      await timed(b, make, burst);
    },
  });
}

for (const [name, make, baseline = false] of contenders) {
  Deno.bench({
    name: `${name}: ${SPREAD} no-op calls, one per macrotask`,
    group: "spread",
    baseline,
    ...RUNS,
    async fn(b) {
      await timed(b, make, spread);
    },
  });
}

for (const [name, make, baseline = false] of contenders.slice(0, 2)) {
  Deno.bench({
    name: `${name}: ${SEQUENTIAL} no-op calls one after another`,
    group: "sequential",
    baseline,
    ...RUNS,
    async fn(b) {
      await timed(b, make, oneAtATime);
    },
  });
}
