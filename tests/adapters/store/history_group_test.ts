// Group commit of history: appends of many sessions in one turn land together, in order, and fail alone.

import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../../../adapters/store/open_store.ts";
import { startPostgres } from "../../_harness/mod.ts";

async function check(url: string): Promise<void> {
  await using store = await openStore(url);
  // 100 sessions append twice each, all in one turn of the event loop, then once more.
  const first = [];
  for (let s = 0; s < 100; s++) {
    first.push(
      store.appendHistory("acme", `s${s}`, [{
        id: `u${s}`,
        role: "user",
        content: `q${s}`,
        ts: 1,
      }]),
    );
    first.push(
      store.appendHistory("acme", `s${s}`, [{
        id: `a${s}`,
        role: "assistant",
        content: `r${s}`,
        ts: 2,
      }]),
    );
  }
  await Promise.all(first);
  await store.appendHistory("acme", "s7", [{ id: "u7b", role: "user", content: "again", ts: 3 }]);
  for (const s of [0, 7, 99]) {
    const page = await store.readHistory("acme", `s${s}`, { limit: 10 });
    const expected = [`u${s}`, `a${s}`, ...(s === 7 ? ["u7b"] : [])];
    assertEquals(page.entries.map((e) => e.id), expected);
  }
  // A bad append in a group (content the table refuses) fails alone; its neighbours are written.
  const good = store.appendHistory("acme", "s1", [{
    id: "u1c",
    role: "user",
    content: "ok",
    ts: 4,
  }]);
  const bad = store.appendHistory("acme", "s2", [{
    id: "u2c",
    role: "user",
    content: null as unknown as string,
    ts: 4,
  }]);
  const other = store.appendHistory("globex", "s2", [{
    id: "u2",
    role: "user",
    content: "ok",
    ts: 4,
  }]);
  await assertRejects(bad);
  await good;
  await other;
  assertEquals((await store.readHistory("acme", "s1", { limit: 10 })).entries.map((e) => e.id), [
    "u1",
    "a1",
    "u1c",
  ]);
  assertEquals((await store.readHistory("acme", "s2", { limit: 10 })).entries.map((e) => e.id), [
    "u2",
    "a2",
  ]);
  assertEquals((await store.readHistory("globex", "s2", { limit: 10 })).entries.map((e) => e.id), [
    "u2",
  ]);
  // Appends accepted before close are written by close.
  const late = store.appendHistory("acme", "s3", [{
    id: "late",
    role: "user",
    content: "x",
    ts: 5,
  }]);
  await store.close();
  await late;
  await using reopened = await openStore(url);
  assertEquals((await reopened.readHistory("acme", "s3", { limit: 10 })).entries.map((e) => e.id), [
    "u3",
    "a3",
    "late",
  ]);
}

Deno.test("SQLite: a turn's appends from 100 sessions are written together, in order; a bad one fails alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await check(`${dir}/troupe.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgreSQL: a turn's appends from 100 sessions are written together, in order; a bad one fails alone", async () => {
  await using postgres = await startPostgres();
  await check(postgres.url);
});

/** Entries `prefix1..prefixN` of one role, in order. */
function entries(prefix: string, count: number, ts: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${i + 1}`,
    role: "user" as const,
    content: `${prefix} ${i + 1}`,
    ts,
  }));
}

/**
 * With 17 parameters a statement, a group's rows span several inserts (two
 * message rows each) and upserts (four sessions each): each insert numbers
 * its rows on from what the earlier ones stored, so seq stays 1, 2, 3, ...
 */
async function checkChunked(url: string): Promise<Map<string, string[]>> {
  await using store = await openStore(url, { maxParameters: 17 });
  await store.appendHistory("acme", "a", entries("old", 1, 1));
  const appends = [
    store.appendHistory("acme", "a", entries("a", 5, 2)),
    ...Array.from(
      { length: 6 },
      (_, s) => store.appendHistory("acme", `b${s}`, entries("b", 3, 2)),
    ),
    store.appendHistory("acme", "a", entries("late", 2, 3)),
  ];
  await Promise.all(appends);
  const read = new Map<string, string[]>();
  for (const session of ["a", "b0", "b5"]) {
    const ids: string[] = [];
    // One entry a page: the cursor walks the seq numbers back one by one.
    let before: string | undefined;
    for (;;) {
      const page = await store.readHistory("acme", session, {
        limit: 1,
        ...(before === undefined ? {} : { before }),
      });
      ids.unshift(...page.entries.map((e) => e.id));
      if (page.next === null) break;
      before = page.next;
    }
    read.set(session, ids);
  }
  return read;
}

const CHUNKED = new Map([
  ["a", ["old1", "a1", "a2", "a3", "a4", "a5", "late1", "late2"]],
  ["b0", ["b1", "b2", "b3"]],
  ["b5", ["b1", "b2", "b3"]],
]);

Deno.test("SQLite: a group split over many statements numbers each session's rows 1, 2, 3, ... in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/troupe.db`;
    assertEquals(await checkChunked(path), CHUNKED);
    const db = new DatabaseSync(path);
    try {
      const seqs = db.prepare(
        "select seq from messages where org = 'acme' and session = 'a' order by seq",
      )
        .all().map((row) => Number(row.seq));
      assertEquals(seqs, [1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgreSQL: a group split over many statements keeps each session's rows in order", async () => {
  await using postgres = await startPostgres();
  assertEquals(await checkChunked(postgres.url), CHUNKED);
});

Deno.test("SQLite: appends wait out historyGroupMs together, and closing the store writes them at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/troupe.db`;
    // A wait far longer than the test: only close() can have written the group.
    const store = await openStore(path, { historyGroupMs: 1_000 });
    const written: string[] = [];
    const appends = ["u1", "a1", "u2"].map((id, i) =>
      store.appendHistory("acme", "s", [{
        id,
        role: i === 1 ? "assistant" : "user",
        content: id,
        ts: i,
      }]).then(() => written.push(id))
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertEquals(written, [], "nothing is written before the group's wait ends");
    const peek = new DatabaseSync(path);
    try {
      assertEquals(peek.prepare("select count(*) as n from messages").get()?.n, 0);
    } finally {
      peek.close();
    }
    const closed = store.close().then(() => "closed");
    const late = new Promise((resolve) => setTimeout(resolve, 900, "still waiting"));
    assertEquals(await Promise.race([closed, late]), "closed", "close() ends the wait");
    await Promise.all(appends);
    assertEquals(written, ["u1", "a1", "u2"]);
    await using reopened = await openStore(path);
    const page = await reopened.readHistory("acme", "s", { limit: 10 });
    assertEquals(page.entries.map((e) => e.id), ["u1", "a1", "u2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore refuses a historyGroupMs outside 0..1000, naming it", async () => {
  for (const historyGroupMs of [-1, 1_001, Number.NaN]) {
    await assertRejects(
      openStore(":memory:", { historyGroupMs }),
      (error: Error) => error.message.includes("historyGroupMs must be between 0 and 1000"),
    );
  }
});
