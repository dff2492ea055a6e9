// Reads a 200 chat completion response, streamed (SSE) or whole (JSON), into one reply, passing text on as it arrives.

import { ProviderError } from "../../actors/errors.ts";
import { type ByteReader, byteReader, readAtMost } from "../_body.ts";
import { chunkFolder, readCompletion, type WireReply } from "./_chat_wire.ts";
import { sseParser } from "./_sse_parser.ts";

/** After `[DONE]`, how long the rest of the body may take to end before it is cancelled. */
const DRAIN_GRACE_MS = 1000;

/**
 * After a chunk with a finish reason, how long the stream may take to end or send `[DONE]`
 * before the reply is taken as complete without it (the usage chunk and `[DONE]` follow at
 * once upstream).
 */
const FINISHED_GRACE_MS = 2000;

/** The default of {@linkcode ReadReplyContext.maxBytes}: 16 MiB, far above any real completion. */
export const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024;

/** What {@linkcode readReply} needs besides the response. */
export interface ReadReplyContext {
  /** Receives each piece of text as it arrives, in order. */
  onText(text: string): void;
  /** Removes secrets from text that goes into an error. */
  redact(text: string): string;
  /** The URL as it may be shown. */
  url: string;
  /**
   * The most a reply may hold: the bytes of a JSON body; for a stream, the
   * characters of any one event and of the text generated. Past it the read
   * stops, the body is cancelled and a non-retryable `ProviderError` says so:
   * a runaway upstream cannot grow a worker's memory without bound.
   * @default {DEFAULT_MAX_REPLY_BYTES}
   */
  maxBytes?: number;
}

/** A reply being read: what has arrived so far, readable after a failure too. */
export interface ReplyReader {
  /** The text received so far. */
  readonly text: string;
  /** Read the whole reply; rejects with a `ProviderError`, or with what the body read threw. */
  read(): Promise<WireReply>;
}

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

/**
 * Make a reader of a successful chat completion response. A
 * `text/event-stream` body is read as a stream of chunks, anything else as
 * one JSON body (some servers ignore `stream: true`). A stream is complete at
 * `data: [DONE]`, or when the body ends after a finish reason (or two seconds after
 * one, whatever still comes); a body that
 * ends before either was cut: a retryable `ProviderError`. A chunk with an
 * `error` object is a retryable `ProviderError` (the upstream failed while
 * generating); a body that is not the wire format is a non-retryable one.
 * Errors of the body read itself (a reset connection, an abort) are rethrown
 * as they are, for the caller to tell a cancel from a drop.
 *
 * @example
 * ```ts
 * import { replyReader } from "./_read_reply.ts";
 *
 * const body = 'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
 * const response = new Response(body, { headers: { "content-type": "text/event-stream" } });
 * const pieces: string[] = [];
 * const reader = replyReader(response, { onText: (t) => pieces.push(t), redact: (t) => t, url: "http://x" });
 * const reply = await reader.read();
 * console.assert(reply.text === "hi" && pieces.join("") === "hi" && reply.finishReason === "stop");
 * ```
 */
export function replyReader(response: Response, context: ReadReplyContext): ReplyReader {
  const folder = chunkFolder();
  let wholeText = "";
  const stream = isEventStream(response);
  return {
    get text() {
      return stream ? folder.text : wholeText;
    },
    async read() {
      if (!stream) {
        const reply = readWhole(await readBody(response, context), context);
        wholeText = reply.text;
        if (reply.text !== "") context.onText(reply.text);
        return reply;
      }
      await readStream(response, folder, context);
      return folder;
    },
  };
}

/**
 * The body as text, read under `maxBytes` (refused at once when its declared length is over).
 * A body of a declared length that `fetch` does not decompress cannot outgrow that length
 * (the HTTP client ends it there), so it is read whole with `text()`, about half the CPU of
 * reading it chunk by chunk; a compressed body or one of no declared length is counted as it
 * arrives.
 */
async function readBody(response: Response, context: ReadReplyContext): Promise<string> {
  const max = context.maxBytes ?? DEFAULT_MAX_REPLY_BYTES;
  if (response.body === null) return "";
  const declared = response.headers.get("content-length");
  const length = declared === null ? Number.NaN : Number(declared);
  if (length > max) {
    response.body.cancel().catch(() => {});
    throw tooLarge(context, max);
  }
  const encoding = response.headers.get("content-encoding");
  if (Number.isSafeInteger(length) && (encoding === null || encoding === "identity")) {
    return await response.text();
  }
  const bytes = await readAtMost(response.body, max);
  if (bytes === null) throw tooLarge(context, max);
  return new TextDecoder().decode(bytes);
}

function tooLarge(context: ReadReplyContext, max: number): ProviderError {
  return new ProviderError(
    `Cannot complete the chat: ${context.url} sent a reply larger than ${max} (maxReplyBytes); ` +
      "the rest was not read",
    { status: 200 },
  );
}

function readWhole(text: string, context: ReadReplyContext): WireReply {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProviderError(
      `Cannot complete the chat: ${context.url} answered 200 with a body that is not JSON: ${
        context.redact(text.slice(0, 100))
      }`,
    );
  }
  try {
    return readCompletion(body);
  } catch (error) {
    const said = context.redact((error as Error).message);
    throw new ProviderError(`${said} (from ${context.url})`, { status: 200 });
  }
}

async function readStream(
  response: Response,
  folder: ReturnType<typeof chunkFolder>,
  context: ReadReplyContext,
): Promise<void> {
  const { onText, redact, url } = context;
  const max = context.maxBytes ?? DEFAULT_MAX_REPLY_BYTES;
  let done = false;
  let failure: ProviderError | undefined;
  const parser = sseParser((data) => {
    if (done || failure !== undefined) return;
    if (data === "[DONE]") {
      done = true;
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      failure = new ProviderError(
        `Cannot complete the chat: ${url} streamed an event that is not JSON: ${
          redact(data.slice(0, 100))
        }`,
        { status: 200 },
      );
      return;
    }
    let added: string;
    try {
      added = folder.fold(chunk);
    } catch (error) {
      failure = new ProviderError(
        `Cannot complete the chat: ${url} reported an error mid-stream: ${
          redact((error as Error).message)
        }`,
        { status: 200, retryable: true },
      );
      return;
    }
    if (added !== "") onText(added);
  });
  const reader = byteReader(response.body!);
  const decoder = new TextDecoder();
  let ended = false;
  // When the finish reason came: a stream that said why it finished but then neither ends nor
  // sends `[DONE]` holds a whole reply, taken as it stands a grace period later (counted from
  // the finish, so keep-alive comments cannot stretch it).
  let finishedAt: number | undefined;
  try {
    while (!done && failure === undefined) {
      if (finishedAt === undefined && folder.finishReason !== undefined) finishedAt = Date.now();
      const chunk = finishedAt === undefined
        ? await reader.read()
        : await readWithin(reader, finishedAt + FINISHED_GRACE_MS - Date.now());
      if (chunk === "late") {
        reader.cancel().catch(() => {});
        ended = true;
        break;
      }
      if (chunk === undefined) {
        ended = true;
        parser.push(decoder.decode());
        parser.finish();
        break;
      }
      parser.push(decoder.decode(chunk, { stream: true }));
      if (failure === undefined && (parser.held > max || folder.text.length > max)) {
        failure = tooLarge(context, max);
      }
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
  if (failure !== undefined) {
    reader.cancel().catch(() => {});
    throw failure;
  }
  if (!done && folder.finishReason === undefined) {
    throw new ProviderError(
      `Cannot complete the chat: ${url} ended the stream before it finished, after ${folder.text.length} characters`,
      { status: 200, retryable: true },
    );
  }
  if (!ended) await drain(reader);
}

/** The next chunk of `reader`, or `"late"` when none comes within `ms` (at once if `ms <= 0`). */
async function readWithin(
  reader: ByteReader,
  ms: number,
): Promise<Uint8Array | undefined | "late"> {
  if (ms <= 0) return "late";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  try {
    return await Promise.race([reader.read(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Read what follows `[DONE]` so the server sees its response delivered (and
 * the connection can be reused), giving up after a grace period.
 */
async function drain(reader: ByteReader): Promise<void> {
  const until = Date.now() + DRAIN_GRACE_MS;
  try {
    for (;;) {
      const next = await readWithin(reader, until - Date.now());
      if (next === "late") {
        reader.cancel().catch(() => {});
        return;
      }
      if (next === undefined) return;
    }
  } catch {
    // The reply is whole; a failure after it changes nothing.
  }
}
