// Checks what callers send before anything runs; every refusal names the field.

import { InvalidInputError } from "./errors.ts";
import { POLICIES, type Policy } from "./events.ts";
import type { ChatMessage, ChatRole } from "./ports.ts";

const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
const ID_RULE = "1–128 characters of letters, digits, '.', '_', ':', '@' or '-'";

/**
 * A value as a refusal message shows it: a string quoted (cut after 40
 * characters), anything else by its type (`null` as such).
 *
 * @example
 * ```ts
 * import { show } from "./validate.ts";
 *
 * console.assert(show("hi") === '"hi"' && show(null) === "null" && show(3) === "number");
 * ```
 */
export function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  return value === null ? "null" : typeof value;
}

/**
 * Check an id (org, session or message): a string of {@linkcode ID_RULE}.
 *
 * @example
 * ```ts
 * import { checkId } from "./validate.ts";
 *
 * console.assert(checkId("session", "s-1", "send") === "s-1");
 * ```
 */
export function checkId(field: string, value: unknown, action: string): string {
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    throw new InvalidInputError(
      field,
      `Cannot ${action}: ${field} must be ${ID_RULE}, current value is ${show(value)}`,
    );
  }
  return value;
}

/**
 * Check a policy name.
 *
 * @example
 * ```ts
 * import { checkPolicy } from "./validate.ts";
 *
 * console.assert(checkPolicy("policy", "merge", "send") === "merge");
 * ```
 */
export function checkPolicy(field: string, value: unknown, action: string): Policy {
  if (typeof value !== "string" || !(POLICIES as readonly string[]).includes(value)) {
    throw new InvalidInputError(
      field,
      `Cannot ${action}: ${field} must be one of ${POLICIES.join(", ")}, current value is ${
        show(value)
      }`,
    );
  }
  return value as Policy;
}

/**
 * Check message content: a string that is not blank and at most `maxLength` characters.
 *
 * @example
 * ```ts
 * import { checkContent } from "./validate.ts";
 *
 * console.assert(checkContent("hi", 10) === "hi");
 * ```
 */
export function checkContent(value: unknown, maxLength: number): string {
  if (typeof value !== "string") {
    throw new InvalidInputError(
      "content",
      `Cannot send: content must be a string, current value is ${show(value)}`,
    );
  }
  if (value.trim() === "") {
    throw new InvalidInputError("content", "Cannot send: content is empty");
  }
  if (value.length > maxLength) {
    throw new InvalidInputError(
      "content",
      `Cannot send: content must be at most ${maxLength} characters, current length is ${value.length}`,
    );
  }
  return value;
}

/**
 * The scheme a database setting starts with when it is neither a `postgres://`
 * URL nor a plain SQLite path (`sqlite:`, `file:`, `mysql://`), or `null`.
 * Taken as a path, `sqlite:./x.db` would name a directory `sqlite:.`, so both
 * the configuration and the store refuse it. A scheme has at least two
 * characters: a drive letter (`C:`) is one, and stays a path.
 *
 * @example
 * ```ts
 * import { pathScheme } from "./validate.ts";
 *
 * console.assert(pathScheme("sqlite:./data/t.db") === "sqlite");
 * console.assert(pathScheme("C:/data/t.db") === null && pathScheme("./data/t.db") === null);
 * ```
 */
export function pathScheme(text: string): string | null {
  return /^([a-z][a-z0-9+.-]+):/i.exec(text)?.[1] ?? null;
}

/** The size of a page of history or sessions when the caller gives none, and the most a page holds. */
export const PAGE_SIZE = { default: 50, max: 1000 } as const;

/** The size of a page of a session's audit trail when the caller gives none, and the most a page holds. */
export const AUDIT_PAGE_SIZE = { default: 100, max: 1000 } as const;

/**
 * Check the `limit` of a page: the default page size when absent, else a whole
 * number from 1 to the most a page holds (`size`: history and sessions by default).
 *
 * @example
 * ```ts
 * import { AUDIT_PAGE_SIZE, checkPageSize, PAGE_SIZE } from "./validate.ts";
 *
 * console.assert(checkPageSize(undefined, "read history") === PAGE_SIZE.default);
 * console.assert(checkPageSize(10, "read history") === 10);
 * console.assert(checkPageSize(undefined, "read the audit trail", AUDIT_PAGE_SIZE) === 100);
 * ```
 */
export function checkPageSize(
  value: unknown,
  action: string,
  size: { readonly default: number; readonly max: number } = PAGE_SIZE,
): number {
  return value === undefined ? size.default : checkInteger("limit", value, 1, size.max, action);
}

/**
 * Check a page's cursor (`field`): absent, or the string a previous page gave.
 *
 * @example
 * ```ts
 * import { checkCursor } from "./validate.ts";
 *
 * console.assert(checkCursor("before", undefined, "read history") === undefined);
 * console.assert(checkCursor("before", "c1", "read history") === "c1");
 * ```
 */
export function checkCursor(field: string, value: unknown, action: string): string | undefined {
  if (value !== undefined && typeof value !== "string") {
    throw new InvalidInputError(field, `Cannot ${action}: ${field} must be a cursor string`);
  }
  return value;
}

/**
 * Check a whole number within bounds (for options and limits).
 *
 * @example
 * ```ts
 * import { checkInteger } from "./validate.ts";
 *
 * console.assert(checkInteger("limit", 5, 1, 100, "read history") === 5);
 * ```
 */
export function checkInteger(
  field: string,
  value: unknown,
  min: number,
  max: number,
  action: string,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(
      field,
      `Cannot ${action}: ${field} must be a whole number from ${min} to ${max}, current value is ${
        typeof value === "number" ? value : show(value)
      }`,
    );
  }
  return value;
}

/**
 * Check that an argument is a plain object.
 *
 * @example
 * ```ts
 * import { checkObject } from "./validate.ts";
 *
 * console.assert(checkObject({ a: 1 }, "send").a === 1);
 * ```
 */
export function checkObject(value: unknown, action: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidInputError(
      "input",
      `Cannot ${action}: input must be an object, current value is ${show(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

const ROLES: readonly ChatRole[] = ["system", "user", "assistant"];

/**
 * Check a caller's conversation: an array of at most `maxMessages` turns, each
 * `{ role, content }` with a role of `system`, `user` or `assistant` and a
 * string content of at most `maxLength` characters (empty is allowed: an
 * assistant turn may have said nothing). Returns a copy holding only `role`
 * and `content`, so later changes to the caller's objects change nothing.
 *
 * @example
 * ```ts
 * import { checkContext } from "./validate.ts";
 *
 * const context = checkContext([{ role: "user", content: "hi" }], 100, 10);
 * console.assert(context.length === 1 && context[0]!.role === "user");
 * ```
 */
export function checkContext(
  value: unknown,
  maxLength: number,
  maxMessages: number,
): ChatMessage[] {
  if (!Array.isArray(value)) {
    throw new InvalidInputError(
      "context",
      `Cannot send: context must be an array of { role, content }, current value is ${show(value)}`,
    );
  }
  if (value.length > maxMessages) {
    throw new InvalidInputError(
      "context",
      `Cannot send: context must hold at most ${maxMessages} messages, current length is ${value.length}`,
    );
  }
  return value.map((turn: unknown, i): ChatMessage => {
    const field = `context[${i}]`;
    if (typeof turn !== "object" || turn === null || Array.isArray(turn)) {
      throw new InvalidInputError(
        field,
        `Cannot send: ${field} must be an object { role, content }, current value is ${show(turn)}`,
      );
    }
    const { role, content } = turn as Record<string, unknown>;
    if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
      throw new InvalidInputError(
        `${field}.role`,
        `Cannot send: ${field}.role must be one of ${ROLES.join(", ")}, current value is ${
          show(role)
        }`,
      );
    }
    if (typeof content !== "string") {
      throw new InvalidInputError(
        `${field}.content`,
        `Cannot send: ${field}.content must be a string, current value is ${show(content)}`,
      );
    }
    if (content.length > maxLength) {
      throw new InvalidInputError(
        `${field}.content`,
        `Cannot send: ${field}.content must be at most ${maxLength} characters, current length is ${content.length}`,
      );
    }
    return { role: role as ChatRole, content };
  });
}
