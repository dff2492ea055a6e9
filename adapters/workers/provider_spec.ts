// Which LLM provider a worker builds: a plain-data description that can be posted to it.

import type { LlmProvider } from "../../actors/ports.ts";
import { mockLlm } from "../llm/mock_llm.ts";
import { openAiCompatible, type OpenAiCompatibleOptions } from "../llm/openai_compatible.ts";

/**
 * The plain-data subset of `MockLlmOptions`: what can cross into a worker
 * (no `reply`, `fail` or `clock` functions).
 *
 * @example
 * ```ts
 * import type { MockSpecOptions } from "./provider_spec.ts";
 *
 * const options: MockSpecOptions = { latencyMs: 50, tokensPerSecond: 200 };
 * ```
 */
export interface MockSpecOptions {
  /** Time before the first token, in ms. @default {0} */
  latencyMs?: number;
  /** Streaming speed; the default sends the whole text at once. @default {Infinity} */
  tokensPerSecond?: number;
  /** The model name it reports. @default {"mock-model"} */
  model?: string;
}

/**
 * Which provider to build in each worker, as structured-cloneable data:
 * `mockLlm` or `openAiCompatible` (whose options, but for `fetch`, are plain
 * data already).
 *
 * @example
 * ```ts
 * import type { ProviderSpec } from "./provider_spec.ts";
 *
 * const spec: ProviderSpec = {
 *   kind: "openai-compatible",
 *   options: { baseUrl: "http://127.0.0.1:8000/v1", model: "llama-3.1-8b" },
 * };
 * ```
 */
export type ProviderSpec =
  | { kind: "mock"; options?: MockSpecOptions }
  | { kind: "openai-compatible"; options: Omit<OpenAiCompatibleOptions, "fetch"> };

/**
 * Build the provider a spec describes; a bad spec throws at once (`TypeError`
 * or `RangeError` naming the field). The pool calls it once on the main
 * thread to refuse a bad spec before any worker starts, and each worker
 * calls it to build its own provider.
 *
 * @example
 * ```ts
 * import { providerFromSpec } from "./provider_spec.ts";
 *
 * const llm = providerFromSpec({ kind: "mock", options: { model: "echo" } });
 * console.assert(llm.name === "mock" && llm.model === "echo");
 * ```
 */
export function providerFromSpec(spec: ProviderSpec): LlmProvider {
  const kind = (spec as { kind?: unknown } | undefined)?.kind;
  if (kind === "mock") return mockLlm(mockOptions(spec.options ?? {}));
  if (kind === "openai-compatible") {
    const options = (spec as { options?: OpenAiCompatibleOptions }).options;
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        "Cannot build the provider: options of an openai-compatible spec must be an object",
      );
    }
    if ("fetch" in options) {
      throw new TypeError(
        "Cannot build the provider: options.fetch is a function and cannot be sent to a worker",
      );
    }
    return openAiCompatible(options);
  }
  throw new TypeError(
    `Cannot build the provider: kind must be "mock" or "openai-compatible", current value is ${
      JSON.stringify(kind)
    }`,
  );
}

function mockOptions(options: MockSpecOptions): MockSpecOptions {
  const { latencyMs, tokensPerSecond, model } = options;
  return {
    ...(latencyMs === undefined ? {} : { latencyMs }),
    ...(tokensPerSecond === undefined ? {} : { tokensPerSecond }),
    ...(model === undefined ? {} : { model }),
  };
}
