// The cursor of a page of sessions, shared by the SQL and memory stores so both accept each other's.

import { InvalidInputError } from "../../actors/errors.ts";
import { decodeCursor, encodeCursor } from "./_cursor.ts";

/** The opaque cursor of the page that starts after `session`. */
export function sessionCursor(session: string): string {
  return encodeCursor("s", [session]);
}

/**
 * The session a cursor from {@linkcode sessionCursor} starts after; anything
 * else throws an `InvalidInputError` naming `after`.
 */
export function decodeSessionCursor(cursor: string): string {
  const [session, ...rest] = decodeCursor(cursor, "s", "after", "sessions");
  if (rest.length > 0 || typeof session !== "string") {
    throw new InvalidInputError("after", `Cannot read sessions: cursor "${cursor}" is not valid`);
  }
  return session;
}
