// The load driver's options: their defaults, their checks (loopback targets only) and the command-line flags.

import { parseArgs } from "node:util";
import { LOAD_APIS, type LoadApi } from "./_load_api.ts";
import { CLIENT_KINDS, type ClientKind } from "./_load_transport.ts";

/** Options of a load run; see {@linkcode resolveLoadOptions} for the checks. */
export interface LoadOptions {
  /**
   * The API the target speaks.
   * @default {"native"}
   */
  api?: LoadApi;
  /**
   * How the driver talks HTTP.
   * @default {"raw"}
   */
  client?: ClientKind;
  /**
   * Sessions; each sends its messages one after another, awaiting each reply.
   * @default {100}
   */
  sessions?: number;
  /**
   * Sessions running at once (the clients); the others wait for a free slot.
   * @default {sessions}
   */
  concurrency?: number;
  /**
   * Messages (turns) each session sends.
   * @default {10}
   */
  messagesPerSession?: number;
  /**
   * Chance that a turn is double-texted: a second message on the same session
   * `doubleTextDelayMs` after the first. The turn ends when its last reply is in.
   * @default {0}
   */
  doubleTextProbability?: number;
  /**
   * Delay before the second message of a double-texted turn, in ms.
   * @default {20}
   */
  doubleTextDelayMs?: number;
  /**
   * No turn starts after this long, in ms.
   * @default {10000}
   */
  durationMs?: number;
  /**
   * Requests still in flight this long after `durationMs` are aborted (counted as `aborted`).
   * @default {5000}
   */
  graceMs?: number;
  /**
   * At most this many requests are sent.
   * @default {Infinity}
   */
  maxRequests?: number;
  /**
   * Open loop: send this many requests per second on a fixed schedule, each on a new
   * session, whatever the answers. Latency counts from the actual send; how late each
   * send was against the schedule is reported apart (`scheduleLagMs`). Sessions,
   * concurrency, messages and double texting do not apply.
   * @default {undefined}
   */
  rate?: number;
  /**
   * Every turn on a new session (a one-shot conversation), so that no history grows.
   * @default {false}
   */
  freshSessions?: boolean;
  /**
   * On the `openai` API, send no `X-Session-Id`: every request is a one-shot
   * session the server names, as a plain OpenAI client's call (the request a
   * gateway benchmark sends). Only with `api: "openai"`.
   * @default {false}
   */
  oneShot?: boolean;
  /**
   * Sent as `Authorization: Bearer`; never printed.
   * @default {undefined}
   */
  apiKey?: string;
  /**
   * The model named in OpenAI-shaped requests.
   * @default {"mock-model"}
   */
  model?: string;
  /**
   * The text of every message.
   * @default {"what is the time in Lisbon?"}
   */
  content?: string;
  /**
   * The mock upstream's `GET /stats` URL; read before and after to count upstream calls.
   * @default {undefined}
   */
  upstreamStatsUrl?: string;
  /**
   * Prefix of the session ids, so that runs do not share sessions.
   * @default {a random "load-xxxxxxxx-"}
   */
  sessionPrefix?: string;
  /**
   * Seed of the PRNG that picks the double-texted turns.
   * @default {1}
   */
  seed?: number;
}

/** Every option with its default applied, checked. */
export type ResolvedLoadOptions =
  & Required<Omit<LoadOptions, "rate" | "apiKey" | "upstreamStatsUrl">>
  & Pick<LoadOptions, "rate" | "apiKey" | "upstreamStatsUrl">
  & { url: string };

/**
 * Why `url` is not a loopback HTTP URL (`127.x.x.x`, `[::1]` or `localhost`), or `undefined` if it is.
 *
 * @example
 * ```ts
 * import { loopbackProblem } from "./_load_options.ts";
 *
 * console.assert(loopbackProblem("http://127.0.0.1:8787") === undefined);
 * console.assert(loopbackProblem("http://[::1]:8787") === undefined);
 * console.assert(loopbackProblem("http://example.com")?.includes("example.com"));
 * ```
 */
export function loopbackProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return `it is not a URL, current value is ${JSON.stringify(url)}`;
  const parsed = new URL(url);
  if (parsed.protocol !== "http:") {
    return `it must be an http:// URL, current value is a "${parsed.protocol}" URL`;
  }
  const host = parsed.hostname;
  if (host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)) return;
  return `it must be a loopback address (127.x.x.x, [::1] or localhost), current host is ${host}`;
}

/**
 * Apply the defaults and check every option; a bad one throws a `RangeError`
 * naming it. Only loopback targets are accepted: the driver is a bench tool, not
 * a way to flood someone else's server.
 *
 * @example
 * ```ts
 * import { resolveLoadOptions } from "./_load_options.ts";
 *
 * const options = resolveLoadOptions("http://127.0.0.1:8787", { sessions: 20 });
 * console.assert(options.concurrency === 20 && options.api === "native");
 * let refused = false;
 * try {
 *   resolveLoadOptions("http://10.0.0.8:8787");
 * } catch (error) {
 *   refused = error instanceof RangeError;
 * }
 * console.assert(refused);
 * ```
 */
export function resolveLoadOptions(url: string, options: LoadOptions = {}): ResolvedLoadOptions {
  const sessions = options.sessions ?? 100;
  const resolved: ResolvedLoadOptions = {
    url: url.replace(/\/+$/, ""),
    api: options.api ?? "native",
    client: options.client ?? "raw",
    sessions,
    concurrency: options.concurrency ?? sessions,
    messagesPerSession: options.messagesPerSession ?? 10,
    doubleTextProbability: options.doubleTextProbability ?? 0,
    doubleTextDelayMs: options.doubleTextDelayMs ?? 20,
    durationMs: options.durationMs ?? 10_000,
    graceMs: options.graceMs ?? 5_000,
    maxRequests: options.maxRequests ?? Infinity,
    freshSessions: options.freshSessions ?? false,
    oneShot: options.oneShot ?? false,
    model: options.model ?? "mock-model",
    content: options.content ?? "what is the time in Lisbon?",
    sessionPrefix: options.sessionPrefix ??
      `load-${crypto.randomUUID().slice(0, 8)}-`,
    seed: options.seed ?? 1,
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
    ...(options.upstreamStatsUrl === undefined
      ? {}
      : { upstreamStatsUrl: options.upstreamStatsUrl }),
  };
  const fail = (name: string, problem: string): never => {
    throw new RangeError(`Cannot run the load: ${name} ${problem}`);
  };
  const urlProblem = loopbackProblem(resolved.url);
  if (urlProblem) fail("the target URL", urlProblem);
  if (resolved.upstreamStatsUrl !== undefined) {
    const statsProblem = loopbackProblem(resolved.upstreamStatsUrl);
    if (statsProblem) fail("upstreamStatsUrl", statsProblem);
  }
  if (!LOAD_APIS.includes(resolved.api)) {
    fail("api", `must be one of ${LOAD_APIS.join(", ")}, current value is ${resolved.api}`);
  }
  if (!CLIENT_KINDS.includes(resolved.client)) {
    fail(
      "client",
      `must be one of ${CLIENT_KINDS.join(", ")}, current value is ${resolved.client}`,
    );
  }
  const whole = (name: keyof ResolvedLoadOptions, min: number) => {
    const value = resolved[name] as number;
    if (!Number.isInteger(value) || value < min) {
      fail(name, `must be a whole number >= ${min}, current value is ${value}`);
    }
  };
  whole("sessions", 1);
  whole("concurrency", 1);
  whole("messagesPerSession", 1);
  whole("doubleTextDelayMs", 0);
  whole("durationMs", 1);
  whole("graceMs", 0);
  if (resolved.maxRequests !== Infinity) whole("maxRequests", 1);
  const p = resolved.doubleTextProbability;
  if (!(p >= 0 && p <= 1)) {
    fail("doubleTextProbability", `must be between 0 and 1, current value is ${p}`);
  }
  if (resolved.oneShot && resolved.api !== "openai") {
    fail("oneShot", `applies to the openai API only, current api is ${resolved.api}`);
  }
  if (resolved.rate !== undefined && !(resolved.rate > 0 && Number.isFinite(resolved.rate))) {
    fail("rate", `must be a number > 0, current value is ${resolved.rate}`);
  }
  if (!/^[A-Za-z0-9._:@-]{0,100}$/.test(resolved.sessionPrefix)) {
    fail(
      "sessionPrefix",
      `must be at most 100 letters, digits, ".", "_", ":", "@" or "-", current value is ${
        JSON.stringify(resolved.sessionPrefix)
      }`,
    );
  }
  return resolved;
}

const USAGE = "Usage: load.ts --url http://127.0.0.1:8787 [--api native|openai|baseline] " +
  "[--client raw|node|fetch] [--sessions N] [--concurrency|--clients N] [--messages N] " +
  "[--double-text P] [--double-text-delay-ms N] [--duration-ms N] [--grace-ms N] " +
  "[--max-requests N] [--rate N] [--fresh-sessions] [--one-shot] [--model M] [--content TEXT] " +
  "[--upstream-stats URL] [--session-prefix P] [--seed N]  (API key: TROUPE_LOAD_API_KEY)";

const NUMBER_FLAGS = {
  "sessions": "sessions",
  "concurrency": "concurrency",
  "clients": "concurrency",
  "messages": "messagesPerSession",
  "double-text": "doubleTextProbability",
  "double-text-delay-ms": "doubleTextDelayMs",
  "duration-ms": "durationMs",
  "grace-ms": "graceMs",
  "max-requests": "maxRequests",
  "rate": "rate",
  "seed": "seed",
} as const satisfies Record<string, keyof LoadOptions>;

const STRING_FLAGS = {
  "api": "api",
  "client": "client",
  "model": "model",
  "content": "content",
  "upstream-stats": "upstreamStatsUrl",
  "session-prefix": "sessionPrefix",
} as const satisfies Record<string, keyof LoadOptions>;

/**
 * Parse the driver's flags into the target URL and options. An unknown flag or a
 * value that is not a number throws a `TypeError` with the usage line; the values
 * themselves are checked by {@linkcode resolveLoadOptions}.
 *
 * @example
 * ```ts
 * import { parseLoadArgs } from "./_load_options.ts";
 *
 * const { url, options } = parseLoadArgs(["--url", "http://127.0.0.1:8787", "--clients", "8"]);
 * console.assert(url === "http://127.0.0.1:8787" && options.concurrency === 8);
 * ```
 */
export function parseLoadArgs(args: string[]): { url: string; options: LoadOptions } {
  const flags: Record<string, { type: "string" | "boolean" }> = {
    "url": { type: "string" },
    "fresh-sessions": { type: "boolean" },
    "one-shot": { type: "boolean" },
  };
  for (const flag of [...Object.keys(NUMBER_FLAGS), ...Object.keys(STRING_FLAGS)]) {
    flags[flag] = { type: "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options: flags, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new TypeError(`Cannot parse arguments: ${(error as Error).message}\n${USAGE}`, {
      cause: error,
    });
  }
  if (typeof values.url !== "string") {
    throw new TypeError(`Cannot parse arguments: --url is required\n${USAGE}`);
  }
  const options: Record<string, unknown> = {};
  for (const [flag, name] of Object.entries(NUMBER_FLAGS)) {
    const text = values[flag];
    if (typeof text !== "string") continue;
    const value = text.trim() === "" ? NaN : Number(text);
    if (Number.isNaN(value)) {
      throw new TypeError(`Cannot parse --${flag}: it must be a number, current value is ${text}`);
    }
    options[name] = value;
  }
  for (const [flag, name] of Object.entries(STRING_FLAGS)) {
    if (typeof values[flag] === "string") options[name] = values[flag];
  }
  if (values["fresh-sessions"] === true) options.freshSessions = true;
  if (values["one-shot"] === true) options.oneShot = true;
  return { url: values.url, options: options as LoadOptions };
}
