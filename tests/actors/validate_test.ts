// Tests input checks: every refusal is an InvalidInputError naming the field and the action.

import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidInputError } from "../../actors/errors.ts";
import { POLICIES } from "../../actors/events.ts";
import {
  checkContent,
  checkId,
  checkInteger,
  checkObject,
  checkPolicy,
} from "../../actors/validate.ts";

const ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-";

/** Asserts `fn` throws an InvalidInputError for `field` whose message starts "Cannot <action>". */
function assertRefused(fn: () => unknown, field: string, action = "send"): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof InvalidInputError, `expected an InvalidInputError, got ${error}`);
    assert.equal(error.field, field);
    assert.equal(error.code, "invalid_input");
    assert.ok(error.message.startsWith(`Cannot ${action}: `), error.message);
    return true;
  });
}

Deno.test("checkId accepts letters, digits, dots, '_', ':', '@' and '-', up to 128 characters", () => {
  for (
    const id of ["a", "s-1", "org.example.com", "a_b:c@d-e", "...", "0", "x".repeat(128), ID_CHARS]
  ) {
    assert.equal(checkId("session", id, "send"), id);
  }
});

Deno.test("checkId refuses ids that are empty, too long, spaced, unicode or not strings", () => {
  const bad: unknown[] = [
    "",
    "x".repeat(129),
    "a b",
    " a",
    "a ",
    "a\tb",
    "abc\n",
    "\nabc",
    "a/b",
    "a\\b",
    "a#b",
    "a%20b",
    "é",
    "café",
    "日本",
    "🎭",
    "a\u0000b",
    "ａ", // a fullwidth letter
    42,
    null,
    undefined,
    {},
    ["a"],
  ];
  for (const value of bad) {
    assertRefused(() => checkId("session", value, "send"), "session");
  }
});

Deno.test("checkId names the field it was given and the action in its message", () => {
  assertRefused(() => checkId("org", "a b", "read history"), "org", "read history");
  assertRefused(() => checkId("id", "", "send"), "id");
  assert.throws(() => checkId("session", "x".repeat(500), "send"), /current value is "x{40}…"/);
});

Deno.test("checkId accepts exactly the strings of 1–128 allowed characters", () => {
  const allowed = fc.string({
    unit: fc.constantFrom(...ID_CHARS),
    minLength: 1,
    maxLength: 128,
  });
  fc.assert(fc.property(allowed, (id) => checkId("session", id, "send") === id));
  const withForeign = fc.tuple(
    fc.string({ unit: fc.constantFrom(...ID_CHARS), maxLength: 60 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 3 }).filter((s) =>
      [...s].some((c) => !ID_CHARS.includes(c))
    ),
    fc.string({ unit: fc.constantFrom(...ID_CHARS), maxLength: 60 }),
  ).map(([a, b, c]) => a + b + c);
  fc.assert(fc.property(withForeign, (id) => {
    assertRefused(() => checkId("session", id, "send"), "session");
  }));
});

Deno.test("checkPolicy accepts the four policies", () => {
  assert.deepEqual([...POLICIES], ["merge", "enqueue", "reject", "interrupt"]);
  for (const policy of POLICIES) assert.equal(checkPolicy("policy", policy, "send"), policy);
});

Deno.test("checkPolicy refuses unknown policies naming the field", () => {
  for (const value of ["later", "", "MERGE", " merge", "merge ", "queue", 1, null, undefined, {}]) {
    assertRefused(() => checkPolicy("policy", value, "send"), "policy");
  }
  assert.throws(
    () => checkPolicy("policy", "later", "send"),
    /must be one of merge, enqueue, reject, interrupt, current value is "later"/,
  );
});

Deno.test("checkContent accepts text up to the limit, keeping surrounding white space", () => {
  assert.equal(checkContent("hi", 10), "hi");
  assert.equal(checkContent("  hi \n", 10), "  hi \n");
  assert.equal(checkContent("x".repeat(10), 10), "x".repeat(10));
  assert.equal(checkContent("日本語", 3), "日本語");
});

Deno.test("checkContent refuses empty and blank content", () => {
  for (const value of ["", " ", "   ", "\n", "\t\r\n", "\u00a0", "\u2003"]) {
    assertRefused(() => checkContent(value, 100), "content");
  }
  assert.throws(() => checkContent(" ", 100), /content is empty/);
});

Deno.test("checkContent refuses content over the limit, giving the length", () => {
  assertRefused(() => checkContent("x".repeat(11), 10), "content");
  assert.throws(
    () => checkContent("x".repeat(11), 10),
    /at most 10 characters, current length is 11/,
  );
});

Deno.test("checkContent refuses content that is not a string", () => {
  for (const value of [42, null, undefined, {}, ["hi"], true, new String("hi")]) {
    assertRefused(() => checkContent(value, 100), "content");
  }
  assert.throws(() => checkContent(null, 100), /must be a string, current value is null/);
});

Deno.test("checkInteger accepts whole numbers within bounds only", () => {
  assert.equal(checkInteger("limit", 1, 1, 1000, "read history"), 1);
  assert.equal(checkInteger("limit", 1000, 1, 1000, "read history"), 1000);
  for (const value of [0, 1001, 1.5, NaN, Infinity, -1, "5", null]) {
    assertRefused(
      () => checkInteger("limit", value, 1, 1000, "read history"),
      "limit",
      "read history",
    );
  }
});

Deno.test("checkObject accepts plain objects and refuses the rest as the input field", () => {
  const input = { session: "s" };
  assert.equal(checkObject(input, "send"), input);
  for (const value of [null, undefined, "s", 1, ["s"]]) {
    assertRefused(() => checkObject(value, "send"), "input");
  }
});
