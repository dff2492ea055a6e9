// Simulates a PostgreSQL crash: SIGKILL the postmaster and its children, then wait (Linux).

import type { ServiceProcess } from "./_process.ts";
import { waitUntil } from "./_wait_until.ts";

/**
 * SIGKILLs the postmaster (the child itself, or the child of `runuser`) and
 * the processes it forked, then waits until every one has exited, so that a
 * new postmaster finds its shared memory unused.
 */
export async function crashPostgres(process: ServiceProcess): Promise<void> {
  if (!process.exited()) {
    const postmasters = await isPostmaster(process.pid)
      ? [process.pid]
      : await childPids(process.pid);
    const backends = (await Promise.all(postmasters.map(childPids))).flat();
    for (const pid of [...postmasters, ...backends]) signalIfAlive(pid, "SIGKILL");
    // runuser whose postgres has not started yet, or has just exited.
    if (postmasters.length === 0) process.signal("SIGKILL");
    await process.status;
    await waitUntil(async () => !(await anyAlive(backends)), {
      what: `PostgreSQL processes ${backends.join(", ")} to exit`,
      timeout: 10_000,
    });
  }
  await process.status;
}

/** Whether `pid` runs the postgres binary (rather than `runuser`). */
async function isPostmaster(pid: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat?.command === "postgres";
}

/** Sends `signal` to `pid`; a process that has already gone is fine. */
function signalIfAlive(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The fields of `/proc/<pid>/stat` the harness needs, or undefined if the process is gone. */
async function readStat(
  pid: number,
): Promise<{ command: string; state: string; ppid: number } | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  // "pid (command) state ppid ...": the command may contain spaces and parentheses.
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const [state = "", ppid = "0"] = text.slice(close + 2).split(" ");
  return { command: text.slice(open + 1, close), state, ppid: Number(ppid) };
}

/** Process ids whose parent is `parent`, from `/proc`. */
async function childPids(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const stat = await readStat(pid);
    if (stat?.ppid === parent && stat.state !== "Z") pids.push(pid);
  }
  return pids;
}

/** Whether any of `pids` still runs; a zombie has released its memory and files, so it is done. */
async function anyAlive(pids: readonly number[]): Promise<boolean> {
  for (const pid of pids) {
    const stat = await readStat(pid);
    if (stat !== undefined && stat.state !== "Z") return true;
  }
  return false;
}
