// Tests of the documented behaviour of `@std/async`; they pass against the local stand-in and jsr:@std/async@^1.

import assert from "node:assert/strict";
import { abortable, deadline, delay, pooledMap, retry, RetryError } from "@std/async";

// Timers may fire a hair early against performance.now(); allow for it in lower bounds.
const TIMER_SLACK_MS = 2;

/** An AbortSignal whose listener bookkeeping can be inspected. */
function countingSignal(
  controller: AbortController,
): { signal: AbortSignal; listeners: () => number } {
  const { signal } = controller;
  let listeners = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<AbortSignal["addEventListener"]>) => {
    if (args[0] === "abort") listeners++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<AbortSignal["removeEventListener"]>) => {
    if (args[0] === "abort") listeners--;
    remove(...args);
  };
  return { signal, listeners: () => listeners };
}

Deno.test("delay() resolves once the time has passed", async () => {
  const start = performance.now();
  const result = await delay(10);
  assert.equal(result, undefined);
  assert.ok(performance.now() - start >= 10 - TIMER_SLACK_MS);
});

Deno.test("delay() rejects with the signal's reason when aborted, clearing its timer", async () => {
  const controller = new AbortController();
  const reason = new Error("stop");
  const waiting = delay(60_000, { signal: controller.signal });
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
});

Deno.test("delay() rejects at once with an AbortError when the signal is already aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(delay(60_000, { signal: controller.signal }), (error) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "AbortError");
    return true;
  });
});

Deno.test("delay() removes its abort listener after it resolves", async () => {
  const { signal, listeners } = countingSignal(new AbortController());
  await delay(1, { signal });
  assert.equal(listeners(), 0);
});

Deno.test("deadline() resolves with the promise's value when it settles in time", async () => {
  assert.equal(await deadline(Promise.resolve("in time"), 1_000), "in time");
});

Deno.test("deadline() passes the promise's own rejection through", async () => {
  const failure = new Error("failed early");
  await assert.rejects(deadline(Promise.reject(failure), 1_000), (error) => error === failure);
});

Deno.test("deadline() rejects with a TimeoutError DOMException when the time passes", async () => {
  const never = new Promise<never>(() => {});
  await assert.rejects(deadline(never, 5), (error) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "TimeoutError");
    return true;
  });
});

Deno.test("deadline() rejects with the signal's reason when the signal aborts first", async () => {
  const controller = new AbortController();
  const reason = new Error("cancelled");
  const waiting = deadline(new Promise<never>(() => {}), 60_000, { signal: controller.signal });
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
});

Deno.test("retry() calls again after failures and returns the first success", async () => {
  let calls = 0;
  const result = await retry(() => {
    calls++;
    if (calls < 3) throw new Error(`failure ${calls}`);
    return "ok";
  }, { minTimeout: 1, maxTimeout: 2 });
  assert.equal(result, "ok");
  assert.equal(calls, 3);
});

Deno.test("retry() throws a RetryError carrying the last error after maxAttempts", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => Promise.reject(new Error(`failure ${++calls}`)), {
      maxAttempts: 3,
      minTimeout: 1,
      maxTimeout: 2,
    }),
    (error) => {
      assert.ok(error instanceof RetryError);
      assert.equal(error.name, "RetryError");
      assert.equal(error.message, "Retrying exceeded the maxAttempts (3).");
      assert.ok(error.cause instanceof Error);
      assert.equal(error.cause.message, "failure 3");
      return true;
    },
  );
  assert.equal(calls, 3);
});

Deno.test("retry() rethrows at once an error isRetriable refuses", async () => {
  const fatal = new Error("fatal");
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw fatal;
    }, { minTimeout: 1, isRetriable: () => false }),
    (error) => error === fatal,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() keeps retrying errors isRetriable accepts until one it refuses", async () => {
  class Transient extends Error {}
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      throw calls < 3 ? new Transient("try again") : new TypeError("give up");
    }, { minTimeout: 1, maxTimeout: 2, isRetriable: (err) => err instanceof Transient }),
    TypeError,
  );
  assert.equal(calls, 3);
});

Deno.test("retry() waits the full backoff between attempts when jitter is 0", async () => {
  let calls = 0;
  const start = performance.now();
  await retry(() => {
    if (++calls < 2) throw new Error("once");
  }, { minTimeout: 10, maxTimeout: 10, jitter: 0 });
  assert.ok(performance.now() - start >= 10 - TIMER_SLACK_MS);
});

Deno.test("retry() stops waiting and rejects with the signal's reason when aborted", async () => {
  const controller = new AbortController();
  const reason = new Error("shutting down");
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      queueMicrotask(() => controller.abort(reason));
      throw new Error("down");
    }, { minTimeout: 60_000, maxTimeout: 60_000, jitter: 0, signal: controller.signal }),
    (error) => error === reason,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() rejects out-of-range options with a RangeError before calling fn", async () => {
  let calls = 0;
  const fn = () => {
    calls++;
    return "never";
  };
  const invalid = [
    { minTimeout: 100, maxTimeout: 10 },
    { maxAttempts: 0 },
    { maxAttempts: 1.5 },
    { maxTimeout: 0 },
    { minTimeout: -1 },
    { multiplier: 0.5 },
    { jitter: 1.5 },
    { jitter: -0.1 },
  ];
  for (const options of invalid) {
    await assert.rejects(retry(fn, options), RangeError, JSON.stringify(options));
  }
  assert.equal(calls, 0);
});

Deno.test("pooledMap() keeps input order and never runs more than poolLimit at once", async () => {
  let active = 0;
  let peak = 0;
  const results = pooledMap(2, [6, 2, 4, 1, 3], async (ms) => {
    active++;
    peak = Math.max(peak, active);
    await delay(ms);
    active--;
    return ms * 10;
  });
  assert.deepEqual(await Array.fromAsync(results), [60, 20, 40, 10, 30]);
  assert.equal(peak, 2);
});

Deno.test("pooledMap() maps an async iterable", async () => {
  async function* numbers() {
    yield 1;
    yield 2;
    yield 3;
  }
  const results = pooledMap(3, numbers(), (n) => Promise.resolve(n * n));
  assert.deepEqual(await Array.fromAsync(results), [1, 4, 9]);
});

Deno.test("pooledMap() yields the successes in flight, then an AggregateError of the failures", async () => {
  const started: number[] = [];
  const failure = new Error("item 2 failed");
  const yielded: number[] = [];
  await assert.rejects(
    async () => {
      for await (
        const value of pooledMap(2, [1, 2, 3, 4], async (item) => {
          started.push(item);
          if (item === 2) {
            await delay(2);
            throw failure;
          }
          await delay(10);
          return item;
        })
      ) {
        yielded.push(value);
      }
    },
    (error) => {
      assert.ok(error instanceof AggregateError);
      assert.deepEqual(error.errors, [failure]);
      return true;
    },
  );
  assert.deepEqual(yielded, [1]);
  assert.deepEqual(started, [1, 2]);
});

Deno.test("pooledMap() rejects a poolLimit that is not a positive integer", () => {
  for (const poolLimit of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => pooledMap(poolLimit, [1], (n) => Promise.resolve(n)), RangeError);
  }
});

Deno.test("abortable() settles like the promise when the signal stays quiet", async () => {
  const { signal, listeners } = countingSignal(new AbortController());
  assert.equal(await abortable(Promise.resolve("done"), signal), "done");
  assert.equal(listeners(), 0);
});

Deno.test("abortable() rejects a pending promise with the signal's reason on abort", async () => {
  const controller = new AbortController();
  const reason = new Error("user left");
  const waiting = abortable(new Promise<never>(() => {}), controller.signal);
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
});

Deno.test("abortable() rejects at once with an AbortError when the signal is already aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(abortable(Promise.resolve(1), controller.signal), (error) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "AbortError");
    return true;
  });
});

Deno.test("abortable() yields every item of an async iterable when not aborted", async () => {
  async function* letters() {
    yield "a";
    yield "b";
  }
  const controller = new AbortController();
  assert.deepEqual(await Array.fromAsync(abortable(letters(), controller.signal)), ["a", "b"]);
});

Deno.test("abortable() ends an async iterable with the signal's reason and closes the source", async () => {
  const closed = Promise.withResolvers<void>();
  async function* endless() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      closed.resolve();
    }
  }
  const controller = new AbortController();
  const reason = new Error("enough");
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const item of abortable(endless(), controller.signal)) {
      seen.push(item);
      if (item === 1) controller.abort(reason);
    }
  }, (error) => error === reason);
  assert.deepEqual(seen, [0, 1]);
  await closed.promise;
});

Deno.test("abortable() interrupts an async iterable waiting on a pending item", async () => {
  const controller = new AbortController();
  const reason = new Error("stop waiting");
  const stuck = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  async function* stalled() {
    yield "first";
    stuck.resolve();
    await gate.promise;
    yield "second";
  }
  const seen: string[] = [];
  const reading = (async () => {
    for await (const item of abortable(stalled(), controller.signal)) seen.push(item);
  })();
  await stuck.promise;
  controller.abort(reason);
  // Let the source go, so no implementation is left waiting on it.
  gate.resolve();
  await assert.rejects(reading, (error) => error === reason);
  assert.deepEqual(seen, ["first"]);
});

Deno.test("abortable() throws at once for an async iterable when the signal is already aborted", async () => {
  async function* one() {
    yield 1;
  }
  const controller = new AbortController();
  const reason = new Error("too late");
  controller.abort(reason);
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const item of abortable(one(), controller.signal)) seen.push(item);
  }, (error) => error === reason);
  assert.deepEqual(seen, []);
});
