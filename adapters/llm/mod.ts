/**
 * LLM provider adapters: `mockLlm` (deterministic, no network).
 *
 * @module
 */
export { type MockLlm, mockLlm, type MockLlmOptions, type MockLlmStats } from "./mock_llm.ts";
export {
  type MaxTokensParameter,
  openAiCompatible,
  type OpenAiCompatibleOptions,
  type OpenAiCompatibleProvider,
  type OpenAiCompletion,
} from "./openai_compatible.ts";
export { type Fallback, resilient, type ResilientOptions } from "./resilient.ts";
