// A deterministic LLM provider with no network: it echoes the last user turn it received.

import { sleep, systemClock } from "../../actors/clock.ts";
import type {
  Clock,
  LlmCallOptions,
  LlmCompletion,
  LlmProvider,
  LlmRequest,
} from "../../actors/ports.ts";
import { estimateTokens, usageOf } from "../../actors/usage.ts";
import { limitReply } from "./mock_limits.ts";

/** Options of {@linkcode mockLlm}. */
export interface MockLlmOptions {
  /**
   * Time before the first token, in ms; a function gets each request.
   * @default {0}
   */
  latencyMs?: number | ((request: LlmRequest) => number);
  /**
   * Streaming speed. With the default, the whole text arrives at once after the latency.
   * @default {Infinity}
   */
  tokensPerSecond?: number;
  /**
   * The model name it reports.
   * @default {"mock-model"}
   */
  model?: string;
  /**
   * What it answers; by default the content of the last user turn, verbatim.
   * The call's `stop` and `maxTokens` options cut it as an upstream would
   * (a cut by `maxTokens`, at four characters a token, finishes with `length`).
   */
  reply?: (request: LlmRequest) => string;
  /**
   * Make a call fail: return an error to reject with (after the latency), or `undefined`.
   */
  fail?: (request: LlmRequest) => Error | undefined;
  /**
   * The clock its timers run on.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * How many of the newest requests {@linkcode MockLlm.requests} keeps, for a
   * test to read; `0` keeps none. Each kept request holds its prompt, so a
   * mock that nobody reads (the embedded default of a server) keeps none.
   * @default {10000}
   */
  requestLog?: number;
}

/** Counters a test reads to see what the mock was asked. */
export interface MockLlmStats {
  /** Calls started. */
  calls: number;
  /** Calls that returned a completion. */
  completed: number;
  /** Calls stopped by their signal. */
  aborted: number;
  /** Calls that failed on purpose. */
  failed: number;
  /** Calls in flight now. */
  inFlight: number;
}

/** The mock provider: a provider plus its counters and the requests it received. */
export interface MockLlm extends LlmProvider {
  /** Counters. */
  readonly stats: MockLlmStats;
  /** The requests received, in order (at least the newest `requestLog` are kept). */
  readonly requests: LlmRequest[];
}

function lastUserTurn(request: LlmRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i]!;
    if (message.role === "user") return message.content;
  }
  return "";
}

/** Split text into word-sized tokens that keep their trailing white space. */
function tokensOf(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/**
 * A deterministic LLM provider: no network, configurable latency and
 * streaming speed, and a reply that reveals what it was asked (the last user
 * turn, verbatim). Aborting the signal stops the call at once. Usage counts
 * one token per four characters and is reported as the upstream would; like
 * `openAiCompatible`, it gives `onUsage` what each call cost: the reported
 * usage when it answers, or, when it is aborted, an estimate of the prompt
 * and the text generated so far (whether or not `onDelta` took it).
 *
 * @example
 * ```ts
 * import { mockLlm } from "./mock_llm.ts";
 *
 * const llm = mockLlm({ latencyMs: 5 });
 * const completion = await llm.complete(
 *   { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hello" }] },
 *   { signal: new AbortController().signal },
 * );
 * console.assert(completion.text === "hello" && llm.stats.calls === 1);
 * ```
 */
export function mockLlm(options: MockLlmOptions = {}): MockLlm {
  const {
    latencyMs = 0,
    tokensPerSecond = Infinity,
    model = "mock-model",
    reply = lastUserTurn,
    fail,
    clock = systemClock,
    requestLog = 10_000,
  } = options;
  if (typeof latencyMs === "number" && !(latencyMs >= 0)) {
    throw new RangeError(
      `Cannot create mockLlm: latencyMs must be >= 0, current value is ${latencyMs}`,
    );
  }
  if (!Number.isSafeInteger(requestLog) || requestLog < 0) {
    throw new RangeError(
      `Cannot create mockLlm: requestLog must be a whole number >= 0, current value is ${requestLog}`,
    );
  }
  if (!(tokensPerSecond > 0)) {
    throw new RangeError(
      `Cannot create mockLlm: tokensPerSecond must be > 0, current value is ${tokensPerSecond}`,
    );
  }
  const stats: MockLlmStats = { calls: 0, completed: 0, aborted: 0, failed: 0, inFlight: 0 };
  const requests: LlmRequest[] = [];

  async function complete(request: LlmRequest, call: LlmCallOptions): Promise<LlmCompletion> {
    stats.calls++;
    stats.inFlight++;
    if (requestLog > 0) {
      requests.push(request);
      // Trim in halves so that keeping the log costs O(1) a call on average.
      if (requests.length >= 2 * requestLog) requests.splice(0, requests.length - requestLog);
    }
    const { signal, onDelta, onUsage } = call;
    const input = request.messages.reduce((n, m) => n + estimateTokens(m.content), 0);
    // What it generated so far, deltas taken or not: a cancelled call reports it as spent.
    let produced = "";
    // A call whose signal was aborted before it came in never reached the "upstream": no cost.
    const began = !signal.aborted;
    const answered = request.options?.model ?? model;
    try {
      const latency = typeof latencyMs === "function" ? latencyMs(request) : latencyMs;
      if (latency > 0) await sleep(clock, latency, signal);
      else if (signal.aborted) throw signal.reason;
      const failure = fail?.(request);
      if (failure !== undefined) {
        stats.failed++;
        throw failure;
      }
      const options = request.options;
      const { text, finishReason } = options === undefined
        ? { text: reply(request), finishReason: "stop" as const }
        : limitReply(reply(request), options);
      if (tokensPerSecond === Infinity) {
        produced = text;
        if (text !== "") onDelta?.(text);
      } else {
        const gap = 1000 / tokensPerSecond;
        let first = true;
        for (const token of tokensOf(text)) {
          if (!first) await sleep(clock, gap, signal);
          first = false;
          produced += token;
          onDelta?.(token);
        }
      }
      stats.completed++;
      const usage = usageOf(input, estimateTokens(text), "reported");
      onUsage?.(usage, answered);
      return { text, usage, finishReason, model: answered };
    } catch (error) {
      if (signal.aborted) {
        stats.aborted++;
        // As an upstream's provider does: the prompt was read and `produced` generated.
        if (began) {
          onUsage?.(usageOf(input, estimateTokens(produced), "estimated"), answered);
        }
      }
      throw error;
    } finally {
      stats.inFlight--;
    }
  }

  return { name: "mock", model, stats, requests, complete };
}
