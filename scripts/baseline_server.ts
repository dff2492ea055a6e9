// The naive baseline the load report measures Troupe against: one request, one upstream call, nothing else.

/**
 * A server with Troupe's native message route and nothing behind it but one
 * upstream call per request: no session actors, no ordering, no history, no
 * events, no auth. It is the ceiling a server with more to do is read against.
 *
 * - `POST /v1/sessions/{session}/messages` with `{ content }` asks the upstream
 *   (an OpenAI-compatible `chat/completions`) with that one user message and answers
 *   the native Reply shape, `{ status: "completed", text, ... }`; with no upstream
 *   it answers at once with the content echoed (the 0 ms case).
 * - `POST /v1/chat/completions` forwards the body to the upstream as it is and
 *   answers what the upstream answered (with no upstream: an echo completion).
 * - `GET /healthz` answers `{ status: "ok" }`; anything else is a 404.
 *
 * Run it with `deno run --allow-net=127.0.0.1 scripts/baseline_server.ts --upstream
 * http://127.0.0.1:8080/v1` (or `--upstream none`); it prints `{"url":"http://127.0.0.1:PORT"}`
 * and stops on SIGINT or SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Options of {@linkcode startBaselineServer}. */
export interface BaselineServerOptions {
  /**
   * Base URL of the OpenAI-compatible upstream (e.g. `http://127.0.0.1:8080/v1`),
   * or `null` to answer every message at once with its content.
   * @default {null}
   */
  upstream?: string | null;
  /**
   * Port to listen on; 0 picks a free one.
   * @default {0}
   */
  port?: number;
  /**
   * Address to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The model asked of the upstream.
   * @default {"mock-model"}
   */
  model?: string;
}

/** A running baseline server; close it, or dispose of it with `await using`. */
export interface BaselineServer extends AsyncDisposable {
  /** Its origin, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Stop listening once the requests in flight are answered. Idempotent. */
  close(): Promise<void>;
}

const MESSAGES_PATH = /^\/v1\/sessions\/([^/]+)\/messages$/;

/**
 * Start the baseline server; it listens once this returns.
 *
 * @example The 0 ms case: an echo without an upstream
 * ```ts
 * import { startBaselineServer } from "./baseline_server.ts";
 *
 * await using server = startBaselineServer({ upstream: null });
 * const response = await fetch(`${server.url}/v1/sessions/s1/messages`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ content: "hello" }),
 * });
 * const reply = await response.json();
 * console.assert(reply.status === "completed" && reply.text === "hello");
 * ```
 */
export function startBaselineServer(options: BaselineServerOptions = {}): BaselineServer {
  const { upstream = null, port = 0, hostname = "127.0.0.1", model = "mock-model" } = options;
  if (upstream !== null && !/^https?:\/\//.test(upstream)) {
    throw new TypeError(
      `Cannot start the baseline server: upstream must be an http(s):// URL or null, current value is ${
        JSON.stringify(upstream)
      }`,
    );
  }
  const completionsUrl = upstream === null
    ? null
    : `${upstream.replace(/\/+$/, "")}/chat/completions`;
  let sequence = 0;

  async function message(request: Request, session: string): Promise<Response> {
    const content = await readContent(request);
    if (content instanceof Response) return content;
    const id = ++sequence;
    let text = content;
    let usage: unknown;
    if (completionsUrl !== null) {
      const answer = await fetch(completionsUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content }] }),
      });
      const body = await answer.json().catch(() => null);
      const reply = body?.choices?.[0]?.message?.content;
      if (!answer.ok || typeof reply !== "string") {
        return errorJson(502, "provider_error", `The upstream answered ${answer.status}`);
      }
      text = reply;
      usage = body.usage;
    }
    return Response.json({
      status: "completed",
      org: "default",
      session,
      messageId: `m${id}`,
      runId: `r${id}`,
      text,
      answered: [`m${id}`],
      ...(usage === undefined ? {} : { usage }),
    });
  }

  async function completion(request: Request): Promise<Response> {
    const body = await request.text();
    if (completionsUrl !== null) {
      const answer = await fetch(completionsUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      return new Response(await answer.text(), {
        status: answer.status,
        headers: { "content-type": answer.headers.get("content-type") ?? "application/json" },
      });
    }
    let messages: unknown;
    try {
      messages = JSON.parse(body)?.messages;
    } catch {
      return errorJson(400, "invalid_json", "Cannot read the body: it is not JSON");
    }
    const last = Array.isArray(messages) ? messages.at(-1)?.content : undefined;
    return Response.json({
      id: `chatcmpl-baseline${++sequence}`,
      object: "chat.completion",
      created: 0,
      model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: typeof last === "string" ? last : "" },
        finish_reason: "stop",
      }],
    });
  }

  const server = Deno.serve({ hostname, port, onListen() {} }, (request) => {
    const { pathname } = new URL(request.url);
    if (request.method === "POST") {
      if (pathname === "/v1/chat/completions") return completion(request);
      const match = MESSAGES_PATH.exec(pathname);
      const session = match === null ? null : safeDecode(match[1]!);
      if (session !== null) return message(request, session);
    }
    if (request.method === "GET" && pathname === "/healthz") return Response.json({ status: "ok" });
    return errorJson(404, "not_found", `Cannot ${request.method} ${pathname}: no such route`);
  });
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return {
    url: `http://${host}:${server.addr.port}`,
    port: server.addr.port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

async function readContent(request: Request): Promise<string | Response> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return errorJson(400, "invalid_json", "Cannot read the body: it is not JSON");
  }
  const content = (body as { content?: unknown } | null)?.content;
  if (typeof content !== "string" || content === "") {
    return errorJson(
      400,
      "invalid_input",
      "Cannot send: content must be a non-empty string",
      "content",
    );
  }
  return content;
}

function errorJson(status: number, code: string, message: string, field?: string): Response {
  return Response.json({ error: { code, message, ...(field === undefined ? {} : { field }) } }, {
    status,
  });
}

function main(args: string[]): void {
  let server: BaselineServer;
  try {
    const { values } = parseArgs({
      args,
      options: {
        upstream: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        model: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.upstream === undefined) {
      throw new TypeError("Cannot start the baseline server: --upstream URL (or none) is required");
    }
    const port = Number(values.port ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new RangeError(
        `Cannot parse --port: it must be 0–65535, current value is ${values.port}`,
      );
    }
    server = startBaselineServer({
      upstream: values.upstream === "none" ? null : values.upstream,
      port,
      ...(values.host === undefined ? {} : { hostname: values.host }),
      ...(values.model === undefined ? {} : { model: values.model }),
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(error instanceof TypeError || error instanceof RangeError ? 2 : 1);
  }
  console.log(JSON.stringify({ url: server.url }));
  const stop = () => {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    void server.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) main(Deno.args);
