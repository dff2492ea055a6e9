// Per-key request limits (token bucket or sliding window): O(1) a request, bounded memory.

/** How a limiter counts. */
export type RateLimitAlgorithm = "token-bucket" | "sliding-window";

/**
 * The algorithms, in a stable order.
 *
 * @example
 * ```ts
 * import { RATE_LIMIT_ALGORITHMS } from "./rate_limit.ts";
 *
 * console.assert(RATE_LIMIT_ALGORITHMS.includes("token-bucket"));
 * ```
 */
export const RATE_LIMIT_ALGORITHMS: readonly RateLimitAlgorithm[] = [
  "token-bucket",
  "sliding-window",
];

/** Options of {@linkcode rateLimiter}. */
export interface RateLimiterOptions {
  /** Requests allowed per window, per key (a whole number >= 1). */
  limit: number;
  /** The window, in ms (a whole number >= 1). */
  windowMs: number;
  /**
   * `token-bucket`: a bucket of `limit` tokens refilled continuously at
   * `limit / windowMs`, so a burst of `limit` is allowed, then a steady rate.
   * `sliding-window`: the count of the current fixed window plus the previous
   * window's count weighted by how much of it still overlaps the sliding window
   * (the approximation Cloudflare and nginx use), so no window of `windowMs`
   * aligned to the clock holds more than `limit`.
   * @default {"token-bucket"}
   */
  algorithm?: RateLimitAlgorithm;
  /**
   * At most this many keys are tracked. Under more traffic than that, keys
   * not used for a while are forgotten before they are back at their full
   * allowance (those callers start afresh: a lenient failure, never a strict one).
   * @default {100000}
   */
  maxKeys?: number;
  /**
   * The time, in ms since the epoch.
   * @default {Date.now}
   */
  now?: () => number;
}

/** What a limiter decided for one request. */
export interface RateDecision {
  /** Whether the request may go on. */
  allowed: boolean;
  /** The limit per window (`X-RateLimit-Limit`). */
  limit: number;
  /** The window, in ms. */
  windowMs: number;
  /** Requests left now (`X-RateLimit-Remaining`). */
  remaining: number;
  /** Ms until the key is back to its full allowance (`X-RateLimit-Reset`, in seconds). */
  resetMs: number;
  /** When refused: ms until one request will be allowed (`Retry-After`); else 0. */
  retryAfterMs: number;
}

/** Counts requests per key. */
export interface RateLimiter {
  /** Count one request of `key` if it is allowed, and say so. */
  take(key: string): RateDecision;
  /** Give back the request `take` counted (another limit refused it after all). */
  refund(key: string): void;
  /** How many keys are tracked now. */
  readonly size: number;
}

interface Bucket {
  /** Token bucket: tokens left. Sliding window: count of the current window. */
  level: number;
  /** Token bucket: time of the last refill. Sliding window: start of the current window. */
  at: number;
  /** Sliding window: count of the previous window. */
  previous: number;
}

/**
 * Make a rate limiter. Each key's state is three numbers, kept in two
 * generations of `Map`s: a `take` looks its key up in the current one (or
 * moves it there from the previous one), so it is O(1). Every `idleMs` (the
 * time an untouched key takes to be back at its full allowance: one window
 * for a token bucket, two for a sliding window) the current generation
 * becomes the previous one and the old previous one is dropped whole: a key
 * in it was untouched for at least `idleMs`, so forgetting it changes
 * nothing. A generation that reaches `maxKeys / 2` keys turns over early,
 * so at most `maxKeys` keys are held, whatever the traffic.
 *
 * @example Three requests a minute
 * ```ts
 * import { rateLimiter } from "./rate_limit.ts";
 *
 * let now = 0;
 * const limiter = rateLimiter({ limit: 3, windowMs: 60_000, now: () => now });
 * const decisions = [1, 2, 3, 4].map(() => limiter.take("acme"));
 * console.assert(decisions.map((d) => d.allowed).join() === "true,true,true,false");
 * console.assert(decisions[3]!.retryAfterMs === 20_000);
 * now += 20_000;
 * console.assert(limiter.take("acme").allowed);
 * ```
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  const { limit, windowMs, algorithm = "token-bucket", maxKeys = 100_000, now = Date.now } =
    options;
  wholeNumber("limit", limit);
  wholeNumber("windowMs", windowMs);
  wholeNumber("maxKeys", maxKeys);
  if (!RATE_LIMIT_ALGORITHMS.includes(algorithm)) {
    throw new RangeError(
      `Cannot create the rate limiter: algorithm must be one of ${
        RATE_LIMIT_ALGORITHMS.join(", ")
      }, current value is ${JSON.stringify(algorithm)}`,
    );
  }
  let current = new Map<string, Bucket>();
  let previous = new Map<string, Bucket>();
  let turnedAt = now();
  const generationSize = Math.max(1, Math.floor(maxKeys / 2));
  const slidingWindow = algorithm === "sliding-window";
  // Token bucket: tokens gained per ms.
  const rate = limit / windowMs;
  // How long an untouched key takes to be back at its full allowance, after which it can go.
  const idleMs = slidingWindow ? 2 * windowMs : windowMs;

  function refreshed(key: string, at: number): Bucket {
    if (at - turnedAt >= idleMs || current.size >= generationSize) {
      previous = current;
      current = new Map();
      turnedAt = at;
    }
    let bucket = current.get(key);
    if (bucket === undefined) {
      bucket = previous.get(key);
      if (bucket === undefined) {
        bucket = slidingWindow
          ? { level: 0, at: at - (at % windowMs), previous: 0 }
          : { level: limit, at, previous: 0 };
      } else {
        previous.delete(key);
      }
      current.set(key, bucket);
    }
    if (slidingWindow) roll(bucket, at);
    else refill(bucket, at);
    return bucket;
  }

  function refill(bucket: Bucket, at: number): void {
    const elapsed = Math.max(0, at - bucket.at);
    bucket.level = Math.min(limit, bucket.level + elapsed * rate);
    bucket.at = Math.max(bucket.at, at);
  }

  function roll(bucket: Bucket, at: number): void {
    const start = at - (at % windowMs);
    if (start <= bucket.at) return;
    bucket.previous = start - bucket.at === windowMs ? bucket.level : 0;
    bucket.level = 0;
    bucket.at = start;
  }

  /** Sliding window: the weighted count, and the ms to wait until one more request fits. */
  function estimate(bucket: Bucket, at: number): { count: number; waitMs: number } {
    const into = at - bucket.at;
    const count = bucket.previous * (1 - into / windowMs) + bucket.level;
    // The tolerance absorbs floating-point error at the exact moment a retry hint points to.
    if (count + 1 <= limit + 1e-9) return { count, waitMs: 0 };
    const rest = windowMs - into;
    const room = limit - 1 - bucket.level;
    if (room >= 0 && bucket.previous > 0) {
      // Within this window: previous * (1 - x) <= room.
      const x = 1 - room / bucket.previous;
      return { count, waitMs: Math.max(0, Math.ceil(x * windowMs) - into) };
    }
    // In the next window this one's count is the previous: level * (1 - y) + 1 <= limit.
    const y = bucket.level <= limit - 1 ? 0 : 1 - (limit - 1) / bucket.level;
    return { count, waitMs: rest + Math.ceil(y * windowMs) };
  }

  function take(key: string): RateDecision {
    const at = now();
    const bucket = refreshed(key, at);
    if (slidingWindow) {
      const { count, waitMs } = estimate(bucket, at);
      const allowed = waitMs === 0;
      if (allowed) bucket.level++;
      const used = count + (allowed ? 1 : 0);
      return {
        allowed,
        limit,
        windowMs,
        remaining: Math.max(0, Math.floor(limit - used)),
        // Both windows' counts are gone once the next window has passed.
        resetMs: used === 0 ? 0 : bucket.at + (bucket.level > 0 ? 2 : 1) * windowMs - at,
        retryAfterMs: waitMs,
      };
    }
    // The tolerance absorbs floating-point error at the exact moment a retry hint points to.
    const allowed = bucket.level >= 1 - 1e-9;
    if (allowed) bucket.level = Math.max(0, bucket.level - 1);
    return {
      allowed,
      limit,
      windowMs,
      remaining: Math.floor(bucket.level),
      resetMs: Math.ceil((limit - bucket.level) / rate),
      retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.level) / rate)),
    };
  }

  function refund(key: string): void {
    const bucket = current.get(key) ?? previous.get(key);
    if (bucket === undefined) return;
    if (slidingWindow) bucket.level = Math.max(0, bucket.level - 1);
    else bucket.level = Math.min(limit, bucket.level + 1);
  }

  return {
    take,
    refund,
    get size() {
      return current.size + previous.size;
    },
  };
}

function wholeNumber(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create the rate limiter: ${name} must be a whole number >= 1, current value is ${value}`,
    );
  }
}

/** The limiters a request is counted against; either may be absent (no limit). */
export interface RequestLimits {
  /** Counts every request of an org. */
  org?: RateLimiter;
  /** Counts the requests that name a session, per (org, session). */
  session?: RateLimiter;
}

/** The decision to report for a request, and which limit it is about. */
export interface LimitOutcome {
  /** The tightest decision: the refusing one, else the one with the fewest requests left. */
  decision: RateDecision;
  /** Which limit the decision is about. */
  scope: "org" | "session";
}

/**
 * Count a request against its session's limit, then its org's; a request
 * refused by the org's limit gives its session's count back. Returns `null`
 * when no limiter applies.
 *
 * @example
 * ```ts
 * import { limitRequest, rateLimiter } from "./rate_limit.ts";
 *
 * const limits = {
 *   org: rateLimiter({ limit: 100, windowMs: 60_000 }),
 *   session: rateLimiter({ limit: 1, windowMs: 60_000 }),
 * };
 * console.assert(limitRequest(limits, "acme", "s1")?.decision.allowed === true);
 * const second = limitRequest(limits, "acme", "s1");
 * console.assert(second?.decision.allowed === false && second.scope === "session");
 * console.assert(limitRequest(limits, "acme", undefined)?.scope === "org");
 * ```
 */
export function limitRequest(
  limits: RequestLimits,
  org: string,
  session: string | undefined,
): LimitOutcome | null {
  const sessionKey = session === undefined ? undefined : `${org}\u0000${session}`;
  const bySession = sessionKey === undefined ? undefined : limits.session?.take(sessionKey);
  if (bySession !== undefined && !bySession.allowed) {
    return { decision: bySession, scope: "session" };
  }
  const byOrg = limits.org?.take(org);
  if (byOrg !== undefined && !byOrg.allowed) {
    if (bySession !== undefined) limits.session!.refund(sessionKey!);
    return { decision: byOrg, scope: "org" };
  }
  if (byOrg === undefined) {
    return bySession === undefined ? null : { decision: bySession, scope: "session" };
  }
  if (bySession === undefined || byOrg.remaining < bySession.remaining) {
    return { decision: byOrg, scope: "org" };
  }
  return { decision: bySession, scope: "session" };
}

/**
 * The `X-RateLimit-*` headers of a decision (reset in whole seconds), and
 * `Retry-After` (whole seconds, at least 1) when it refused.
 *
 * @example
 * ```ts
 * import { rateLimitHeaders } from "./rate_limit.ts";
 *
 * const headers = rateLimitHeaders({
 *   allowed: false, limit: 10, windowMs: 60_000, remaining: 0, resetMs: 60_000, retryAfterMs: 5_500,
 * });
 * console.assert(headers["retry-after"] === "6" && headers["x-ratelimit-reset"] === "60");
 * ```
 */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  const headers: Record<string, string> = {
    "x-ratelimit-limit": String(decision.limit),
    "x-ratelimit-remaining": String(decision.remaining),
    "x-ratelimit-reset": String(Math.ceil(decision.resetMs / 1000)),
  };
  if (!decision.allowed) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  }
  return headers;
}
