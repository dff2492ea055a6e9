// The native API's org-level routes: list the org's sessions, delete one, read one's audit trail,
// total the org's usage.

import { InvalidInputError } from "../../actors/errors.ts";
import type { Runtime } from "../../actors/runtime.ts";
import { jsonResponse } from "./_json_response.ts";
import type { Route, RouteContext } from "./route.ts";

const GROUPS = ["session", "model", "none"] as const;

/**
 * The routes that act on an org's sessions as a whole, every one scoped to
 * the caller's org (`RouteContext.org`):
 *
 * - `GET /v1/sessions?limit&after` answers `{ sessions: [{ session,
 *   createdAt, lastSeenAt }], next }`, sessions by id, `next` the cursor of
 *   the following page (`null` on the last).
 * - `DELETE /v1/sessions/{session}` cancels the session's run and queue,
 *   stops its actor, deletes its history and state, and answers 204, whether
 *   or not the session existed (deleting is idempotent).
 * - `GET /v1/sessions/{session}/events?limit&before` answers `{ events, next }`:
 *   the session's audit trail as stored (every event, a deleted session's
 *   too), newest page first and events within a page oldest first, `next` the
 *   cursor of the older page (`null` at the start). Like usage, it first waits
 *   for the events emitted before the request to be stored.
 * - `GET /v1/usage?from&to&group_by=session|model` answers `{ groupBy, from,
 *   to, totals: [{ key, calls, inputTokens, outputTokens, cachedTokens,
 *   reasoningTokens, totalTokens }] }`; `from` and `to` are ms since the epoch
 *   or ISO 8601 dates, `from` inclusive, `to` exclusive.
 *
 * @example
 * ```ts
 * import { sessionRoutes } from "./session_routes.ts";
 * import { createRuntime } from "../../actors/runtime.ts";
 *
 * await using runtime = createRuntime();
 * await runtime.send({ session: "s1", content: "hi" });
 * const routes = sessionRoutes(runtime);
 * const list = routes.find((route) => route.path.test("/v1/sessions"))!;
 * const url = new URL("http://localhost/v1/sessions?limit=10");
 * const response = await list.methods.GET!({ request: new Request(url), url, params: [], org: "default" });
 * const page = await response.json();
 * console.assert(page.sessions[0].session === "s1" && page.next === null);
 * ```
 */
export function sessionRoutes(runtime: Runtime): Route[] {
  async function list({ url, org }: RouteContext): Promise<Response> {
    const page = await runtime.sessions({ org, ...pageQuery(url, "after", "list sessions") });
    return jsonResponse(200, page);
  }

  async function remove({ org, params }: RouteContext): Promise<Response> {
    await runtime.deleteSession({ org, session: params[0]! });
    return new Response(null, { status: 204 });
  }

  async function events({ url, org, params }: RouteContext): Promise<Response> {
    const page = await runtime.audit({
      org,
      session: params[0]!,
      ...pageQuery(url, "before", "read the audit trail"),
    });
    return jsonResponse(200, page);
  }

  async function usage({ url, org }: RouteContext): Promise<Response> {
    const from = instant(url.searchParams.get("from"), "from");
    const to = instant(url.searchParams.get("to"), "to");
    if (from !== null && to !== null && to < from) {
      throw new InvalidInputError(
        "to",
        `Cannot read usage: to must not be before from, current values are from=${from} and to=${to}`,
      );
    }
    const groupBy = group(url.searchParams.get("group_by"));
    const totals = await runtime.usage({
      org,
      groupBy,
      ...(from === null ? {} : { from }),
      ...(to === null ? {} : { to }),
    });
    return jsonResponse(200, { groupBy, from, to, totals });
  }

  return [
    { path: /^\/v1\/sessions$/, methods: { GET: list } },
    { path: /^\/v1\/sessions\/([^/]+)$/, methods: { DELETE: remove } },
    { path: /^\/v1\/sessions\/([^/]+)\/events$/, methods: { GET: events } },
    { path: /^\/v1\/usage$/, methods: { GET: usage } },
  ];
}

/**
 * The page a list route's query asks for: `limit` (a whole number; the
 * runtime checks its range) and the cursor (`before` or `after`), each only
 * when given.
 */
export function pageQuery<C extends "before" | "after">(
  url: URL,
  cursor: C,
  action: string,
): { limit?: number } & { [K in C]?: string } {
  const limit = url.searchParams.get("limit");
  const at = url.searchParams.get(cursor);
  return {
    ...(limit === null ? {} : { limit: wholeNumber("limit", limit, action) }),
    ...(at === null ? {} : { [cursor]: at }),
  } as { limit?: number } & { [K in C]?: string };
}

function wholeNumber(field: string, text: string, action: string): number {
  if (!/^\d{1,15}$/.test(text)) {
    throw new InvalidInputError(
      field,
      `Cannot ${action}: ${field} must be a whole number, current value is ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  return Number(text);
}

/** A time as ms since the epoch, from digits or an ISO 8601 date; `null` when absent. */
function instant(text: string | null, field: string): number | null {
  if (text === null) return null;
  if (/^\d{1,15}$/.test(text)) return Number(text);
  // Date.parse takes more than ISO 8601 (e.g. "March 7"); the pattern keeps it to ISO dates.
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)
    ? Date.parse(text)
    : NaN;
  if (Number.isNaN(ms)) {
    throw new InvalidInputError(
      field,
      `Cannot read usage: ${field} must be ms since the epoch or an ISO 8601 date such as 2025-01-31T00:00:00Z, current value is ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  return ms;
}

function group(text: string | null): (typeof GROUPS)[number] {
  if (text === null) return "none";
  if (!(GROUPS as readonly string[]).includes(text)) {
    throw new InvalidInputError(
      "group_by",
      `Cannot read usage: group_by must be one of ${GROUPS.join(", ")}, current value is ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  return text as (typeof GROUPS)[number];
}
