// docs/events.md against the code: one section per event type, and every example is a valid event.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { EVENT_TYPES, validateEvent } from "../../actors/validate_event.ts";

const doc = await Deno.readTextFile(new URL("../../docs/events.md", import.meta.url));

Deno.test("docs/events.md has one section for each event type, and no other", () => {
  const sections = [...doc.matchAll(/^### `([a-z.]+)`$/gm)].map((m) => m[1]);
  assertEquals([...sections].sort(), [...EVENT_TYPES].sort());
});

Deno.test("every JSON example in docs/events.md is a valid event of its section's type", () => {
  const parts = doc.split(/^### /m).slice(1);
  for (const part of parts) {
    const type = /^`([a-z.]+)`/.exec(part)?.[1];
    const example = /```json\n([\s\S]*?)\n```/.exec(part)?.[1];
    assert(type !== undefined && example !== undefined, `section without an example: ${part}`);
    const result = validateEvent(JSON.parse(example));
    assert(result.ok, `${type}: ${result.ok ? "" : result.reason}`);
    assertEquals(result.event.type, type);
  }
});
