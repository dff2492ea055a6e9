// An LLM provider for any server that speaks OpenAI's chat completions protocol, streaming or not.

import { ProviderError } from "../../actors/errors.ts";
import { idGenerator } from "../../actors/ids.ts";
import type {
  LlmAttempt,
  LlmCallOptions,
  LlmCompletion,
  LlmProvider,
  LlmRequest,
  Usage,
} from "../../actors/ports.ts";
import { estimateTokens, usageOf } from "../../actors/usage.ts";
import { chatBody, MAX_TOKENS_PARAMETERS, type MaxTokensParameter } from "./_chat_wire.ts";

export type { MaxTokensParameter } from "./_chat_wire.ts";
import { DEFAULT_MAX_REPLY_BYTES, replyReader } from "./_read_reply.ts";
import { errorCode, errorText, redactor, shownUrl, statusError } from "./_upstream_errors.ts";
import { estimateUsage, loadTokenizer } from "./tokenizer.ts";

/**
 * Options of {@linkcode openAiCompatible}. Every option but `fetch` is plain
 * data, so the options can be posted to a Web Worker that builds the provider there.
 */
export interface OpenAiCompatibleOptions {
  /** The API's base URL, up to and including the version: `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`; never shown in an error. @default {undefined} no header */
  apiKey?: string;
  /** The model to ask for when a request names none. */
  model: string;
  /**
   * Headers sent with every request (after the defaults, before
   * `Authorization` and `X-Request-Id`). Values of headers whose name speaks
   * of a key, a token, a secret or auth are never shown in an error.
   * @default {{}}
   */
  headers?: Record<string, string>;
  /** Time one attempt may take, from the request to the end of the reply, in ms. @default {600000} as OpenAI's own SDK */
  timeoutMs?: number;
  /**
   * Ask for a stream of server-sent events (with the usage chunk) when the
   * caller takes deltas (`onDelta`); a call without `onDelta`, or any call
   * when this is `false`, asks for one JSON body. @default {true}
   */
  stream?: boolean;
  /** The provider name in usage records and attempt reports. @default {"openai-compatible"} */
  name?: string;
  /**
   * The most one reply may hold: the bytes of a JSON body; for a stream, the
   * characters of any one event and of the text generated. Past it the attempt
   * fails with a non-retryable `ProviderError` and its connection is closed,
   * so a runaway upstream cannot grow the worker's memory without bound.
   * @default {16777216} 16 MiB
   */
  maxReplyBytes?: number;
  /**
   * The body field that carries a call's `maxTokens`. OpenAI's reasoning
   * models (o1 and later, gpt-5) refuse `max_tokens` and take
   * `max_completion_tokens`; some compatible servers (older Ollama, llama.cpp)
   * know only `max_tokens`. @default {"max_tokens"}
   */
  maxTokensParameter?: MaxTokensParameter;
  /** The `fetch` to call; a function, so leave it unset in options posted to a worker. @default {globalThis.fetch} */
  fetch?: typeof fetch;
}

/** A completion with what the provider measured of its attempt. */
export interface OpenAiCompletion extends LlmCompletion {
  /** The request id sent as `X-Request-Id`. */
  request: string;
  /** Time from sending the request to the end of the reply, in ms. */
  latencyMs: number;
  /** Time from sending the request to the first generated text, in ms, or `null` if none came. */
  ttftMs: number | null;
}

/** The provider {@linkcode openAiCompatible} returns. */
export interface OpenAiCompatibleProvider extends LlmProvider {
  /** The model asked for when a request names none. */
  readonly model: string;
  /** Answer the request; the completion carries the attempt's latency and time to first token. */
  complete(request: LlmRequest, options: LlmCallOptions): Promise<OpenAiCompletion>;
}

const SECRET_HEADER = /auth|key|token|secret|cookie/i;

/** Why an attempt's own controller aborted it, told apart from the caller's reason. */
class AttemptTimeout extends Error {}

/**
 * An LLM provider for the OpenAI chat completions protocol (OpenAI, vLLM,
 * llama.cpp server, Ollama, LiteLLM, OpenRouter ...). It sends `POST
 * {baseUrl}/chat/completions` with `X-Request-Id` (the request's `request`
 * id, or a fresh one), streams with `stream_options.include_usage` when the
 * caller passes `onDelta` (and gives it each content delta as it arrives; a
 * non-streamed reply arrives as one delta), asks for one JSON body otherwise
 * (reading a stream of small chunks costs several times as much), and
 * reports its one attempt to `onAttempt`. It runs
 * in a Web Worker as well as on the main thread (it needs only `fetch`,
 * `AbortController`, `TextDecoder` and timers).
 *
 * Usage comes from the reply, whatever the dialect (OpenAI `usage`,
 * Anthropic-style `usage`, Gemini `usageMetadata`); when it has none, or the
 * stream was cancelled or cut, it is estimated with the `o200k_base`
 * tokenizer and marked `estimated`. `onUsage` receives it for every attempt
 * that may have cost tokens (it was answered, or cut off while the upstream
 * worked), before the call settles; not for an error status or a request
 * that never got through.
 *
 * Failures: aborting `signal` aborts the `fetch` (the upstream sees its
 * connection close) and rejects with the signal's reason. Anything else
 * rejects with a `ProviderError`: an error status carries `status`, the
 * upstream's message and `retryAfterMs`; it is `retryable` for 408, 409, 429
 * and 5xx, for a network error, a timeout (`timeoutMs`) and a stream cut
 * mid-reply. The API key never appears in an error.
 *
 * @param options Where to send requests and how.
 * @returns The provider.
 *
 * @example Streaming a reply from a local server
 * ```ts
 * import { openAiCompatible } from "./openai_compatible.ts";
 * import { startMockUpstream } from "../../scripts/mock_upstream.ts";
 *
 * await using upstream = startMockUpstream();
 * const llm = openAiCompatible({ baseUrl: upstream.url, apiKey: "sk-test", model: "mock-model" });
 * const deltas: string[] = [];
 * const completion = await llm.complete(
 *   { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hello there" }] },
 *   { signal: new AbortController().signal, onDelta: (text) => deltas.push(text) },
 * );
 * console.assert(completion.text === "hello there" && deltas.length === 2);
 * console.assert(completion.usage.source === "reported");
 * ```
 */
export function openAiCompatible(options: OpenAiCompatibleOptions): OpenAiCompatibleProvider {
  const {
    baseUrl,
    apiKey,
    model: defaultModel,
    headers = {},
    timeoutMs = 600_000,
    stream = true,
    name = "openai-compatible",
    maxReplyBytes = DEFAULT_MAX_REPLY_BYTES,
    maxTokensParameter = "max_tokens",
    fetch: fetchImpl = globalThis.fetch,
  } = options;
  checkOptions(options, timeoutMs, name);
  if (!Number.isSafeInteger(maxReplyBytes) || maxReplyBytes < 1) {
    throw new RangeError(
      `Cannot create openAiCompatible: maxReplyBytes must be an integer > 0, current value is ${maxReplyBytes}`,
    );
  }
  const url = endpoint(baseUrl);
  const shown = shownUrl(url);
  const secretHeaders = Object.entries(headers).filter(([key]) => SECRET_HEADER.test(key));
  const redact = redactor([apiKey, ...secretHeaders.map(([, value]) => value)]);
  const baseHeaders: Record<string, string> = {
    "content-type": "application/json",
    ...headers,
  };
  if (apiKey !== undefined && apiKey !== "") baseHeaders.authorization = `Bearer ${apiKey}`;
  const acceptStream = "text/event-stream, application/json";
  const nextId = idGenerator({ now: Date.now });

  async function complete(request: LlmRequest, call: LlmCallOptions): Promise<OpenAiCompletion> {
    const { signal, onDelta, onAttempt, onUsage } = call;
    if (signal.aborted) throw signal.reason;
    const id = request.request ?? nextId();
    const model = request.options?.model ?? defaultModel;
    const startedAt = performance.now();
    let firstAt: number | null = null;
    let status: number | null = null;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new AttemptTimeout()),
      timeoutMs,
    );
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const report = (outcome: LlmAttempt["outcome"], error: unknown) => {
      onAttempt?.({
        request: id,
        attempt: 1,
        provider: name,
        model,
        outcome,
        status,
        code: error === null ? null : errorCode(error),
        error: error === null ? null : redact(errorText(error)),
        retryInMs: null,
        latencyMs: performance.now() - startedAt,
      });
    };
    let reader: ReturnType<typeof replyReader> | undefined;
    let callerError: { error: unknown } | undefined;
    try {
      const streaming = stream && onDelta !== undefined;
      const response = await fetchImpl(url, {
        method: "POST",
        headers: {
          accept: streaming ? acceptStream : "application/json",
          ...baseHeaders,
          "x-request-id": id,
        },
        body: JSON.stringify(chatBody(request, model, streaming, maxTokensParameter)),
        signal: controller.signal,
      });
      status = response.status;
      if (!response.ok) {
        throw await statusError(response, { url: shown, redact, nowMs: Date.now() });
      }
      reader = replyReader(response, {
        url: shown,
        redact,
        maxBytes: maxReplyBytes,
        onText(text) {
          firstAt ??= performance.now();
          try {
            onDelta?.(text);
          } catch (error) {
            callerError = { error };
            throw error;
          }
        },
      });
      const reply = await reader.read();
      const usage = reply.usage ?? await estimate(request, reply.text);
      const answered = reply.model ?? model;
      try {
        onUsage?.(usage, answered);
        report("completed", null);
      } catch (error) {
        callerError = { error };
        throw error;
      }
      const latencyMs = performance.now() - startedAt;
      return {
        text: reply.text,
        usage,
        finishReason: reply.finishReason ?? "stop",
        model: answered,
        request: id,
        latencyMs,
        ttftMs: firstAt === null ? null : firstAt - startedAt,
      };
    } catch (error) {
      const failure = signal.aborted
        ? signal.reason
        : callerError?.error === error
        ? error
        : explain(error, controller.signal, reader);
      // An error status or a request that never got through cost nothing; anything else may have.
      const timedOut = controller.signal.reason instanceof AttemptTimeout;
      const costly = signal.aborted || timedOut || (status !== null && status < 300);
      if (costly) onUsage?.(await estimate(request, reader?.text ?? ""), model);
      report(signal.aborted ? "cancelled" : "failed", failure);
      throw failure;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  function explain(
    error: unknown,
    attemptSignal: AbortSignal,
    reader: ReturnType<typeof replyReader> | undefined,
  ): unknown {
    if (error instanceof ProviderError) return error;
    if (attemptSignal.aborted && attemptSignal.reason instanceof AttemptTimeout) {
      return new ProviderError(
        `Cannot complete the chat: ${shown} did not finish within ${timeoutMs} ms (timeoutMs)`,
        { retryable: true },
      );
    }
    const detail = redact(errorText(error));
    if (reader !== undefined) {
      return new ProviderError(
        `Cannot complete the chat: the connection to ${shown} broke mid-reply, after ${reader.text.length} characters: ${detail}`,
        { status: 200, retryable: true, cause: new Error(detail) },
      );
    }
    if (error instanceof TypeError) {
      return new ProviderError(`Cannot complete the chat: cannot reach ${shown}: ${detail}`, {
        retryable: true,
        cause: new Error(detail),
      });
    }
    return error;
  }

  async function estimate(request: LlmRequest, output: string): Promise<Usage> {
    try {
      return estimateUsage(await loadTokenizer(), request.messages, output);
    } catch {
      const input = request.messages.reduce((n, m) => n + estimateTokens(m.content), 0);
      return usageOf(input, estimateTokens(output), "estimated");
    }
  }

  return { name, model: defaultModel, complete };
}

/** `{baseUrl}/chat/completions`, keeping a query the base URL has (some gateways take a version there). */
function endpoint(baseUrl: string): string {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/chat/completions`;
  return url.href;
}

function checkOptions(options: OpenAiCompatibleOptions, timeoutMs: number, name: string): void {
  const problem = (field: string, expected: string, value: unknown) =>
    new TypeError(
      `Cannot create openAiCompatible: ${field} must be ${expected}, current value is ${
        field === "apiKey" ? "not a string" : JSON.stringify(value)
      }`,
    );
  let parsed: URL | undefined;
  try {
    parsed = new URL(options.baseUrl);
  } catch {
    // Reported below.
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw problem("baseUrl", "an http(s) URL", shownUrl(String(options.baseUrl)));
  }
  if (/\/chat\/completions\/*$/.test(parsed.pathname)) {
    throw problem(
      "baseUrl",
      "the API's base URL without /chat/completions (it is added)",
      shownUrl(options.baseUrl),
    );
  }
  if (typeof options.model !== "string" || options.model === "") {
    throw problem("model", "a non-empty string", options.model);
  }
  if (options.apiKey !== undefined && typeof options.apiKey !== "string") {
    throw problem("apiKey", "a string", options.apiKey);
  }
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(
      `Cannot create openAiCompatible: timeoutMs must be a finite number > 0, current value is ${timeoutMs}`,
    );
  }
  if (typeof name !== "string" || name === "") throw problem("name", "a non-empty string", name);
  const { maxTokensParameter } = options;
  if (maxTokensParameter !== undefined && !MAX_TOKENS_PARAMETERS.includes(maxTokensParameter)) {
    throw problem("maxTokensParameter", MAX_TOKENS_PARAMETERS.join(" or "), maxTokensParameter);
  }
  for (const [key, value] of Object.entries(options.headers ?? {})) {
    if (typeof value !== "string") {
      throw problem(`headers["${key}"]`, "a string", SECRET_HEADER.test(key) ? "(hidden)" : value);
    }
  }
}
