// The server's configuration: one typed object parsed and validated once from TROUPE_* variables and flags.

import type { LogLevel } from "./log.ts";
import { parseArgs } from "node:util";
import { InvalidInputError } from "./errors.ts";
import { POLICIES, type Policy } from "./events.ts";
import { pathScheme } from "./validate.ts";

/** How much the server logs, least to most severe. */
export type { LogLevel };

/**
 * The log levels, least to most severe.
 *
 * @example
 * ```ts
 * import { LOG_LEVELS } from "./config.ts";
 *
 * console.assert(LOG_LEVELS.indexOf("warn") > LOG_LEVELS.indexOf("info"));
 * ```
 */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Everything the standalone server needs to start, validated. */
export interface TroupeConfig {
  /** The address to bind. */
  host: string;
  /** The port to bind; `0` picks a free one. */
  port: number;
  /** What happens to a message that arrives while a run is in flight. */
  policy: Policy;
  /** Wait this long after a message before starting its run. */
  debounceMs: number;
  /** Passivate a session after this long without work. */
  idleTimeoutMs: number;
  /** At most this many sessions are live at once. */
  maxActiveSessions: number;
  /** Delete a session's history and state once idle this long; `0` keeps them forever. */
  sessionRetentionMs: number;
  /** The least severe level that is logged. */
  logLevel: LogLevel;
  /** The largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Where history and events are stored: a SQLite file path, a `postgres://` URL, or `memory`. */
  databaseUrl: string;
  /** The NATS server events travel through (JetStream), or `null` for the in-process bus. */
  natsUrl: string | null;
  /** Deliver a reply only once its usage record and history are stored (or in JetStream). */
  durableReplies: boolean;
  /** The OpenAI-compatible upstream (`.../v1`), or `null` for the embedded mock. */
  llmBaseUrl: string | null;
  /** The upstream's API key, or `null` when it needs none. Never logged. */
  llmApiKey: string | null;
  /** The model to ask for; required with `llmBaseUrl`. */
  llmModel: string | null;
  /** Models to fall back to, in order, when the model keeps failing. */
  llmFallbackModels: string[];
  /** Each upstream attempt is abandoned after this long. */
  llmTimeoutMs: number;
  /** A whole call, retries included, is abandoned after this long. */
  llmDeadlineMs: number;
  /** How many times a failed attempt is retried (on 429, 5xx, timeouts, network errors). */
  llmRetries: number;
  /** Workers in the LLM pool; `0` picks one per core. */
  llmWorkers: number;
  /** Calls in flight at once per worker. */
  llmWorkerConcurrency: number;
  /** Calls waiting for a worker before the pool refuses more. */
  llmQueueBound: number;
  /** The most one upstream reply may hold (a JSON body, one streamed event, a stream's text). */
  llmMaxReplyBytes: number;
  /** The body field a call's token cap goes in: `max_completion_tokens` for OpenAI's reasoning models. */
  llmMaxTokensParameter: "max_tokens" | "max_completion_tokens";
  /** Requests allowed per session per rate-limit window; `0` turns the limit off. */
  rateLimitSession: number;
  /** Requests allowed per org per rate-limit window; `0` turns the limit off. */
  rateLimitOrg: number;
  /** The rate-limit window, in ms. */
  rateLimitWindowMs: number;
  /** How requests are counted: a token bucket (bursts up to the limit) or a sliding window. */
  rateLimitAlgorithm: RateLimitAlgorithm;
}

/** How the server counts requests against its rate limits. */
export type RateLimitAlgorithm = "token-bucket" | "sliding-window";

const RATE_LIMIT_ALGORITHMS: readonly RateLimitAlgorithm[] = ["token-bucket", "sliding-window"];

/**
 * The configuration when nothing is set: safe on a laptop (loopback only).
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 *
 * console.assert(DEFAULT_CONFIG.host === "127.0.0.1" && DEFAULT_CONFIG.port === 8787);
 * ```
 */
export const DEFAULT_CONFIG: Readonly<TroupeConfig> = Object.freeze({
  host: "127.0.0.1",
  port: 8787,
  policy: "merge",
  debounceMs: 0,
  idleTimeoutMs: 300_000,
  maxActiveSessions: 10_000,
  sessionRetentionMs: 0,
  logLevel: "info",
  maxBodyBytes: 1_048_576,
  databaseUrl: "./data/troupe.db",
  natsUrl: null,
  durableReplies: false,
  llmBaseUrl: null,
  llmApiKey: null,
  llmModel: null,
  llmFallbackModels: [],
  llmTimeoutMs: 60_000,
  llmDeadlineMs: 180_000,
  llmRetries: 2,
  llmWorkers: 0,
  llmWorkerConcurrency: 512,
  llmQueueBound: 10_000,
  llmMaxReplyBytes: 16 * 1024 * 1024,
  llmMaxTokensParameter: "max_tokens",
  // 10 requests/s per session and 1,000/s per org on average, with bursts of a window's worth.
  rateLimitSession: 600,
  rateLimitOrg: 60_000,
  rateLimitWindowMs: 60_000,
  rateLimitAlgorithm: "token-bucket",
});

/** One setting: the field it fills, its variable, its flag and how its text is read. */
interface Setting {
  key: keyof TroupeConfig;
  env: string;
  flag: string;
  parse: (text: string, name: string) => TroupeConfig[keyof TroupeConfig];
}

// Timers take at most 2^31 - 1 ms; a longer duration would fire at once.
const MAX_TIMER_MS = 2_147_483_647;

const SETTINGS: readonly Setting[] = [
  { key: "host", env: "TROUPE_HOST", flag: "host", parse: parseHost },
  { key: "port", env: "TROUPE_PORT", flag: "port", parse: wholeNumber(0, 65_535) },
  { key: "policy", env: "TROUPE_POLICY", flag: "policy", parse: oneOf(POLICIES) },
  {
    key: "debounceMs",
    env: "TROUPE_DEBOUNCE_MS",
    flag: "debounce-ms",
    parse: wholeNumber(0, MAX_TIMER_MS),
  },
  {
    key: "idleTimeoutMs",
    env: "TROUPE_IDLE_TIMEOUT_MS",
    flag: "idle-timeout-ms",
    parse: wholeNumber(1, MAX_TIMER_MS),
  },
  {
    key: "maxActiveSessions",
    env: "TROUPE_MAX_ACTIVE_SESSIONS",
    flag: "max-active-sessions",
    parse: wholeNumber(1, 10_000_000),
  },
  {
    key: "sessionRetentionMs",
    env: "TROUPE_SESSION_RETENTION_MS",
    flag: "session-retention-ms",
    parse: wholeNumber(0, Number.MAX_SAFE_INTEGER),
  },
  { key: "logLevel", env: "TROUPE_LOG_LEVEL", flag: "log-level", parse: oneOf(LOG_LEVELS) },
  {
    key: "maxBodyBytes",
    env: "TROUPE_MAX_BODY_BYTES",
    flag: "max-body-bytes",
    parse: wholeNumber(1, 1_073_741_824),
  },
  { key: "databaseUrl", env: "TROUPE_DATABASE_URL", flag: "database-url", parse: parseDatabaseUrl },
  { key: "natsUrl", env: "TROUPE_NATS_URL", flag: "nats-url", parse: parseNatsUrl },
  {
    key: "durableReplies",
    env: "TROUPE_DURABLE_REPLIES",
    flag: "durable-replies",
    parse: parseBoolean,
  },
  { key: "llmBaseUrl", env: "TROUPE_LLM_BASE_URL", flag: "llm-base-url", parse: parseHttpUrl },
  { key: "llmApiKey", env: "TROUPE_LLM_API_KEY", flag: "llm-api-key", parse: parseSecret },
  { key: "llmModel", env: "TROUPE_LLM_MODEL", flag: "llm-model", parse: parseModel },
  {
    key: "llmFallbackModels",
    env: "TROUPE_LLM_FALLBACK_MODELS",
    flag: "llm-fallback-models",
    parse: (text, name) =>
      text.split(",").map((model) => model.trim()).filter((m) => m !== "").map((model) =>
        parseModel(model, name)
      ),
  },
  {
    key: "llmTimeoutMs",
    env: "TROUPE_LLM_TIMEOUT_MS",
    flag: "llm-timeout-ms",
    parse: wholeNumber(1, MAX_TIMER_MS),
  },
  {
    key: "llmDeadlineMs",
    env: "TROUPE_LLM_DEADLINE_MS",
    flag: "llm-deadline-ms",
    parse: wholeNumber(1, MAX_TIMER_MS),
  },
  { key: "llmRetries", env: "TROUPE_LLM_RETRIES", flag: "llm-retries", parse: wholeNumber(0, 10) },
  { key: "llmWorkers", env: "TROUPE_LLM_WORKERS", flag: "llm-workers", parse: wholeNumber(0, 64) },
  {
    key: "llmWorkerConcurrency",
    env: "TROUPE_LLM_WORKER_CONCURRENCY",
    flag: "llm-worker-concurrency",
    parse: wholeNumber(1, 100_000),
  },
  {
    key: "llmQueueBound",
    env: "TROUPE_LLM_QUEUE_BOUND",
    flag: "llm-queue-bound",
    parse: wholeNumber(0, 10_000_000),
  },
  {
    key: "llmMaxReplyBytes",
    env: "TROUPE_LLM_MAX_REPLY_BYTES",
    flag: "llm-max-reply-bytes",
    parse: wholeNumber(1024, 1024 * 1024 * 1024),
  },
  {
    key: "llmMaxTokensParameter",
    env: "TROUPE_LLM_MAX_TOKENS_PARAMETER",
    flag: "llm-max-tokens-parameter",
    parse: oneOf(["max_tokens", "max_completion_tokens"] as const),
  },
  {
    key: "rateLimitSession",
    env: "TROUPE_RATE_LIMIT_SESSION",
    flag: "rate-limit-session",
    parse: wholeNumber(0, 1_000_000_000),
  },
  {
    key: "rateLimitOrg",
    env: "TROUPE_RATE_LIMIT_ORG",
    flag: "rate-limit-org",
    parse: wholeNumber(0, 1_000_000_000),
  },
  {
    key: "rateLimitWindowMs",
    env: "TROUPE_RATE_LIMIT_WINDOW_MS",
    flag: "rate-limit-window-ms",
    parse: wholeNumber(1, 86_400_000),
  },
  {
    key: "rateLimitAlgorithm",
    env: "TROUPE_RATE_LIMIT_ALGORITHM",
    flag: "rate-limit-algorithm",
    parse: oneOf(RATE_LIMIT_ALGORITHMS),
  },
];

/** An `http://` or `https://` URL without credentials in it. */
function parseHttpUrl(text: string, name: string): string {
  const trimmed = text.trim();
  const url = URL.canParse(trimmed) ? new URL(trimmed) : null;
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new InvalidInputError(
      name,
      `Cannot start: ${name} must be an http:// or https:// URL such as https://api.openai.com/v1, current value is ${
        url === null ? "not a URL" : `a "${url.protocol}" URL`
      }`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new InvalidInputError(
      name,
      `Cannot start: ${name} must not hold credentials; put the key in TROUPE_LLM_API_KEY`,
    );
  }
  if (/\/chat\/completions\/*$/.test(url.pathname)) {
    throw new InvalidInputError(
      name,
      `Cannot start: ${name} must be the API's base URL such as https://api.openai.com/v1, current value is the chat completions endpoint itself (Troupe adds /chat/completions)`,
    );
  }
  return trimmed.replace(/\/+$/, "");
}

/** A secret: printable, no whitespace; never echoed back. */
function parseSecret(text: string, name: string): string {
  const trimmed = text.trim();
  if (!/^[\x21-\x7e]{1,4096}$/.test(trimmed)) {
    throw new InvalidInputError(
      name,
      `Cannot start: ${name} must be 1 to 4096 printable characters without spaces (its value is not shown)`,
    );
  }
  return trimmed;
}

/** A model name as upstreams take it, e.g. `gpt-4o-mini` or `meta-llama/Llama-3.1-8B:free`. */
function parseModel(text: string, name: string): string {
  const trimmed = text.trim();
  if (!/^[\w.:/@+-]{1,200}$/.test(trimmed)) {
    refuse(name, "a model name of letters, digits and . : / @ + - _", text);
  }
  return trimmed;
}

/** A SQLite file path, `:memory:`/`memory`, or a `postgres://` URL that parses. */
function parseDatabaseUrl(text: string, name: string): string {
  if (/^postgres(ql)?:/i.test(text)) {
    if (!URL.canParse(text)) {
      throw new InvalidInputError(
        name,
        `Cannot start: ${name} must be a file path or a postgres:// URL, current value is not a valid URL`,
      );
    }
    return text;
  }
  // Any other URL (`mysql://…`) or scheme (`sqlite:…`; a one-letter one is a drive letter
  // unless `//` follows). Only the scheme is shown: the rest of a URL may hold a password.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1] ?? pathScheme(text);
  if (scheme !== null) {
    throw new InvalidInputError(
      name,
      `Cannot start: ${name} must be a file path or a postgres:// URL, current value is a "${scheme}:" URL; give the SQLite file's path alone, e.g. ./data/troupe.db`,
    );
  }
  return text;
}

/** A `nats://` or `tls://` URL. */
function parseNatsUrl(text: string, name: string): string {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== "nats:" && url.protocol !== "tls:")) {
    throw new InvalidInputError(
      name,
      // Never echo the value: a URL may hold a password.
      `Cannot start: ${name} must be a nats:// or tls:// URL, current value is ${
        url === null ? "not a URL" : `a "${url.protocol}" URL`
      }`,
    );
  }
  return text;
}

/**
 * The environment variables {@linkcode parseConfig} reads. The entry script
 * reads exactly these, so `--allow-env` can name them one by one.
 *
 * @example
 * ```ts
 * import { CONFIG_ENV_VARS } from "./config.ts";
 *
 * console.assert(CONFIG_ENV_VARS.includes("TROUPE_PORT"));
 * ```
 */
export const CONFIG_ENV_VARS: readonly string[] = SETTINGS.map((setting) => setting.env);

/**
 * The command-line flags {@linkcode parseConfig} accepts, each with a value
 * (`--port 9000` or `--port=9000`).
 *
 * @example
 * ```ts
 * import { CONFIG_FLAGS } from "./config.ts";
 *
 * console.assert(CONFIG_FLAGS.includes("--host"));
 * ```
 */
export const CONFIG_FLAGS: readonly string[] = SETTINGS.map((setting) => `--${setting.flag}`);

/**
 * Build the server's configuration from environment variables and
 * command-line flags; a flag wins over its variable, and an empty variable
 * counts as unset. Pure: it reads only what it is given.
 *
 * Throws an {@linkcode InvalidInputError} for a bad value, an unknown flag
 * or a stray argument; its `field` names the setting (`"TROUPE_PORT"`,
 * `"--port"`) and its message says what the setting accepts.
 *
 * @example Defaults, a variable and a flag that overrides it
 * ```ts
 * import { parseConfig } from "./config.ts";
 *
 * const config = parseConfig({ TROUPE_PORT: "9000", TROUPE_POLICY: "enqueue" }, ["--port", "0"]);
 * console.assert(config.port === 0 && config.policy === "enqueue" && config.host === "127.0.0.1");
 * ```
 *
 * @example A bad setting names itself
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { InvalidInputError } from "./errors.ts";
 *
 * try {
 *   parseConfig({ TROUPE_PORT: "abc" });
 * } catch (error) {
 *   console.assert(error instanceof InvalidInputError && error.field === "TROUPE_PORT");
 * }
 * ```
 */
export function parseConfig(
  env: Record<string, string | undefined>,
  args: string[] = [],
): TroupeConfig {
  const flags = parseFlags(args);
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const setting of SETTINGS) {
    const flagValue = flags[setting.flag];
    const envValue = env[setting.env];
    if (typeof flagValue === "string") {
      config[setting.key] = setting.parse(flagValue, `--${setting.flag}`);
    } else if (envValue !== undefined && envValue.trim() !== "") {
      config[setting.key] = setting.parse(envValue, setting.env);
    }
  }
  if (config.llmBaseUrl !== null && config.llmModel === null) {
    throw new InvalidInputError(
      "TROUPE_LLM_MODEL",
      "Cannot start: TROUPE_LLM_MODEL (or --llm-model) must name a model when TROUPE_LLM_BASE_URL is set",
    );
  }
  return config as unknown as TroupeConfig;
}

function parseFlags(args: string[]): Record<string, string | boolean | undefined> {
  const options = Object.fromEntries(
    SETTINGS.map((setting) => [setting.flag, { type: "string" as const }]),
  );
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // parseArgs says what is wrong; keep its first sentence, name what is accepted.
    const reason = error instanceof Error ? error.message.split(/\.\s/)[0] : String(error);
    throw new InvalidInputError(
      "args",
      `Cannot start: ${reason}; the accepted flags are ${
        CONFIG_FLAGS.join(", ")
      }, each with a value, current arguments are ${JSON.stringify(args)}`,
    );
  }
}

function refuse(name: string, accepts: string, text: string): never {
  throw new InvalidInputError(
    name,
    `Cannot start: ${name} must be ${accepts}, current value is ${JSON.stringify(text)}`,
  );
}

function wholeNumber(min: number, max: number): (text: string, name: string) => number {
  return (text, name) => {
    const trimmed = text.trim();
    const value = Number(trimmed);
    // The pattern refuses what Number() would accept by accident: "1e3", "0x10", "-0".
    if (!/^\d+$/.test(trimmed) || value < min || value > max) {
      refuse(name, `a whole number from ${min} to ${max}`, text);
    }
    return value;
  };
}

function oneOf<T extends string>(values: readonly T[]): (text: string, name: string) => T {
  return (text, name) => {
    const trimmed = text.trim();
    if (!(values as readonly string[]).includes(trimmed)) {
      refuse(name, `one of ${values.join(", ")}`, text);
    }
    return trimmed as T;
  };
}

function parseBoolean(text: string, name: string): boolean {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "true" || trimmed === "1") return true;
  if (trimmed === "false" || trimmed === "0") return false;
  return refuse(name, "true or false (or 1 or 0)", text);
}

function parseHost(text: string, name: string): string {
  const trimmed = text.trim();
  // A host name or an IPv4/IPv6 address as Deno.serve takes it (no brackets, no port).
  if (!/^[A-Za-z0-9._:-]{1,253}$/.test(trimmed)) {
    refuse(name, "a host name or an IP address such as 127.0.0.1 or ::1", text);
  }
  return trimmed;
}
