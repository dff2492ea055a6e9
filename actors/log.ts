// Structured log lines: one JSON object per line on stderr, with a level and a message.

/** How severe a log line is. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Write one structured log line on stderr; fields that are `undefined` are left out.
 *
 * @example
 * ```ts
 * import { logLine } from "./log.ts";
 *
 * logLine("info", "troupe listening", { url: "http://127.0.0.1:8787" });
 * ```
 */
export function logLine(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  console.error(JSON.stringify({ level, msg, ...fields }));
}

/**
 * An error as one line of text for a log: `Name: message`.
 *
 * @example
 * ```ts
 * import { errorText } from "./log.ts";
 *
 * console.assert(errorText(new TypeError("bad")) === "TypeError: bad");
 * ```
 */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
