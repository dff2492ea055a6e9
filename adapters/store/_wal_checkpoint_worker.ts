// The thread of `_wal_checkpointer.ts`: its own connection to the database, checkpointing after commits.

import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";
import {
  BLOCKED,
  type CheckpointReply,
  type CheckpointWorkerData,
  COMMITS,
  COVERED,
  LOG,
  STARTED,
  STOP,
  WAKE,
  WANTED,
} from "./_wal_checkpointer.ts";

const { path, state: buffer } = workerData as CheckpointWorkerData;
const state = new Int32Array(buffer);

function reply(message: CheckpointReply): void {
  parentPort!.postMessage(message);
}

// The host counts its commits and wakes this thread in shared memory rather than with
// messages: a writer that never yields to the event loop would not read them. This thread has
// no other work: it sleeps in Atomics.wait until woken, then checkpoints.
/** The host stopped before this thread started. */
class Stopped extends Error {}

let db: DatabaseSync | undefined;
try {
  // A host that stopped before this thread got here has set STARTED to -1: nothing to do.
  if (Atomics.compareExchange(state, STARTED, 0, 1) !== 0) throw new Stopped();
  db = new DatabaseSync(path);
  const checkpoint = db.prepare("pragma wal_checkpoint(passive)");
  while (Atomics.load(state, STOP) === 0) {
    const woken = Atomics.load(state, WAKE);
    const seen = Atomics.load(state, COMMITS);
    // PASSIVE copies what it can without waiting for, or blocking, the writer and readers.
    const row = checkpoint.get() as { log: number; checkpointed: number };
    Atomics.store(state, LOG, row.log);
    Atomics.store(state, BLOCKED, row.checkpointed < row.log ? 1 : 0);
    Atomics.store(state, COVERED, seen);
    const wanted = Atomics.load(state, WANTED);
    if (wanted !== 0 && seen >= wanted) {
      Atomics.store(state, WANTED, 0);
      reply({ type: "covered", commits: seen });
    }
    Atomics.wait(state, WAKE, woken);
  }
  db.close();
  db = undefined;
  reply({ type: "closed" });
} catch (error) {
  db?.close();
  if (error instanceof Stopped) {
    reply({ type: "closed" });
  } else {
    reply({ type: "failed", message: error instanceof Error ? error.message : String(error) });
  }
}
