// Turns a route's path pattern into its template ("/v1/sessions/{session}/messages"), for metrics and OpenAPI.

import type { Route } from "./route.ts";

const templates = new WeakMap<Route, string>();

/**
 * The template of a route's path pattern: `^` and `$` dropped, `\/` read as
 * `/`, and each `([^/]+)` group named after the segment before it in the
 * singular (`sessions/([^/]+)` is `sessions/{session}`) or by its own name
 * (`(?<id>[^/]+)` is `{id}`). A pattern that holds anything else a template
 * cannot say throws a `TypeError`, so a route that could never be documented
 * is found by the first test that lists the routes.
 *
 * @example
 * ```ts
 * import { routeTemplate } from "./_route_template.ts";
 *
 * const route = { path: /^\/v1\/sessions\/([^/]+)\/messages$/, methods: {} };
 * console.assert(routeTemplate(route) === "/v1/sessions/{session}/messages");
 * ```
 */
export function routeTemplate(route: Route): string {
  const known = templates.get(route);
  if (known !== undefined) return known;
  const source = route.path.source;
  if (!source.startsWith("^") || !source.endsWith("$")) {
    throw new TypeError(
      `Cannot name the route: its pattern must be anchored with ^ and $, current value is /${source}/`,
    );
  }
  const segments = source.slice(1, -1).split("\\/");
  const parts: string[] = [];
  for (const segment of segments) {
    const named = /^\(\?<([A-Za-z_][A-Za-z0-9_]*)>\[\^\/\]\+\)$/.exec(segment);
    if (named !== null) {
      parts.push(`{${named[1]}}`);
    } else if (segment === "([^/]+)") {
      const before = parts[parts.length - 1] ?? "";
      if (!/^[a-z_]+s$/.test(before)) {
        throw new TypeError(
          `Cannot name the route's parameter: it must follow a plural segment or be named (?<name>[^/]+), current pattern is /${source}/`,
        );
      }
      parts.push(`{${before.slice(0, -1)}}`);
    } else {
      // An escaped dot is text; any other pattern syntax is something a template cannot say.
      if (/[\\^$.*+?()[\]{}|]/.test(segment.replaceAll("\\.", ""))) {
        throw new TypeError(
          `Cannot name the route: a segment must be literal text or one parameter, current segment is ${
            JSON.stringify(segment)
          } in /${source}/`,
        );
      }
      parts.push(segment.replaceAll("\\.", "."));
    }
  }
  const template = parts.join("/");
  templates.set(route, template);
  return template;
}
