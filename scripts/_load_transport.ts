// The three ways the load driver can send a request: raw HTTP/1.1, node:http with a keep-alive Agent, or fetch.

import http from "node:http";
import { type PostResponse, type RawHttpClient, rawHttpClient } from "./_load_raw_http.ts";

export type { PostResponse };

/** How the driver talks HTTP: `raw` (the cheapest, the default), `node` or `fetch`. */
export type ClientKind = "raw" | "node" | "fetch";

/**
 * The client kinds, cheapest first.
 *
 * @example
 * ```ts
 * import { CLIENT_KINDS } from "./_load_transport.ts";
 *
 * console.assert(CLIENT_KINDS[0] === "raw");
 * ```
 */
export const CLIENT_KINDS: readonly ClientKind[] = ["raw", "node", "fetch"];

/** Sends POST requests to one origin, keeping connections alive: every client kind has the raw client's shape. */
export type Transport = RawHttpClient;

/**
 * A transport of the given kind for `origin` (`http://host:port`).
 *
 * @example
 * ```ts
 * import { createTransport } from "./_load_transport.ts";
 *
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response("ok"),
 * );
 * for (const kind of ["raw", "node", "fetch"] as const) {
 *   const transport = createTransport(kind, `http://127.0.0.1:${server.addr.port}`);
 *   const response = await transport.post("/", {}, "");
 *   transport.close();
 *   console.assert(response.status === 200 && response.body === "ok");
 * }
 * ```
 */
export function createTransport(kind: ClientKind, origin: string): Transport {
  switch (kind) {
    case "raw":
      return rawHttpClient(origin);
    case "node":
      return nodeTransport(origin);
    case "fetch":
      return fetchTransport(origin);
  }
}

function nodeTransport(origin: string): Transport {
  const url = new URL(origin);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 80);
  return {
    post(path, headers, body, signal) {
      return new Promise((resolve, reject) => {
        const request = http.request({
          hostname,
          port,
          path,
          method: "POST",
          agent,
          headers: { ...headers, "content-length": String(new TextEncoder().encode(body).length) },
          ...(signal === undefined ? {} : { signal }),
        }, (response) => {
          response.setEncoding("utf8");
          let text = "";
          response.on("data", (chunk: string) => text += chunk);
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
          response.on("error", reject);
        });
        request.on("error", (error) => reject(signal?.aborted ? signal.reason : error));
        request.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

function fetchTransport(origin: string): Transport {
  const base = origin.replace(/\/$/, "");
  return {
    async post(path, headers, body, signal) {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers,
        body,
        ...(signal === undefined ? {} : { signal }),
      });
      return { status: response.status, body: await response.text() };
    },
    close() {},
  };
}
