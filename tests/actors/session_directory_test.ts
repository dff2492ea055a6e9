// Tests the session directory with fake entries: single-flight activation, LRU eviction, overload, sweep.

import assert from "node:assert/strict";
import { OverloadedError } from "../../actors/errors.ts";
import {
  type DirectoryEntry,
  type PassivationReason,
  sessionDirectory,
  type SessionDirectoryOptions,
} from "../../actors/session_directory.ts";
import { settledYet } from "../_helpers/settled_yet.ts";

/** A fake live session: the test decides whether it is idle and when its stop finishes. */
interface FakeEntry extends DirectoryEntry {
  key: string;
  busy: boolean;
  /** The reasons `stop` was called with. */
  stops: PassivationReason[];
  /** Resolves with the reason of the first `stop()` call. */
  stopCalled: Promise<PassivationReason>;
  /** Resolve the pending `stop()`; until then the entry is still writing. */
  finishStop(): void;
}

function fakeEntry(key: string, lastActive = 0, options: { holdStop?: boolean } = {}): FakeEntry {
  const stopped = Promise.withResolvers<void>();
  const stopCalled = Promise.withResolvers<PassivationReason>();
  if (!options.holdStop) stopped.resolve();
  const entry: FakeEntry = {
    key,
    lastActive,
    busy: false,
    stops: [],
    isIdle: () => !entry.busy,
    stop(reason) {
      entry.stops.push(reason);
      stopCalled.resolve(reason);
      return stopped.promise;
    },
    stopCalled: stopCalled.promise,
    finishStop: () => stopped.resolve(),
  };
  return entry;
}

/** The directory's clock in these tests: set `time.now` before acting. */
const time = { now: 0 };

/** A directory whose `activate` makes fake entries and records every call. */
function fakeDirectory(
  options: Partial<SessionDirectoryOptions<FakeEntry>> = {},
) {
  const activations: Array<{ key: string; ready: Promise<void> }> = [];
  time.now = 0;
  const directory = sessionDirectory<FakeEntry>({
    maxActiveSessions: 3,
    idleTimeoutMs: 1_000,
    retryAfterMs: 250,
    now: () => time.now,
    activate(key, ready) {
      activations.push({ key, ready });
      return Promise.resolve(fakeEntry(key));
    },
    ...options,
  });
  return { directory, activations };
}

function keys(directory: { entries(): IterableIterator<[string, FakeEntry]> }): string[] {
  return [...directory.entries()].map(([key]) => key);
}

Deno.test("sessionDirectory activates a new key once for 100 concurrent acquires", async () => {
  const gate = Promise.withResolvers<void>();
  let calls = 0;
  const { directory } = fakeDirectory({
    async activate(key) {
      calls++;
      await gate.promise;
      return fakeEntry(key);
    },
  });
  const waiters = Array.from({ length: 100 }, () => directory.acquire("a"));
  assert.equal(calls, 1);
  assert.ok(directory.activating("a") !== undefined);
  assert.equal(directory.size, 0);
  gate.resolve();
  const entries = await Promise.all(waiters);
  assert.ok(entries.every((entry) => entry === entries[0]));
  assert.equal(directory.size, 1);
  assert.equal(directory.activating("a"), undefined);
  assert.equal(await directory.acquire("a"), entries[0]);
  assert.equal(calls, 1);
});

Deno.test("sessionDirectory get() marks a session most recently used; peek() does not", async () => {
  const { directory } = fakeDirectory();
  for (const key of ["a", "b", "c"]) await directory.acquire(key);
  assert.deepEqual(keys(directory), ["a", "b", "c"]);
  assert.equal(directory.peek("a")?.key, "a");
  assert.deepEqual(keys(directory), ["a", "b", "c"]);
  assert.equal(directory.get("a")?.key, "a");
  assert.deepEqual(keys(directory), ["b", "c", "a"]);
  await directory.acquire("b");
  assert.deepEqual(keys(directory), ["c", "a", "b"]);
  assert.equal(directory.get("missing"), undefined);
  assert.equal(directory.peek("missing"), undefined);
});

Deno.test("sessionDirectory evicts the least recently used idle session to make room", async () => {
  const { directory } = fakeDirectory();
  const a = await directory.acquire("a");
  const b = await directory.acquire("b");
  const c = await directory.acquire("c");
  directory.get("a");
  await directory.acquire("d");
  assert.deepEqual(b.stops, ["evicted"]);
  assert.deepEqual(a.stops, []);
  assert.deepEqual(c.stops, []);
  assert.deepEqual(keys(directory), ["c", "a", "d"]);
  assert.equal(directory.size, 3);
});

Deno.test("sessionDirectory never evicts a busy session, even the least recently used", async () => {
  const { directory } = fakeDirectory();
  const a = await directory.acquire("a");
  const b = await directory.acquire("b");
  const c = await directory.acquire("c");
  a.busy = true;
  b.busy = true;
  await directory.acquire("d");
  assert.deepEqual(a.stops, []);
  assert.deepEqual(b.stops, []);
  assert.deepEqual(c.stops, ["evicted"]);
  assert.deepEqual(keys(directory), ["a", "b", "d"]);
});

Deno.test("sessionDirectory refuses with OverloadedError and retryAfterMs when every slot is busy", async () => {
  const { directory, activations } = fakeDirectory({ retryAfterMs: 1_234 });
  for (const key of ["a", "b", "c"]) (await directory.acquire(key)).busy = true;
  await assert.rejects(directory.acquire("d"), (error) => {
    assert.ok(error instanceof OverloadedError);
    assert.equal(error.retryAfterMs, 1_234);
    assert.equal(error.code, "overloaded");
    assert.equal(error.retryable, true);
    return true;
  });
  assert.equal(directory.size, 3);
  assert.deepEqual(keys(directory), ["a", "b", "c"]);
  assert.equal(activations.length, 3);
  assert.equal(directory.activating("d"), undefined);
  // A busy live session is still served.
  assert.equal((await directory.acquire("a")).key, "a");
});

Deno.test("sessionDirectory counts activations in progress against the slots", async () => {
  const gate = Promise.withResolvers<void>();
  const { directory } = fakeDirectory({
    maxActiveSessions: 1,
    async activate(key) {
      await gate.promise;
      return fakeEntry(key);
    },
  });
  const a = directory.acquire("a");
  await assert.rejects(directory.acquire("b"), OverloadedError);
  gate.resolve();
  assert.equal((await a).key, "a");
  assert.equal((await directory.acquire("b")).key, "b");
  assert.deepEqual(keys(directory), ["b"]);
});

Deno.test("sessionDirectory sweep passivates only idle sessions inactive for idleTimeoutMs", async () => {
  const { directory } = fakeDirectory({ idleTimeoutMs: 1_000 });
  time.now = 0;
  const old = await directory.acquire("old");
  time.now = 100;
  const oldBusy = await directory.acquire("oldBusy");
  time.now = 5_000;
  const recent = await directory.acquire("recent");
  oldBusy.busy = true;
  assert.equal(directory.sweep(5_500), 1);
  assert.deepEqual(old.stops, ["idle"]);
  assert.deepEqual(oldBusy.stops, []);
  assert.deepEqual(recent.stops, []);
  assert.deepEqual(keys(directory), ["oldBusy", "recent"]);
  assert.equal(directory.sweep(5_500), 0);
  oldBusy.busy = false;
  assert.equal(directory.sweep(5_999), 1);
  assert.deepEqual(oldBusy.stops, ["idle"]);
  assert.equal(directory.sweep(6_001), 1);
  assert.deepEqual(recent.stops, ["idle"]);
  assert.equal(directory.size, 0);
});

Deno.test("sessionDirectory marks a session used on get, so sweep spares it and finds older idle ones", async () => {
  const { directory } = fakeDirectory({ idleTimeoutMs: 1_000 });
  time.now = 0;
  const a = await directory.acquire("a");
  const b = await directory.acquire("b");
  time.now = 10_000;
  directory.get("b");
  assert.equal(b.lastActive, 10_000);
  assert.deepEqual(keys(directory), ["a", "b"]);
  assert.equal(directory.sweep(10_500), 1);
  assert.deepEqual(a.stops, ["idle"]);
  assert.deepEqual(b.stops, []);
});

Deno.test("sessionDirectory reactivation waits for the previous incarnation's stop() (ready)", async () => {
  const readies: Array<Promise<void>> = [];
  const order: string[] = [];
  const { directory } = fakeDirectory({
    async activate(key, ready) {
      readies.push(ready);
      await ready;
      order.push(`activated ${key}`);
      return fakeEntry(key, 0, { holdStop: true });
    },
  });
  const first = await directory.acquire("a");
  assert.equal(directory.sweep(10_000), 1);
  assert.deepEqual(first.stops, ["idle"]);
  assert.equal(directory.size, 0);
  const second = directory.acquire("a");
  assert.equal(readies.length, 2);
  assert.equal(await settledYet(readies[1]!), false, "ready waits for the old stop()");
  assert.equal(await settledYet(directory.settled("a")), false);
  assert.equal(await settledYet(second), false);
  order.push("stop finished");
  first.finishStop();
  const entry = await second;
  assert.notEqual(entry, first);
  assert.deepEqual(order, ["activated a", "stop finished", "activated a"]);
  await directory.settled("a");
});

Deno.test("sessionDirectory failed activation rejects every waiter and frees the slot", async () => {
  const failure = new Error("store unreachable");
  const gate = Promise.withResolvers<void>();
  let attempts = 0;
  const { directory } = fakeDirectory({
    maxActiveSessions: 1,
    async activate(key) {
      attempts++;
      if (attempts === 1) {
        await gate.promise;
        throw failure;
      }
      return fakeEntry(key);
    },
  });
  const waiters = Array.from({ length: 10 }, () => directory.acquire("a"));
  gate.resolve();
  const results = await Promise.allSettled(waiters);
  assert.ok(results.every((r) => r.status === "rejected" && r.reason === failure));
  assert.equal(attempts, 1);
  assert.equal(directory.size, 0);
  assert.equal(directory.activating("a"), undefined);
  assert.equal((await directory.acquire("b")).key, "b");
  assert.equal(attempts, 2);
});

Deno.test("sessionDirectory passivateAll stops every session, busy or idle, and waits for them", async () => {
  const { directory } = fakeDirectory({
    activate: (key) => Promise.resolve(fakeEntry(key, 0, { holdStop: true })),
  });
  const a = await directory.acquire("a");
  const b = await directory.acquire("b");
  b.busy = true;
  const all = directory.passivateAll("shutdown");
  assert.equal(await a.stopCalled, "shutdown");
  assert.equal(await b.stopCalled, "shutdown");
  assert.equal(directory.size, 0);
  a.finishStop();
  assert.equal(await settledYet(all), false, "passivateAll waits for b's stop too");
  b.finishStop();
  await all;
  assert.deepEqual(a.stops, ["shutdown"]);
  assert.deepEqual(b.stops, ["shutdown"]);
});

Deno.test("sessionDirectory passivateAll includes activations in progress and earlier stops", async () => {
  const gate = Promise.withResolvers<void>();
  const { directory } = fakeDirectory({
    async activate(key) {
      if (key === "late") await gate.promise;
      return fakeEntry(key, 0, { holdStop: true });
    },
  });
  const swept = await directory.acquire("swept");
  assert.equal(directory.sweep(10_000), 1);
  const late = directory.acquire("late");
  const all = directory.passivateAll("shutdown");
  gate.resolve();
  const lateEntry = await late;
  assert.equal(await lateEntry.stopCalled, "shutdown");
  lateEntry.finishStop();
  assert.equal(await settledYet(all), false, "the earlier stop has not finished");
  swept.finishStop();
  await all;
  assert.deepEqual(swept.stops, ["idle"]);
  assert.equal(directory.size, 0);
});
