// Loads the vendor response fixtures and serves bodies over real HTTP, for the provider's parsing tests.

/** The text of a file in `tests/fixtures/llm/`. */
export function fixture(name: string): Promise<string> {
  return Deno.readTextFile(new URL(`../../fixtures/llm/${name}`, import.meta.url));
}

/** A fixture's parsed JSON. */
export async function fixtureJson(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await fixture(name));
}

/** A response whose body arrives in exactly these byte pieces, as a network may cut it. */
export function piecewiseResponse(
  pieces: Uint8Array[],
  contentType = "text/event-stream",
): Response {
  let index = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces[index++];
      if (piece === undefined) controller.close();
      else controller.enqueue(piece);
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: { "content-type": contentType } });
}

/** Cut text or bytes into pieces at the given offsets (taken modulo the length, sorted, deduplicated). */
export function cutAt<T extends string | Uint8Array>(whole: T, offsets: number[]): T[] {
  const points = [...new Set(offsets.map((o) => o % (whole.length + 1)))].sort((a, b) => a - b);
  const pieces: T[] = [];
  let from = 0;
  for (const point of [...points, whole.length]) {
    pieces.push(whole.slice(from, point) as T);
    from = point;
  }
  return pieces;
}

/** One request a {@linkcode FixtureServer} received. */
export interface ReceivedRequest {
  /** Its headers. */
  headers: Headers;
  /** Its JSON body. */
  body: Record<string, unknown>;
}

/** A server that answers every request with one fixed response, and remembers the requests. */
export interface FixtureServer extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>/v1`. */
  url: string;
  /** The requests received, in order. */
  requests: ReceivedRequest[];
}

/** What a {@linkcode FixtureServer} answers. */
export interface FixtureReply {
  /** The body. */
  body: string;
  /** The status. @default {200} */
  status?: number;
  /** Response headers. @default {{ "content-type": "text/event-stream" }} */
  headers?: Record<string, string>;
}

/** Serve `reply` on a free loopback port until disposed. */
export function serveFixture(reply: FixtureReply): FixtureServer {
  const requests: ReceivedRequest[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    requests.push({ headers: request.headers, body: await request.json() });
    return new Response(reply.body, {
      status: reply.status ?? 200,
      headers: reply.headers ?? { "content-type": "text/event-stream" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A TCP server that reads requests and never answers, counting connections opened and closed by the client. */
export interface SilentUpstream extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>/v1`. */
  url: string;
  /** Connections accepted so far. */
  readonly opened: number;
  /** Connections the client closed (the server read end-of-file). */
  readonly closed: number;
}

/**
 * Start a {@linkcode SilentUpstream}. It proves at the socket what an HTTP
 * server may miss: `Deno.serve` (2.9) does not notice a client that closes a
 * connection once it has read a request body of a few hundred bytes, so the
 * mock upstream cannot count such an abort while it hangs.
 */
export function silentUpstream(): SilentUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let opened = 0;
  let closed = 0;
  const reading: Promise<void>[] = [];
  async function drain(conn: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(16_384);
    try {
      while ((await conn.read(buffer)) !== null) { /* keep reading */ }
      closed++;
    } catch {
      closed++;
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        opened++;
        conns.add(conn);
        reading.push(drain(conn));
      }
    } catch { /* the listener closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/v1`,
    get opened() {
      return opened;
    },
    get closed() {
      return closed;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
      await Promise.all(reading);
    },
  };
}
