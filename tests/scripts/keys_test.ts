// `deno task keys` run as the task runs it (its own narrow flags, in a temp dir), and the server that reads its keys.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { CONFIG_ENV_VARS } from "../../actors/config.ts";
import { createRuntime } from "../../actors/runtime.ts";
import { serverAccess } from "../../adapters/http/access.ts";
import { createHandler } from "../../adapters/http/handler.ts";
import { openStore } from "../../adapters/store/open_store.ts";
import { eventually } from "../_helpers/eventually.ts";

import { taskFlags } from "../_helpers/task_flags.ts";

const ROOT = new URL("../../", import.meta.url);
const START_TIMEOUT_MS = 20_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A temp dir standing for the checkout's working directory: `./data` lives in it. */
async function workDir(): Promise<AsyncDisposable & { path: string; db: string }> {
  const path = await Deno.makeTempDir({ prefix: "troupe-keys-" });
  return {
    path,
    db: `${path}/data/troupe.db`,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

async function keys(dir: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${new URL("deno.json", ROOT).pathname}`,
      ...await taskFlags("keys", "scripts/keys.ts"),
      new URL("scripts/keys.ts", ROOT).pathname,
      ...args,
    ],
    cwd: dir,
    env: { TROUPE_DATABASE_URL: "", ...env },
    stdin: "null",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

async function create(dir: string, org: string, ...more: string[]): Promise<string> {
  const run = await keys(dir, ["create", "--org", org, ...more]);
  assertEquals(run.code, 0, run.stderr);
  return run.stdout.trim();
}

Deno.test("keys create prints the key once on stdout, and the database keeps only its SHA-256", async () => {
  await using dir = await workDir();
  const run = await keys(dir.path, ["create", "--org", "acme", "--name", "ci bot"]);
  assertEquals(run.code, 0, run.stderr);
  const lines = run.stdout.split("\n").filter((line) => line !== "");
  assertEquals(lines.length, 1, "stdout holds the key and nothing else");
  const key = lines[0]!;
  assert(/^trp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/.test(key), key);
  assert(run.stderr.includes("shown only this once"), run.stderr);
  assert(!run.stderr.includes(key), "the key is not repeated on stderr");

  const db = new DatabaseSync(dir.db, { readOnly: true });
  try {
    const rows = db.prepare("select id, org, name, hash, revoked_at from api_keys").all();
    assertEquals(rows.length, 1);
    const row = rows[0]!;
    assertEquals([row.org, row.name, row.revoked_at], ["acme", "ci bot", null]);
    assertEquals(row.hash, createHash("sha256").update(key).digest("hex"));
    assert(key.startsWith(`trp_${row.id}_`));
  } finally {
    db.close();
  }
  // Nowhere in the database file (or its WAL) is the secret part of the key.
  const secret = new TextEncoder().encode(key.slice(22));
  for await (const entry of Deno.readDir(`${dir.path}/data`)) {
    const bytes = await Deno.readFile(`${dir.path}/data/${entry.name}`);
    assert(!includes(bytes, secret), `${entry.name} holds the key`);
  }
});

Deno.test("two keys made in a row differ, and list shows ids and orgs but never a key", async () => {
  await using dir = await workDir();
  const first = await create(dir.path, "acme");
  const second = await create(dir.path, "globex");
  assert(first !== second);
  const table = await keys(dir.path, ["list"]);
  assertEquals(table.code, 0, table.stderr);
  assert(table.stdout.startsWith("ID"), table.stdout);
  assert(table.stdout.includes("acme") && table.stdout.includes("globex"), table.stdout);
  assert(!table.stdout.includes(first.slice(22)) && !table.stdout.includes(second.slice(22)));
  const listed = await keys(dir.path, ["list", "--json", "--org", "globex"]);
  const rows = listed.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assertEquals(rows.map((row) => [row.org, second.startsWith(`trp_${row.id}_`)]), [
    ["globex", true],
  ]);
  assertEquals(Object.keys(rows[0]).sort(), ["createdAt", "id", "name", "org", "revokedAt"]);
});

Deno.test("keys revoke takes a key out of the list; again is harmless; an unknown id fails", async () => {
  await using dir = await workDir();
  const key = await create(dir.path, "acme");
  const id = key.slice(4, 20);
  const revoked = await keys(dir.path, ["revoke", id]);
  assertEquals(revoked.code, 0, revoked.stderr);
  assert(revoked.stderr.includes(`Revoked key ${id}`), revoked.stderr);
  assertEquals((await keys(dir.path, ["list", "--json"])).stdout, "");
  const all = await keys(dir.path, ["list", "--json", "--all"]);
  assert(JSON.parse(all.stdout).revokedAt > 0, all.stdout);
  const again = await keys(dir.path, ["revoke", id]);
  assertEquals(again.code, 0);
  assert(again.stderr.includes("already revoked"), again.stderr);
  const unknown = await keys(dir.path, ["revoke", "0000000000000000"]);
  assertEquals(unknown.code, 1);
  assert(unknown.stderr.includes("no key has the id"), unknown.stderr);
});

Deno.test("keys refuses bad usage with exit 2 and a message naming what is wrong", async () => {
  await using dir = await workDir();
  const cases: [string[], Record<string, string>, string][] = [
    [[], {}, "the command must be create, list or revoke"],
    [["rotate"], {}, 'current value is "rotate"'],
    [["create"], {}, "--org NAME is required"],
    [["create", "--org", "a b"], {}, "--org must be"],
    [["create", "--org", "acme", "--colour", "red"], {}, "Cannot manage keys"],
    [["revoke"], {}, "the key id to revoke is required"],
    [["list", "extra"], {}, 'unexpected argument "extra"'],
    [["list"], { TROUPE_DATABASE_URL: "memory" }, "TROUPE_DATABASE_URL"],
    [["list"], { TROUPE_DATABASE_URL: "mysql://x/y" }, "TROUPE_DATABASE_URL must be"],
  ];
  for (const [args, env, expected] of cases) {
    const run = await keys(dir.path, args, env);
    assertEquals(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert(run.stderr.includes(expected), `${args.join(" ")}: ${run.stderr}`);
    assert(run.stderr.includes("Usage:"), run.stderr);
  }
});

Deno.test("with the task's flags, keys refuses a database its flags do not cover, naming the setting and flag", async () => {
  await using dir = await workDir();
  const elsewhere = await Deno.makeTempDir();
  try {
    const run = await keys(dir.path, ["list"], { TROUPE_DATABASE_URL: `${elsewhere}/keys.db` });
    assertEquals(run.code, 2, run.stderr);
    assert(run.stderr.includes(`TROUPE_DATABASE_URL's directory ${elsewhere}`), run.stderr);
    assert(run.stderr.includes("--allow-read and --allow-write"), run.stderr);
    assertEquals([...Deno.readDirSync(elsewhere)], [], "nothing was created there");
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("a key made by the task opens the API for its org over HTTP, and its revocation closes it", async () => {
  await using dir = await workDir();
  const acme = await create(dir.path, "acme");
  const globex = await create(dir.path, "globex");
  await using store = await openStore(dir.db);
  await using runtime = createRuntime({ store: dir.db });
  await using access = await serverAccess({
    keys: store.apiKeys,
    sessionLimit: 0,
    orgLimit: 0,
    windowMs: 60_000,
    refreshMs: 20,
  });
  assert(access.authOn);
  const handler = createHandler({ runtime, auth: access.auth, rateLimits: access.rateLimits });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const call = async (key: string, path: string, init: RequestInit = {}) => {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    });
    return { status: response.status, body: await response.json() };
  };
  const sent = await call(acme, "/v1/sessions/s1/messages", {
    method: "POST",
    body: '{"content":"hi"}',
  });
  assertEquals([sent.status, sent.body.org], [200, "acme"]);
  assertEquals((await call(globex, "/v1/sessions")).body, { sessions: [], next: null });
  assertEquals((await keys(dir.path, ["revoke", acme.slice(4, 20)])).code, 0);
  await eventually("the revoked key is refused", async () => {
    return (await call(acme, "/v1/sessions")).status === 401;
  });
  assertEquals((await call(globex, "/v1/sessions")).status, 200);
});

/** Start main.ts as `deno task start` does, in `dir`; every TROUPE_* variable not given is unset. */
async function startMain(dir: string, env: Record<string, string>): Promise<Deno.ChildProcess> {
  const unset = Object.fromEntries(CONFIG_ENV_VARS.map((name) => [name, ""]));
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${new URL("deno.json", ROOT).pathname}`,
      ...await taskFlags("start", "mod.ts"),
      new URL("main.ts", ROOT).pathname,
    ],
    cwd: dir,
    env: { ...unset, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Reads JSON log lines from a stream, keeping what it has read past the line it returned. */
function logLines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const seen: Record<string, unknown>[] = [];
  let buffered = "";

  /** The next line that matches, or a failure after START_TIMEOUT_MS naming what was read. */
  async function waitFor(
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`No matching log line; log:\n${JSON.stringify(seen)}`)),
        START_TIMEOUT_MS,
      );
    });
    try {
      while (true) {
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
          seen.push(line);
          if (match(line)) return line;
        }
        const { done, value } = await Promise.race([reader.read(), timeout]);
        if (done) throw new Error(`The log ended first; log:\n${JSON.stringify(seen)}`);
        buffered += value;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  return { waitFor, seen, cancel: () => reader.cancel().catch(() => {}) };
}

/** SIGTERM the server; it must log that it stopped and exit with 0. */
async function stopGracefully(
  child: Deno.ChildProcess,
  log: ReturnType<typeof logLines>,
): Promise<void> {
  child.kill("SIGTERM");
  await log.waitFor((l) => l.msg === "troupe stopped");
  assertEquals((await child.status).code, 0);
}

/** Stop a child that a failed test left running, and wait for it. */
async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
  await child.status;
}

Deno.test("main.ts with keys in its database turns auth on: 401 without a key, the org's data with one", async () => {
  await using dir = await workDir();
  const key = await create(dir.path, "acme");
  const child = await startMain(dir.path, { TROUPE_PORT: "0" });
  const log = logLines(child.stderr);
  try {
    const listening = await log.waitFor((l) => l.msg === "troupe listening");
    const authLine = await log.waitFor((l) => String(l.msg).startsWith("auth is on"));
    assertEquals(authLine.keys, 1);
    const url = listening.url as string;
    const anonymous = await fetch(`${url}/v1/sessions`);
    assertEquals(anonymous.status, 401);
    await anonymous.body?.cancel();
    const health = await fetch(`${url}/healthz`);
    assertEquals(health.status, 200);
    await health.body?.cancel();
    const mine = await fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${key}` } });
    assertEquals([mine.status, await mine.json()], [200, { sessions: [], next: null }]);
    assert(mine.headers.has("x-ratelimit-limit"), "the default limits are on");
    await stopGracefully(child, log);
  } finally {
    await log.cancel();
    await reap(child);
  }
  assert(!JSON.stringify(log.seen).includes(key.slice(22)), "the key never appears in the log");
});

Deno.test("main.ts without keys says it is loopback only, and refuses a non-loopback TROUPE_HOST", async () => {
  await using dir = await workDir();
  const refused = await startMain(dir.path, { TROUPE_HOST: "0.0.0.0", TROUPE_PORT: "0" });
  const output = await refused.output();
  const lines = new TextDecoder().decode(output.stderr).trim().split("\n");
  assertEquals(output.code, 2, lines.join("\n"));
  const line = lines.map((l) => JSON.parse(l)).find((l) => l.level === "error")!;
  assertEquals(line.setting, "TROUPE_HOST");
  assert(String(line.msg).includes("loopback") && String(line.msg).includes("keys create"));

  const child = await startMain(dir.path, { TROUPE_PORT: "0" });
  const log = logLines(child.stderr);
  try {
    const open = await log.waitFor((l) => String(l.msg).includes("loopback only"));
    assertEquals(open.level, "info");
    assert(String(open.msg).includes("no auth"), String(open.msg));
    await stopGracefully(child, log);
  } finally {
    await log.cancel();
    await reap(child);
  }
});

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}
