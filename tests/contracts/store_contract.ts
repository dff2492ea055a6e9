// The contract every `Store` implementation passes: history round-trips, pages, isolation, close.

import assert from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import type {
  HistoryEntry,
  HistoryPage,
  SessionPage,
  SessionSummary,
  Store,
} from "../../actors/ports.ts";

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

/** The session-level capabilities every store under this contract has. */
type SessionAdmin = Required<Pick<Store, "listSessions" | "deleteSession">>;

function admin(store: Store): SessionAdmin {
  assert.equal(typeof store.listSessions, "function", "the store lists sessions");
  assert.equal(typeof store.deleteSession, "function", "the store deletes sessions");
  return store as SessionAdmin;
}

/** Every session of an org, following `next` page by page. */
async function listAll(store: Store, org: string, limit: number): Promise<SessionPage[]> {
  const pages: SessionPage[] = [];
  let after: string | undefined;
  do {
    const page = await admin(store).listSessions(
      org,
      after === undefined ? { limit } : { limit, after },
    );
    pages.push(page);
    after = page.next ?? undefined;
    assert.ok(pages.length <= 1_000, "paging did not reach the last page");
  } while (after !== undefined);
  return pages;
}

function isInvalidField(field: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof InvalidInputError, `expected an InvalidInputError, got ${error}`);
    assert.equal(error.field, field);
    return true;
  };
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
    await assert.rejects(admin(store).listSessions("org", { limit: 10 }));
    await assert.rejects(admin(store).deleteSession("org", "s1"));
    await store.close();
  });

  test("lists an org's sessions in code-point order of id, with first and last entry times", async (store) => {
    // Upper case sorts before lower case in code-point order, whatever a database's locale says.
    for (const [i, session] of ["b", "A", "a", "B", "a.1", "a-1", "0"].entries()) {
      await store.appendHistory("org", session, [
        { id: "m1", role: "user", content: "hi", ts: BASE_TS + i },
      ]);
    }
    await store.appendHistory("org", "b", [
      { id: "m2", role: "user", content: "again", ts: BASE_TS + 100 },
      { id: "r2", role: "assistant", content: "yes", ts: BASE_TS + 101, answered: ["m2"] },
    ]);
    const page = await admin(store).listSessions("org", { limit: 100 });
    assert.deepEqual(page.sessions.map((s) => s.session), ["0", "A", "B", "a", "a-1", "a.1", "b"]);
    assert.deepEqual(
      page.sessions.find((s) => s.session === "b"),
      {
        session: "b",
        createdAt: BASE_TS,
        lastSeenAt: BASE_TS + 101,
      } satisfies SessionSummary,
    );
    assert.equal(page.next, null);
  });

  test("pages through sessions with limit and after, with no gap and no overlap", async (store) => {
    const ids = Array.from({ length: 23 }, (_, i) => `s${String(i).padStart(2, "0")}`);
    for (const id of ids.toReversed()) await store.appendHistory("org", id, numbered(1));
    for (const limit of [1, 5, 23, 50]) {
      const pages = await listAll(store, "org", limit);
      assert.deepEqual(
        pages.flatMap((p) => p.sessions.map((s) => s.session)),
        ids,
        `limit ${limit}`,
      );
      assert.ok(pages.slice(0, -1).every((p) => p.sessions.length === limit));
      assert.equal(pages.at(-1)!.next, null);
    }
    // A cursor keeps its place when sessions are added before and after it.
    const first = await admin(store).listSessions("org", { limit: 10 });
    await store.appendHistory("org", "r", numbered(1));
    await store.appendHistory("org", "s09a", numbered(1));
    const second = await admin(store).listSessions("org", { limit: 2, after: first.next! });
    assert.deepEqual(second.sessions.map((s) => s.session), ["s09a", "s10"]);
  });

  test("lists only the org's own sessions, and nothing for an org without any", async (store) => {
    await store.appendHistory("org-a", "shared", numbered(1));
    await store.appendHistory("org-a", "only-a", numbered(1));
    await store.appendHistory("org-b", "shared", numbered(1));
    const a = await admin(store).listSessions("org-a", { limit: 10 });
    const b = await admin(store).listSessions("org-b", { limit: 10 });
    assert.deepEqual(a.sessions.map((s) => s.session), ["only-a", "shared"]);
    assert.deepEqual(b.sessions.map((s) => s.session), ["shared"]);
    assert.deepEqual(await admin(store).listSessions("org-c", { limit: 10 }), {
      sessions: [],
      next: null,
    });
  });

  test("rejects a garbage session cursor, or a history cursor, with an InvalidInputError naming after", async (store) => {
    await store.appendHistory("org", "s1", numbered(5));
    const history = await store.readHistory("org", "s1", { limit: 2 });
    for (const after of ["not a cursor!", "%%%", "", "eyJ4IjoxfQ", history.next!]) {
      await assert.rejects(
        admin(store).listSessions("org", { limit: 2, after }),
        isInvalidField("after"),
      );
    }
  });

  test("deleteSession drops the history and the listing; deleting again resolves false", async (store) => {
    await store.appendHistory("org", "gone", numbered(6));
    await store.appendHistory("org", "kept", numbered(2));
    assert.equal(await admin(store).deleteSession("org", "gone"), true);
    assert.deepEqual(await store.readHistory("org", "gone", { limit: 10 }), {
      entries: [],
      next: null,
    });
    const listed = await admin(store).listSessions("org", { limit: 10 });
    assert.deepEqual(listed.sessions.map((s) => s.session), ["kept"]);
    assert.deepEqual((await store.readHistory("org", "kept", { limit: 10 })).entries, numbered(2));
    assert.equal(await admin(store).deleteSession("org", "gone"), false);
    assert.equal(await admin(store).deleteSession("org", "never-was"), false);
  });

  test("deleteSession never touches another org's session of the same id", async (store) => {
    await store.appendHistory("org-a", "shared", numbered(3, "a"));
    await store.appendHistory("org-b", "shared", numbered(2, "b"));
    assert.equal(await admin(store).deleteSession("org-a", "shared"), true);
    assert.deepEqual(
      (await store.readHistory("org-b", "shared", { limit: 10 })).entries,
      numbered(2, "b"),
    );
    assert.deepEqual(
      (await admin(store).listSessions("org-b", { limit: 10 })).sessions.map((s) => s.session),
      ["shared"],
    );
  });

  test("a deleted session written again starts a fresh history, ids reusable", async (store) => {
    await store.appendHistory("org", "s1", exchange(1));
    await admin(store).deleteSession("org", "s1");
    const again: HistoryEntry[] = [{ id: "m1", role: "user", content: "new", ts: BASE_TS + 50 }];
    await store.appendHistory("org", "s1", again);
    assert.deepEqual(await store.readHistory("org", "s1", { limit: 10 }), {
      entries: again,
      next: null,
    });
    const [summary] = (await admin(store).listSessions("org", { limit: 10 })).sessions;
    assert.deepEqual(summary, { session: "s1", createdAt: BASE_TS + 50, lastSeenAt: BASE_TS + 50 });
  });

  test("idleSessions finds sessions idle since before a time, idle the longest first, across orgs", async (store) => {
    const at = (id: string, ts: number): HistoryEntry[] => [{
      id,
      role: "user",
      content: id,
      ts,
    }];
    await store.appendHistory("org-a", "newest", at("m1", BASE_TS + 300));
    await store.appendHistory("org-b", "oldest", at("m2", BASE_TS + 100));
    await store.appendHistory("org-a", "middle", at("m3", BASE_TS + 50));
    // A later append makes a session newer than its first entry said.
    await store.appendHistory("org-a", "middle", at("m4", BASE_TS + 200));
    const idle = store.idleSessions!.bind(store);
    assert.deepEqual(await idle(BASE_TS + 250, 10), [
      { org: "org-b", session: "oldest" },
      { org: "org-a", session: "middle" },
    ]);
    assert.deepEqual(await idle(BASE_TS + 250, 1), [{ org: "org-b", session: "oldest" }]);
    assert.deepEqual(await idle(BASE_TS + 100, 10), [], "strictly before");
    assert.equal((await idle(BASE_TS + 301, 10)).length, 3);
  });

  test("deleteSession with idleBefore deletes only a session idle since before it", async (store) => {
    await store.appendHistory("org", "old", numbered(2));
    await store.appendHistory("org", "fresh", numbered(4));
    const remove = admin(store).deleteSession.bind(store);
    // numbered(n) ends at BASE_TS + n - 1: "old" at BASE_TS + 1, "fresh" at BASE_TS + 3.
    assert.equal(await remove("org", "fresh", { idleBefore: BASE_TS + 3 }), false);
    assert.equal(await remove("org", "never-was", { idleBefore: BASE_TS + 3 }), false);
    assert.equal(await remove("org", "old", { idleBefore: BASE_TS + 3 }), true);
    assert.deepEqual((await store.readHistory("org", "old", { limit: 10 })).entries, []);
    assert.deepEqual((await store.readHistory("org", "fresh", { limit: 10 })).entries, numbered(4));
  });
}
