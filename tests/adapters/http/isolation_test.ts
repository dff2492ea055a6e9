// Org isolation over real HTTP: with API keys of two orgs, neither sees the other's sessions, history or usage.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { eventually } from "../../_helpers/eventually.ts";
import { errorOf, jsonBody, startServer } from "./_server.ts";

// Long enough that a run is still in flight when the test acts on it; tests cancel it.
const IN_FLIGHT_MS = 60_000;

async function send(
  t: Awaited<ReturnType<typeof startServer>>,
  as: string,
  session: string,
  content: string,
): Promise<void> {
  const response = await t.call(`/v1/sessions/${session}/messages`, {
    as,
    ...jsonBody({ content }),
  });
  assertEquals(response.status, 200);
  assertEquals((await response.json()).status, "completed");
}

async function json(response: Response, status = 200): Promise<Record<string, unknown>> {
  assertEquals(response.status, status);
  return await response.json();
}

Deno.test("an org lists only its own sessions, even when another org uses the same session ids", async () => {
  await using t = await startServer();
  await send(t, "acme", "shared", "acme secret");
  await send(t, "acme", "acme-only", "acme plan");
  await send(t, "globex", "shared", "globex hello");
  const acme = await json(await t.call("/v1/sessions", { as: "acme" }));
  const globex = await json(await t.call("/v1/sessions", { as: "globex" }));
  assertEquals((acme.sessions as { session: string }[]).map((s) => s.session), [
    "acme-only",
    "shared",
  ]);
  assertEquals((globex.sessions as { session: string }[]).map((s) => s.session), ["shared"]);
  // An org in the query string is no way around the key's org.
  const smuggled = await json(await t.call("/v1/sessions?org=acme", { as: "globex" }));
  assertEquals(smuggled.sessions, globex.sessions);
});

Deno.test("an org reads only its own history of a session id both orgs use, and nothing of the other's sessions", async () => {
  await using t = await startServer();
  await send(t, "acme", "shared", "acme secret");
  await send(t, "acme", "acme-only", "acme plan");
  await send(t, "globex", "shared", "globex hello");
  const history = await json(await t.call("/v1/sessions/shared/messages", { as: "globex" }));
  const contents = (history.messages as { content: string }[]).map((m) => m.content);
  assertEquals(contents, ["globex hello", "globex hello"]);
  const other = await json(await t.call("/v1/sessions/acme-only/messages", { as: "globex" }));
  assertEquals(other, { messages: [], next: null });
  const own = await json(await t.call("/v1/sessions/shared/messages", { as: "acme" }));
  assertEquals((own.messages as { content: string }[])[0]!.content, "acme secret");
});

Deno.test("an org's usage totals count only its own calls, per session and per model", async () => {
  await using t = await startServer();
  await send(t, "acme", "shared", "one");
  await send(t, "acme", "acme-only", "two");
  await send(t, "acme", "acme-only", "three");
  await send(t, "globex", "shared", "four");
  const acme = await json(await t.call("/v1/usage?group_by=session", { as: "acme" }));
  const globex = await json(await t.call("/v1/usage?group_by=session", { as: "globex" }));
  const calls = (body: Record<string, unknown>) =>
    (body.totals as { key: string; calls: number }[]).map((row) => [row.key, row.calls]);
  assertEquals(calls(acme), [["acme-only", 2], ["shared", 1]]);
  assertEquals(calls(globex), [["shared", 1]]);
  const byModel = await json(await t.call("/v1/usage?group_by=model", { as: "acme" }));
  assertEquals((byModel.totals as { key: string; calls: number }[]).map((row) => row.calls), [3]);
  assertEquals((byModel.totals as { key: string }[])[0]!.key, t.llm.model);
  const all = await json(await t.call("/v1/usage", { as: "globex" }));
  assertEquals((all.totals as { calls: number }[]).map((row) => row.calls), [1]);
  assertEquals(all.groupBy, "none");
});

Deno.test("an org reads only its own audit trail of a session id both orgs use", async () => {
  await using t = await startServer();
  await send(t, "acme", "shared", "acme secret");
  await send(t, "globex", "shared", "globex hello");
  await send(t, "globex", "shared", "globex again");
  const read = async (as: string) =>
    (await json(await t.call("/v1/sessions/shared/events", { as }))).events as {
      org: string;
      type: string;
    }[];
  const acme = await read("acme");
  const globex = await read("globex");
  assert(acme.length > 0 && acme.every((e) => e.org === "acme"));
  assert(globex.every((e) => e.org === "globex"));
  const runs = (events: { type: string }[]) =>
    events.filter((e) => e.type === "run.completed").length;
  assertEquals([runs(acme), runs(globex)], [1, 2]);
  const smuggled = await json(
    await t.call("/v1/sessions/shared/events?org=acme", { as: "globex" }),
  );
  assertEquals(smuggled.events, globex);
});

Deno.test("an org cannot delete or cancel another org's session", async () => {
  await using t = await startServer({ llm: { latencyMs: IN_FLIGHT_MS } });
  const pending = t.call("/v1/sessions/busy/messages", {
    as: "acme",
    ...jsonBody({ content: "x" }),
  });
  await eventually("acme's run is in flight", () => t.llm.stats.inFlight === 1);
  const cancelled = await json(
    await t.call("/v1/sessions/busy/cancel", { as: "globex", method: "POST" }),
  );
  assertEquals(cancelled, { cancelled: 0 });
  const deleted = await t.call("/v1/sessions/busy", { as: "globex", method: "DELETE" });
  assertEquals(deleted.status, 204);
  await deleted.body?.cancel();
  assertEquals(t.llm.stats.inFlight, 1, "acme's run goes on");
  // acme's own cancel stops it.
  assertEquals(
    await json(await t.call("/v1/sessions/busy/cancel", { as: "acme", method: "POST" })),
    { cancelled: 1 },
  );
  assertEquals((await json(await pending)).status, "cancelled");
  const history = await json(await t.call("/v1/sessions/busy/messages", { as: "acme" }));
  assertEquals((history.messages as { content: string }[]).map((m) => m.content), ["x"]);
});

Deno.test("the org comes from the key only: a body naming an org is refused", async () => {
  await using t = await startServer();
  const response = await t.call("/v1/sessions/s1/messages", {
    as: "globex",
    ...jsonBody({ content: "hi", org: "acme" }),
  });
  assertEquals(response.status, 400);
  assertEquals((await errorOf(response)).field, "org");
  assertEquals(await json(await t.call("/v1/sessions", { as: "acme" })), {
    sessions: [],
    next: null,
  });
});

Deno.test("every route but health answers 401 with WWW-Authenticate without a valid key", async () => {
  await using t = await startServer();
  const routes: [string, string][] = [
    ["GET", "/v1/sessions"],
    ["DELETE", "/v1/sessions/s1"],
    ["GET", "/v1/sessions/s1/messages"],
    ["POST", "/v1/sessions/s1/messages"],
    ["GET", "/v1/sessions/s1/events"],
    ["POST", "/v1/sessions/s1/cancel"],
    ["GET", "/v1/usage"],
    ["GET", "/nope"],
  ];
  const wrong = t.keys.acme!.slice(0, -4) + "AAAA";
  const headers: [Record<string, string>, string][] = [
    [{}, "unauthorized"],
    [{ authorization: `Basic ${btoa("acme:x")}` }, "unauthorized"],
    [{ authorization: t.keys.acme! }, "unauthorized"],
    [{ authorization: "Bearer" }, "unauthorized"],
    [{ authorization: "Bearer not-a-key" }, "invalid_api_key"],
    [{ authorization: `Bearer ${wrong}` }, "invalid_api_key"],
    [{ authorization: `Bearer ${t.keys.acme} extra` }, "invalid_api_key"],
  ];
  for (const [method, path] of routes) {
    for (const [header, code] of headers) {
      const response = await t.call(path, {
        as: null,
        method,
        headers: { "content-type": "application/json", ...header },
        ...(method === "POST" ? { body: '{"content":"hi"}' } : {}),
      });
      assertEquals(response.status, 401, `${method} ${path} ${JSON.stringify(header)}`);
      assert(response.headers.get("www-authenticate")?.startsWith('Bearer realm="troupe"'));
      const error = await errorOf(response);
      assertEquals(error.code, code);
      // The message never repeats what was sent.
      assert(!error.message.includes(t.keys.acme!.slice(4, 20)), error.message);
    }
  }
  for (const path of ["/healthz", "/readyz"]) {
    const response = await t.call(path, { as: null });
    assertEquals(response.status, 200);
    await response.body?.cancel();
  }
  assertEquals(t.llm.stats.calls, 0, "nothing unauthenticated reached the runtime");
});

Deno.test("a revoked key is refused once the server reads the keys again", async () => {
  await using t = await startServer({ refreshMs: 20 });
  const ok = await t.call("/v1/sessions", { as: "acme" });
  assertEquals(ok.status, 200);
  await ok.body?.cancel();
  const [acme] = await t.store.apiKeys.list({ org: "acme" });
  assertEquals(await t.store.apiKeys.revoke(acme!.id, Date.now()), "revoked");
  await eventually("the revoked key is refused", async () => {
    const response = await t.call("/v1/sessions", { as: "acme" });
    await response.body?.cancel();
    return response.status === 401;
  });
  const globex = await t.call("/v1/sessions", { as: "globex" });
  assertEquals(globex.status, 200, "other keys still work");
  await globex.body?.cancel();
});

Deno.test("without keys auth is off (org default); a key created later turns it on", async () => {
  await using t = await startServer({ orgs: [], refreshMs: 20 });
  assert(!t.access.authOn);
  await send(t, "default", "s1", "open");
  const open = await json(await t.call("/v1/sessions", { as: null }));
  assertEquals((open.sessions as { session: string }[]).map((s) => s.session), ["s1"]);
  const { generateApiKey } = await import("../../../adapters/http/auth.ts");
  const { id, key, hash } = generateApiKey();
  await t.store.apiKeys.add({ id, org: "acme", hash, createdAt: Date.now() });
  await eventually("auth turns on", () => t.access.authOn);
  const refused = await t.call("/v1/sessions", { as: null });
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  const acme = await json(
    await t.call("/v1/sessions", { as: null, headers: { authorization: `Bearer ${key}` } }),
  );
  assertEquals(acme.sessions, [], "org default's sessions are not acme's");
  // Revoking every key locks everyone out; it never opens the server again.
  await t.store.apiKeys.revoke(id, Date.now());
  await eventually("the last key is refused", async () => {
    const response = await t.call("/v1/sessions", {
      as: null,
      headers: { authorization: `Bearer ${key}` },
    });
    await response.body?.cancel();
    return response.status === 401;
  });
  const still = await t.call("/v1/sessions", { as: null });
  assertEquals(still.status, 401);
  await still.body?.cancel();
});
