// Reading HTTP bodies: chunk by chunk into one reused buffer (streamed replies), or whole under a byte limit.

/** Bytes read from a body; each chunk is valid only until the next `read()`. */
export interface ByteReader {
  /** The next chunk, or `undefined` at the end of the body. */
  read(): Promise<Uint8Array | undefined>;
  /** Stop reading: the body is cancelled (and its connection closed). */
  cancel(): Promise<void>;
}

/** The buffer a BYOB read fills: larger than any one SSE frame a provider sends. */
const BUFFER_BYTES = 16 * 1024;

/**
 * A reader of `body` that reads into one buffer it reuses, so a long stream of
 * small chunks allocates nothing per chunk. `fetch` bodies are byte streams,
 * and on Deno a default reader of one costs about twice the CPU per read of a
 * BYOB reader (measured on an SSE stream of small events), which is most of an
 * LLM worker's time on a streamed reply. A body that is not a byte stream
 * (one a caller built) is read with a default reader.
 *
 * A chunk is a view of the shared buffer: use it (decode it, copy it) before
 * the next `read()`, which overwrites it.
 *
 * @example
 * ```ts
 * import { byteReader } from "./_body.ts";
 *
 * const reader = byteReader(new Response("data: hi\n\n").body!);
 * const decoder = new TextDecoder();
 * let text = "";
 * for (let chunk = await reader.read(); chunk !== undefined; chunk = await reader.read()) {
 *   text += decoder.decode(chunk, { stream: true });
 * }
 * console.assert(text === "data: hi\n\n");
 * ```
 */
export function byteReader(body: ReadableStream<Uint8Array>): ByteReader {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    return defaultReader(body.getReader());
  }
  let buffer: ArrayBuffer | undefined = new ArrayBuffer(BUFFER_BYTES);
  return {
    async read() {
      // The read transfers the buffer; the chunk it returns views the new one.
      const { done, value } = await byob.read(new Uint8Array(buffer!));
      if (done || value === undefined) {
        buffer = undefined;
        return undefined;
      }
      buffer = value.buffer as ArrayBuffer;
      return value;
    },
    cancel: () => byob.cancel(),
  };
}

function defaultReader(reader: ReadableStreamDefaultReader<Uint8Array>): ByteReader {
  return {
    async read() {
      const { done, value } = await reader.read();
      return done ? undefined : value;
    },
    cancel: () => reader.cancel(),
  };
}

/**
 * Read all of `body` unless more than `maxBytes` arrive: the bytes, or `null`
 * once the count passes `maxBytes` (the body is then cancelled, and nothing
 * more is read). It counts what actually arrives, whatever a header declared.
 * With `timeoutMs`, a body not whole by then is cancelled and the read rejects
 * with a {@linkcode BodyTimeoutError}.
 *
 * @example
 * ```ts
 * import { readAtMost } from "./_body.ts";
 *
 * console.assert((await readAtMost(new Response("four").body!, 4))?.length === 4);
 * console.assert((await readAtMost(new Response("five!").body!, 4)) === null);
 * ```
 */
export async function readAtMost(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  timeoutMs?: number,
): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  // The lock is never released: nothing reads the body after this, and releasing it costs
  // more than the rest of the read (it rejects the reader's `closed` with a new TypeError).
  const reader = body.getReader();
  // One timer, not a race per read: cancelling ends the pending read.
  let late = false;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, timeoutMs);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (late) throw new BodyTimeoutError(timeoutMs!);
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
  } finally {
    clearTimeout(timer);
  }
  return concatBytes(chunks, size);
}

/** {@linkcode readAtMost} gave up: the whole body did not arrive within its time. */
export class BodyTimeoutError extends Error {
  /** The time the body had, in ms. */
  readonly timeoutMs: number;
  /** @param timeoutMs The time the body had, in ms. */
  constructor(timeoutMs: number) {
    super(`The body did not arrive within ${timeoutMs} ms`);
    this.name = "BodyTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The chunks one after another in one new array of `size` bytes (their total length).
 *
 * @example
 * ```ts
 * import { concatBytes } from "./_body.ts";
 *
 * const joined = concatBytes([new Uint8Array([1, 2]), new Uint8Array([3])], 3);
 * console.assert(joined.join() === "1,2,3");
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
