// API keys in the SQL store: only their hashes, with the org each maps to; never the key itself.

import type { Kysely } from "kysely";
import type { ApiKeyRecord } from "../../actors/ports.ts";
import type { Database } from "./schema.ts";

export type { ApiKeyRecord };

/**
 * A stored API key as `deno task keys list` shows it: no hash, no secret.
 *
 * @example
 * ```ts
 * import type { ApiKeyInfo } from "./api_keys.ts";
 *
 * const info: ApiKeyInfo = {
 *   id: "0123456789abcdef", org: "acme", name: null, createdAt: 1, revokedAt: null,
 * };
 * ```
 */
export interface ApiKeyInfo {
  /** The key's public id. */
  id: string;
  /** The org it maps its caller to. */
  org: string;
  /** A label for people, or `null`. */
  name: string | null;
  /** When it was created, in ms since the epoch. */
  createdAt: number;
  /** When it was revoked, or `null` while it is valid. */
  revokedAt: number | null;
}

/**
 * What is stored for a new key: its hash, never the key.
 *
 * @example
 * ```ts
 * import type { NewApiKey } from "./api_keys.ts";
 *
 * const key: NewApiKey = { id: "0123456789abcdef", org: "acme", hash: "9f86d0…", createdAt: 1 };
 * ```
 */
export interface NewApiKey extends ApiKeyRecord {
  /**
   * A label for people.
   * @default {null}
   */
  name?: string;
  /** When it was created, in ms since the epoch. */
  createdAt: number;
}

/**
 * Which keys {@linkcode ApiKeyStore.list} returns.
 *
 * @example
 * ```ts
 * import type { ApiKeyListOptions } from "./api_keys.ts";
 *
 * const options: ApiKeyListOptions = { org: "acme", includeRevoked: true };
 * ```
 */
export interface ApiKeyListOptions {
  /**
   * Only this org's keys.
   * @default {undefined} every org's
   */
  org?: string;
  /**
   * Revoked keys too.
   * @default {false}
   */
  includeRevoked?: boolean;
}

/** How {@linkcode ApiKeyStore.revoke} went. */
export type RevokeOutcome = "revoked" | "already_revoked" | "unknown";

/**
 * The API keys of a SQL store.
 *
 * Failure: a rejected promise; `add` rejects when the id is already stored.
 */
export interface ApiKeyStore {
  /** Store a new key (its hash). */
  add(key: NewApiKey): Promise<void>;
  /** Keys ordered by org, then creation time, then id. */
  list(options?: ApiKeyListOptions): Promise<ApiKeyInfo[]>;
  /** Mark a key revoked at `at` (ms since the epoch); a revoked key stays revoked. */
  revoke(id: string, at: number): Promise<RevokeOutcome>;
  /** Every key not revoked, as authentication needs them. */
  active(): Promise<ApiKeyRecord[]>;
}

/**
 * The API keys kept in a migrated SQL database (the `api_keys` table).
 *
 * @example
 * ```ts
 * import { openStore } from "./open_store.ts";
 *
 * await using store = await openStore(":memory:");
 * await store.apiKeys.add({ id: "0123456789abcdef", org: "acme", hash: "ab".repeat(32), createdAt: 1 });
 * console.assert((await store.apiKeys.active())[0]?.org === "acme");
 * console.assert(await store.apiKeys.revoke("0123456789abcdef", 2) === "revoked");
 * console.assert((await store.apiKeys.active()).length === 0);
 * ```
 */
export function apiKeyStore(db: Kysely<Database>): ApiKeyStore {
  return {
    async add(key) {
      await db.insertInto("api_keys").values({
        id: key.id,
        org: key.org,
        hash: key.hash,
        name: key.name ?? null,
        created_at: key.createdAt,
        revoked_at: null,
      }).execute();
    },
    async list(options = {}) {
      let select = db.selectFrom("api_keys")
        .select(["id", "org", "name", "created_at", "revoked_at"]);
      if (options.org !== undefined) select = select.where("org", "=", options.org);
      if (options.includeRevoked !== true) select = select.where("revoked_at", "is", null);
      const rows = await select.orderBy("org").orderBy("created_at").orderBy("id").execute();
      return rows.map((row) => ({
        id: row.id,
        org: row.org,
        name: row.name,
        createdAt: Number(row.created_at),
        revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
      }));
    },
    async revoke(id, at) {
      const result = await db.updateTable("api_keys").set({ revoked_at: at })
        .where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
      if (result.numUpdatedRows > 0n) return "revoked";
      const row = await db.selectFrom("api_keys").select("id").where("id", "=", id)
        .executeTakeFirst();
      return row === undefined ? "unknown" : "already_revoked";
    },
    async active() {
      return await db.selectFrom("api_keys").select(["id", "org", "hash"])
        .where("revoked_at", "is", null).execute();
    },
  };
}
