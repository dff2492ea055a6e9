// Tests reading whole and streamed replies from vendor fixtures, cut into pieces anywhere, and the ways a stream can go wrong.

import assert from "node:assert/strict";
import fc from "fast-check";
import { ProviderError } from "../../../actors/errors.ts";
import { replyReader } from "../../../adapters/llm/_read_reply.ts";
import { cutAt, fixture, piecewiseResponse } from "./_fixtures.ts";

const encoder = new TextEncoder();

async function read(response: Response) {
  const pieces: string[] = [];
  const reader = replyReader(response, {
    onText: (text) => pieces.push(text),
    redact: (text) => text.replaceAll("sk-secret", "[redacted]"),
    url: "http://upstream/v1/chat/completions",
  });
  try {
    return { reply: await reader.read(), pieces, text: reader.text };
  } catch (error) {
    return { error, pieces, text: reader.text };
  }
}

function stream(text: string, offsets: number[] = []): Response {
  return piecewiseResponse(cutAt(encoder.encode(text), offsets));
}

Deno.test("replyReader reads an OpenAI stream whatever the byte pieces, UTF-8 cut included", async () => {
  const body = await fixture("openai_chat_stream.sse");
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.constantFrom("\n", "\r\n", "\r"),
      async (offsets, eol) => {
        const { reply, pieces } = await read(stream(body.replaceAll("\n", eol), offsets));
        assert.equal(reply?.text, "Grüße aus Köln 👋! Wie geht's?");
        assert.deepEqual(pieces, ["Grüße", " aus", " Köln", " 👋", "!", " Wie", " geht", "'s?"]);
        assert.equal(reply?.finishReason, "stop");
        assert.equal(reply?.model, "gpt-4o-mini-2024-07-18");
        assert.deepEqual(reply?.usage, {
          inputTokens: 19,
          outputTokens: 10,
          cachedTokens: 0,
          reasoningTokens: 0,
          totalTokens: 29,
          source: "reported",
        });
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("replyReader skips OpenRouter's keep-alive comments and reads its usage chunk", async () => {
  const { reply } = await read(stream(await fixture("openrouter_stream.sse"), [3, 50, 400]));
  assert.equal(reply?.text, "Deux lignes\nsuffisent.");
  assert.equal(reply?.finishReason, "stop");
  assert.equal(reply?.usage?.totalTokens, 20);
});

Deno.test("replyReader reads Anthropic-style usage and finish reason in a proxy's stream", async () => {
  const { reply } = await read(stream(await fixture("anthropic_usage_stream.sse")));
  assert.equal(reply?.text, "Short answer.");
  assert.equal(reply?.finishReason, "stop", "end_turn is stop");
  assert.deepEqual(reply?.usage, {
    inputTokens: 2057,
    outputTokens: 4,
    cachedTokens: 2048,
    reasoningTokens: 0,
    totalTokens: 2061,
    source: "reported",
  });
});

Deno.test("replyReader reads Gemini usageMetadata riding on the last content chunk", async () => {
  const { reply } = await read(stream(await fixture("gemini_usage_stream.sse")));
  assert.equal(reply?.text, "Canberra is the capital.");
  assert.equal(reply?.finishReason, "stop");
  assert.equal(reply?.usage?.inputTokens, 8);
  assert.equal(reply?.usage?.outputTokens, 7);
  assert.equal(reply?.usage?.totalTokens, 15);
});

Deno.test("replyReader reads a whole JSON body, even when a stream was asked for", async () => {
  const body = await fixture("openai_chat_completion.json");
  const { reply, pieces } = await read(
    piecewiseResponse([encoder.encode(body)], "application/json"),
  );
  assert.equal(reply?.text, "Bonjour ! Voici le résumé demandé : trois points, un par ligne.");
  assert.deepEqual(pieces, [reply?.text], "a whole reply is one delta");
  assert.equal(reply?.usage?.cachedTokens, 1024);
  const gemini = await read(
    piecewiseResponse(
      [encoder.encode(await fixture("gemini_usage_completion.json"))],
      "application/json",
    ),
  );
  assert.equal(gemini.reply?.finishReason, "stop", "Gemini's STOP is stop");
  assert.equal(gemini.reply?.usage?.reasoningTokens, 473);
});

Deno.test("replyReader fails retryably on an error chunk mid-stream, keeping the text so far", async () => {
  const { error, text } = await read(stream(await fixture("openrouter_stream_error.sse")));
  assert.ok(error instanceof ProviderError);
  assert.equal(error.retryable, true);
  assert.match(error.message, /Provider disconnected unexpectedly/);
  assert.equal(text, "Partial");
});

Deno.test("replyReader fails retryably when a stream ends before it finished", async () => {
  const body = await fixture("openai_chat_stream.sse");
  const cutAt = body.indexOf("data:", body.indexOf("Köln"));
  const { error, text } = await read(stream(body.slice(0, cutAt)));
  assert.ok(error instanceof ProviderError);
  assert.equal(error.retryable, true);
  assert.match(error.message, /ended the stream before it finished/);
  assert.equal(text, "Grüße aus Köln");
});

Deno.test("replyReader accepts a stream that finished without [DONE]", async () => {
  const body = await fixture("anthropic_usage_stream.sse");
  const { reply } = await read(stream(body.replace("data: [DONE]\n\n", "")));
  assert.equal(reply?.text, "Short answer.");
});

Deno.test("replyReader takes a finished stream that neither ends nor sends [DONE] as it stands", async () => {
  const body = await fixture("anthropic_usage_stream.sse");
  let cancelled = false;
  // The whole stream but `[DONE]`, and then the connection stays open.
  const hanging = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(body.replace("data: [DONE]\n\n", "")));
    },
    cancel() {
      cancelled = true;
    },
  });
  const { reply, error } = await read(
    new Response(hanging, { headers: { "content-type": "text/event-stream" } }),
  );
  assert.equal(error, undefined);
  assert.equal(reply?.text, "Short answer.");
  assert.equal(reply?.finishReason, "stop");
  assert.ok(reply?.usage !== undefined, "the usage chunk after the finish reason is kept");
  assert.ok(cancelled, "the body is cancelled, so its connection is not held");

  // Keep-alive comments after the finish do not hold the reply back.
  let beat: ReturnType<typeof setInterval> | undefined;
  const beating = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(body.replace("data: [DONE]\n\n", "")));
      beat = setInterval(() => controller.enqueue(encoder.encode(": keep-alive\n\n")), 200);
    },
    cancel() {
      clearInterval(beat);
    },
  });
  const kept = await read(
    new Response(beating, { headers: { "content-type": "text/event-stream" } }),
  );
  assert.equal(kept.reply?.text, "Short answer.");
});

Deno.test("replyReader refuses, without retry, a stream that is not the wire format, and redacts it", async () => {
  const { error } = await read(stream("data: <html>sk-secret</html>\n\n"));
  assert.ok(error instanceof ProviderError);
  assert.equal(error.retryable, false);
  assert.match(error.message, /not JSON: <html>\[redacted\]<\/html>/);
  const whole = await read(
    piecewiseResponse([encoder.encode('{"choices":[]}')], "application/json"),
  );
  assert.ok(whole.error instanceof ProviderError);
  assert.match(whole.error.message, /choices\[0\]\.message is missing/);
});

Deno.test("replyReader holds a JSON reply to maxBytes over HTTP, compressed or of no declared length", async () => {
  const completion = await fixture("openai_chat_completion.json");
  // Padding inside the JSON: valid, and far larger decoded than compressed.
  const padded = completion.replace('"id":', `"padding":"${" ".repeat(50_000)}","id":`);
  const gzip = async (text: string) =>
    new Uint8Array(
      await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")))
        .arrayBuffer(),
    );
  const bodies: Record<string, () => Promise<Response>> = {
    "/declared": () => Promise.resolve(Response.json(JSON.parse(completion))),
    "/gzip-small": async () =>
      new Response(await gzip(completion), {
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
      }),
    "/gzip-big": async () =>
      new Response(await gzip(padded), {
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
      }),
    "/chunked-big": () =>
      Promise.resolve(
        new Response(new Blob([padded]).stream(), {
          headers: { "content-type": "application/json" },
        }),
      ),
  };
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => bodies[new URL(request.url).pathname]!(),
  );
  const readFrom = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}${path}`);
    const reader = replyReader(response, {
      onText: () => {},
      redact: (text) => text,
      url: "http://upstream/v1/chat/completions",
      maxBytes: 10_000,
    });
    try {
      return { reply: await reader.read() };
    } catch (error) {
      return { error };
    }
  };
  const expected = "Bonjour ! Voici le résumé demandé : trois points, un par ligne.";
  assert.equal((await readFrom("/declared")).reply?.text, expected);
  assert.equal((await readFrom("/gzip-small")).reply?.text, expected);
  for (const path of ["/gzip-big", "/chunked-big"]) {
    const { error } = await readFrom(path);
    assert.ok(error instanceof ProviderError, `${path} is refused`);
    assert.match(error.message, /larger than 10000 \(maxReplyBytes\)/, path);
    assert.equal(error.retryable, false);
  }
});
