// Wraps an LLM provider with a deadline, retries with backoff and jitter, and a chain of fallbacks.

import { sleep, systemClock } from "../../actors/clock.ts";
import { ProviderError } from "../../actors/errors.ts";
import { idGenerator } from "../../actors/ids.ts";
import type {
  Clock,
  LlmAttempt,
  LlmCallOptions,
  LlmCompletion,
  LlmProvider,
  LlmRequest,
} from "../../actors/ports.ts";
import { retryDelay } from "./_backoff.ts";
import { errorCode, errorText } from "./_upstream_errors.ts";

/** A fallback: another provider, or the wrapped provider asked for another model. */
export type Fallback = LlmProvider | { model: string };

/** Options of {@linkcode resilient}. */
export interface ResilientOptions {
  /** Time the whole call may take, attempts and waits together, in ms. @default {120000} */
  deadlineMs?: number;
  /** Retries of one provider or model after its first attempt, on retryable errors. @default {2} */
  retries?: number;
  /** The cap of the first retry's wait, in ms; each later cap doubles (full jitter draws below it). @default {250} */
  minDelayMs?: number;
  /** The largest cap of a retry's wait, in ms (an upstream's `Retry-After` may ask for more). @default {8000} */
  maxDelayMs?: number;
  /** Tried in order once the wrapped provider (then each fallback) has failed for good. @default {[]} */
  fallback?: Fallback[];
  /** A uniform draw in [0, 1), for the jitter. @default {Math.random} */
  random?: () => number;
  /** Times the deadline, the waits and the attempts. @default {systemClock} */
  clock?: Clock;
}

/** One provider (and model) of the chain. */
interface Link {
  provider: LlmProvider;
  /** The model to ask for instead of the request's, for a `{ model }` fallback. */
  model: string | undefined;
}

/**
 * Make a provider that calls `provider` with a deadline, retries and fallbacks.
 *
 * - **Deadline**: the call, waits included, ends after `deadlineMs`; the
 *   attempt in flight is aborted and the call rejects with a retryable
 *   `ProviderError` whose `cause` is the last attempt's error, if any.
 * - **Retries**: an error with `retryable: true` and code `provider_error` or
 *   `worker_crashed` (429, 408, 409, 5xx, timeouts, network errors, cut
 *   streams, a dead worker) is retried up to `retries` times, after
 *   {@linkcode retryDelay}: full jitter, and at least the upstream's
 *   `retryAfterMs`. A wait that would end past the deadline is not started.
 *   Other errors (other 4xx, a saturated pool, a bug) are not retried.
 * - **Fallbacks**: when a link of the chain will not be retried (its retries
 *   are spent, its error is not retryable, or its `Retry-After` reaches past
 *   the deadline), the next link is tried at once, with its own retries. Any
 *   failure moves on, a non-retryable one too: a 400, 401, 404 or 422 often
 *   belongs to one provider or model (a key, a model name, a context
 *   length), and the chain is short. Cancellation and the deadline end the
 *   whole call. When the chain is spent the call rejects with the last error.
 * - **Streaming**: once a delta of an attempt reached `onDelta`, that attempt
 *   is the answer: if it then fails, the call fails with its error, with no
 *   retry and no fallback, since a new attempt would repeat text the caller
 *   already has. A caller without `onDelta` gets every retry.
 * - **Attempts**: each attempt gets a fresh id (a UUIDv7) as `request.request`
 *   (sent upstream as `X-Request-Id`) and is reported to `onAttempt` when it
 *   ends, numbered across the chain, with the wait before the next one.
 *   `onUsage` goes to the wrapped providers as it is.
 * - **Cancellation**: aborting the caller's signal aborts the attempt or the
 *   wait in flight at once and rejects with the signal's reason.
 *
 * It fits on the main thread around a worker pool's provider (a crashed
 * worker's `WorkerCrashedError` is retried) as well as inside a worker.
 *
 * @param provider The provider to call first.
 * @param options Deadline, retries, backoff and fallbacks.
 * @returns A provider with the same name and model.
 *
 * @example Retrying a provider that fails once
 * ```ts
 * import { resilient } from "./resilient.ts";
 * import { mockLlm } from "./mock_llm.ts";
 * import { ProviderError } from "../../actors/errors.ts";
 *
 * let calls = 0;
 * const flaky = mockLlm({
 *   fail: () => calls++ === 0 ? new ProviderError("503", { retryable: true, status: 503 }) : undefined,
 * });
 * const attempts: string[] = [];
 * const llm = resilient(flaky, { minDelayMs: 1 });
 * const completion = await llm.complete(
 *   { org: "o", session: "s", run: "r", messages: [{ role: "user", content: "hi" }] },
 *   { signal: new AbortController().signal, onAttempt: (a) => attempts.push(a.outcome) },
 * );
 * console.assert(completion.text === "hi" && attempts.join() === "failed,completed");
 * ```
 */
export function resilient(provider: LlmProvider, options: ResilientOptions = {}): LlmProvider {
  const {
    deadlineMs = 120_000,
    retries = 2,
    minDelayMs = 250,
    maxDelayMs = 8_000,
    fallback = [],
    random = Math.random,
    clock = systemClock,
  } = options;
  checkOptions({ deadlineMs, retries, minDelayMs, maxDelayMs });
  const chain: Link[] = [
    { provider, model: undefined },
    ...fallback.map((link) =>
      "complete" in link ? { provider: link, model: undefined } : { provider, model: link.model }
    ),
  ];
  const nextId = idGenerator(clock);
  const backoff = { minDelayMs, maxDelayMs, random };

  async function complete(request: LlmRequest, call: LlmCallOptions): Promise<LlmCompletion> {
    const { signal, onDelta, onAttempt, onUsage } = call;
    if (signal.aborted) throw signal.reason;
    const startedAt = clock.now();
    // One controller for the caller's abort and the deadline, not `AbortSignal.any`: a
    // dependent signal holds WeakRefs and a FinalizationRegistry entry, which every call
    // kept alive across its upstream wait and which made the main thread's scavenges slower.
    const stopper = new AbortController();
    const stop = stopper.signal;
    let pastDeadline = false;
    const timer = clock.setTimeout(() => {
      pastDeadline = true;
      stopper.abort(new DOMException(`The deadline of ${deadlineMs} ms passed`, "TimeoutError"));
    }, deadlineMs);
    const onAbort = () => stopper.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let streamed = false;
    const forward = onDelta &&
      ((text: string) => {
        if (stop.aborted) return;
        streamed = true;
        onDelta(text);
      });
    let attempt = 0;
    let lastError: unknown;
    try {
      for (let index = 0; index < chain.length; index++) {
        const link = chain[index]!;
        const model = link.model ?? request.options?.model ?? link.provider.model ??
          link.provider.name;
        for (let retry = 0;; retry++) {
          attempt++;
          const id = nextId();
          const began = clock.now();
          let inner: LlmAttempt | undefined;
          const report = (
            outcome: LlmAttempt["outcome"],
            error: unknown,
            retryInMs: number | null,
            code?: string,
          ) =>
            onAttempt?.({
              request: id,
              attempt,
              provider: link.provider.name,
              model,
              outcome,
              status: inner?.status ?? statusOf(error),
              code: error === null ? null : code ?? errorCode(error),
              error: error === null ? null : errorText(error),
              retryInMs,
              latencyMs: Math.max(0, clock.now() - began),
            });
          try {
            const completion = await link.provider.complete(
              {
                ...request,
                request: id,
                ...(link.model === undefined ? {} : {
                  options: { ...request.options, model: link.model },
                }),
              },
              {
                signal: stop,
                ...(forward === undefined ? {} : { onDelta: forward }),
                ...(onUsage === undefined ? {} : { onUsage }),
                onAttempt: (reported) => inner = reported,
              },
            );
            if (stop.aborted) throw stop.reason;
            report("completed", null, null);
            return completion;
          } catch (error) {
            if (signal.aborted) {
              report("cancelled", signal.reason, null);
              throw signal.reason;
            }
            if (pastDeadline) {
              report("failed", stop.reason, null, "deadline_exceeded");
              throw deadlineError(deadlineMs, attempt, error === stop.reason ? lastError : error);
            }
            lastError = error;
            const more = index + 1 < chain.length;
            let wait: number | null = null;
            if (!streamed && isRetryable(error) && retry < retries) {
              const delay = retryDelay(retry + 1, retryAfterOf(error), backoff);
              if (clock.now() - startedAt + delay < deadlineMs) wait = delay;
            }
            if (streamed || (wait === null && !more)) {
              report("failed", error, null);
              throw error;
            }
            report("failed", error, wait ?? 0);
            if (wait === null) break;
            await sleep(clock, wait, stop).catch((reason) => {
              if (signal.aborted) throw signal.reason;
              throw deadlineError(deadlineMs, attempt, lastError ?? reason);
            });
          }
        }
      }
      // Unreachable: the last link's last failure throws above.
      throw lastError;
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  async function close(): Promise<void> {
    const distinct = new Set(chain.map((link) => link.provider));
    await Promise.all([...distinct].map((p) => p.close?.()));
  }

  return {
    name: provider.name,
    ...(provider.model === undefined ? {} : { model: provider.model }),
    complete,
    close,
  };
}

/** Whether an error may go away on a new attempt: a retryable provider error or a dead worker. */
function isRetryable(error: unknown): boolean {
  const { retryable, code } = (error ?? {}) as { retryable?: unknown; code?: unknown };
  return retryable === true && (code === "provider_error" || code === "worker_crashed");
}

function retryAfterOf(error: unknown): number | undefined {
  const hint = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof hint === "number" && Number.isFinite(hint) && hint >= 0 ? hint : undefined;
}

function statusOf(error: unknown): number | null {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : null;
}

function deadlineError(deadlineMs: number, attempt: number, cause: unknown): ProviderError {
  return new ProviderError(
    `Cannot complete the chat: the deadline of ${deadlineMs} ms passed during attempt ${attempt}`,
    { retryable: true, ...(cause === undefined ? {} : { cause }) },
  );
}

function checkOptions(values: Record<string, number>): void {
  const { deadlineMs, retries, minDelayMs, maxDelayMs } = values;
  const fail = (name: string, expected: string, value: number) => {
    throw new RangeError(
      `Cannot create resilient: ${name} must be ${expected}, current value is ${value}`,
    );
  };
  if (!(deadlineMs! > 0)) fail("deadlineMs", "a number > 0", deadlineMs!);
  if (!Number.isSafeInteger(retries) || retries! < 0) fail("retries", "an integer >= 0", retries!);
  if (!(minDelayMs! >= 0) || !Number.isFinite(minDelayMs)) {
    fail("minDelayMs", "a finite number >= 0", minDelayMs!);
  }
  if (!(maxDelayMs! >= minDelayMs!) || !Number.isFinite(maxDelayMs)) {
    fail("maxDelayMs", `a finite number >= minDelayMs (${minDelayMs})`, maxDelayMs!);
  }
}
