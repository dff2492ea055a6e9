// Answers the mock upstream's `POST /v1/chat/completions`: scenarios, latency, streaming and drops.

import { type BodyOptions, bodyResponse, delay, untilAborted } from "./_mock_upstream_body.ts";
import {
  type ChatRequest,
  chooseScenario,
  type MockControl,
  MockRequestError,
  parseChatRequest,
  parseControl,
  type ScenarioChoice,
} from "./_mock_upstream_request.ts";
import type { StatsRecorder } from "./_mock_upstream_stats.ts";
import {
  completionBody,
  countTokens,
  errorResponse,
  type ReplyHead,
  splitTokens,
  streamEvents,
  usageFields,
  type WireObject,
} from "./_mock_upstream_wire.ts";
import { limitReply } from "../adapters/llm/mock_limits.ts";

/** Latency of the `slow` scenario when `x-mock-latency-ms` does not say. */
export const SLOW_LATENCY_MS = 1000;

/** What {@linkcode answerCompletion} needs from its server. */
export interface CompletionContext {
  /** Model named in replies when the request names none. */
  model: string;
  /** Time before the answer, in ms. */
  latencyMs: number;
  /** Streaming speed; `undefined` sends every token at once. */
  tokensPerSecond: number | undefined;
  /** Where requests are counted. */
  stats: StatsRecorder;
  /** Rates, PRNG and fail-times memory for {@linkcode chooseScenario}. */
  choice: ScenarioChoice;
  /** Aborted when the server closes: hangs, waits and streams end at once. */
  closing: AbortSignal;
  /** A fresh `chatcmpl-...` id. */
  nextId(): string;
  /** The time, in ms since the epoch. */
  now(): number;
}

/**
 * Answer one chat completion request. Nothing is sent before the latency
 * (`x-mock-latency-ms`, else the `slow` default, else the server's) has passed;
 * a non-streaming answer also waits for the time its tokens would take to stream.
 *
 * @example
 * ```ts
 * import { answerCompletion } from "./_mock_upstream_completions.ts";
 * import { seededRandom } from "./_mock_upstream_request.ts";
 * import { createStatsRecorder } from "./_mock_upstream_stats.ts";
 *
 * const context = {
 *   model: "m",
 *   latencyMs: 0,
 *   tokensPerSecond: undefined,
 *   stats: createStatsRecorder(),
 *   choice: { errorRate: 0, hangRate: 0, random: seededRandom(0), attempts: new Map() },
 *   closing: new AbortController().signal,
 *   nextId: () => "chatcmpl-1",
 *   now: () => 0,
 * };
 * const request = new Request("http://localhost/v1/chat/completions", {
 *   method: "POST",
 *   body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
 * });
 * const body = await (await answerCompletion(request, context)).json();
 * console.assert(body.choices[0].message.content === "hi");
 * ```
 */
export async function answerCompletion(
  request: Request,
  context: CompletionContext,
): Promise<Response> {
  const end = context.stats.begin();
  let signal = context.closing;
  try {
    const control = parseControl(request.headers);
    const chat = parseChatRequest(await readJson(request));
    const scenario = chooseScenario(control, context.choice);
    context.stats.scenario(scenario);
    const failed = scenario === "400" || scenario === "429" || scenario === "500";
    const reply = planReply(chat, control, context);
    const slow = scenario === "slow" ? SLOW_LATENCY_MS : context.latencyMs;
    const waitMs = (control.latencyMs ?? slow) + (failed || chat.stream ? 0 : reply.generationMs);
    if (scenario === "hang" || waitMs > 0) {
      // Only when there is a wait to cut short: reading request.signal makes
      // Deno print a one-time notice about its legacy abort-after-response.
      signal = AbortSignal.any([request.signal, context.closing]);
      if (scenario === "hang") await untilAborted(signal);
      await delay(waitMs, signal);
    }
    if (failed) {
      end("errors");
      return failure(scenario, control.retryAfter);
    }
    return respond(reply, scenario === "drop", { end, closing: context.closing });
  } catch (error) {
    if (error instanceof MockRequestError) {
      end("errors");
      return errorResponse(400, error.message, "invalid_request_error", error.code);
    }
    if (!signal.aborted && !(error instanceof DOMException && error.name === "AbortError")) {
      end("errors");
      throw error;
    }
    end("aborts");
    // The client is gone and will not see this; a server closing says so to the one it cut off.
    return context.closing.aborted
      ? errorResponse(503, "The mock upstream is shutting down", "server_error", "shutting_down")
      : new Response(null, { status: 499 });
  }
}

/** Everything a successful answer needs, worked out before the wait. */
interface Reply {
  stream: boolean;
  head: ReplyHead;
  content: string;
  /** `length` when the token cap cut the reply. */
  finishReason: "stop" | "length";
  pieces: string[];
  /** Usage fields of a non-streaming body. */
  usage: WireObject;
  /** Usage fields of a stream's last chunk: none unless `include_usage`. */
  streamUsage: WireObject;
  /** Time between two streamed pieces. */
  gapMs: number;
  /** Time from the first piece to the last. */
  generationMs: number;
}

function planReply(chat: ChatRequest, control: MockControl, context: CompletionContext): Reply {
  const { text: content, finishReason } = limitReply(chat.lastUserText, chat);
  const pieces = splitTokens(content);
  const counts = {
    prompt: chat.promptTokens,
    completion: countTokens(content),
    cached: Math.min(control.cachedTokens, chat.promptTokens),
    reasoning: control.reasoningTokens,
  };
  const usage = usageFields(counts, control.usageDialect);
  const tokensPerSecond = control.tokensPerSecond ?? context.tokensPerSecond;
  const gapMs = tokensPerSecond === undefined ? 0 : 1000 / tokensPerSecond;
  return {
    stream: chat.stream,
    head: {
      id: context.nextId(),
      created: Math.floor(context.now() / 1000),
      model: chat.model ?? context.model,
    },
    content,
    finishReason,
    pieces,
    usage,
    streamUsage: chat.includeUsage ? usage : {},
    gapMs,
    generationMs: gapMs * Math.max(0, pieces.length - 1),
  };
}

function respond(reply: Reply, dropped: boolean, done: Ending): Response {
  const { head, content, pieces, gapMs } = reply;
  if (!reply.stream) {
    const json = JSON.stringify(completionBody(head, content, reply.usage, reply.finishReason));
    if (!dropped) {
      done.end("completed");
      return new Response(json, { headers: { "content-type": "application/json" } });
    }
    // Half the JSON under a Content-Length of all of it: the client's read fails.
    const half = [{ data: json.slice(0, json.length >> 1), delayMs: 0 }];
    return bodyResponse(half, { ...done, type: "application/json", whole: json });
  }
  const events = streamEvents(head, pieces, reply.streamUsage, reply.finishReason);
  // The first piece follows the role chunk at once; each later piece waits one gap.
  const steps = events.map((data, i) => ({
    data,
    delayMs: i >= 2 && i <= pieces.length ? gapMs : 0,
  }));
  const type = "text/event-stream";
  if (!dropped) return bodyResponse(steps, { ...done, type });
  // The role chunk and up to two pieces, then the connection closes short of its length.
  const sent = steps.slice(0, 1 + Math.min(2, pieces.length));
  return bodyResponse(sent, { ...done, type, whole: events.join("") });
}

type Ending = Pick<BodyOptions, "end" | "closing">;

async function readJson(request: Request): Promise<unknown> {
  let text: string;
  try {
    text = await request.text();
  } catch (error) {
    throw new DOMException(`The client went away: ${String(error)}`, "AbortError");
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MockRequestError("invalid_json", `Cannot parse body: ${String(error)}`, {
      cause: error,
    });
  }
}

function failure(scenario: "400" | "429" | "500", retryAfter: string): Response {
  switch (scenario) {
    case "400":
      return errorResponse(400, "Mock bad request", "invalid_request_error", "mock_bad_request");
    case "429":
      return errorResponse(429, "Mock rate limit reached", "requests", "rate_limit_exceeded", {
        "retry-after": retryAfter,
      });
    case "500":
      return errorResponse(500, "Mock server error", "server_error", "server_error");
  }
}
