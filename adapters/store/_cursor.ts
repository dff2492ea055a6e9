// Opaque page cursors for the SQL store: a tagged JSON tuple in base64url, checked on the way back.

import { InvalidInputError } from "../../actors/errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Check a page size: a whole number, 0 or more; refused with an error naming `limit`. */
export function checkPageLimit(limit: number, action: string): void {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new InvalidInputError(
      "limit",
      `Cannot ${action}: limit must be a non-negative integer, current value is ${limit}`,
    );
  }
}

/** Encode a position, tagged with what it is a position in (`h` history, `a` audit). */
export function encodeCursor(tag: string, position: ReadonlyArray<string | number>): string {
  const bytes = encoder.encode(JSON.stringify([tag, ...position]));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Decode a cursor made by {@linkcode encodeCursor} with the same tag; anything
 * else throws an `InvalidInputError` naming `field`.
 */
export function decodeCursor(
  cursor: string,
  tag: string,
  field: string,
  what: string,
): unknown[] {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new SyntaxError("not base64url");
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    parsed = JSON.parse(decoder.decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    // Falls through to the error below.
  }
  if (!Array.isArray(parsed) || parsed[0] !== tag) {
    throw new InvalidInputError(field, `Cannot read ${what}: cursor "${cursor}" is not valid`);
  }
  return parsed.slice(1);
}

/** Decode a history cursor into the `seq` it stands for. */
export function decodeSeq(cursor: string): number {
  const [seq, ...rest] = decodeCursor(cursor, "h", "before", "history");
  if (rest.length > 0 || !Number.isSafeInteger(seq) || (seq as number) < 1) {
    throw new InvalidInputError("before", `Cannot read history: cursor "${cursor}" is not valid`);
  }
  return seq as number;
}

/** Decode an audit-trail cursor into the `(ts, id)` it stands for. */
export function decodeAuditPosition(cursor: string): { ts: number; id: string } {
  const [ts, id, ...rest] = decodeCursor(cursor, "a", "before", "the audit trail");
  if (rest.length > 0 || !Number.isSafeInteger(ts) || typeof id !== "string") {
    throw new InvalidInputError(
      "before",
      `Cannot read the audit trail: cursor "${cursor}" is not valid`,
    );
  }
  return { ts: ts as number, id };
}
