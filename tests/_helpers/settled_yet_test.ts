// The helper itself: it must tell a settled promise from a pending one, or the tests using it prove nothing.

import { equal as assertEquals } from "node:assert/strict";
import { settledYet } from "./settled_yet.ts";

Deno.test("settledYet is true for a fulfilled or rejected promise and false for a pending one", async () => {
  assertEquals(await settledYet(Promise.resolve(1)), true);
  const rejected = Promise.reject(new Error("no"));
  rejected.catch(() => {});
  assertEquals(await settledYet(rejected), true);
  assertEquals(await settledYet(new Promise(() => {})), false);
  let resolve!: () => void;
  const later = new Promise<void>((r) => resolve = r);
  assertEquals(await settledYet(later), false);
  resolve();
  assertEquals(await settledYet(later), true);
});
