// /openapi.json: valid OpenAPI 3.1, exactly the handler's routes, and schemas that the real responses meet.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { createRuntime, type Runtime } from "../../../actors/runtime.ts";
import { createHandler, type Handler } from "../../../adapters/http/handler.ts";
import { OPERATIONS } from "../../../adapters/http/_openapi_operations.ts";
import { openApiDocument } from "../../../adapters/http/openapi.ts";
import { routeTemplate } from "../../../adapters/http/_route_template.ts";
import { mockLlm } from "../../../adapters/llm/mock_llm.ts";

const BASE = "http://troupe.test";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; "x-undocumented"?: boolean }>>;
};

interface Setup extends AsyncDisposable {
  runtime: Runtime;
  handler: Handler;
  doc: Doc;
}

async function setup(): Promise<Setup> {
  // A SQL store, so that every route (usage, session lists) can answer.
  const runtime = createRuntime({ llm: mockLlm(), store: ":memory:" });
  await runtime.ready();
  const handler = createHandler({ runtime });
  const response = await handler(new Request(`${BASE}/openapi.json`));
  assertEquals(response.status, 200);
  return {
    runtime,
    handler,
    doc: await response.json(),
    [Symbol.asyncDispose]: () => runtime.shutdown({ graceMs: 0 }),
  };
}

/** Every `METHOD /template` of a document. */
function operationsOf(doc: Doc): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`)
  ).sort();
}

/** A concrete path for a template. */
function concrete(template: string): string {
  return template.replace(/\{[^}]+\}/g, "s1");
}

Deno.test("/openapi.json is a valid OpenAPI 3.1 document", async () => {
  await using t = await setup();
  const validator = new Validator();
  const result = await validator.validate(t.doc);
  assert(result.valid, JSON.stringify(result.errors, null, 2));
  assertEquals(validator.version, "3.1");
});

Deno.test("the document lists every route the handler serves, each one described, and nothing else", async () => {
  await using t = await setup();
  const listed = operationsOf(t.doc);
  const undocumented = listed.filter((key) => {
    const [method, path] = key.split(" ") as [string, string];
    return t.doc.paths[path]![method.toLowerCase()]!["x-undocumented"] === true;
  });
  assertEquals(undocumented, [], "routes without an entry in _openapi_operations.ts");
  // Every described operation is one the handler serves (none left over from a removed route).
  assertEquals(listed, Object.keys(OPERATIONS).sort());
  // And the handler answers each one: neither 404 (no route) nor 405 (no such method).
  for (const key of listed) {
    const [method, template] = key.split(" ") as [string, string];
    const response = await t.handler(new Request(`${BASE}${concrete(template)}`, { method }));
    await response.body?.cancel();
    assert(![404, 405].includes(response.status), `${key} answered ${response.status}`);
  }
  // And a path the document does not list is not served.
  const response = await t.handler(new Request(`${BASE}/v1/not-documented`));
  await response.body?.cancel();
  assertEquals(response.status, 404);
});

Deno.test("only the health probes are open; every other operation needs the bearer key", async () => {
  await using t = await setup();
  const open = operationsOf(t.doc).filter((key) => {
    const [method, path] = key.split(" ") as [string, string];
    const security = t.doc.paths[path]![method.toLowerCase()]!.security;
    return Array.isArray(security) && security.length === 0;
  });
  assertEquals(open, ["GET /healthz", "GET /readyz"]);
});

Deno.test("a route the operations table does not describe is marked undocumented", () => {
  const noop = () => Promise.resolve(new Response());
  const doc = openApiDocument([
    { path: /^\/v1\/widgets\/([^/]+)$/, methods: { PUT: noop } },
  ]) as unknown as Doc;
  assertEquals(doc.paths["/v1/widgets/{widget}"]!.put!["x-undocumented"], true);
});

Deno.test("route templates: plural segments name their parameter; anything else a template cannot say throws", () => {
  const noop = {};
  assertEquals(
    routeTemplate({ path: /^\/v1\/sessions\/([^/]+)\/cancel$/, methods: noop }),
    "/v1/sessions/{session}/cancel",
  );
  assertEquals(
    routeTemplate({ path: /^\/v1\/x\/(?<thing>[^/]+)$/, methods: noop }),
    "/v1/x/{thing}",
  );
  assertEquals(routeTemplate({ path: /^\/openapi\.json$/, methods: noop }), "/openapi.json");
  for (const path of [/\/healthz/, /^\/a\/(\d+)$/, /^\/v1\/x\/([^/]+)$/, /^\/a|b$/]) {
    try {
      routeTemplate({ path, methods: noop });
      assert(false, `expected /${path.source}/ to be refused`);
    } catch (error) {
      assert(
        error instanceof TypeError && error.message.startsWith("Cannot name the route"),
        String(error),
      );
    }
  }
});

Deno.test("real responses of every route meet the schemas the document gives them", async () => {
  await using t = await setup();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(t.doc, "https://troupe.test/openapi.json");
  const pointer = (...segments: string[]) =>
    segments.map((s) => encodeURIComponent(s.replaceAll("~", "~0").replaceAll("/", "~1"))).join(
      "/",
    );

  async function check(
    method: string,
    template: string,
    init: RequestInit & { path?: string } = {},
  ) {
    const response = await t.handler(
      new Request(`${BASE}${init.path ?? concrete(template)}`, { method, ...init }),
    );
    const status = String(response.status);
    const documented = (t.doc.paths[template]![method.toLowerCase()] as {
      responses: Record<string, { content?: Record<string, unknown> }>;
    }).responses[status];
    assert(
      documented !== undefined,
      `${method} ${template} answered ${status}, which is not documented`,
    );
    const type = response.headers.get("content-type")?.split(";")[0] ?? null;
    if (type === null) {
      assertEquals(documented.content, undefined);
      return status;
    }
    assert(
      documented.content?.[type] !== undefined,
      `${method} ${template} ${status} ${type} is documented`,
    );
    if (type !== "application/json") {
      await response.body?.cancel();
      return status;
    }
    const validate = ajv.getSchema(
      `https://troupe.test/openapi.json#/${
        pointer(
          "paths",
          template,
          method.toLowerCase(),
          "responses",
          status,
          "content",
          type,
          "schema",
        )
      }`,
    )!;
    const body = await response.json();
    assert(
      validate(body),
      `${method} ${template} ${status}: ${JSON.stringify(validate.errors)} in ${
        JSON.stringify(body)
      }`,
    );
    return status;
  }
  const json = (body: unknown, headers: Record<string, string> = {}) => ({
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const messages = "/v1/sessions/{session}/messages";
  const chat = "/v1/chat/completions";

  assertEquals(await check("GET", "/healthz"), "200");
  assertEquals(await check("GET", "/readyz"), "200");
  assertEquals(await check("POST", messages, json({ content: "hello" })), "200");
  assertEquals(await check("POST", messages, json({ content: "" })), "400");
  assertEquals(await check("POST", messages, { body: "{}" }), "415");
  assertEquals(await check("GET", messages), "200");
  assertEquals(await check("GET", messages, { path: "/v1/sessions/s1/messages?limit=0" }), "400");
  assertEquals(await check("POST", "/v1/sessions/{session}/cancel"), "200");
  assertEquals(await check("GET", "/v1/sessions"), "200");
  assertEquals(await check("GET", "/v1/usage", { path: "/v1/usage?group_by=model" }), "200");
  assertEquals(await check("GET", "/v1/usage", { path: "/v1/usage?group_by=day" }), "400");
  const events = "/v1/sessions/{session}/events";
  assertEquals(await check("GET", events, { path: "/v1/sessions/s1/events?limit=2" }), "200");
  assertEquals(await check("GET", events, { path: "/v1/sessions/s1/events?limit=0" }), "400");
  assertEquals(await check("DELETE", "/v1/sessions/{session}"), "204");
  const ask = { model: "m", messages: [{ role: "user", content: "hi" }] };
  assertEquals(await check("POST", chat, json(ask, { "x-session-id": "s2" })), "200");
  assertEquals(await check("POST", chat, json({ ...ask, stream: true })), "200");
  assertEquals(await check("POST", chat, json({ model: "m", messages: [] })), "400");
  assertEquals(await check("GET", "/v1/models"), "200");
  assertEquals(await check("GET", "/metrics"), "200");
  assertEquals(await check("GET", "/openapi.json"), "200");

  // Each chunk of a stream meets ChatCompletionChunk.
  const chunk = ajv.getSchema(
    "https://troupe.test/openapi.json#/components/schemas/ChatCompletionChunk",
  )!;
  const stream = await t.handler(
    new Request(`${BASE}${chat}`, {
      method: "POST",
      ...json({ ...ask, stream: true, stream_options: { include_usage: true } }),
    }),
  );
  const frames = (await stream.text()).trim().split("\n\n").map((f) => f.slice("data: ".length));
  assertEquals(frames.pop(), "[DONE]");
  for (const frame of frames) {
    assert(chunk(JSON.parse(frame)), `${frame}: ${JSON.stringify(chunk.errors)}`);
  }
});

Deno.test("docs/api.md documents every operation the server serves", async () => {
  await using t = await setup();
  const docs = await Deno.readTextFile(new URL("../../../docs/api.md", import.meta.url));
  const missing = operationsOf(t.doc).filter((op) =>
    !docs.includes(`\`${op}\``) && !docs.includes(`\`${op}?`)
  );
  assertEquals(missing, [], "operations docs/api.md does not name as `METHOD /path`");
});
