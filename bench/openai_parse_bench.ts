// Measures SSE parsing of an OpenAI chunk stream: the provider's incremental parser against a naive split-based one.

import { replyReader } from "../adapters/llm/_read_reply.ts";
import { sseParser } from "../adapters/llm/_sse_parser.ts";
import { piecewiseResponse } from "../tests/adapters/llm/_fixtures.ts";

// Chunks per stream: a long reply of one word each, as OpenAI streams them.
const CHUNKS = 2_000;

function streamText(): string {
  const head =
    '"id":"chatcmpl-BxQ4aW1eY6tR8uI0oP2aS4dF6gH8j","object":"chat.completion.chunk","created":1753780530,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c"';
  let text = "";
  for (let i = 0; i < CHUNKS; i++) {
    const delta = JSON.stringify({ content: ` word${i}` });
    text +=
      `data: {${head},"choices":[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`;
  }
  text +=
    `data: {${head},"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":${CHUNKS},"total_tokens":${
      CHUNKS + 19
    }}}\n\ndata: [DONE]\n\n`;
  return text;
}

const TEXT = streamText();

/** The stream as the network hands it over: one event per piece (a token stream's pace). */
const PER_EVENT = TEXT.split(/(?<=\n\n)/);

/** The stream in 4 KiB pieces (a fast upstream, or a proxy that buffers), cut mid-line. */
const PIECES_4K: string[] = [];
for (let i = 0; i < TEXT.length; i += 4096) PIECES_4K.push(TEXT.slice(i, i + 4096));

/**
 * The parser most hand-written clients use: split the buffer on blank lines
 * and keep `data: ` lines. It handles neither CRLF nor CR line ends, nor
 * `data:` without a space, nor a stream whose last blank line is missing.
 */
function naiveParse(pieces: string[], onData: (data: string) => void): void {
  let buffer = "";
  for (const piece of pieces) {
    buffer += piece;
    const events = buffer.split("\n\n");
    buffer = events.pop() ?? "";
    for (const event of events) {
      for (const line of event.split("\n")) {
        if (line.startsWith("data: ")) onData(line.slice(6));
      }
    }
  }
}

function incrementalParse(pieces: string[], onData: (data: string) => void): void {
  const parser = sseParser(onData);
  for (const piece of pieces) parser.push(piece);
  parser.finish();
}

let sink = 0;
const count = (data: string) => {
  sink += data.length;
};

for (
  const [label, pieces] of [["one event a piece", PER_EVENT], ["4 KiB pieces", PIECES_4K]] as const
) {
  const group = `sse lines, ${CHUNKS} chunks, ${label}`;
  Deno.bench(`naive split parser (${label})`, { group, baseline: true }, () => {
    naiveParse(pieces, count);
  });
  Deno.bench(`sseParser (${label})`, { group }, () => {
    incrementalParse(pieces, count);
  });
}

const ENCODED = PER_EVENT.map((piece) => new TextEncoder().encode(piece));

function response(): Response {
  return piecewiseResponse(ENCODED);
}

const group = `whole reply, ${CHUNKS} chunks: bytes to text and usage`;
Deno.bench("naive: decode, split, JSON.parse each chunk", { group, baseline: true }, async () => {
  const reader = response().body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const pieces: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pieces.push(decoder.decode(value, { stream: true }));
  }
  naiveParse(pieces, (data) => {
    if (data === "[DONE]") return;
    const chunk = JSON.parse(data);
    text += chunk.choices[0]?.delta?.content ?? "";
  });
  sink += text.length;
});
Deno.bench("replyReader: the provider's whole path", { group }, async () => {
  const reply = await replyReader(response(), {
    onText: count,
    redact: (text) => text,
    url: "http://bench",
  }).read();
  sink += reply.text.length;
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
