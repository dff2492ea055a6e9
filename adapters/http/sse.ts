// Server-sent events: frames events safely and streams them as a Response.

/** One server-sent event. */
export interface SseEvent {
  /** The event name; must not contain CR or LF. */
  event?: string;
  /** The event id; must not contain CR, LF or NUL. */
  id?: string;
  /** The payload; each line becomes one `data:` line. */
  data: string;
}

/**
 * Frame one event as text. A CR or LF in `event` or `id` would let a value
 * start a field or an event of its own, so it is refused with a `TypeError`.
 *
 * @example
 * ```ts
 * import { formatSseEvent } from "./sse.ts";
 *
 * const text = formatSseEvent({ event: "delta", data: '{"text":"hi"}' });
 * console.assert(text === 'event: delta\ndata: {"text":"hi"}\n\n');
 * ```
 */
export function formatSseEvent(event: SseEvent): string {
  let text = "";
  if (event.event !== undefined) {
    if (/[\r\n]/.test(event.event)) {
      throw new TypeError(
        `Cannot write an SSE event: event must not contain CR or LF, current value is ${
          JSON.stringify(event.event)
        }`,
      );
    }
    text += `event: ${event.event}\n`;
  }
  if (event.id !== undefined) {
    if (/[\r\n\0]/.test(event.id)) {
      throw new TypeError(
        `Cannot write an SSE event: id must not contain CR, LF or NUL, current value is ${
          JSON.stringify(event.id)
        }`,
      );
    }
    text += `id: ${event.id}\n`;
  }
  for (const line of event.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/**
 * Stream events as a `text/event-stream` response. Events are pulled as the
 * client reads; a client that goes away calls the source's `return()`.
 *
 * @example
 * ```ts
 * import { sseResponse } from "./sse.ts";
 *
 * async function* events() {
 *   yield { event: "greeting", data: "hello" };
 * }
 * const response = sseResponse(events());
 * console.assert((await response.text()) === "event: greeting\ndata: hello\n\n");
 * ```
 */
export function sseResponse(source: AsyncIterator<SseEvent>, init: ResponseInit = {}): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const result = await source.next();
      if (result.done) controller.close();
      else controller.enqueue(encoder.encode(formatSseEvent(result.value)));
    },
    async cancel() {
      await source.return?.();
    },
  });
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/event-stream; charset=utf-8");
  headers.set("cache-control", "no-store");
  return new Response(body, { ...init, headers });
}
