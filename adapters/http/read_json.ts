// Reads a request's JSON object body under a byte limit, counting the bytes that actually arrive.

import { InvalidInputError } from "../../actors/errors.ts";
import { BodyTimeoutError, readAtMost } from "../_body.ts";
import { HttpError } from "./errors.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** How long a request's body may take to arrive, by default: 30 s. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * Read the body as a JSON object of at most `maxBytes` bytes. A declared
 * `Content-Length` over the limit is refused before reading, and reading stops
 * (and cancels the body) as soon as more bytes arrive than allowed, whatever
 * the header said.
 *
 * A body still incomplete `timeoutMs` after the read began is cancelled: a
 * client that trickles its body (or stops sending it) cannot hold a request
 * and its buffer for as long as it likes.
 *
 * Throws an {@linkcode HttpError}: 413 `payload_too_large`, 400
 * `invalid_json` (empty, cut short, not UTF-8, not JSON), 408 `request_timeout`;
 * or an `InvalidInputError` for JSON that is not an object.
 *
 * @example
 * ```ts
 * import { readJsonObject } from "./read_json.ts";
 *
 * const request = new Request("http://localhost/", { method: "POST", body: '{"content":"hi"}' });
 * const body = await readJsonObject(request, 1024);
 * console.assert(body.content === "hi");
 * ```
 */
export async function readJsonObject(
  request: Request,
  maxBytes: number,
  timeoutMs: number = DEFAULT_BODY_TIMEOUT_MS,
): Promise<Record<string, unknown>> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes, `${declared} bytes`);
  let bytes: Uint8Array | null;
  try {
    bytes = request.body === null
      ? new Uint8Array()
      : await readAtMost(request.body, maxBytes, timeoutMs);
  } catch (error) {
    if (error instanceof BodyTimeoutError) {
      throw new HttpError(
        408,
        "request_timeout",
        `Cannot read the body: all of it must arrive within ${timeoutMs} ms of the request`,
        // The rest of the body may still come: the connection cannot carry another request.
        { cause: error, headers: { connection: "close" } },
      );
    }
    // The client's fault (or its leaving), not the server's: no 500, nothing logged as internal.
    throw new HttpError(
      400,
      "invalid_json",
      "Cannot read the body: the connection ended before all of it came",
      { cause: error },
    );
  }
  if (bytes === null) throw tooLarge(maxBytes, `more than ${maxBytes} bytes`);

  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch (error) {
    throw new HttpError(400, "invalid_json", "Cannot parse the body: it is not valid UTF-8", {
      cause: error,
    });
  }
  if (text.trim() === "") {
    throw new HttpError(
      400,
      "invalid_json",
      'Cannot parse the body: it is empty; send a JSON object such as {"content":"hi"}',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, "invalid_json", `Cannot parse the body as JSON: ${reason}`, {
      cause: error,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new InvalidInputError(
      "body",
      `Cannot read the body: it must be a JSON object, current value is ${kind}`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Refuse a body that is not JSON (`application/json` or `*+json`) with a 415
 * {@linkcode HttpError}. Requiring JSON also makes a browser preflight a
 * cross-site POST, which this server never allows.
 *
 * @example
 * ```ts
 * import { requireJson } from "./read_json.ts";
 *
 * requireJson(new Request("http://localhost/", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
 * ```
 */
export function requireJson(request: Request): void {
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() ?? "";
  if (type !== "application/json" && !type.endsWith("+json")) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Cannot read the body: content-type must be application/json, current value is ${
        JSON.stringify(type)
      }`,
    );
  }
}

function tooLarge(maxBytes: number, current: string): HttpError {
  return new HttpError(
    413,
    "payload_too_large",
    `Cannot read the body: it must be at most ${maxBytes} bytes, current size is ${current}`,
  );
}
