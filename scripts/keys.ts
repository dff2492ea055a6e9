// `deno task keys`: create, list and revoke the API keys of the server's database.

import { parseArgs } from "node:util";
import { parseConfig } from "../actors/config.ts";
import { InvalidInputError } from "../actors/errors.ts";
import { checkId } from "../actors/validate.ts";
import { generateApiKey } from "../adapters/http/auth.ts";
import type { ApiKeyInfo } from "../adapters/store/api_keys.ts";
import { openStore } from "../adapters/store/open_store.ts";
import { missingPermissions } from "../adapters/_settings_permissions.ts";

const USAGE = `Usage:
  deno task keys create --org NAME [--name LABEL]   print a new key for the org, once
  deno task keys list [--org NAME] [--all] [--json]  list keys (--all: revoked ones too)
  deno task keys revoke ID                           revoke a key; callers using it get 401
The database is the server's: TROUPE_DATABASE_URL or --database-url.`;

const MAX_NAME = 200;

/** Where {@linkcode runKeys} reads its settings and writes its output. */
export interface RunKeysOptions {
  /**
   * The environment variables it reads (`TROUPE_DATABASE_URL`).
   * @default {{}}
   */
  env?: Record<string, string | undefined>;
  /**
   * Receives what the command prints for scripts: the new key, or the list.
   * @default {a line on stdout}
   */
  out?: (line: string) => void;
  /**
   * Receives messages for people and errors.
   * @default {a line on stderr}
   */
  err?: (line: string) => void;
  /**
   * The time, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/**
 * Run one `keys` command and resolve with its exit code: 0 done, 1 failed
 * (the database cannot be opened, an unknown key id), 2 a usage error.
 *
 * `create` prints the key on stdout, alone on its line, and nowhere else; it
 * is never shown again: the database keeps only its SHA-256 (the key holds
 * 256 random bits, so a fast hash is safe, see `generateApiKey`). A server
 * that runs reads created and revoked keys within 10 s.
 *
 * @example
 * ```ts
 * import { runKeys } from "./keys.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const env = { TROUPE_DATABASE_URL: `${dir}/troupe.db` };
 * const out: string[] = [];
 * const code = await runKeys(["create", "--org", "acme"], { env, out: (l) => out.push(l), err: () => {} });
 * console.assert(code === 0 && out[0]!.startsWith("trp_"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runKeys(args: string[], options: RunKeysOptions = {}): Promise<number> {
  const {
    env = {},
    out = (line: string) => console.log(line),
    err = (line: string) => console.error(line),
    now = Date.now,
  } = options;
  let parsed;
  let databaseUrl: string;
  try {
    parsed = parseCommand(args);
    const config = parseConfig(
      { TROUPE_DATABASE_URL: env.TROUPE_DATABASE_URL },
      parsed.databaseUrl === undefined ? [] : ["--database-url", parsed.databaseUrl],
    );
    databaseUrl = config.databaseUrl;
    if (databaseUrl === "memory" || databaseUrl === ":memory:") {
      throw new InvalidInputError(
        "TROUPE_DATABASE_URL",
        "Cannot manage keys: the database is in memory; keys live in the server's database (a SQLite path or a postgres:// URL)",
      );
    }
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    err(`error: ${error.message}`);
    err(USAGE);
    return 2;
  }

  const [missing] = await missingPermissions({ databaseUrl, natsUrl: null, llmBaseUrl: null });
  if (missing !== undefined) {
    err(`error: Cannot manage keys: ${missing.message}`);
    return 2;
  }
  let store;
  try {
    // A command's few rows need neither a worker for the connection nor a checkpoint thread
    // (nor the permission to start them).
    store = await openStore(databaseUrl, { checkpoints: "inline", sqliteThread: "main" });
  } catch (error) {
    // The store's message names the database with any password hidden.
    err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  try {
    const keys = store.apiKeys;
    switch (parsed.command) {
      case "create": {
        const { id, key, hash } = generateApiKey();
        const name = parsed.name;
        await keys.add({ id, org: parsed.org!, hash, createdAt: now(), ...name ? { name } : {} });
        out(key);
        err(
          `Created key ${id} for org "${parsed.org}". It is shown only this once: store it now ` +
            "(the database keeps its SHA-256 only). Send it as Authorization: Bearer <key>.",
        );
        return 0;
      }
      case "list": {
        const listed = await keys.list({
          ...(parsed.org === undefined ? {} : { org: parsed.org }),
          includeRevoked: parsed.all,
        });
        if (parsed.json) { for (const key of listed) out(JSON.stringify(key)); }
        else for (const line of table(listed)) out(line);
        return 0;
      }
      case "revoke": {
        const outcome = await keys.revoke(parsed.id!, now());
        if (outcome === "unknown") {
          err(`error: Cannot revoke: no key has the id ${JSON.stringify(parsed.id)}`);
          return 1;
        }
        err(
          outcome === "revoked"
            ? `Revoked key ${parsed.id}; a running server refuses it within 10 s.`
            : `Key ${parsed.id} was already revoked.`,
        );
        return 0;
      }
    }
  } catch (error) {
    err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await store.close();
  }
}

interface Command {
  command: "create" | "list" | "revoke";
  org?: string;
  name?: string;
  id?: string;
  all: boolean;
  json: boolean;
  databaseUrl?: string;
}

function parseCommand(args: string[]): Command {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        org: { type: "string" },
        name: { type: "string" },
        all: { type: "boolean" },
        json: { type: "boolean" },
        "database-url": { type: "string" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    const reason = error instanceof Error ? error.message.split(/\.\s/)[0] : String(error);
    throw new InvalidInputError("args", `Cannot manage keys: ${reason}`);
  }
  const [command, id, ...extra] = positionals;
  const refuse = (field: string, message: string): never => {
    throw new InvalidInputError(field, `Cannot ${command ?? "manage"} keys: ${message}`);
  };
  if (command !== "create" && command !== "list" && command !== "revoke") {
    refuse(
      "command",
      `the command must be create, list or revoke, current value is ${
        command === undefined ? "none" : JSON.stringify(command)
      }`,
    );
  }
  if (extra.length > 0 || (command !== "revoke" && id !== undefined)) {
    refuse("args", `unexpected argument ${JSON.stringify(extra[0] ?? id)}`);
  }
  if (command === "create" && values.org === undefined) refuse("--org", "--org NAME is required");
  if (command === "revoke" && id === undefined) refuse("id", "the key id to revoke is required");
  if (values.org !== undefined) checkId("--org", values.org, `${command} keys`);
  const name = values.name?.trim();
  if (name !== undefined && (name.length > MAX_NAME || /[\p{Cc}]/u.test(name))) {
    refuse("--name", `--name must be at most ${MAX_NAME} printable characters`);
  }
  return {
    command: command as Command["command"],
    ...(values.org === undefined ? {} : { org: values.org }),
    ...(name === undefined || name === "" ? {} : { name }),
    ...(id === undefined ? {} : { id }),
    all: values.all === true,
    json: values.json === true,
    ...(values["database-url"] === undefined ? {} : { databaseUrl: values["database-url"] }),
  };
}

function table(keys: ApiKeyInfo[]): string[] {
  const rows = [
    ["ID", "ORG", "NAME", "CREATED", "REVOKED"],
    ...keys.map((key) => [
      key.id,
      key.org,
      key.name ?? "",
      new Date(key.createdAt).toISOString(),
      key.revokedAt === null ? "" : new Date(key.revokedAt).toISOString(),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
}

if (import.meta.main) {
  Deno.exit(
    await runKeys(Deno.args, { env: { TROUPE_DATABASE_URL: Deno.env.get("TROUPE_DATABASE_URL") } }),
  );
}
