// The wire shapes the load driver speaks: how a message is sent on each API and how its answer is read.

import type { PostResponse } from "./_load_transport.ts";

/**
 * The API a load targets: Troupe's `native` sessions API, its OpenAI-compatible
 * `openai` endpoint, or the naive `baseline` server (the native shapes).
 */
export type LoadApi = "native" | "openai" | "baseline";

/**
 * The APIs, in the order of {@linkcode LoadApi}.
 *
 * @example
 * ```ts
 * import { LOAD_APIS } from "./_load_api.ts";
 *
 * console.assert(LOAD_APIS.includes("openai"));
 * ```
 */
export const LOAD_APIS: readonly LoadApi[] = ["native", "openai", "baseline"];

/** One message as an HTTP request. */
export interface ApiRequest {
  /** The path, with the session in it for the native shapes. */
  path: string;
  /** The headers besides `host` and `content-length`. */
  headers: Record<string, string>;
  /** The JSON body. */
  body: string;
}

/** How one request ended, as the driver counts it. */
export type Outcome =
  | { kind: "completed" }
  | { kind: "superseded" }
  | { kind: "error"; key: string };

/**
 * The request that sends `content` on `session` through `api`. A `null`
 * session on the `openai` API sends no `X-Session-Id` (a one-shot call).
 *
 * @example
 * ```ts
 * import { apiRequest } from "./_load_api.ts";
 *
 * const native = apiRequest("native", "s 1", "hi", { model: "m" });
 * console.assert(native.path === "/v1/sessions/s%201/messages");
 * const openai = apiRequest("openai", "s1", "hi", { model: "m", apiKey: "k" });
 * console.assert(openai.headers["x-session-id"] === "s1");
 * console.assert(openai.headers.authorization === "Bearer k");
 * ```
 */
export function apiRequest(
  api: LoadApi,
  session: string | null,
  content: string,
  options: { model: string; apiKey?: string },
): ApiRequest {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
  if (api === "openai") {
    if (session !== null) headers["x-session-id"] = session;
    return {
      path: "/v1/chat/completions",
      headers,
      body: JSON.stringify({ model: options.model, messages: [{ role: "user", content }] }),
    };
  }
  if (session === null) {
    throw new TypeError(`Cannot build the request: the ${api} API needs a session`);
  }
  return {
    path: `/v1/sessions/${encodeURIComponent(session)}/messages`,
    headers,
    body: JSON.stringify({ content }),
  };
}

/**
 * Read a response: a completed answer, a superseded message (the native Reply's
 * `status: "superseded"`, or the OpenAI endpoint's 409 `superseded`), or an error
 * keyed by what went wrong, e.g. `"http 429 rate_limited"` or `"reply failed provider_error"`.
 *
 * @example
 * ```ts
 * import { classifyResponse } from "./_load_api.ts";
 *
 * const superseded = classifyResponse("native", { status: 200, body: '{"status":"superseded"}' });
 * console.assert(superseded.kind === "superseded");
 * const busy = classifyResponse("openai", {
 *   status: 503,
 *   body: '{"error":{"code":"overloaded","message":"busy"}}',
 * });
 * console.assert(busy.kind === "error" && busy.key === "http 503 overloaded");
 * ```
 */
export function classifyResponse(api: LoadApi, response: PostResponse): Outcome {
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    return { kind: "error", key: `http ${response.status} unparseable body` };
  }
  const record = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (response.status === 200) {
    if (api === "openai") return { kind: "completed" };
    if (record.status === "completed") return { kind: "completed" };
    if (record.status === "superseded") return { kind: "superseded" };
    const code = errorCode(record);
    return { kind: "error", key: `reply ${String(record.status)}${code ? ` ${code}` : ""}` };
  }
  const code = errorCode(record);
  if (api === "openai" && response.status === 409 && code === "superseded") {
    return { kind: "superseded" };
  }
  return { kind: "error", key: `http ${response.status}${code ? ` ${code}` : ""}` };
}

function errorCode(record: Record<string, unknown>): string | undefined {
  const error = record.error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, type } = error as Record<string, unknown>;
  return typeof code === "string" ? code : typeof type === "string" ? type : undefined;
}
