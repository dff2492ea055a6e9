// The contract every `Store` implementation passes: history round-trips, pages, isolation, close.

import assert from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import type { HistoryEntry, HistoryPage, Store } from "../../actors/ports.ts";

/** What {@linkcode runStoreContract} needs to know about one implementation. */
export interface StoreContractOptions {
  /** Prefixes every test name, e.g. `"memory"` or `"sqlite"`. */
  name: string;
  /** Make a fresh, empty store; each test closes the one it made. */
  create: () => Promise<Store & AsyncDisposable> | (Store & AsyncDisposable);
}

const BASE_TS = 1_700_000_000_000;

/** A user turn followed by the assistant turn that answered it, as the session actor writes them. */
function exchange(n: number): HistoryEntry[] {
  return [
    { id: `m${n}`, role: "user", content: `question ${n}`, ts: BASE_TS + 2 * n },
    {
      id: `r${n}`,
      role: "assistant",
      content: `answer ${n}`,
      ts: BASE_TS + 2 * n + 1,
      answered: [`m${n}`],
    },
  ];
}

/** `count` single entries with ids `e0`, `e1`, …, alternating user and assistant turns. */
function numbered(count: number, prefix = "e"): HistoryEntry[] {
  return Array.from(
    { length: count },
    (_, i): HistoryEntry =>
      i % 2 === 0
        ? { id: `${prefix}${i}`, role: "user", content: `${prefix} ${i}`, ts: BASE_TS + i }
        : {
          id: `${prefix}${i}`,
          role: "assistant",
          content: `${prefix} ${i}`,
          ts: BASE_TS + i,
          answered: [`${prefix}${i - 1}`],
        },
  );
}

/** Every page of a session's history, newest page first, following `next` to the start. */
async function walkBack(
  store: Store,
  org: string,
  session: string,
  limit: number,
): Promise<HistoryPage[]> {
  const pages: HistoryPage[] = [];
  let before: string | undefined;
  do {
    const page: HistoryPage = await store.readHistory(
      org,
      session,
      before === undefined ? { limit } : { limit, before },
    );
    pages.push(page);
    before = page.next ?? undefined;
    // A store that never reaches the start would loop forever; no history here is that long.
    assert.ok(pages.length <= 1_000, "paging did not reach the start of the history");
  } while (before !== undefined);
  return pages;
}

function isInvalidBefore(error: unknown): boolean {
  assert.ok(error instanceof InvalidInputError, `expected an InvalidInputError, got ${error}`);
  assert.equal(error.field, "before");
  return true;
}

/**
 * Register the `Store` contract as `Deno.test` cases named `"<name> store: …"`.
 *
 * @example
 * ```ts ignore
 * import { memoryStore } from "../../adapters/store/memory_store.ts";
 * import { runStoreContract } from "./store_contract.ts";
 *
 * runStoreContract({ name: "memory", create: memoryStore });
 * ```
 */
export function runStoreContract({ name, create }: StoreContractOptions): void {
  function test(title: string, fn: (store: Store) => Promise<void>): void {
    Deno.test(`${name} store: ${title}`, async () => {
      await using store = await create();
      await fn(store);
    });
  }

  test("reads back appended entries oldest first with every field, answered included", async (store) => {
    const entries: HistoryEntry[] = [
      ...exchange(1),
      { id: "m2", role: "user", content: 'é 日本 🎭\nline two\t"quoted"', ts: BASE_TS + 10 },
      { id: "m3", role: "user", content: "merged with m2", ts: BASE_TS + 11 },
      { id: "r2", role: "assistant", content: "", ts: BASE_TS + 12, answered: ["m2", "m3"] },
    ];
    await store.appendHistory("org", "s1", entries);
    const page = await store.readHistory("org", "s1", { limit: 100 });
    assert.deepEqual(page, { entries, next: null });
  });

  test("keeps entries in append order across many calls", async (store) => {
    const expected: HistoryEntry[] = [];
    for (let n = 0; n < 100; n++) {
      // Batches of one, two and three entries.
      const batch = numbered(n % 3 + 1, `b${n}-`);
      expected.push(...batch);
      await store.appendHistory("org", "s1", batch);
    }
    const page = await store.readHistory("org", "s1", { limit: expected.length });
    assert.deepEqual(page.entries, expected);
    assert.equal(page.next, null);
  });

  test("returns the newest `limit` entries, oldest first", async (store) => {
    const entries = numbered(10);
    await store.appendHistory("org", "s1", entries);
    const page = await store.readHistory("org", "s1", { limit: 3 });
    assert.deepEqual(page.entries, entries.slice(7));
    assert.notEqual(page.next, null);
  });

  test("walks back page by page through the whole history with no gap and no overlap", async (store) => {
    const entries = numbered(23);
    await store.appendHistory("org", "s1", entries);
    const pages = await walkBack(store, "org", "s1", 5);
    assert.deepEqual(pages.map((p) => p.entries.length), [5, 5, 5, 5, 3]);
    assert.deepEqual(pages.toReversed().flatMap((p) => p.entries), entries);
    assert.equal(pages.at(-1)!.next, null);
    assert.ok(pages.slice(0, -1).every((p) => typeof p.next === "string"));
  });

  test("ends on a full first page with next null when the history is a multiple of the limit", async (store) => {
    const entries = numbered(20);
    await store.appendHistory("org", "s1", entries);
    const pages = await walkBack(store, "org", "s1", 5);
    assert.deepEqual(pages.map((p) => p.entries.length), [5, 5, 5, 5]);
    assert.deepEqual(pages.toReversed().flatMap((p) => p.entries), entries);
  });

  test("pages of one entry walk the history one entry at a time", async (store) => {
    const entries = numbered(7);
    await store.appendHistory("org", "s1", entries);
    const pages = await walkBack(store, "org", "s1", 1);
    assert.deepEqual(pages.map((p) => p.entries), entries.toReversed().map((e) => [e]));
  });

  test("gives next null when the whole history fits in the first page", async (store) => {
    const entries = numbered(4);
    await store.appendHistory("org", "s1", entries);
    assert.deepEqual(await store.readHistory("org", "s1", { limit: 4 }), { entries, next: null });
    assert.deepEqual(await store.readHistory("org", "s1", { limit: 50 }), { entries, next: null });
  });

  test("a cursor reads the same older page after newer entries are appended", async (store) => {
    const entries = numbered(10);
    await store.appendHistory("org", "s1", entries);
    const first = await store.readHistory("org", "s1", { limit: 4 });
    assert.ok(first.next !== null);
    await store.appendHistory("org", "s1", numbered(6, "late"));
    const older = await store.readHistory("org", "s1", { limit: 4, before: first.next });
    assert.deepEqual(older.entries, entries.slice(2, 6));
  });

  test("reads an unknown session as an empty page", async (store) => {
    assert.deepEqual(await store.readHistory("org", "nobody", { limit: 10 }), {
      entries: [],
      next: null,
    });
    await store.appendHistory("org", "s1", numbered(2));
    assert.deepEqual(await store.readHistory("org", "s2", { limit: 10 }), {
      entries: [],
      next: null,
    });
    assert.deepEqual(await store.readHistory("other-org", "s1", { limit: 10 }), {
      entries: [],
      next: null,
    });
  });

  test("never shows one org's session to another org with the same session id", async (store) => {
    const a = numbered(3, "a");
    const b = numbered(2, "b");
    await store.appendHistory("org-a", "shared", a);
    await store.appendHistory("org-b", "shared", b);
    assert.deepEqual((await store.readHistory("org-a", "shared", { limit: 10 })).entries, a);
    assert.deepEqual((await store.readHistory("org-b", "shared", { limit: 10 })).entries, b);
  });

  test("keeps (org, session) pairs apart even when their ids concatenate alike", async (store) => {
    const pairs: Array<[string, string]> = [["a:b", "c"], ["a", "b:c"], ["a.b", "c"], ["a", "b.c"]];
    for (const [i, [org, session]] of pairs.entries()) {
      await store.appendHistory(org, session, numbered(i + 1, `p${i}-`));
    }
    for (const [i, [org, session]] of pairs.entries()) {
      const page = await store.readHistory(org, session, { limit: 10 });
      assert.deepEqual(page.entries, numbered(i + 1, `p${i}-`), `${org} / ${session}`);
    }
  });

  test("rejects a garbage cursor with an InvalidInputError naming before", async (store) => {
    await store.appendHistory("org", "s1", numbered(5));
    // Garbage in any cursor format: not base64, empty, and base64 of JSON no store writes.
    for (const before of ["not a cursor!", "%%%", "", "eyJ4IjoxfQ"]) {
      await assert.rejects(store.readHistory("org", "s1", { limit: 2, before }), isInvalidBefore);
    }
    await assert.rejects(
      store.readHistory("org", "nobody", { limit: 2, before: "not a cursor!" }),
      isInvalidBefore,
    );
  });

  test("returns copies: changing a read entry does not change the store", async (store) => {
    const entries = exchange(1);
    await store.appendHistory("org", "s1", entries);
    const read = await store.readHistory("org", "s1", { limit: 10 });
    read.entries[0]!.content = "changed";
    read.entries[1]!.answered!.push("m99");
    read.entries.pop();
    assert.deepEqual((await store.readHistory("org", "s1", { limit: 10 })).entries, exchange(1));
  });

  test("keeps its own copy: changing appended entries afterwards does not change the store", async (store) => {
    const entries = exchange(1);
    await store.appendHistory("org", "s1", entries);
    entries[0]!.content = "changed";
    entries[1]!.answered!.push("m99");
    entries.push(...exchange(2));
    assert.deepEqual((await store.readHistory("org", "s1", { limit: 10 })).entries, exchange(1));
  });

  test("rejects every operation after close(), and closing again is harmless", async (store) => {
    await store.appendHistory("org", "s1", exchange(1));
    await store.close();
    await assert.rejects(store.appendHistory("org", "s1", exchange(2)));
    await assert.rejects(store.readHistory("org", "s1", { limit: 10 }));
    await store.close();
  });
}
