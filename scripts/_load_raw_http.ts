// A minimal HTTP/1.1 keep-alive client over Deno.connect: the load driver's cheapest way to send a POST.
//
// Why it exists: on this 2-core machine the driver shares the CPU with the server it
// measures, so every microsecond the client spends per request is taken from the server.
// Against a bare Deno.serve, keep-alive `fetch` reached ≈ 23,000 requests/s, node:http
// with a keep-alive Agent ≈ 34,000, and this client ≈ 70,000–90,000 (64–128 connections).
// It speaks only what the driver needs: one request at a time per connection (no
// pipelining), bodies framed by Content-Length, chunked encoding or the connection's end.

import { concatBytes } from "../adapters/_body.ts";

/** A response as the driver needs it: the status and the whole body as text. */
export interface PostResponse {
  /** The HTTP status code. */
  status: number;
  /** The body, decoded as UTF-8. */
  body: string;
}

/** Sends POST requests to one origin over pooled keep-alive connections. */
export interface RawHttpClient {
  /** POST `body` to `path`; rejects with `signal.reason` if the signal aborts first. */
  post(
    path: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<PostResponse>;
  /** Close idle connections now, busy ones when their response is in. */
  close(): void;
}

interface Connection {
  tcp: Deno.TcpConn;
  buf: Uint8Array;
  /** Offset of the first unread byte. */
  start: number;
  /** Offset one past the last byte read. */
  end: number;
}

/** The server closed the connection before a response; a reused connection may be retried. */
class ClosedEarlyError extends Error {
  override name = "ClosedEarlyError";
  constructor(readonly gotBytes: boolean) {
    super("Cannot read the response: the server closed the connection");
  }
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder();
const latin1 = new TextDecoder("latin1");
const CR = 13;
const LF = 10;

/**
 * A client for `origin` (`http://host:port`, no path). Connections open on demand,
 * as many as there are requests in flight, and are reused once their response is in.
 *
 * @example
 * ```ts
 * import { rawHttpClient } from "./_load_raw_http.ts";
 *
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => new Response(`got ${await request.text()}`),
 * );
 * const client = rawHttpClient(`http://127.0.0.1:${server.addr.port}`);
 * const response = await client.post("/echo", { "content-type": "text/plain" }, "hi");
 * client.close();
 * console.assert(response.status === 200 && response.body === "got hi");
 * ```
 */
export function rawHttpClient(origin: string): RawHttpClient {
  const url = new URL(origin);
  if (url.protocol !== "http:") {
    throw new TypeError(
      `Cannot create the client: the origin must be an http:// URL, current value is ${
        JSON.stringify(url.protocol)
      }`,
    );
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 80);
  const hostHeader = url.host;
  const idle: Connection[] = [];
  let closed = false;

  async function connect(): Promise<Connection> {
    const tcp = await Deno.connect({ hostname, port });
    tcp.setNoDelay(true);
    return { tcp, buf: new Uint8Array(16_384), start: 0, end: 0 };
  }

  function release(connection: Connection, reusable: boolean): void {
    if (reusable && !closed) idle.push(connection);
    else connection.tcp.close();
  }

  async function exchange(
    connection: Connection,
    request: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostResponse> {
    const onAbort = () => connection.tcp.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await writeAll(connection.tcp, request);
      const { response, reusable } = await readResponse(connection);
      release(connection, reusable);
      return response;
    } catch (error) {
      if (!signal?.aborted) connection.tcp.close();
      throw signal?.aborted ? signal.reason : error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  return {
    async post(path, headers, body, signal) {
      signal?.throwIfAborted();
      if (closed) throw new Error("Cannot post: the client is closed");
      const payload = encoder.encode(body);
      let head =
        `POST ${path} HTTP/1.1\r\nhost: ${hostHeader}\r\ncontent-length: ${payload.length}\r\n`;
      for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
      const headBytes = encoder.encode(`${head}\r\n`);
      const request = new Uint8Array(headBytes.length + payload.length);
      request.set(headBytes);
      request.set(payload, headBytes.length);

      const reused = idle.pop();
      if (reused !== undefined) {
        try {
          return await exchange(reused, request, signal);
        } catch (error) {
          // A kept-alive connection the server closed while idle: send once more on a new one.
          if (!(error instanceof ClosedEarlyError && !error.gotBytes)) throw error;
        }
      }
      return exchange(await connect(), request, signal);
    },
    close() {
      closed = true;
      for (const connection of idle.splice(0)) connection.tcp.close();
    },
  };
}

async function writeAll(tcp: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  try {
    while (written < bytes.length) written += await tcp.write(bytes.subarray(written));
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) {
      throw new ClosedEarlyError(false);
    }
    throw error;
  }
}

/** Read more bytes into the buffer, compacting or growing it first if it is full. */
async function fill(connection: Connection): Promise<boolean> {
  if (connection.end === connection.buf.length) {
    if (connection.start > 0) {
      connection.buf.copyWithin(0, connection.start, connection.end);
      connection.end -= connection.start;
      connection.start = 0;
    }
    if (connection.end === connection.buf.length) {
      const bigger = new Uint8Array(connection.buf.length * 2);
      bigger.set(connection.buf);
      connection.buf = bigger;
    }
  }
  let read: number | null;
  try {
    read = await connection.tcp.read(connection.buf.subarray(connection.end));
  } catch (error) {
    // A reset is the peer's way of closing too; the caller decides whether that was early.
    if (error instanceof Deno.errors.ConnectionReset) return false;
    throw error;
  }
  if (read === null) return false;
  connection.end += read;
  return true;
}

/** Offset (from `start`) of the first CRLF at or after `from`, reading more as needed; EOF throws. */
async function findLineEnd(connection: Connection, from: number): Promise<number> {
  let scan = from;
  while (true) {
    const { buf, start, end } = connection;
    for (let i = start + scan; i + 1 < end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF) return i - start;
    }
    scan = Math.max(from, end - start - 1);
    if (!(await fill(connection))) throw new ClosedEarlyError(true);
  }
}

async function readHead(connection: Connection): Promise<string> {
  let scan = 0;
  while (true) {
    const { buf, start, end } = connection;
    for (let i = start + scan; i + 3 < end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) {
        const head = latin1.decode(buf.subarray(start, i));
        connection.start = i + 4;
        return head;
      }
    }
    scan = Math.max(0, end - start - 3);
    if (!(await fill(connection))) throw new ClosedEarlyError(end > start);
  }
}

async function readExactly(connection: Connection, length: number): Promise<Uint8Array> {
  while (connection.end - connection.start < length) {
    if (!(await fill(connection))) throw new ClosedEarlyError(true);
  }
  const bytes = connection.buf.slice(connection.start, connection.start + length);
  connection.start += length;
  return bytes;
}

async function readChunked(connection: Connection): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const lineEnd = await findLineEnd(connection, 0);
    const line = latin1.decode(
      connection.buf.subarray(connection.start, connection.start + lineEnd),
    );
    connection.start += lineEnd + 2;
    const size = parseInt(line.split(";")[0]!.trim(), 16);
    if (!Number.isInteger(size) || size < 0) {
      throw new Error(`Cannot read the response: bad chunk size line ${JSON.stringify(line)}`);
    }
    if (size === 0) {
      // Trailer lines, if any, end with an empty line.
      while (true) {
        const trailerEnd = await findLineEnd(connection, 0);
        connection.start += trailerEnd + 2;
        if (trailerEnd === 0) break;
      }
      break;
    }
    pieces.push(await readExactly(connection, size));
    total += size;
    await readExactly(connection, 2);
  }
  return concatBytes(pieces, total);
}

async function readToEnd(connection: Connection): Promise<Uint8Array> {
  while (await fill(connection));
  const bytes = connection.buf.slice(connection.start, connection.end);
  connection.start = connection.end;
  return bytes;
}

async function readResponse(
  connection: Connection,
): Promise<{ response: PostResponse; reusable: boolean }> {
  const head = await readHead(connection);
  const lines = head.split("\r\n");
  const statusLine = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
  if (statusLine === null) {
    throw new Error(`Cannot read the response: bad status line ${JSON.stringify(lines[0])}`);
  }
  const status = Number(statusLine[2]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  const connectionHeader = headers.get("connection")?.toLowerCase() ?? "";
  let reusable = statusLine[1] === "1"
    ? !connectionHeader.includes("close")
    : connectionHeader.includes("keep-alive");

  let bytes: Uint8Array;
  const length = headers.get("content-length");
  if (status < 200 || status === 204 || status === 304) {
    bytes = new Uint8Array(0);
  } else if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    bytes = await readChunked(connection);
  } else if (length !== undefined) {
    bytes = await readExactly(connection, Number(length));
  } else {
    bytes = await readToEnd(connection);
    reusable = false;
  }
  if (connection.start === connection.end) connection.start = connection.end = 0;
  return { response: { status, body: utf8.decode(bytes) }, reusable };
}
