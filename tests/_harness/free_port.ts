// Picks a free TCP port on 127.0.0.1 for a service started by a test.

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * The kernel picks the port (listening on port 0); the listener is closed
 * before returning, so another process could take the port in between. The
 * servers in this folder retry with a new port when that happens.
 *
 * @example Pick a port
 * ```ts
 * import assert from "node:assert/strict";
 * import { freePort } from "./free_port.ts";
 *
 * const port = freePort();
 * assert.ok(port > 0 && port < 65536);
 * ```
 *
 * @returns A port number between 1 and 65535.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  try {
    return listener.addr.port;
  } finally {
    listener.close();
  }
}
