// Tests the stream channel: buffering, waking a waiting reader, end, fail, and an early break.

import assert from "node:assert/strict";
import type { StreamEvent } from "../../actors/reply.ts";
import { streamChannel } from "../../actors/stream_channel.ts";

function delta(text: string): StreamEvent {
  return { type: "delta", text };
}

async function drain(iterator: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const seen: StreamEvent[] = [];
  for await (const event of iterator) seen.push(event);
  return seen;
}

Deno.test("streamChannel buffers events pushed before anyone reads, and yields them in order", async () => {
  const channel = streamChannel();
  const events = Array.from({ length: 100 }, (_, i) => delta(`t${i}`));
  for (const event of events) channel.push(event);
  channel.end();
  assert.deepEqual(await drain(channel.iterator), events);
});

Deno.test("streamChannel wakes a waiting reader when an event is pushed", async () => {
  const channel = streamChannel();
  const next = channel.iterator.next();
  channel.push(delta("a"));
  assert.deepEqual(await next, { value: delta("a"), done: false });
});

Deno.test("streamChannel interleaves pushes and reads without losing or reordering events", async () => {
  const channel = streamChannel();
  const reading = drain(channel.iterator);
  const events: StreamEvent[] = [];
  for (let i = 0; i < 20; i++) {
    events.push(delta(`t${i}`));
    channel.push(events.at(-1)!);
    if (i % 3 === 0) await Promise.resolve();
  }
  channel.end();
  assert.deepEqual(await reading, events);
});

Deno.test("streamChannel end() finishes a waiting reader", async () => {
  const channel = streamChannel();
  const next = channel.iterator.next();
  channel.end();
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.deepEqual(await channel.iterator.next(), { value: undefined, done: true });
});

Deno.test("streamChannel ignores pushes after end()", async () => {
  const channel = streamChannel();
  channel.push(delta("a"));
  channel.end();
  channel.push(delta("late"));
  assert.deepEqual(await drain(channel.iterator), [delta("a")]);
});

Deno.test("streamChannel fail() rejects a waiting reader with the error", async () => {
  const channel = streamChannel();
  const next = channel.iterator.next();
  const error = new Error("run failed");
  channel.fail(error);
  await assert.rejects(next, (e) => e === error);
});

Deno.test("streamChannel fail() still yields the events buffered before it, then rejects", async () => {
  const channel = streamChannel();
  const error = new Error("run failed");
  channel.push(delta("a"));
  channel.push(delta("b"));
  channel.fail(error);
  channel.push(delta("late"));
  const seen: StreamEvent[] = [];
  await assert.rejects(async () => {
    for await (const event of channel.iterator) seen.push(event);
  }, (e) => e === error);
  assert.deepEqual(seen, [delta("a"), delta("b")]);
});

Deno.test("streamChannel ignores fail() after end()", async () => {
  const channel = streamChannel();
  channel.push(delta("a"));
  channel.end();
  channel.fail(new Error("too late"));
  assert.deepEqual(await drain(channel.iterator), [delta("a")]);
});

Deno.test("streamChannel reader that breaks early stops receiving and drops the buffer", async () => {
  const channel = streamChannel();
  channel.push(delta("a"));
  channel.push(delta("b"));
  for await (const event of channel.iterator) {
    assert.deepEqual(event, delta("a"));
    break;
  }
  channel.push(delta("c"));
  channel.end();
  assert.deepEqual(await channel.iterator.next(), { value: undefined, done: true });
});

Deno.test("streamChannel carries the final reply event", async () => {
  const channel = streamChannel();
  const reply: StreamEvent = {
    type: "reply",
    reply: {
      status: "completed",
      org: "o",
      session: "s",
      messageId: "m1",
      runId: "r1",
      text: "a",
      answered: ["m1"],
    },
  };
  channel.push(delta("a"));
  channel.push(reply);
  channel.end();
  assert.deepEqual(await drain(channel.iterator), [delta("a"), reply]);
});

Deno.test({
  name: "streamChannel answers two next() calls made before any push, in order",
  async fn() {
    const channel = streamChannel();
    const first = channel.iterator.next();
    const second = channel.iterator.next();
    channel.push(delta("a"));
    channel.push(delta("b"));
    channel.end();
    assert.deepEqual(await Promise.all([first, second]), [
      { value: delta("a"), done: false },
      { value: delta("b"), done: false },
    ]);
  },
});
