// Reads one mock upstream request: the chat body, the `x-mock-*` control headers and the scenario to play.

import type { UsageDialect } from "./_mock_upstream_wire.ts";
import { countTokens } from "./_mock_upstream_wire.ts";

/** What the mock does with one chat completion request. */
export type Scenario = "ok" | "429" | "500" | "400" | "hang" | "drop" | "slow";

const SCENARIOS: readonly Scenario[] = ["ok", "429", "500", "400", "hang", "drop", "slow"];
const DIALECTS: readonly UsageDialect[] = ["openai", "anthropic", "gemini", "none"];

/** A request the mock refuses with a 400; `code` goes into the error body. */
export class MockRequestError extends Error {
  /** The OpenAI-style error `code`. */
  readonly code: string;

  /**
   * Make the error.
   *
   * @example
   * ```ts
   * import { MockRequestError } from "./_mock_upstream_request.ts";
   *
   * console.assert(new MockRequestError("invalid_json", "bad").code === "invalid_json");
   * ```
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MockRequestError";
    this.code = code;
  }
}

/** The per-request controls a test sends in `x-mock-*` headers. */
export interface MockControl {
  /** `x-mock-scenario`; absent means the server's error and hang rates decide. */
  scenario?: Scenario;
  /** `x-mock-retry-after`, sent verbatim as `Retry-After` with a 429. */
  retryAfter: string;
  /** `x-mock-latency-ms`, replacing the server's latency. */
  latencyMs?: number;
  /** `x-mock-tokens-per-second`, replacing the server's streaming speed. */
  tokensPerSecond?: number;
  /** `x-mock-usage-dialect`. */
  usageDialect: UsageDialect;
  /** `x-mock-fail-times`: how many attempts of `requestKey` play the scenario. */
  failTimes?: number;
  /** `x-mock-request-key`. */
  requestKey?: string;
  /** `x-mock-cached-tokens`, at most the prompt's tokens. */
  cachedTokens: number;
  /** `x-mock-reasoning-tokens`. */
  reasoningTokens: number;
}

/**
 * Read the `x-mock-*` headers; a malformed one throws {@linkcode MockRequestError}.
 *
 * @example
 * ```ts
 * import { parseControl } from "./_mock_upstream_request.ts";
 *
 * const control = parseControl(new Headers({ "x-mock-scenario": "429" }));
 * console.assert(control.scenario === "429" && control.retryAfter === "1");
 * ```
 */
export function parseControl(headers: Headers): MockControl {
  const scenario = oneOf(headers, "x-mock-scenario", SCENARIOS);
  const failTimes = count(headers, "x-mock-fail-times", "integer");
  const requestKey = headers.get("x-mock-request-key") ?? undefined;
  if (failTimes !== undefined && requestKey === undefined) {
    throw new MockRequestError(
      "invalid_mock_header",
      "Cannot use x-mock-fail-times: x-mock-request-key is missing",
    );
  }
  const control: MockControl = {
    retryAfter: headers.get("x-mock-retry-after") ?? "1",
    usageDialect: oneOf(headers, "x-mock-usage-dialect", DIALECTS) ?? "openai",
    cachedTokens: count(headers, "x-mock-cached-tokens", "integer") ?? 0,
    reasoningTokens: count(headers, "x-mock-reasoning-tokens", "integer") ?? 0,
  };
  const latencyMs = count(headers, "x-mock-latency-ms", "number");
  const tokensPerSecond = count(headers, "x-mock-tokens-per-second", "positive");
  if (scenario !== undefined) control.scenario = scenario;
  if (latencyMs !== undefined) control.latencyMs = latencyMs;
  if (tokensPerSecond !== undefined) control.tokensPerSecond = tokensPerSecond;
  if (failTimes !== undefined) control.failTimes = failTimes;
  if (requestKey !== undefined) control.requestKey = requestKey;
  return control;
}

function oneOf<T extends string>(headers: Headers, name: string, values: readonly T[]) {
  const value = headers.get(name);
  if (value === null) return undefined;
  if ((values as readonly string[]).includes(value)) return value as T;
  throw new MockRequestError(
    "invalid_mock_header",
    `Cannot read ${name}: current value is "${value}", expected one of ${values.join(", ")}`,
  );
}

const KINDS = {
  integer: { valid: (n: number) => Number.isSafeInteger(n) && n >= 0, text: "an integer >= 0" },
  number: { valid: (n: number) => Number.isFinite(n) && n >= 0, text: "a number >= 0" },
  positive: { valid: (n: number) => Number.isFinite(n) && n > 0, text: "a number > 0" },
};

function count(headers: Headers, name: string, kind: keyof typeof KINDS) {
  const value = headers.get(name);
  if (value === null) return undefined;
  const n = value.trim() === "" ? NaN : Number(value);
  if (KINDS[kind].valid(n)) return n;
  throw new MockRequestError(
    "invalid_mock_header",
    `Cannot read ${name}: current value is "${value}", expected ${KINDS[kind].text}`,
  );
}

/** The parts of a chat completion request body the mock uses. */
export interface ChatRequest {
  /** The requested model, if any. */
  model?: string;
  /** Whether to answer with server-sent events. */
  stream: boolean;
  /** `stream_options.include_usage`. */
  includeUsage: boolean;
  /** Text of the last `user` message: what the mock echoes. */
  lastUserText: string;
  /** {@linkcode countTokens} summed over every message's text. */
  promptTokens: number;
  /** The token cap: `max_completion_tokens`, else `max_tokens`. */
  maxTokens?: number;
  /** The stop sequences (`stop`, one string or several). */
  stop?: string[];
}

/**
 * Check a parsed body and pick out what the mock uses; a bad one throws
 * {@linkcode MockRequestError}. Content may be a string or an array of parts,
 * whose `text` parts are joined. `max_completion_tokens` (or `max_tokens`) and
 * `stop` are read to cut the reply as an upstream would.
 *
 * @example
 * ```ts
 * import { parseChatRequest } from "./_mock_upstream_request.ts";
 *
 * const chat = parseChatRequest({ messages: [{ role: "user", content: "hi" }] });
 * console.assert(chat.lastUserText === "hi" && !chat.stream);
 * ```
 */
export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) throw invalid("invalid_body", "Cannot read body: expected a JSON object");
  const { messages, model, stream = false, stream_options: options } = body;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalid("missing_messages", "Cannot read messages: expected a non-empty array");
  }
  if (model !== undefined && typeof model !== "string") {
    throw invalid("invalid_model", "Cannot read model: expected a string");
  }
  if (typeof stream !== "boolean") {
    throw invalid("invalid_stream", "Cannot read stream: expected a boolean");
  }
  let lastUserText = "";
  let promptTokens = 0;
  for (const [index, message] of messages.entries()) {
    if (!isObject(message) || typeof message.role !== "string") {
      throw invalid("invalid_message", `Cannot read messages[${index}]: expected a role`);
    }
    const text = textOf(message.content);
    promptTokens += countTokens(text);
    if (message.role === "user") lastUserText = text;
  }
  const chat: ChatRequest = {
    stream,
    includeUsage: isObject(options) && options.include_usage === true,
    lastUserText,
    promptTokens,
  };
  if (model !== undefined) chat.model = model;
  const cap = body.max_completion_tokens ?? body.max_tokens;
  if (cap !== undefined && cap !== null) {
    if (typeof cap !== "number" || !Number.isInteger(cap) || cap < 1) {
      throw invalid("invalid_max_tokens", "Cannot read max_tokens: expected an integer >= 1");
    }
    chat.maxTokens = cap;
  }
  const stop = body.stop;
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === "string" ? [stop] : stop;
    if (!Array.isArray(list) || !list.every((s) => typeof s === "string" && s !== "")) {
      throw invalid("invalid_stop", "Cannot read stop: expected a string or an array of strings");
    }
    chat.stop = list;
  }
  return chat;
}

function invalid(code: string, message: string): MockRequestError {
  return new MockRequestError(code, message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => isObject(part) && typeof part.text === "string" ? part.text : "")
    .join("");
}

/** Server-wide inputs of {@linkcode chooseScenario}. */
export interface ScenarioChoice {
  /** Fraction of uncontrolled requests answered 500. */
  errorRate: number;
  /** Fraction of uncontrolled requests left hanging. */
  hangRate: number;
  /** Uniform numbers in [0, 1). */
  random: () => number;
  /** Attempts seen per `x-mock-request-key`. */
  attempts: Map<string, number>;
}

/**
 * Pick what a request gets. With `x-mock-fail-times: n`, the first n
 * attempts of its key play the scenario (500 unless another failure is
 * named) and later ones are ok; else the named scenario; else one random
 * draw: below `errorRate` a 500, below `errorRate + hangRate` a hang.
 *
 * @example
 * ```ts
 * import { chooseScenario, parseControl } from "./_mock_upstream_request.ts";
 *
 * const choice = { errorRate: 0, hangRate: 0, random: Math.random, attempts: new Map() };
 * const control = parseControl(
 *   new Headers({ "x-mock-fail-times": "1", "x-mock-request-key": "k" }),
 * );
 * console.assert(chooseScenario(control, choice) === "500");
 * console.assert(chooseScenario(control, choice) === "ok");
 * ```
 */
export function chooseScenario(control: MockControl, choice: ScenarioChoice): Scenario {
  const { scenario, failTimes, requestKey } = control;
  if (failTimes !== undefined && requestKey !== undefined) {
    const attempt = (choice.attempts.get(requestKey) ?? 0) + 1;
    choice.attempts.set(requestKey, attempt);
    if (attempt > failTimes) return "ok";
    return scenario === undefined || scenario === "ok" ? "500" : scenario;
  }
  if (scenario !== undefined) return scenario;
  const draw = choice.random();
  if (draw < choice.errorRate) return "500";
  if (draw < choice.errorRate + choice.hangRate) return "hang";
  return "ok";
}

/**
 * A seeded PRNG (mulberry32): the same seed gives the same numbers in [0, 1).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./_mock_upstream_request.ts";
 *
 * console.assert(seededRandom(7)() === seededRandom(7)());
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
