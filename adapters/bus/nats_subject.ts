// Builds NATS subjects and names from untrusted text, so that no org or type can escape its token.

import type { TroupeEvent } from "../../actors/events.ts";

const SAFE_BYTE = /^[A-Za-z0-9_-]$/;
const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
const HEX = Array.from(
  { length: 256 },
  (_, byte) => byte.toString(16).toUpperCase().padStart(2, "0"),
);
const encoder = new TextEncoder();

/**
 * Encode any text as ONE NATS subject token (also a valid stream or consumer
 * name). The scheme is percent-encoding over UTF-8: the bytes `A-Z a-z 0-9 _ -`
 * stand for themselves and every other byte — `.`, `*`, `>`, `%`, spaces,
 * control and non-ASCII characters — becomes `%` and two upper-case hex
 * digits. The empty string becomes a lone `%`, which no other text encodes to.
 * The encoding is injective: two different texts never share a token, and a
 * token never contains a separator or a wildcard.
 *
 * @param text The org, the part of an event type, or a group name.
 * @returns A non-empty token made of `A-Z a-z 0-9 _ - %`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { natsToken } from "./nats_subject.ts";
 *
 * assert.equal(natsToken("acme"), "acme");
 * assert.equal(natsToken("a.b *>"), "a%2Eb%20%2A%3E");
 * assert.equal(natsToken(""), "%");
 * ```
 */
export function natsToken(text: string): string {
  if (text === "") return "%";
  if (SAFE_TOKEN.test(text)) return text;
  let token = "";
  for (const char of text) {
    if (SAFE_BYTE.test(char)) {
      token += char;
      continue;
    }
    for (const byte of encoder.encode(char)) token += `%${HEX[byte]}`;
  }
  return token;
}

/**
 * The subject an event is published on: `<prefix>.<org>.<type tokens>`, the
 * org encoded with {@linkcode natsToken} as one token and the dotted type split
 * into tokens, each encoded (`usage.recorded` stays two tokens, so
 * `troupe.*.usage.>` filters usage events of every org).
 *
 * @param prefix A subject prefix made of safe tokens, e.g. `"troupe"`.
 * @param event The event.
 * @returns The subject.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { natsSubject } from "./nats_subject.ts";
 *
 * const event = { id: "1", ts: 0, org: "a.b", session: "s", type: "session.activated" as const, historyLength: 0 };
 * assert.equal(natsSubject("troupe", event), "troupe.a%2Eb.session.activated");
 * ```
 */
export function natsSubject(prefix: string, event: Pick<TroupeEvent, "org" | "type">): string {
  const type = String(event.type).split(".").map(natsToken).join(".");
  return `${prefix}.${natsToken(String(event.org))}.${type}`;
}

/**
 * Whether `text` is one or more dot-separated tokens of `A-Z a-z 0-9 _ -`,
 * usable as-is as a subject prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSafeSubject } from "./nats_subject.ts";
 *
 * assert.equal(isSafeSubject("troupe.events"), true);
 * assert.equal(isSafeSubject("troupe.*"), false);
 * ```
 */
export function isSafeSubject(text: string): boolean {
  return text.split(".").every((token) => SAFE_TOKEN.test(token));
}
