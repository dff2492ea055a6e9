// Starts the HTTP API as the server does (SQLite file, API keys, limits) on a real loopback port, for tests.

import { createRuntime, type Runtime, type RuntimeOptions } from "../../../actors/runtime.ts";
import { type ServerAccess, serverAccess } from "../../../adapters/http/access.ts";
import { generateApiKey } from "../../../adapters/http/auth.ts";
import { createHandler } from "../../../adapters/http/handler.ts";
import type { RateLimitAlgorithm } from "../../../adapters/http/rate_limit.ts";
import { type MockLlm, mockLlm, type MockLlmOptions } from "../../../adapters/llm/mock_llm.ts";
import { openStore } from "../../../adapters/store/open_store.ts";
import type { SqlStore } from "../../../adapters/store/sql_store.ts";

/** What {@linkcode startServer} starts. */
export interface ServerOptions {
  /** One API key is created for each org (none: auth stays off). @default {["acme", "globex"]} */
  orgs?: string[];
  /** The mock LLM's options. @default {{}} */
  llm?: MockLlmOptions;
  /** The runtime's options beyond the LLM and the store. @default {{}} */
  runtime?: Omit<RuntimeOptions, "llm">;
  /** Requests per session per window (0: none). @default {0} */
  sessionLimit?: number;
  /** Requests per org per window (0: none). @default {0} */
  orgLimit?: number;
  /** The rate-limit window. @default {60000} */
  windowMs?: number;
  /** The rate-limit algorithm. @default {"token-bucket"} */
  algorithm?: RateLimitAlgorithm;
  /** How often the keys are read again. @default {60000} */
  refreshMs?: number;
  /** The body limit. @default {1048576} */
  maxBodyBytes?: number;
  /** How long a body may take to arrive. @default {30000} */
  bodyTimeoutMs?: number;
}

/** A server on 127.0.0.1 and what it is made of. */
export interface TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  base: string;
  runtime: Runtime;
  llm: MockLlm;
  /** The key store's own connection to the SQLite file, as main.ts opens it. */
  store: SqlStore;
  access: ServerAccess;
  /** The key of each org. */
  keys: Record<string, string>;
  /** Errors the handler answered with a 500. */
  unexpected: unknown[];
  /** Set the server draining, as a signal does. */
  drain(): void;
  /** `fetch` a path, with `Authorization: Bearer` the key of `as` (an org), unless `as` is null. */
  call(path: string, init?: RequestInit & { as?: string | null }): Promise<Response>;
}

/** Start the server on a fresh SQLite file in a temp dir; disposing stops it and removes the dir. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const { orgs = ["acme", "globex"], windowMs = 60_000, refreshMs = 60_000 } = options;
  const dir = await Deno.makeTempDir({ prefix: "troupe-http-" });
  const path = `${dir}/troupe.db`;
  const store = await openStore(path);
  const keys: Record<string, string> = {};
  for (const org of orgs) {
    const { id, key, hash } = generateApiKey();
    await store.apiKeys.add({ id, org, hash, createdAt: Date.now() });
    keys[org] = key;
  }
  const llm = mockLlm(options.llm ?? {});
  const runtime = createRuntime({ llm, store: path, ...options.runtime });
  await runtime.ready();
  const access = await serverAccess({
    keys: store.apiKeys,
    sessionLimit: options.sessionLimit ?? 0,
    orgLimit: options.orgLimit ?? 0,
    windowMs,
    refreshMs,
    ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
  });
  const unexpected: unknown[] = [];
  let draining = false;
  const handler = createHandler({
    runtime,
    auth: access.auth,
    rateLimits: access.rateLimits,
    isDraining: () => draining,
    onError: (error) => unexpected.push(error),
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs: options.bodyTimeoutMs }),
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const base = `http://127.0.0.1:${server.addr.port}`;

  return {
    base,
    runtime,
    llm,
    store,
    access,
    keys,
    unexpected,
    drain: () => draining = true,
    call(path, init = {}) {
      const { as, ...rest } = init;
      const headers = new Headers(rest.headers);
      const org = as === undefined ? orgs[0] : as;
      if (org !== null && org !== undefined) headers.set("authorization", `Bearer ${keys[org]}`);
      return fetch(`${base}${path}`, { ...rest, headers });
    },
    async [Symbol.asyncDispose]() {
      await runtime.shutdown({ graceMs: 0 });
      await server.shutdown();
      await access.close();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A JSON POST body and headers. */
export function jsonBody(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/** The error body of a response, checked to have the shape every error has. */
export async function errorOf(
  response: Response,
): Promise<{ code: string; message: string; field?: string }> {
  const body = await response.json();
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== "error") {
    throw new Error(`Expected { error }, got ${JSON.stringify(body)}`);
  }
  const { code, message, field, ...rest } = body.error;
  if (typeof code !== "string" || typeof message !== "string" || Object.keys(rest).length > 0) {
    throw new Error(`Expected { error: { code, message, field? } }, got ${JSON.stringify(body)}`);
  }
  if (field !== undefined && typeof field !== "string") {
    throw new Error(`Expected field to be a string, got ${JSON.stringify(body)}`);
  }
  return body.error;
}
