// Incremental server-sent events parser: text in, in whatever pieces the network delivers, events out.

/** Receives each complete event: its joined `data` lines and its `event` name. */
export type SseHandler = (data: string, event: string) => void;

/** A parser fed text as it arrives; {@linkcode sseParser} makes one. */
export interface SseParser {
  /** Feed the next piece of decoded text; complete events go to the handler at once. */
  push(text: string): void;
  /**
   * The stream ended: dispatch an event whose lines all ended but whose blank
   * line never came; a line cut short is dropped.
   */
  finish(): void;
  /**
   * Characters held for the event not yet dispatched (its data lines and the
   * unfinished line): what a stream that never ends its event makes grow.
   */
  readonly held: number;
}

const LF = 10;
const COLON = 58;
const SPACE = 32;

/**
 * Make an incremental parser of the `text/event-stream` format (WHATWG HTML
 * §9.2.6): lines end with CRLF, LF or CR, and a piece may end anywhere,
 * between a CR and its LF too; `data` lines are joined with `\n`; lines
 * starting with `:` are comments; `id` and `retry` are ignored; a blank line
 * dispatches. Unlike a browser, it also dispatches a last event whose blank
 * line never came (some servers end the stream right after `data: [DONE]\n`).
 *
 * It scans each piece once with `indexOf` and keeps only an unfinished line
 * between pieces, so a long stream costs time in proportion to its length.
 *
 * @param onEvent Receives each event.
 * @returns The parser.
 *
 * @example
 * ```ts
 * import { sseParser } from "./_sse_parser.ts";
 *
 * const seen: string[] = [];
 * const parser = sseParser((data) => seen.push(data));
 * parser.push(": keep-alive\r\ndata: {\"a\"");
 * parser.push(":1}\r");
 * parser.push("\n\r\ndata: [DONE]\n\n");
 * console.assert(seen.join("|") === '{"a":1}|[DONE]');
 * ```
 */
export function sseParser(onEvent: SseHandler): SseParser {
  let pending = "";
  let skipLf = false;
  let data: string | null = null;
  let event = "";

  function dispatch(): void {
    if (data !== null) onEvent(data, event === "" ? "message" : event);
    data = null;
    event = "";
  }

  function line(text: string, start: number, end: number): void {
    if (start === end) return dispatch();
    const first = text.charCodeAt(start);
    if (first === COLON) return;
    if (first === 100 && text.startsWith("data:", start)) {
      let from = start + 5;
      if (from < end && text.charCodeAt(from) === SPACE) from++;
      const value = text.slice(from, end);
      data = data === null ? value : `${data}\n${value}`;
      return;
    }
    let colon = text.indexOf(":", start);
    if (colon === -1 || colon > end) colon = end;
    const field = text.slice(start, colon);
    let from = colon + 1;
    if (from < end && text.charCodeAt(from) === SPACE) from++;
    const value = from < end ? text.slice(from, end) : "";
    if (field === "data") data = data === null ? value : `${data}\n${value}`;
    else if (field === "event") event = value;
  }

  function push(text: string): void {
    const buffer = pending === "" ? text : pending + text;
    let start = 0;
    if (skipLf) {
      skipLf = false;
      if (buffer.charCodeAt(0) === LF) start = 1;
    }
    const length = buffer.length;
    if (buffer.indexOf("\r", start) === -1) {
      // The common case: LF only.
      for (let end = buffer.indexOf("\n", start); end !== -1; end = buffer.indexOf("\n", start)) {
        line(buffer, start, end);
        start = end + 1;
      }
    } else {
      let lf = buffer.indexOf("\n", start);
      let cr = buffer.indexOf("\r", start);
      while (lf !== -1 || cr !== -1) {
        const end = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
        line(buffer, start, end);
        start = end + 1;
        if (end === cr) {
          if (start === length) skipLf = true;
          else if (buffer.charCodeAt(start) === LF) start++;
        }
        if (lf !== -1 && lf < start) lf = buffer.indexOf("\n", start);
        if (cr !== -1 && cr < start) cr = buffer.indexOf("\r", start);
      }
    }
    pending = start === length ? "" : buffer.slice(start);
  }

  function finish(): void {
    pending = "";
    skipLf = false;
    dispatch();
  }

  return {
    push,
    finish,
    get held() {
      return pending.length + (data === null ? 0 : data.length);
    },
  };
}
