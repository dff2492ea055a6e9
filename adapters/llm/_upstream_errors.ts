// Turns what an upstream refused or failed into a ProviderError that says whether to retry, and when, without secrets.

import { ProviderError } from "../../actors/errors.ts";

/** The longest upstream error text kept in a message. */
const MAX_DETAIL = 300;
/** The most of an error body read to find its message. */
const MAX_ERROR_BODY = 16_384;

/**
 * Whether a request that got this HTTP status may succeed if sent again:
 * 408 (timeout), 409 (conflict), 429 (rate limit) and every 5xx may; other
 * statuses will not change on their own.
 *
 * @example
 * ```ts
 * import { isRetryableStatus } from "./_upstream_errors.ts";
 *
 * console.assert(isRetryableStatus(429) && isRetryableStatus(503) && !isRetryableStatus(400));
 * ```
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * How long the upstream asks to wait, in ms: `retry-after-ms` (sent by
 * OpenAI and Azure) first, else `Retry-After` as seconds (a decimal is
 * accepted) or an HTTP date. A date in the past gives 0; absent or
 * unreadable gives `undefined`.
 *
 * @param headers The response headers.
 * @param nowMs The time now, in ms since the epoch, to measure a date from.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "./_upstream_errors.ts";
 *
 * console.assert(parseRetryAfter(new Headers({ "retry-after": "2" }), 0) === 2000);
 * const date = new Headers({ "retry-after": "Wed, 21 Oct 2015 07:28:05 GMT" });
 * console.assert(parseRetryAfter(date, Date.UTC(2015, 9, 21, 7, 28, 0)) === 5000);
 * ```
 */
export function parseRetryAfter(headers: Headers, nowMs: number): number | undefined {
  const ms = decimal(headers.get("retry-after-ms"));
  if (ms !== undefined) return Math.ceil(ms);
  const value = headers.get("retry-after")?.trim();
  if (value === undefined || value === "") return undefined;
  const seconds = decimal(value);
  if (seconds !== undefined) return Math.ceil(seconds * 1000);
  // An HTTP date names its day and month; without letters, Date.parse would read "-1" as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function decimal(value: string | null): number | undefined {
  if (value === null || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Make a function that replaces every secret (an API key, an auth header's
 * value) in a text by `[redacted]`, so that nothing an upstream echoes back
 * reaches an error, a log or an event. Secrets shorter than 4 characters are
 * ignored: replacing them would garble the text and they guard nothing.
 *
 * @example
 * ```ts
 * import { redactor } from "./_upstream_errors.ts";
 *
 * const redact = redactor(["sk-secret"]);
 * console.assert(redact("Incorrect API key provided: sk-secret") === "Incorrect API key provided: [redacted]");
 * ```
 */
export function redactor(secrets: Array<string | undefined>): (text: string) => string {
  const kept = [...new Set(secrets.filter((s): s is string => s !== undefined && s.length >= 4))]
    .sort((a, b) => b.length - a.length);
  if (kept.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const secret of kept) out = out.replaceAll(secret, "[redacted]");
    return out;
  };
}

/**
 * A URL as it may be shown: scheme, host and path, without credentials or a
 * query (where some vendors take the key, `?key=...`).
 *
 * @example
 * ```ts
 * import { shownUrl } from "./_upstream_errors.ts";
 *
 * console.assert(shownUrl("https://u:p@example.com/v1/chat?key=k") === "https://example.com/v1/chat");
 * ```
 */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(an invalid URL)";
  }
}

/** What {@linkcode statusError} needs besides the response. */
export interface StatusErrorContext {
  /** The URL as it may be shown. */
  url: string;
  /** Removes secrets from text. */
  redact: (text: string) => string;
  /** The time now, in ms since the epoch. */
  nowMs: number;
}

/**
 * The error for a response that is not a success: its status, whether a
 * retry may help, the upstream's `Retry-After` and the upstream's own message
 * (from an OpenAI, Anthropic or Gemini error body, else its text), with
 * secrets removed. Reads (at most 16 KiB of) the body and releases it.
 *
 * @example
 * ```ts
 * import { statusError } from "./_upstream_errors.ts";
 *
 * const response = Response.json(
 *   { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } },
 *   { status: 429, headers: { "retry-after": "3" } },
 * );
 * const error = await statusError(response, { url: "http://x/v1", redact: (t) => t, nowMs: 0 });
 * console.assert(error.retryable && error.status === 429 && error.retryAfterMs === 3000);
 * console.assert(error.message.includes("Rate limit reached"));
 * ```
 */
export async function statusError(
  response: Response,
  context: StatusErrorContext,
): Promise<ProviderError> {
  const { status } = response;
  const retryAfterMs = parseRetryAfter(response.headers, context.nowMs);
  const detail = context.redact(upstreamMessage(await readSome(response)));
  const said = detail === "" ? "" : `: ${detail}`;
  const message =
    `Cannot complete the chat: ${context.url} answered ${status} ${response.statusText}`.trimEnd() +
    said + (status === 404 && !VERSIONED_PATH.test(context.url) ? MISSING_VERSION_HINT : "");
  return new ProviderError(message, {
    retryable: isRetryableStatus(status),
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** A path with an API version segment, as in `/v1/` or `/v1beta/`. */
const VERSIONED_PATH = /\/v\d+[a-z0-9]*\//i;
/** A 404 from a base URL without a version is most often a base URL missing its `/v1`. */
const MISSING_VERSION_HINT =
  " (the base URL has no version segment: OpenAI-compatible servers usually answer at <base>/v1/chat/completions)";

async function readSome(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < MAX_ERROR_BODY) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A body cut short still says what it managed to.
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}

/**
 * The message inside an error body: `{ error: { message } }` (OpenAI,
 * Anthropic, Gemini), `{ error: "..." }`, `{ message }` or `{ detail }`;
 * else the text itself. Shortened to 300 characters, on one line.
 *
 * @example
 * ```ts
 * import { upstreamMessage } from "./_upstream_errors.ts";
 *
 * console.assert(upstreamMessage('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}') === "Overloaded");
 * ```
 */
export function upstreamMessage(text: string): string {
  let found: unknown = text;
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null) {
      const { error, message, detail } = body as Record<string, unknown>;
      const nested = typeof error === "object" && error !== null
        ? (error as Record<string, unknown>).message
        : undefined;
      found = [nested, error, message, detail].find((v) => typeof v === "string") ?? text;
    }
  } catch {
    // Not JSON: the text is the message.
  }
  const line = String(found).replace(/\s+/g, " ").trim();
  return line.length > MAX_DETAIL ? `${line.slice(0, MAX_DETAIL)}…` : line;
}

/**
 * A stable code for an error, for attempt reports: its own `code` when it has
 * one (Troupe's errors do), `cancelled` for an `AbortError`, `timeout` for a
 * `TimeoutError`, else `unknown`.
 *
 * @example
 * ```ts
 * import { errorCode } from "./_upstream_errors.ts";
 *
 * console.assert(errorCode(new DOMException("late", "TimeoutError")) === "timeout");
 * console.assert(errorCode(new Error("?")) === "unknown");
 * ```
 */
export function errorCode(error: unknown): string {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (typeof code === "string" && code !== "") return code;
  if (name === "AbortError") return "cancelled";
  return name === "TimeoutError" ? "timeout" : "unknown";
}

/**
 * What an error says, for people: its message, or the thrown value as text.
 *
 * @example
 * ```ts
 * import { errorText } from "./_upstream_errors.ts";
 *
 * console.assert(errorText(new Error("down")) === "down" && errorText("odd") === "odd");
 * ```
 */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
