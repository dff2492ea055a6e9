// Proves the background WAL checkpointer keeps the WAL short, falls back inline on failure, and cleans up.

import assert from "node:assert/strict";
import { deadline } from "@std/async";
import { DatabaseSync } from "node:sqlite";
import { backgroundCheckpoints } from "../../../adapters/store/_wal_checkpointer.ts";
import {
  type NodeSqliteDatabase,
  openSqlite,
  openStore,
  type StoreError,
} from "../../../adapters/store/mod.ts";
import { eventually } from "../../_helpers/eventually.ts";

const OPTIONS = {
  commitsPerCheckpoint: 2,
  restartFrames: 64,
  maxLagCommits: 8,
  catchUpTimeoutMs: 10_000,
  onError: (error: StoreError) => {
    throw error;
  },
};
// Each commit writes about this many pages: rows of 2 KiB in a table of 4 KiB pages.
const ROWS_A_COMMIT = 40;
const COMMITS = 200;

/** A temp SQLite file in WAL mode with one table, and a way to remove it. */
async function tempDatabase() {
  const dir = await Deno.makeTempDir({ prefix: "troupe_checkpoint_" });
  const path = `${dir}/test.db`;
  const db = openSqlite(path);
  db.exec("create table t (id integer primary key, body text not null)");
  return { dir, path, db, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** Writes `COMMITS` transactions of `ROWS_A_COMMIT` rows, calling `committed` after each. */
async function writeLoad(
  db: NodeSqliteDatabase,
  committed: () => Promise<void> | undefined,
): Promise<void> {
  const insert = db.prepare("insert into t (body) values (?)");
  for (let commit = 0; commit < COMMITS; commit++) {
    db.exec("begin");
    for (let row = 0; row < ROWS_A_COMMIT; row++) insert.run("x".repeat(2_000));
    db.exec("commit");
    await committed();
  }
}

function walAutocheckpoint(db: NodeSqliteDatabase): number {
  const [row] = db.prepare("pragma wal_autocheckpoint").all() as { wal_autocheckpoint: number }[];
  return row!.wal_autocheckpoint;
}

function walFrames(path: string): number {
  return Math.floor(Deno.statSync(`${path}-wal`).size / (4096 + 24));
}

Deno.test("background checkpoints keep the WAL short under a steady stream of commits", async () => {
  await using file = await tempDatabase();
  const { database, committed } = backgroundCheckpoints(file.db, file.path, OPTIONS);
  let largest = 0;
  await writeLoad(file.db, () => {
    largest = Math.max(largest, walFrames(file.path));
    return committed();
  });
  await database.close();
  // Without restarts the WAL would hold every commit: 200 x 40 = 8,000 frames and more.
  const bound = 4 * (OPTIONS.restartFrames + OPTIONS.maxLagCommits * ROWS_A_COMMIT);
  assert.ok(largest < bound, `the WAL reached ${largest} frames, more than ${bound}`);
  const check = new DatabaseSync(file.path, { readOnly: true });
  try {
    assert.equal(check.prepare("select count(*) as n from t").get()?.n, COMMITS * ROWS_A_COMMIT);
  } finally {
    check.close();
  }
});

Deno.test("the connection's own checkpoints are off while the thread runs, and back if it fails", async () => {
  await using file = await tempDatabase();
  const errors: StoreError[] = [];
  // The thread opens a directory instead of the database, and fails.
  const { database, committed } = backgroundCheckpoints(file.db, file.dir, {
    ...OPTIONS,
    onError: (error) => errors.push(error),
  });
  const autocheckpoint = () => walAutocheckpoint(file.db);
  try {
    await eventually("the thread to report its failure", () => errors.length > 0, 10_000);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, "checkpoint_failed");
    assert.match(errors[0]!.message, /checkpointing inline from now on/);
    assert.equal(autocheckpoint(), 1000);
    // Commits go on without waiting for the thread.
    await writeLoad(file.db, committed);
    assert.equal(errors.length, 1);
  } finally {
    await database.close();
  }
});

Deno.test("close() ends the thread and closes the database; closing again does nothing", async () => {
  await using file = await tempDatabase();
  const { database, committed } = backgroundCheckpoints(file.db, file.path, OPTIONS);
  assert.equal(walAutocheckpoint(file.db), 0);
  await writeLoad(database, committed);
  const closing = database.close();
  assert.equal(database.close(), closing);
  await closing;
  assert.throws(() => file.db.prepare("select 1"), /not open/);
});

const STORE_MODULE = new URL("../../../adapters/store/mod.ts", import.meta.url).href;
const EVENT =
  `{ id: "e1", type: "session.activated", ts: 1, org: "o", session: "s", historyLength: 0 }`;

/** Runs `script` (given on stdin) in a new Deno process with `permissions`; its exit and output. */
async function runScript(script: string, permissions: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "--quiet", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: new URL("../../../", import.meta.url).pathname,
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  // Not a speed bound: the script takes well under a second; a process kept alive never exits.
  const output = child.output();
  const exited = await deadline(output, 60_000).then(() => true, () => false);
  if (!exited) child.kill("SIGKILL");
  const { code, stdout, stderr } = await output;
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { exited, code, stdout: text(stdout), stderr: text(stderr) };
}

Deno.test("a store left open does not keep the process alive", async () => {
  await using file = await tempDatabase();
  file.db.close();
  const { exited, code, stderr } = await runScript(
    `
    import { openStore } from ${JSON.stringify(STORE_MODULE)};
    const store = await openStore(${JSON.stringify(`${file.dir}/left_open.db`)});
    await store.writeEvents([${EVENT}]);
    `,
    ["--allow-all"],
  );
  assert.ok(exited, "the process with an open store did not exit");
  assert.equal(code, 0, stderr);
});

Deno.test("without read access to the thread's module the store checkpoints inline and says so", async () => {
  await using file = await tempDatabase();
  file.db.close();
  const { code, stdout, stderr } = await runScript(
    `
    import { openStore } from ${JSON.stringify(STORE_MODULE)};
    const errors = [];
    const store = await openStore(${JSON.stringify(`${file.dir}/limited.db`)}, {
      onCheckpointError: (error) => errors.push(error.code),
    });
    const written = await store.writeEvents([${EVENT}]);
    await store.close();
    console.log(JSON.stringify({ written, errors }));
    `,
    [`--allow-read=${file.dir}`, `--allow-write=${file.dir}`],
  );
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout), { written: 1, errors: ["checkpoint_failed"] });
  // The connection's own worker could not start either: the store says it runs on the event loop.
  assert.match(stderr, /store sqlite worker unavailable, running the connection on the event loop/);
});

Deno.test("openStore writes a SQLite file with either checkpoint mode and refuses others", async () => {
  await using file = await tempDatabase();
  file.db.close();
  for (const checkpoints of ["background", "inline"] as const) {
    const path = `${file.dir}/${checkpoints}.db`;
    {
      await using store = await openStore(path, { checkpoints });
      await store.writeEvents([{
        id: "e1",
        type: "session.activated",
        ts: 1,
        org: "o",
        session: "s",
        historyLength: 0,
      }]);
    }
    const peek = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(peek.prepare("select count(*) as n from audit_events").get()?.n, 1);
    } finally {
      peek.close();
    }
  }
  await assert.rejects(
    openStore(`${file.dir}/x.db`, { checkpoints: "never" as "inline" }),
    /checkpoints must be "background" or "inline"/,
  );
});
