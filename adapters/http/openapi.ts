// The OpenAPI 3.1 document of the HTTP API, built from the handler's route table so that the two cannot drift.

import { jsonResponse } from "./_json_response.ts";
import { OPERATIONS } from "./_openapi_operations.ts";
import { SCHEMAS } from "./_openapi_schemas.ts";
import { routeTemplate } from "./_route_template.ts";
import type { Route } from "./route.ts";

/** Options of {@linkcode openApiDocument}. */
export interface OpenApiOptions {
  /**
   * The API's version, in `info.version`.
   * @default {"0.1.0"}
   */
  version?: string;
}

type Json = Record<string, unknown>;

const RATE_HEADERS = {
  "X-RateLimit-Limit": { $ref: "#/components/headers/X-RateLimit-Limit" },
  "X-RateLimit-Remaining": { $ref: "#/components/headers/X-RateLimit-Remaining" },
  "X-RateLimit-Reset": { $ref: "#/components/headers/X-RateLimit-Reset" },
};

/**
 * Build the OpenAPI 3.1 document of `routes`: one path per route (its
 * template, e.g. `/v1/sessions/{session}/messages`) and one operation per
 * method, described by Troupe's table of operations. A route that table does
 * not describe still appears, marked `x-undocumented: true`, so a test can
 * refuse it. Authenticated routes (every one not marked `open`) carry the
 * bearer scheme, the `X-RateLimit-*` headers and the 401 and 429 answers;
 * routes that take a body carry 400, 408, 413 and 415.
 *
 * @example
 * ```ts
 * import { openApiDocument } from "./openapi.ts";
 *
 * const doc = openApiDocument([{ path: /^\/healthz$/, methods: { GET: () => Promise.resolve(new Response()) }, open: true }]);
 * console.assert(doc.openapi === "3.1.0" && "/healthz" in (doc.paths as object));
 * ```
 */
export function openApiDocument(
  routes: readonly Route[],
  options: OpenApiOptions = {},
): Record<string, unknown> {
  const { version = "0.1.0" } = options;
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const template = routeTemplate(route);
    const item: Json = paths[template] ?? {};
    for (const method of Object.keys(route.methods)) {
      item[method.toLowerCase()] = operation(`${method} ${template}`, route.open === true);
    }
    paths[template] = item;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Troupe",
      version,
      description:
        "Troupe's HTTP API: sessions whose messages are ordered, superseded and merged by a session actor, an OpenAI-compatible chat completions endpoint, usage, health and metrics. Every error answers `{ error: { code, message, field? } }`. When API keys exist every route but /healthz and /readyz needs `Authorization: Bearer <key>`, and an org sees only its own sessions, history and usage.",
    },
    security: [{ apiKey: [] }],
    tags: [
      { name: "sessions", description: "The native session API." },
      { name: "usage", description: "Token totals of an org." },
      { name: "openai", description: "OpenAI-compatible endpoints." },
      { name: "health", description: "Probes; open without a key." },
      { name: "operations", description: "Metrics and this document." },
    ],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        apiKey: {
          type: "http",
          scheme: "bearer",
          description:
            "A key made with `deno task keys create --org NAME`; it maps the caller to its org.",
        },
      },
      headers: {
        "X-RateLimit-Limit": header(
          "Requests allowed per window by the limit that is closest to refusing.",
        ),
        "X-RateLimit-Remaining": header("Requests left in the current window."),
        "X-RateLimit-Reset": header("Seconds until the window frees a request."),
        "Retry-After": header("Seconds to wait before trying again."),
      },
    },
  };
}

/**
 * The `GET /openapi.json` route: the document of the routes `routes()` returns
 * (read once, on the first request, so the route can be in the table it describes).
 *
 * @example
 * ```ts
 * import { openApiRoute } from "./openapi.ts";
 * import type { Route } from "./route.ts";
 *
 * const routes: Route[] = [];
 * routes.push(openApiRoute(() => routes));
 * const request = new Request("http://localhost/openapi.json");
 * const response = await routes[0]!.methods.GET!({ request, url: new URL(request.url), params: [], org: "default" });
 * console.assert((await response.json()).paths["/openapi.json"].get.operationId === "openApi");
 * ```
 */
export function openApiRoute(routes: () => readonly Route[], options: OpenApiOptions = {}): Route {
  let document: Json | null = null;
  return {
    path: /^\/openapi\.json$/,
    methods: {
      GET: () =>
        Promise.resolve(jsonResponse(200, document ??= openApiDocument(routes(), options))),
    },
  };
}

function operation(key: string, open: boolean): Json {
  const described = OPERATIONS[key];
  const base: Json = described === undefined
    ? { summary: `${key} (undocumented)`, "x-undocumented": true, responses: {} }
    : structuredClone(described);
  const responses = base.responses as Record<string, Json>;
  const openAi = (base.tags as string[] | undefined)?.includes("openai") === true;
  const errorSchema = openAi ? "OpenAiError" : "Error";
  const hasBody = base.requestBody !== undefined;
  const hasInput = hasBody || (base.parameters as unknown[] | undefined)?.length;
  if (hasInput) {
    responses["400"] ??= error(errorSchema, "Invalid input: the error names the field.");
  }
  if (hasBody) {
    responses["408"] ??= error(errorSchema, "The body did not all arrive in time.");
    responses["413"] ??= error(errorSchema, "The body is larger than the server's limit.");
    responses["415"] ??= error(errorSchema, "The body is not application/json.");
  }
  if (hasBody) {
    responses["503"] ??= {
      ...error(errorSchema, "Overloaded or shutting down; try again after Retry-After seconds."),
      headers: { "Retry-After": { $ref: "#/components/headers/Retry-After" } },
    };
  }
  if (open) {
    base.security = [];
    return base;
  }
  responses["401"] ??= error("Error", "No API key, or one that is not valid.");
  responses["429"] ??= {
    ...error("Error", "A rate limit of the org or the session is used up."),
    headers: { "Retry-After": { $ref: "#/components/headers/Retry-After" } },
  };
  for (const response of Object.values(responses)) {
    response.headers = { ...RATE_HEADERS, ...(response.headers as Json | undefined) };
  }
  return base;
}

function error(schema: string, description: string): Json {
  return {
    description,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } },
  };
}

function header(description: string): Json {
  return { description, schema: { type: "integer", minimum: 0 } };
}
