// The worker pool over real workers: dispatch, bounds, crashes, cancellation, progress, errors, close.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CancelledError,
  InvalidInputError,
  PoolSaturatedError,
  ProviderError,
  ShutdownError,
  WorkerCrashedError,
} from "../../../actors/errors.ts";
import { workerPool, type WorkerPoolOptions } from "../../../adapters/workers/pool.ts";
import { eventually } from "../../_helpers/eventually.ts";
import type { TestHandlers } from "./_test_worker.ts";

const WORKER = new URL("./_test_worker.ts", import.meta.url);

function testPool(options: WorkerPoolOptions = {}) {
  return workerPool<TestHandlers>(WORKER, { name: "test", size: 1, ...options });
}

/** Settle a promise into what it did, so that a test can hold many without unhandled rejections. */
function outcome<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
}

Deno.test("a call runs in a worker and returns its value; init reaches the handler factory", async () => {
  await using pool = testPool({ init: { region: "eu" } });
  await pool.ready();
  assert.deepEqual(await pool.call("echo", [{ a: [1, 2] }]), { a: [1, 2] });
  assert.deepEqual(await pool.call("init", []), { region: "eu" });
  const stats = pool.stats();
  assert.equal(stats.completed, 2);
  assert.equal(stats.runMs.count, 2);
  assert.equal(stats.waitMs.count, 2);
});

Deno.test("many calls settling in separate timers at once each get their own answer", async () => {
  await using pool = testPool({ size: 2, concurrency: 1000 });
  const values = Array.from({ length: 1000 }, (_, i) => i);
  const answers = await Promise.all(values.map((i) => pool.call("later", [i, i % 3])));
  assert.deepEqual(answers, values);
  assert.equal(pool.stats().inFlight, 0);
});

Deno.test("a call goes to the worker with the fewest calls in flight", async () => {
  await using pool = testPool({ size: 2, concurrency: 4 });
  const a = new AbortController();
  const b = new AbortController();
  const hangs = [a, b, a].map((c) => outcome(pool.call("hang", [], { signal: c.signal })));
  assert.deepEqual(pool.stats().workers.map((w) => w.inFlight), [2, 1]);
  a.abort(new CancelledError());
  await eventually(
    "worker 0 to confirm both cancels",
    () => pool.stats().workers[0]!.inFlight === 0,
  );
  const next = outcome(pool.call("hang", [], { signal: b.signal }));
  assert.deepEqual(pool.stats().workers.map((w) => w.inFlight), [1, 1]);
  b.abort(new CancelledError());
  await Promise.all([...hangs, next]);
  assert.deepEqual(pool.stats().workers.map((w) => w.calls), [3, 1]);
});

Deno.test("past the queue bound a call fails at once with PoolSaturatedError", async () => {
  await using pool = testPool({ concurrency: 1, queueBound: 2, retryAfterMs: 250 });
  const stop = new AbortController();
  const first = new AbortController();
  const running = outcome(pool.call("hang", [], { signal: stop.signal }));
  const firstQueued = outcome(pool.call("echo", [1], { signal: first.signal }));
  const secondQueued = pool.call("echo", [2]);
  assert.equal(pool.stats().queued, 2);
  const refused = await outcome(pool.call("echo", [3]));
  assert.ok(!refused.ok && refused.error instanceof PoolSaturatedError);
  assert.equal(refused.error.retryable, true);
  assert.equal(refused.error.retryAfterMs, 250);
  assert.match(refused.error.message, /echo.*test pool.*2 wait/);
  // An aborted queued call leaves the queue at once and makes room.
  first.abort(new CancelledError("gone"));
  const left = await firstQueued;
  assert.ok(!left.ok && left.error instanceof CancelledError);
  assert.equal(pool.stats().queued, 1);
  const fourth = pool.call("echo", [4]);
  stop.abort(new CancelledError());
  assert.deepEqual(await Promise.all([secondQueued, fourth]), [2, 4]);
  await running;
  assert.equal(pool.stats().saturated, 1);
});

Deno.test("queued calls start in the order they came", async () => {
  await using pool = testPool({ concurrency: 1 });
  const stop = new AbortController();
  const running = outcome(pool.call("hang", [], { signal: stop.signal }));
  const order: number[] = [];
  const calls = [1, 2, 3, 4].map((n) =>
    pool.call("echo", [n]).then((v) => order.push(v as number))
  );
  stop.abort(new CancelledError());
  await Promise.all([running, ...calls]);
  assert.deepEqual(order, [1, 2, 3, 4]);
});

Deno.test("a worker that throws an uncaught error is replaced and its calls fail with WorkerCrashedError", async () => {
  const exits: string[] = [];
  await using pool = testPool({ concurrency: 4, onWorkerExit: (exit) => exits.push(exit.reason) });
  const before = await pool.call("instance", []);
  const bystander = outcome(pool.call("hang", []));
  const crash = await outcome(pool.call("crash", []));
  assert.ok(!crash.ok && crash.error instanceof WorkerCrashedError);
  assert.equal(crash.error.retryable, true);
  assert.match(crash.error.message, /Worker 0 of the test pool died: .*boom.*while running crash/);
  const other = await bystander;
  assert.ok(!other.ok && other.error instanceof WorkerCrashedError);
  const after = await pool.call("instance", []);
  assert.notEqual(after, before);
  assert.equal(pool.stats().crashes, 1);
  assert.equal(pool.stats().workers[0]!.restarts, 1);
  assert.equal(exits.length, 1);
});

Deno.test("a worker that closes itself is caught by the liveness ping, replaced, and its call fails typed", async () => {
  await using pool = testPool({ livenessIntervalMs: 20, livenessTimeoutMs: 200 });
  const before = await pool.call("instance", []);
  const exit = await outcome(pool.call("exit", []));
  assert.ok(!exit.ok && exit.error instanceof WorkerCrashedError);
  assert.match(exit.error.message, /did not answer a ping/);
  assert.notEqual(await pool.call("instance", []), before);
});

Deno.test("terminateWorker fails the worker's calls with WorkerCrashedError and replaces it", async () => {
  await using pool = testPool();
  const before = await pool.call("instance", []);
  const hang = outcome(pool.call("hang", []));
  pool.terminateWorker(0, "wedged");
  const result = await hang;
  assert.ok(!result.ok && result.error instanceof WorkerCrashedError);
  assert.match(result.error.message, /wedged/);
  assert.notEqual(await pool.call("instance", []), before);
  assert.throws(() => pool.terminateWorker(5), RangeError);
});

Deno.test("a worker whose handlers fail to start fails its calls typed, with the cause", async () => {
  await using pool = testPool({ init: "fail-init" });
  const ready = await outcome(pool.ready());
  assert.ok(!ready.ok && ready.error instanceof WorkerCrashedError);
  assert.match(ready.error.message, /handlers failed to start.*init says fail/);
  assert.ok(ready.error.cause instanceof RangeError);
  const call = await outcome(pool.call("echo", [1]));
  assert.ok(!call.ok && call.error instanceof WorkerCrashedError);
});

Deno.test("aborting a running call rejects with the reason and aborts the handler's signal in the worker", async () => {
  await using pool = testPool();
  const controller = new AbortController();
  const hang = outcome(pool.call("hang", [], { signal: controller.signal }));
  await eventually("the call to reach the worker", () => pool.stats().inFlight === 1);
  const reason = new CancelledError("Run r1 superseded by r2");
  controller.abort(reason);
  const result = await hang;
  assert.ok(!result.ok && result.error === reason);
  await eventually("the worker to confirm", () => pool.stats().inFlight === 0);
  assert.deepEqual(await pool.call("aborted", []), {
    count: 1,
    lastReason: "CancelledError: Run r1 superseded by r2",
  });
});

Deno.test("a call whose signal is already aborted never runs", async () => {
  await using pool = testPool();
  const reason = new CancelledError();
  const result = await outcome(pool.call("echo", [1], { signal: AbortSignal.abort(reason) }));
  assert.ok(!result.ok && result.error === reason);
  assert.equal(pool.stats().calls, 0);
});

Deno.test("progress emitted within one batch window arrives as one concatenated piece, before the result", async () => {
  await using pool = testPool();
  const chunks = Array.from({ length: 200 }, (_, i) => `t${i} `);
  const seen: unknown[] = [];
  let resolved = false;
  const count = await pool.call("stream", [chunks, []], {
    onProgress: (p) => seen.push(resolved ? "late" : p),
  }).finally(() => (resolved = true));
  assert.equal(count, 200);
  assert.deepEqual(seen, [chunks.join(""), { mark: 200 }]);
});

Deno.test("property: progress keeps its order and loses nothing, however the stream yields", async () => {
  await using pool = testPool({ size: 2, progressFlushMs: 1 });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.boolean()), { maxLength: 40 }),
      fc.integer({ min: 1, max: 3 }),
      async (steps, parallel) => {
        const chunks = steps.map(([chunk]) => chunk);
        const yields = steps.map(([, y]) => y);
        const runs = Array.from({ length: parallel }, async () => {
          const seen: unknown[] = [];
          let resolved = false;
          await pool.call("stream", [chunks, yields], {
            onProgress: (p) => seen.push(resolved ? "late" : p),
          });
          resolved = true;
          const last = seen.pop();
          assert.deepEqual(last, { mark: chunks.length });
          assert.ok(seen.every((p) => typeof p === "string" && p !== ""));
          assert.equal(seen.join(""), chunks.join(""));
          // Pieces are merged within a batch: never more pieces than yields plus one.
          assert.ok(seen.length <= yields.filter(Boolean).length + 1);
        });
        await Promise.all(runs);
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("errors thrown in the worker come back as the same classes with their fields", async () => {
  await using pool = testPool();
  const error = async (kind: string) => {
    const result = await outcome(pool.call("fail", [kind]));
    assert.ok(!result.ok);
    return result.error as Error;
  };
  const provider = await error("provider");
  assert.ok(provider instanceof ProviderError);
  assert.equal(provider.status, 429);
  assert.equal(provider.retryable, true);
  assert.equal(provider.code, "provider_error");
  assert.match(provider.stack ?? "", /_test_worker\.ts/);
  assert.ok(await error("cancelled") instanceof CancelledError);
  const invalid = await error("invalid");
  assert.ok(invalid instanceof InvalidInputError);
  assert.equal(invalid.field, "messages");
  const type = await error("type");
  assert.ok(type instanceof TypeError && type.cause instanceof RangeError);
  assert.equal(type.cause.message, "inner");
  const abort = await error("abort");
  assert.ok(abort instanceof DOMException && abort.name === "AbortError");
  const custom = await error("custom");
  assert.equal(custom.name, "QuotaError");
  assert.equal((custom as unknown as { limit: number }).limit, 5);
  assert.equal((await error("string")).message, "a string");
  const later = await outcome(pool.call("failLater", []));
  assert.ok(!later.ok && later.error instanceof ProviderError && later.error.status === 503);
});

Deno.test("an unknown method fails with a TypeError naming what the worker serves", async () => {
  await using pool = testPool();
  // @ts-expect-error: not a method of the worker.
  const result = await outcome(pool.call("nope", []));
  assert.ok(!result.ok && result.error instanceof TypeError);
  assert.match(
    result.error.message,
    /Cannot call nope: the worker serves only echo, later, instance/,
  );
});

Deno.test("data that cannot be cloned fails its own call only, not the batch it travels in", async () => {
  await using pool = testPool();
  const [bad, good, badArgs, goodToo] = await Promise.all([
    outcome(pool.call("unclonable", [])),
    outcome(pool.call("echo", [1])),
    outcome(pool.call("echo", [() => 1])),
    outcome(pool.call("echo", [2])),
  ]);
  assert.ok(!bad.ok && bad.error instanceof TypeError);
  assert.match(bad.error.message, /cannot be cloned/);
  assert.deepEqual(good, { ok: true, value: 1 });
  assert.ok(!badArgs.ok && badArgs.error instanceof TypeError);
  assert.match(badArgs.error.message, /Cannot call echo: its arguments cannot be sent/);
  assert.deepEqual(goodToo, { ok: true, value: 2 });
  assert.equal(pool.stats().inFlight, 0);
});

Deno.test("an onProgress that throws cancels its call with what it threw", async () => {
  await using pool = testPool();
  const thrown = new Error("sink broke");
  const result = await outcome(pool.call("stream", [["a", "b"], [true, true]], {
    onProgress: () => {
      throw thrown;
    },
  }));
  assert.ok(!result.ok && result.error === thrown);
  await eventually("the worker to settle the call", () => pool.stats().inFlight === 0);
});

Deno.test("close() fails queued and running calls with ShutdownError, and every later call", async () => {
  const pool = testPool({ concurrency: 1 });
  const running = outcome(pool.call("hang", []));
  const queued = outcome(pool.call("echo", [1]));
  await pool.close();
  for (const result of [await running, await queued]) {
    assert.ok(!result.ok && result.error instanceof ShutdownError);
  }
  const later = await outcome(pool.call("echo", [2]));
  assert.ok(!later.ok && later.error instanceof ShutdownError);
  assert.equal(pool.stats().workers.filter((w) => w.ready).length, 0);
  await pool.close();
});

Deno.test("close({ graceMs }) lets calls in flight and queued calls finish first", async () => {
  const pool = testPool({ concurrency: 1 });
  const calls = [pool.call("echo", [1]), pool.call("echo", [2])];
  await pool.close({ graceMs: 30_000 });
  assert.deepEqual(await Promise.all(calls), [1, 2]);
});

Deno.test("bad options fail at once with a RangeError naming the option", () => {
  assert.throws(() => testPool({ size: 0 }), /size must be an integer >= 1, current value is 0/);
  assert.throws(() => testPool({ concurrency: 1.5 }), /concurrency/);
  assert.throws(() => testPool({ queueBound: -1 }), /queueBound/);
});
