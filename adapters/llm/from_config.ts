// Builds the LLM provider the configuration names: the embedded mock, or a pooled, resilient upstream.

import type { TroupeConfig } from "../../actors/config.ts";
import type { LlmProvider } from "../../actors/ports.ts";
import { type LlmPool, llmPool } from "../workers/llm_pool.ts";
import { mockLlm } from "./mock_llm.ts";
import { resilient } from "./resilient.ts";

/** The LLM settings of the configuration (the `TROUPE_LLM_*` variables). */
export type LlmSettings = Pick<
  TroupeConfig,
  | "llmBaseUrl"
  | "llmApiKey"
  | "llmModel"
  | "llmFallbackModels"
  | "llmTimeoutMs"
  | "llmDeadlineMs"
  | "llmRetries"
  | "llmWorkers"
  | "llmWorkerConcurrency"
  | "llmQueueBound"
  | "llmMaxReplyBytes"
  | "llmMaxTokensParameter"
>;

/** The provider made from the settings, and its worker pool when it has one. */
export interface ConfiguredLlm {
  /** What the runtime calls. */
  provider: LlmProvider;
  /** The pool the calls run in (for readiness and metrics), or `null` for the embedded mock. */
  pool: LlmPool | null;
}

/**
 * Build the provider the settings name. With no `llmBaseUrl`, the embedded
 * `mockLlm()` (no network, no pool, no request log). With one, an `openAiCompatible`
 * provider running in a pool of `llmWorkers` workers (one per core when 0),
 * wrapped on this thread in `resilient()`: a per-call deadline, retries with
 * backoff on 429, 5xx, timeouts, network errors and crashed workers, then the
 * fallback models in order. The API key goes to the workers and nowhere else.
 *
 * @example The embedded default
 * ```ts
 * import { llmFromSettings } from "./from_config.ts";
 * import { DEFAULT_CONFIG } from "../../actors/config.ts";
 *
 * const { provider, pool } = llmFromSettings(DEFAULT_CONFIG);
 * console.assert(provider.name === "mock" && pool === null);
 * ```
 */
export function llmFromSettings(settings: LlmSettings): ConfiguredLlm {
  // No one can read this mock's request log: it keeps none.
  if (settings.llmBaseUrl === null) return { provider: mockLlm({ requestLog: 0 }), pool: null };
  if (settings.llmModel === null) {
    throw new TypeError("Cannot build the LLM provider: a model is required with a base URL");
  }
  const pool = llmPool({
    provider: {
      kind: "openai-compatible",
      options: {
        baseUrl: settings.llmBaseUrl,
        model: settings.llmModel,
        timeoutMs: settings.llmTimeoutMs,
        maxReplyBytes: settings.llmMaxReplyBytes,
        maxTokensParameter: settings.llmMaxTokensParameter,
        ...(settings.llmApiKey === null ? {} : { apiKey: settings.llmApiKey }),
      },
    },
    ...(settings.llmWorkers === 0 ? {} : { size: settings.llmWorkers }),
    concurrency: settings.llmWorkerConcurrency,
    queueBound: settings.llmQueueBound,
  });
  // resilient() closes what it wraps, so closing the provider drains the pool.
  const provider = resilient(pool, {
    deadlineMs: settings.llmDeadlineMs,
    retries: settings.llmRetries,
    fallback: settings.llmFallbackModels.map((model) => ({ model })),
  });
  return { provider, pool };
}
