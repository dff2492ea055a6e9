// The SQLite dialect on this thread: a `node:sqlite` connection with its WAL checkpointed by a helper thread.

import type { Dialect } from "kysely";
import { backgroundCheckpoints } from "./_wal_checkpointer.ts";
import type { StoreError } from "./errors.ts";
import { nodeSqliteDialect } from "./node_sqlite_dialect.ts";
import { openSqlite } from "./open_sqlite.ts";

// Background checkpoints: the thread is woken every few commits; a commit waits for it once the
// WAL passes 4,000 frames (≈ 16 MB of 4 KiB pages), so that the WAL starts over, or once the thread
// is 64 commits behind; the thread is given up if it has not caught up within the timeout.
const COMMITS_PER_CHECKPOINT = 4;
const RESTART_FRAMES = 4_000;
const MAX_LAG_COMMITS = 64;
const CATCH_UP_TIMEOUT_MS = 10_000;

/**
 * The dialect of a SQLite database at `path` whose connection lives on the
 * calling thread: the event loop (`sqliteThread: "main"`) or the store's
 * worker (`_sqlite_worker.ts`). With `background`, a helper thread copies the
 * WAL back (see `backgroundCheckpoints`).
 */
export function localSqliteDialect(
  path: string,
  busyTimeoutMs: number,
  background: boolean,
  onCheckpointError: (error: StoreError) => void,
): Dialect {
  let committed: (() => Promise<void> | undefined) | undefined;
  return nodeSqliteDialect({
    database: () => {
      const db = openSqlite(path, { busyTimeoutMs });
      // An in-memory database has no WAL.
      if (!background || path === ":memory:") return db;
      const checkpointed = backgroundCheckpoints(db, path, {
        commitsPerCheckpoint: COMMITS_PER_CHECKPOINT,
        restartFrames: RESTART_FRAMES,
        maxLagCommits: MAX_LAG_COMMITS,
        catchUpTimeoutMs: CATCH_UP_TIMEOUT_MS,
        onError: onCheckpointError,
      });
      committed = checkpointed.committed;
      return checkpointed.database;
    },
    onCommit: () => committed?.(),
  });
}
