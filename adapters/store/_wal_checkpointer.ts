// Moves SQLite's WAL checkpoints off the event loop: a worker thread with its own connection copies the WAL back.

import { Worker } from "node:worker_threads";
import type { NodeSqliteDatabase } from "./node_sqlite_dialect.ts";
import { StoreError } from "./errors.ts";

/** What the checkpoint thread is started with. */
export interface CheckpointWorkerData {
  /** The database file. */
  path: string;
  /** The shared `Int32Array` cells named below. */
  state: SharedArrayBuffer;
}

/** Shared cell: commits so far, counted by the host. */
export const COMMITS = 0;
/** Shared cell: bumped by the host to wake the thread (every few commits, to catch up, to stop). */
export const WAKE = 1;
/** Shared cell: 1 once the host asks the thread to stop. */
export const STOP = 2;
/** Shared cell: the commit count the host waits to see covered (0: none), answered with `covered`. */
export const WANTED = 3;
/** Shared cell: the commit count the thread's last finished checkpoint started after. */
export const COVERED = 4;
/** Shared cell: WAL frames found by the thread's last checkpoint. */
export const LOG = 5;
/** Shared cell: 1 if the thread's last checkpoint could not copy every frame (a reader holds them). */
export const BLOCKED = 6;
/**
 * Shared cell: 0 until the thread starts work, then 1; set to -1 by a host that stops before
 * that, so that the thread never starts (and the host need not wait for it to load).
 */
export const STARTED = 7;
const CELLS = 8;

/** What the checkpoint thread tells the host. */
export type CheckpointReply =
  | { type: "covered"; commits: number }
  | { type: "closed" }
  | { type: "failed"; message: string };

/** A database whose WAL a worker thread checkpoints, and the hook that asks it to. */
export interface CheckpointedDatabase {
  /** The database; `close()` stops the thread first. */
  database: NodeSqliteDatabase;
  /**
   * Call after each commit: counts it and wakes the thread every
   * `commitsPerCheckpoint` commits. Returns a promise when the WAL has grown
   * past `restartFrames` or the thread lags `maxLagCommits` behind: it
   * resolves once a checkpoint covers this commit.
   */
  committed(): Promise<void> | undefined;
}

/** Options of {@linkcode backgroundCheckpoints}. */
export interface BackgroundCheckpointsOptions {
  /** Wake the thread every this many commits: fewer, larger checkpoints contend less with the writer. */
  commitsPerCheckpoint: number;
  /** WAL frames past which a commit waits for the thread to catch up, so that the WAL restarts. */
  restartFrames: number;
  /** Commits the thread may fall behind before a commit waits for it (when it is starved of CPU). */
  maxLagCommits: number;
  /** How long that wait may last, in ms, before the thread is given up for inline checkpoints. */
  catchUpTimeoutMs: number;
  /** Told once if the thread fails; the connection then checkpoints inline as SQLite does by default. */
  onError: (error: StoreError) => void;
}

// SQLite's own default threshold, restored when the thread fails.
const INLINE_PAGES = 1000;

/**
 * Hands the WAL checkpoints of `db` (opened on the file `path`, in WAL mode)
 * to a worker thread with its own connection. By default SQLite checkpoints
 * inside the commit that takes the WAL past 1000 pages: that commit copies
 * ~4 MB back into the database and syncs it, on the event loop. Here every
 * `commitsPerCheckpoint`-th commit wakes the thread for a PASSIVE checkpoint,
 * which never blocks the writer, and the connection's own automatic
 * checkpoints are off.
 *
 * A WAL only starts over from its beginning when a transaction begins after
 * a checkpoint copied all of it; under a steady stream of commits the thread
 * is always one commit behind. So once the WAL passes `restartFrames`, the
 * commit waits (asynchronously: the event loop stays free) until a
 * checkpoint covers it; and so does a commit `maxLagCommits` ahead of the
 * last checkpoint, so that a thread starved of CPU slows the writer down
 * instead of letting the WAL grow. If the thread fails or does not catch up
 * within `catchUpTimeoutMs`, `onError` is told and the connection goes back
 * to SQLite's inline checkpoints.
 *
 * The thread is `unref()`ed: a store left open does not keep the process alive.
 */
export function backgroundCheckpoints(
  db: NodeSqliteDatabase,
  path: string,
  options: BackgroundCheckpointsOptions,
): CheckpointedDatabase {
  const { commitsPerCheckpoint, restartFrames, maxLagCommits, catchUpTimeoutMs, onError } = options;
  const state = new Int32Array(new SharedArrayBuffer(CELLS * Int32Array.BYTES_PER_ELEMENT));
  let worker: Worker;
  try {
    worker = new Worker(new URL("./_wal_checkpoint_worker.ts", import.meta.url), {
      workerData: { path, state: state.buffer } satisfies CheckpointWorkerData,
    });
  } catch (error) {
    // No thread (for example without read access to its module): SQLite's inline checkpoints.
    onError(
      new StoreError(
        "checkpoint_failed",
        `Cannot start the thread that checkpoints the SQLite WAL of ${path}: ${
          error instanceof Error ? error.message : error
        }; checkpointing inline`,
        { cause: error },
      ),
    );
    return { database: db, committed: () => undefined };
  }
  worker.unref();
  db.exec("pragma wal_autocheckpoint = 0");
  const ended = Promise.withResolvers<void>();
  let failed = false;
  let closed: Promise<void> | undefined;
  // Set as a stop begins: `terminate()` may report the exit before `closed` is assigned.
  let stopping = false;
  // The commit count a catch-up waits to see covered, and how to wake it.
  let awaited = 0;
  let caughtUp: (() => void) | undefined;

  function fail(message: string): void {
    if (failed) return;
    failed = true;
    caughtUp?.();
    if (stopping) return;
    // Back to inline checkpoints: the WAL stays bounded without the thread.
    db.exec(`pragma wal_autocheckpoint = ${INLINE_PAGES}`);
    onError(
      new StoreError(
        "checkpoint_failed",
        `Cannot checkpoint the SQLite WAL of ${path} in the background: ${message}; checkpointing inline from now on`,
      ),
    );
  }

  worker.on("message", (reply: CheckpointReply) => {
    if (reply.type === "covered") {
      if (reply.commits >= awaited) caughtUp?.();
      return;
    }
    if (reply.type === "failed") fail(reply.message);
    ended.resolve();
  });
  worker.on("error", (error: Error) => {
    fail(error.message);
    ended.resolve();
  });
  worker.on("exit", () => {
    // After a stop, exiting is what the thread was asked to do.
    if (!stopping) fail("the thread exited");
    ended.resolve();
  });

  async function catchUp(commits: number, restart: boolean): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    awaited = commits;
    caughtUp = resolve;
    // Set before reading COVERED, as the thread stores COVERED before reading WANTED:
    // one of the two sees the other, so the wait cannot be missed.
    Atomics.store(state, WANTED, commits);
    wake();
    if (Atomics.load(state, COVERED) >= commits) resolve();
    const timer = setTimeout(() => {
      fail(`the thread did not catch up within ${catchUpTimeoutMs} ms`);
    }, catchUpTimeoutMs);
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      caughtUp = undefined;
      Atomics.store(state, WANTED, 0);
    }
    // The next transaction writes the WAL from its start: it is short again.
    if (restart && !failed) Atomics.store(state, LOG, 0);
  }

  function committed(): Promise<void> | undefined {
    if (failed || closed !== undefined) return undefined;
    const commits = Atomics.add(state, COMMITS, 1) + 1;
    // Waiting for a restart is pointless while a reader keeps the thread from copying it all.
    const restart = Atomics.load(state, LOG) >= restartFrames && Atomics.load(state, BLOCKED) === 0;
    const lagging = commits - Atomics.load(state, COVERED) >= maxLagCommits;
    if (restart || lagging) return catchUp(commits, restart);
    if (commits % commitsPerCheckpoint === 0) wake();
    return undefined;
  }

  function wake(): void {
    Atomics.add(state, WAKE, 1);
    Atomics.notify(state, WAKE);
  }

  async function stop(): Promise<void> {
    stopping = true;
    Atomics.store(state, STOP, 1);
    wake();
    // A thread still loading its modules (≈ 0.5 s in a worker's worker) has not touched the
    // database: it is told never to start, and stopped without waiting for it.
    if (Atomics.compareExchange(state, STARTED, 0, -1) === 0) {
      await worker.terminate();
      db.close();
      return;
    }
    // Let a checkpoint under way finish and the thread close its connection.
    const timer = setTimeout(ended.resolve, catchUpTimeoutMs);
    try {
      await ended.promise;
    } finally {
      clearTimeout(timer);
      await worker.terminate();
      db.close();
    }
  }

  return {
    database: {
      prepare: (sql) => db.prepare(sql),
      exec: (sql) => db.exec(sql),
      close: () => closed ??= stop(),
    },
    committed,
  };
}
