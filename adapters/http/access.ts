// Who may call the server and how often: API-key auth kept in step with the key store, and rate limits.

import type { ApiKeyRecord } from "../../actors/ports.ts";
import { type ApiKeyAuth, apiKeyAuth } from "./auth.ts";
import { type RateLimitAlgorithm, rateLimiter, type RequestLimits } from "./rate_limit.ts";

/** Where the server reads the valid API keys from (the SQL store's `apiKeys`). */
export interface KeySource {
  /** Every key not revoked. */
  active(): Promise<ApiKeyRecord[]>;
}

/** Options of {@linkcode serverAccess}. */
export interface ServerAccessOptions {
  /** The key store, or `null` when there is none (an in-memory database): auth stays off. */
  keys: KeySource | null;
  /** Requests per session per window; `0` turns the limit off. */
  sessionLimit: number;
  /** Requests per org per window; `0` turns the limit off. */
  orgLimit: number;
  /** The rate-limit window, in ms. */
  windowMs: number;
  /**
   * How requests are counted.
   * @default {"token-bucket"}
   */
  algorithm?: RateLimitAlgorithm;
  /**
   * Read the keys again this often, so that created and revoked keys take
   * effect without a restart.
   * @default {10000}
   */
  refreshMs?: number;
  /**
   * Receives a failed refresh (the keys already loaded stay in force).
   * @default {() => {}}
   */
  onRefreshError?: (error: unknown) => void;
  /**
   * Called once when auth turns on because keys appeared after start.
   * @default {() => {}}
   */
  onAuthOn?: (keys: number) => void;
}

/** The server's auth and limits, for `createHandler`. */
export interface ServerAccess extends AsyncDisposable {
  /** Maps a bearer key to its org while auth is on; `"default"` for everyone while it is off. */
  readonly auth: Pick<ApiKeyAuth, "authenticate">;
  /** The per-org and per-session limiters. */
  readonly rateLimits: RequestLimits;
  /** Whether auth is on: a key existed at some point since start. It never turns off again. */
  readonly authOn: boolean;
  /** How many keys are valid now. */
  readonly keys: number;
  /** Stop refreshing the keys. */
  close(): Promise<void>;
}

/**
 * Load the API keys and build the limiters. Auth is on as soon as one key
 * exists (at start or at a later refresh) and then stays on: revoking every
 * key locks every caller out rather than opening the server. Without a key
 * source, auth stays off.
 *
 * @example
 * ```ts
 * import { serverAccess } from "./access.ts";
 *
 * await using access = await serverAccess({
 *   keys: null, sessionLimit: 10, orgLimit: 100, windowMs: 60_000,
 * });
 * const org = access.auth.authenticate(new Request("http://localhost/"));
 * console.assert(!access.authOn && org === "default" && access.rateLimits.org !== undefined);
 * ```
 */
export async function serverAccess(options: ServerAccessOptions): Promise<ServerAccess> {
  const {
    keys,
    sessionLimit,
    orgLimit,
    windowMs,
    algorithm = "token-bucket",
    refreshMs = 10_000,
    onRefreshError = () => {},
    onAuthOn = () => {},
  } = options;
  const rateLimits: RequestLimits = {
    ...(orgLimit > 0 ? { org: rateLimiter({ limit: orgLimit, windowMs, algorithm }) } : {}),
    ...(sessionLimit > 0
      ? { session: rateLimiter({ limit: sessionLimit, windowMs, algorithm }) }
      : {}),
  };
  const checker = apiKeyAuth(keys === null ? [] : await keys.active());
  let authOn = checker.size > 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let refreshing: Promise<void> = Promise.resolve();
  let closed = false;

  async function refresh(): Promise<void> {
    try {
      const active = await keys!.active();
      if (closed) return;
      checker.replace(active);
      if (!authOn && checker.size > 0) {
        authOn = true;
        onAuthOn(checker.size);
      }
    } catch (error) {
      if (!closed) onRefreshError(error);
    }
    if (!closed) schedule();
  }
  function schedule(): void {
    timer = setTimeout(() => refreshing = refresh(), refreshMs);
  }
  if (keys !== null) schedule();

  async function close(): Promise<void> {
    closed = true;
    clearTimeout(timer);
    // The key store may close next: let a read under way finish first.
    await refreshing;
  }
  return {
    auth: {
      authenticate: (request) => authOn ? checker.authenticate(request) : "default",
    },
    rateLimits,
    get authOn() {
      return authOn;
    },
    get keys() {
      return checker.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
