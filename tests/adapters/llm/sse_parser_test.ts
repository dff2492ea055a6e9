// Tests the incremental SSE parser: line endings, pieces cut anywhere, comments, multi-line data, the end of a stream.

import assert from "node:assert/strict";
import fc from "fast-check";
import { sseParser } from "../../../adapters/llm/_sse_parser.ts";
import { cutAt } from "./_fixtures.ts";

interface Seen {
  data: string;
  event: string;
}

function parse(pieces: string[], finish = true): Seen[] {
  const seen: Seen[] = [];
  const parser = sseParser((data, event) => seen.push({ data, event }));
  for (const piece of pieces) parser.push(piece);
  if (finish) parser.finish();
  return seen;
}

Deno.test("sseParser reads data lines, skips comments and ignores id and retry", () => {
  const seen = parse([
    ': OPENROUTER PROCESSING\n\nid: 7\nretry: 100\ndata: {"a":1}\n\ndata:no-space\n\n',
  ]);
  assert.deepEqual(seen, [
    { data: '{"a":1}', event: "message" },
    { data: "no-space", event: "message" },
  ]);
});

Deno.test("sseParser joins the data lines of one event with a newline and passes its event name", () => {
  const seen = parse(["event: error\ndata: first\ndata:\ndata: third\n\n"]);
  assert.deepEqual(seen, [{ data: "first\n\nthird", event: "error" }]);
});

Deno.test("sseParser treats a line without a colon as a field with an empty value", () => {
  assert.deepEqual(parse(["data\n\n"]), [{ data: "", event: "message" }]);
});

Deno.test("sseParser does not dispatch an event without data lines", () => {
  assert.deepEqual(parse([": only a comment\n\nevent: ping\n\n"]), []);
});

Deno.test("sseParser dispatches a last event whose blank line never came, but not a cut line", () => {
  assert.deepEqual(parse(["data: [DONE]\n"]), [{ data: "[DONE]", event: "message" }]);
  assert.deepEqual(parse(['data: {"a":1}\n\ndata: {"b"']), [{ data: '{"a":1}', event: "message" }]);
  assert.deepEqual(parse(["data: [DONE]\n"], false), [], "nothing before the end without finish");
});

Deno.test("sseParser counts a CR at the end of one piece and an LF at the start of the next as one line end", () => {
  const seen = parse(["data: a\r", "\n\r", "\ndata: b\r", "\r"]);
  assert.deepEqual(seen.map((s) => s.data), ["a", "b"]);
});

const eventArb = fc.record({
  lines: fc.array(fc.string({ unit: "grapheme" }).map((s) => s.replace(/[\r\n]/g, "")), {
    minLength: 1,
    maxLength: 3,
  }),
  comment: fc.boolean(),
});

Deno.test("sseParser gives the same events whatever the line endings and wherever the pieces are cut", () => {
  fc.assert(
    fc.property(
      fc.array(eventArb, { maxLength: 8 }),
      fc.constantFrom("\n", "\r\n", "\r"),
      fc.array(fc.nat(), { maxLength: 20 }),
      (events, eol, offsets) => {
        const text = events.map(({ lines, comment }) =>
          (comment ? `: keep-alive${eol}` : "") +
          lines.map((line) => `data: ${line}${eol}`).join("") + eol
        ).join("");
        const expected = events.map(({ lines }) => lines.join("\n"));
        assert.deepEqual(parse(cutAt(text, offsets)).map((s) => s.data), expected);
      },
    ),
  );
});

Deno.test("sseParser.held counts what an undispatched event holds, and drops to zero when it dispatches", () => {
  const parser = sseParser(() => {});
  assert.equal(parser.held, 0);
  parser.push("data: abc");
  assert.equal(parser.held, "data: abc".length, "an unfinished line");
  parser.push("\ndata: de\n");
  assert.equal(
    parser.held,
    "abc\nde".length,
    "the data lines of an event whose blank line has not come",
  );
  parser.push("\n");
  assert.equal(parser.held, 0);
});
