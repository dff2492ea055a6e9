// Tests reading bodies: streamed replies through one reused buffer (or as they come), and whole bodies under a limit.

import assert from "node:assert/strict";
import fc from "fast-check";
import { BodyTimeoutError, byteReader, readAtMost } from "../../adapters/_body.ts";

/** A byte stream (what `fetch` gives) or a default stream (what a caller may build) of `pieces`. */
function body(
  pieces: Uint8Array[],
  bytes: boolean,
  cancelled: (reason: unknown) => void = () => {},
): ReadableStream<Uint8Array> {
  let index = 0;
  const next = () => pieces[index++];
  if (bytes) {
    return new ReadableStream({
      type: "bytes",
      pull(controller: ReadableByteStreamController) {
        let piece = next();
        while (piece?.length === 0) piece = next(); // a byte stream cannot carry an empty chunk
        if (piece !== undefined) return controller.enqueue(piece.slice());
        controller.close();
        controller.byobRequest?.respond(0); // a pending BYOB read ends with the stream
      },
      cancel: cancelled,
    });
  }
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = next();
      if (piece === undefined) controller.close();
      else controller.enqueue(piece.slice());
    },
    cancel: cancelled,
  }, { highWaterMark: 0 });
}

/** Read everything, copying each chunk before the next read (as the contract asks). */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const reader = byteReader(stream);
  const out: number[] = [];
  for (let chunk = await reader.read(); chunk !== undefined; chunk = await reader.read()) {
    out.push(...chunk);
  }
  return out;
}

Deno.test("byteReader returns every byte in order, byte stream or not, pieces larger than its buffer included", async () => {
  const piece = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.integer({ min: 16_000, max: 40_000 }).map((n) => new Uint8Array(n).map((_, i) => i % 251)),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(piece, { maxLength: 8 }), fc.boolean(), async (pieces, bytes) => {
      const whole = pieces.flatMap((p) => [...p]);
      assert.deepEqual(await readAll(body(pieces, bytes)), whole);
    }),
    { numRuns: 60 },
  );
});

Deno.test("byteReader keeps reading into one buffer: a chunk is overwritten by the next read", async () => {
  const reader = byteReader(body([new Uint8Array([1, 2, 3]), new Uint8Array([9, 9, 9])], true));
  const first = await reader.read();
  assert.deepEqual([...first!], [1, 2, 3]);
  const second = await reader.read();
  assert.deepEqual([...second!], [9, 9, 9]);
  assert.equal(first!.buffer.byteLength, 0, "the first chunk's buffer was handed to the next read");
  assert.equal(await reader.read(), undefined);
});

Deno.test("byteReader.cancel cancels the body, byte stream or not", async () => {
  for (const bytes of [true, false]) {
    let reason: unknown = "not cancelled";
    const reader = byteReader(body([new Uint8Array([1])], bytes, (r) => (reason = r)));
    await reader.read();
    await reader.cancel();
    assert.equal(reason, undefined, `bytes: ${bytes}`);
  }
});

Deno.test("byteReader reads a fetch body streamed over real HTTP in pieces", async () => {
  const encoder = new TextEncoder();
  const events = Array.from({ length: 50 }, (_, i) => `data: {"n":${i}}\n\n`);
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let i = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (i === events.length) return controller.close();
          if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
          controller.enqueue(encoder.encode(events[i++]!));
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const bytes = await readAll(response.body!);
  assert.equal(new TextDecoder().decode(new Uint8Array(bytes)), events.join(""));
});

Deno.test("readAtMost returns every byte up to the limit, and null past it with the body cancelled", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 8 }),
      fc.nat(300),
      fc.boolean(),
      async (pieces, maxBytes, bytes) => {
        const whole = pieces.flatMap((p) => [...p]);
        let reason: unknown = "not cancelled";
        const result = await readAtMost(body(pieces, bytes, (r) => (reason = r)), maxBytes);
        if (whole.length <= maxBytes) {
          assert.deepEqual(result === null ? null : [...result], whole);
          assert.equal(reason, "not cancelled");
        } else {
          assert.equal(result, null);
          assert.equal(reason, undefined, "the body was cancelled");
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("readAtMost gives up on a body not whole in time, cancels it, and leaves no timer", async () => {
  let cancelled = false;
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1, 2, 3]));
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(readAtMost(stalled, 100, 30), (error) => {
    assert.ok(error instanceof BodyTimeoutError);
    assert.equal(error.timeoutMs, 30);
    return true;
  });
  assert.ok(cancelled);
  // A body that ends in time is read whole; the test's sanitizer sees no timer left behind.
  assert.deepEqual(
    await readAtMost(new Response("four").body!, 100, 60_000),
    new TextEncoder().encode("four"),
  );
});
