// Entry-script tests: start main.ts as `deno task start` would, talk to it over HTTP, stop it with a signal.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import pg from "pg";
import { CONFIG_ENV_VARS } from "../actors/config.ts";
import { startNatsServer, startPostgres } from "./_harness/mod.ts";
import { taskFlags } from "./_helpers/task_flags.ts";
import { eventually } from "./_helpers/eventually.ts";
import { openStore } from "../adapters/store/open_store.ts";
import { startMockUpstream } from "../scripts/mock_upstream.ts";

const ROOT = new URL("../", import.meta.url);
const START_TIMEOUT_MS = 20_000;

/** The start task's `deno run` flags, read from deno.json so the test runs exactly them. */
function startFlags(): Promise<string[]> {
  return taskFlags("start", "mod.ts");
}

/**
 * Start main.ts with the start task's flags, in `cwd` (so `./data` is a temp dir, not the
 * checkout); every TROUPE_* variable not given is set empty (unset).
 */
function spawnMain(flags: string[], env: Record<string, string>, cwd: string): Deno.ChildProcess {
  const unset = Object.fromEntries(CONFIG_ENV_VARS.map((name) => [name, ""]));
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${new URL("deno.json", ROOT).pathname}`,
      ...flags,
      new URL("main.ts", ROOT).pathname,
    ],
    cwd,
    env: { ...unset, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Reads JSON log lines from a stream, remembering every line seen. */
function logReader(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";

  /** Read until a line satisfies `match`, or fail after `timeoutMs`. */
  async function waitFor(
    match: (entry: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`Timed out after ${timeoutMs} ms; log so far:\n${lines.join("\n")}`)),
        timeoutMs,
      );
    });
    try {
      while (true) {
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          lines.push(line);
          const entry = JSON.parse(line);
          if (match(entry)) return entry;
        }
        const { done, value } = await Promise.race([reader.read(), timeout]);
        if (done) throw new Error(`The log ended first; log:\n${lines.join("\n")}`);
        buffered += value;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Read everything that is left (the process has exited or is exiting). */
  async function rest(): Promise<string[]> {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += value;
    }
    lines.push(...buffered.split("\n").filter((line) => line !== ""));
    buffered = "";
    return lines;
  }

  return { waitFor, rest, lines };
}

// What npm:pg reads when it connects, beyond the configuration's own variables.
const PG_ENV = ["NODE_PG_FORCE_NATIVE", "PG*"];

Deno.test("the start task's --allow-env names exactly the configuration's variables and pg's", async () => {
  const allowEnv = (await startFlags()).find((flag) => flag.startsWith("--allow-env="));
  assert(allowEnv !== undefined, "the start task lists its variables");
  assertEquals(
    allowEnv.slice("--allow-env=".length).split(",").sort(),
    [...CONFIG_ENV_VARS, ...PG_ENV].sort(),
  );
});

Deno.test("with the start task's flags the server runs on PostgreSQL and NATS given by URL", async () => {
  await using postgres = await startPostgres();
  await using nats = await startNatsServer();
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), {
    TROUPE_PORT: "0",
    TROUPE_DATABASE_URL: postgres.url,
    TROUPE_NATS_URL: nats.url,
  }, cwd);
  const log = logReader(child.stderr);
  let status: Deno.CommandStatus;
  let lines: string[];
  try {
    const listening = await log.waitFor((e) => e.msg === "troupe listening", START_TIMEOUT_MS);
    assertEquals([listening.store, listening.bus], ["postgres", "nats"]);
    const sent = await fetch(`${listening.url}/v1/sessions/s1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: "stored in postgres" }),
    });
    assertEquals((await sent.json()).status, "completed");
  } finally {
    child.kill("SIGTERM");
    status = await child.status;
    lines = await log.rest();
  }
  assertEquals(status.code, 0, lines.join("\n"));
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    const rows = await client.query("select count(*)::int as n from usage_events");
    assertEquals(rows.rows[0].n, 1, "the usage record reached PostgreSQL through NATS");
  } finally {
    await client.end();
  }
  await Deno.remove(cwd, { recursive: true });
});

Deno.test("main.ts serves on TROUPE_PORT=0 with the start task's flags and exits 0 on SIGTERM", async () => {
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), { TROUPE_PORT: "0" }, cwd);
  const log = logReader(child.stderr);
  let status: Deno.CommandStatus;
  let lines: string[];
  try {
    const listening = await log.waitFor(
      (entry) => entry.msg === "troupe listening",
      START_TIMEOUT_MS,
    );
    const url = listening.url as string;
    assert(/^http:\/\/127\.0\.0\.1:\d+$/.test(url), url);
    assertEquals(
      { llm: listening.llm, store: listening.store, bus: listening.bus, level: listening.level },
      { llm: "mock", store: "sqlite", bus: "memory", level: "info" },
    );
    await log.waitFor((entry) => String(entry.msg).includes("no auth"), START_TIMEOUT_MS);

    const sent = await fetch(`${url}/v1/sessions/s1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: "hello over the wire" }),
    });
    assertEquals(sent.status, 200);
    const reply = await sent.json();
    assertEquals([reply.status, reply.text], ["completed", "hello over the wire"]);

    const health = await fetch(`${url}/healthz`);
    assertEquals([health.status, await health.json()], [200, { status: "ok" }]);
  } finally {
    // Stop and reap the child even when an assertion failed, so the failure is what gets reported.
    child.kill("SIGTERM");
    status = await child.status;
    lines = await log.rest();
  }
  assertEquals(status.code, 0, lines.join("\n"));
  const messages = lines.map((line) => JSON.parse(line).msg);
  assert(messages.includes("troupe shutting down"), lines.join("\n"));
  assertEquals(messages.at(-1), "troupe stopped");
  // The embedded default store is SQLite under ./data, and it is there after the stop.
  const stored = await Deno.stat(`${cwd}/data/troupe.db`);
  assert(stored.isFile && stored.size > 0);
  await Deno.remove(cwd, { recursive: true });
});

Deno.test("main.ts refuses TROUPE_PORT=abc: a non-zero exit and one JSON line naming TROUPE_PORT", async () => {
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), { TROUPE_PORT: "abc" }, cwd);
  const [status, lines] = await Promise.all([child.status, logReader(child.stderr).rest()]);
  assertEquals(status.code, 2);
  assertEquals(lines.length, 1, lines.join("\n"));
  const entry = JSON.parse(lines[0]!);
  assertEquals(entry.level, "error");
  assertEquals(entry.setting, "TROUPE_PORT");
  assert(String(entry.msg).includes("TROUPE_PORT"), entry.msg);
  assert(String(entry.msg).includes("0 to 65535"), entry.msg);
  await Deno.remove(cwd, { recursive: true });
});

Deno.test("with the start task's flags, main.ts refuses hosts and files they do not cover: exit 2, a line per setting", async () => {
  const cwd = await Deno.makeTempDir();
  const elsewhere = await Deno.makeTempDir();
  try {
    const remote = spawnMain(await startFlags(), {
      TROUPE_PORT: "0",
      TROUPE_LLM_BASE_URL: "https://llm.example/v1",
      TROUPE_LLM_MODEL: "m",
      TROUPE_NATS_URL: "nats://nats.example",
      TROUPE_DATABASE_URL: "postgres://troupe:hunter2@db.example:5432/troupe",
    }, cwd);
    const [status, lines] = await Promise.all([remote.status, logReader(remote.stderr).rest()]);
    assertEquals(status.code, 2, lines.join("\n"));
    const entries = lines.map((line) => JSON.parse(line));
    assertEquals(entries.map((e) => [e.level, e.setting]), [
      ["error", "TROUPE_LLM_BASE_URL"],
      ["error", "TROUPE_NATS_URL"],
      ["error", "TROUPE_DATABASE_URL"],
    ]);
    for (const host of ["llm.example:443", "nats.example:4222", "db.example:5432"]) {
      assert(
        entries.some((e) => e.msg.includes(`host ${host} is not allowed by --allow-net`)),
        host,
      );
    }
    assert(!lines.join("\n").includes("hunter2"), "the password is not in the log");

    const file = spawnMain(await startFlags(), {
      TROUPE_PORT: "0",
      TROUPE_DATABASE_URL: `${elsewhere}/troupe.db`,
    }, cwd);
    const [fileStatus, fileLines] = await Promise.all([file.status, logReader(file.stderr).rest()]);
    assertEquals(fileStatus.code, 2, fileLines.join("\n"));
    assertEquals(fileLines.length, 1, fileLines.join("\n"));
    const entry = JSON.parse(fileLines[0]!);
    assertEquals(entry.setting, "TROUPE_DATABASE_URL");
    assert(
      entry.msg.includes(`directory ${elsewhere} is not allowed by --allow-read and --allow-write`),
      entry.msg,
    );
    assertEquals([...Deno.readDirSync(elsewhere)], [], "nothing was created there");
  } finally {
    await Deno.remove(cwd, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("main.ts stops with exit 1 and a redacted line when the database cannot be opened", async () => {
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), {
    TROUPE_PORT: "0",
    // Nothing listens on port 1; the password must never reach the log.
    TROUPE_DATABASE_URL: "postgres://troupe:hunter2@127.0.0.1:1/troupe",
  }, cwd);
  const [status, lines] = await Promise.all([child.status, logReader(child.stderr).rest()]);
  assertEquals(status.code, 1, lines.join("\n"));
  const entry = JSON.parse(lines.at(-1)!);
  assertEquals(entry.level, "error");
  assert(String(entry.msg).includes("cannot be opened"), entry.msg);
  assert(!lines.join("\n").includes("hunter2"), "the password is redacted");
  await Deno.remove(cwd, { recursive: true });
});

Deno.test("SIGTERM with runs in flight: every client gets its reply or a clean 503, and every usage record is stored", async () => {
  // A real upstream that takes 300 ms: the runs are in flight when the signal comes.
  await using upstream = startMockUpstream({ latencyMs: 300 });
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), {
    TROUPE_PORT: "0",
    TROUPE_LLM_BASE_URL: upstream.url,
    TROUPE_LLM_MODEL: "mock-model",
    TROUPE_LLM_WORKERS: "1",
  }, cwd);
  const log = logReader(child.stderr);
  let status: Deno.CommandStatus;
  let lines: string[];
  const outcomes: number[] = [];
  let signalled = false;
  try {
    const listening = await log.waitFor((e) => e.msg === "troupe listening", START_TIMEOUT_MS);
    const url = listening.url as string;
    const calls = Array.from({ length: 20 }, (_, i) =>
      fetch(`${url}/v1/sessions/s${i}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ content: `question ${i}` }),
      }).then(async (response) => {
        const body = await response.json();
        if (response.status === 200) assertEquals(body.status, "completed");
        else assertEquals([response.status, body.error.code], [503, "shutting_down"]);
        outcomes.push(response.status);
      }));
    await eventually("20 upstream calls in flight", () => upstream.stats().openConnections === 20);
    child.kill("SIGTERM");
    signalled = true;
    await log.waitFor((e) => e.msg === "troupe shutting down", START_TIMEOUT_MS);
    // A request after the signal is refused cleanly, or finds the listener already closed.
    const late = await fetch(`${url}/v1/sessions/late/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: "too late" }),
    }).then(async (response) => {
      await response.body?.cancel();
      return response.status;
    }, () => "closed");
    assert(late === 503 || late === "closed", String(late));
    await Promise.all(calls);
  } finally {
    // One signal only: a second one means "exit now".
    if (!signalled) child.kill("SIGTERM");
    status = await child.status;
    lines = await log.rest();
  }
  assertEquals(status.code, 0, lines.join("\n"));
  // The grace period (10 s) outlasts the 300 ms runs: all 20 completed.
  assertEquals(outcomes.filter((s) => s === 200).length, 20);
  await using store = await openStore(`${cwd}/data/troupe.db`);
  const [totals] = await store.usageTotals({ org: "default" });
  assertEquals(totals?.calls, 20);
  await Deno.remove(cwd, { recursive: true });
});

/** Every stored event of a session, through the audit trail's pages. */
async function storedEvents(
  store: Awaited<ReturnType<typeof openStore>>,
  session: string,
): Promise<Array<{ type: string; run?: string }>> {
  const events: Array<{ type: string; run?: string }> = [];
  let before: string | undefined;
  do {
    const page = await store.auditTrail({
      org: "default",
      session,
      limit: 1000,
      ...(before === undefined ? {} : { before }),
    });
    events.push(...(page.events as Array<{ type: string; run?: string }>));
    before = page.next ?? undefined;
  } while (before !== undefined);
  return events;
}

Deno.test("kill -9 with TROUPE_DURABLE_REPLIES=true: every reply a client got has its usage and history stored", async () => {
  // Without the setting this fails: the replies of the last batch or so (up to 50 ms of
  // events, and 5 ms of history) are delivered before they are stored, and die with the process.
  const cwd = await Deno.makeTempDir();
  const child = spawnMain(await startFlags(), {
    TROUPE_PORT: "0",
    TROUPE_DURABLE_REPLIES: "true",
  }, cwd);
  const log = logReader(child.stderr);
  const received: Array<{ session: string; runId: string }> = [];
  let killed = false;
  try {
    const listening = await log.waitFor((e) => e.msg === "troupe listening", START_TIMEOUT_MS);
    assertEquals(listening.durableReplies, true);
    const url = listening.url as string;
    // 20 sessions, each sending one message after another until the process is gone.
    const clients = Array.from({ length: 20 }, async (_, i) => {
      for (let n = 0; !killed; n++) {
        const response = await fetch(`${url}/v1/sessions/k${i}/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ content: `message ${n}` }),
        }).catch(() => null);
        if (response === null) return;
        const body = await response.json().catch(() => null);
        if (response.status === 200 && body?.status === "completed") {
          received.push({ session: `k${i}`, runId: body.runId });
        }
      }
    });
    await eventually("500 replies", () => received.length >= 500);
    child.kill("SIGKILL");
    killed = true;
    await Promise.all(clients);
  } finally {
    if (!killed) child.kill("SIGKILL");
    await child.status;
    await log.rest();
  }
  await using store = await openStore(`${cwd}/data/troupe.db`);
  const sessions = [...new Set(received.map((r) => r.session))];
  const missing: string[] = [];
  for (const session of sessions) {
    const usage = new Set(
      (await storedEvents(store, session))
        .filter((event) => event.type === "usage.recorded")
        .map((event) => event.run),
    );
    const history = await store.readHistory("default", session, { limit: 1000 });
    const answers = new Set(
      history.entries.filter((entry) => entry.role === "assistant").map((entry) => entry.id),
    );
    for (const { runId } of received.filter((r) => r.session === session)) {
      if (!usage.has(runId)) missing.push(`usage of ${runId}`);
      if (!answers.has(runId)) missing.push(`history of ${runId}`);
    }
  }
  assertEquals(missing, []);
  await Deno.remove(cwd, { recursive: true });
});
