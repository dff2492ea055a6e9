// Group commit of history: appends of many sessions in one turn land together, in order, and fail alone.

import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
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
  // A bad append in a group (an id already in its session) fails alone; its neighbours are written.
  const good = store.appendHistory("acme", "s1", [{
    id: "u1c",
    role: "user",
    content: "ok",
    ts: 4,
  }]);
  const bad = store.appendHistory("acme", "s2", [{
    id: "u2",
    role: "user",
    content: "dup",
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
