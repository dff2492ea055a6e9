// API keys: their format, their hash, and the check that maps a request's bearer key to its org.

import { createHash } from "node:crypto";
import type { ApiKeyRecord } from "../../actors/ports.ts";
import { HttpError } from "./errors.ts";

export type { ApiKeyRecord };

// `trp_` + a public id of 16 hex digits + `_` + 32 random bytes in base64url (256 bits).
const KEY_PATTERN = /^trp_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
const REALM = 'Bearer realm="troupe"';

/** A new API key: the key to hand to its owner once, and what is stored. */
export interface GeneratedApiKey {
  /** The public id, also written inside the key; `deno task keys revoke` takes it. */
  id: string;
  /** The secret key, `trp_<id>_<secret>`. Shown once, never stored, never logged. */
  key: string;
  /** Its SHA-256, 64 hex digits: the only thing stored. */
  hash: string;
}

/**
 * Make a new API key from 256 random bits (`crypto.getRandomValues`).
 *
 * The key is stored as its SHA-256 only. A fast, unsalted hash is enough here,
 * unlike for passwords: the secret is 256 random bits, not something a person
 * chose, so no dictionary or brute-force search over hashes can find it, and
 * a slow hash (bcrypt, Argon2) would only cost every request its time.
 *
 * @example
 * ```ts
 * import { generateApiKey, hashApiKey } from "./auth.ts";
 *
 * const { id, key, hash } = generateApiKey();
 * console.assert(key.startsWith(`trp_${id}_`) && hashApiKey(key) === hash);
 * ```
 */
export function generateApiKey(): GeneratedApiKey {
  const id = toHex(crypto.getRandomValues(new Uint8Array(8)));
  const secret = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const key = `trp_${id}_${secret}`;
  return { id, key, hash: hashApiKey(key) };
}

/**
 * The SHA-256 of a key as 64 lower-case hex digits: what is stored and compared.
 *
 * @example
 * ```ts
 * import { hashApiKey } from "./auth.ts";
 *
 * console.assert(hashApiKey("abc").startsWith("ba7816bf"));
 * ```
 */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Maps a request's `Authorization: Bearer` key to the org it belongs to. */
export interface ApiKeyAuth {
  /**
   * The org of the request's key. Throws an `HttpError` 401 with
   * `WWW-Authenticate: Bearer` when the key is missing, malformed, unknown or
   * revoked; the message never repeats the key.
   */
  authenticate(request: Request): string;
  /** Replace the valid keys (after keys were created or revoked). */
  replace(keys: readonly ApiKeyRecord[]): void;
  /** How many keys are valid. */
  readonly size: number;
}

interface KnownKey {
  org: string;
  hash: string;
}

/**
 * Check requests against a set of valid keys held in memory, by id: the
 * request's key names its id, and the SHA-256 of the whole key is compared
 * with the stored hash in constant time (every character is compared, with
 * no early exit), so the time a check takes says nothing about how much of
 * a guess was right. A check is a map lookup and one hash of ~64 bytes (about
 * 1.5 µs): no I/O on the hot path.
 *
 * @example
 * ```ts
 * import { apiKeyAuth, generateApiKey } from "./auth.ts";
 *
 * const { id, key, hash } = generateApiKey();
 * const auth = apiKeyAuth([{ id, org: "acme", hash }]);
 * const request = new Request("http://localhost/", { headers: { authorization: `Bearer ${key}` } });
 * console.assert(auth.authenticate(request) === "acme");
 * ```
 */
export function apiKeyAuth(keys: readonly ApiKeyRecord[]): ApiKeyAuth {
  let known = index(keys);

  function authenticate(request: Request): string {
    const header = request.headers.get("authorization");
    // "Bearer <token>", the scheme in any case (RFC 7235); no regex split on the hot path.
    const token = header !== null && /^bearer\s/i.test(header) ? header.slice(7).trim() : "";
    if (token === "") {
      throw new HttpError(
        401,
        "unauthorized",
        // Never the header's value: a key sent without its scheme would be echoed.
        "Cannot authenticate: send an API key as Authorization: Bearer <key>, current request has " +
          (header === null ? "no Authorization header" : "an Authorization header of another form"),
        { headers: { "www-authenticate": REALM } },
      );
    }
    const id = KEY_PATTERN.exec(token)?.[1];
    const entry = id === undefined ? undefined : known.get(id);
    if (entry === undefined || !constantTimeEqual(hashApiKey(token), entry.hash)) {
      throw invalidKey();
    }
    return entry.org;
  }

  return {
    authenticate,
    replace(next) {
      known = index(next);
    },
    get size() {
      return known.size;
    },
  };
}

function invalidKey(): HttpError {
  return new HttpError(
    401,
    "invalid_api_key",
    "Cannot authenticate: the API key is not valid (malformed, unknown or revoked)",
    { headers: { "www-authenticate": `${REALM}, error="invalid_token"` } },
  );
}

function index(keys: readonly ApiKeyRecord[]): Map<string, KnownKey> {
  const known = new Map<string, KnownKey>();
  for (const { id, org, hash } of keys) {
    if (!HASH_PATTERN.test(hash)) {
      throw new TypeError(
        `Cannot use API key ${id}: its stored hash must be 64 hex digits (SHA-256), current length is ${hash.length}`,
      );
    }
    known.set(id, { org, hash });
  }
  return known;
}

/**
 * Whether two hex digests are equal, in time that depends on their length
 * only (always 64 here): no early exit at the first difference. Hex strings,
 * not `Buffer`s: Deno's `Buffer` costs more than the hash itself.
 */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}
