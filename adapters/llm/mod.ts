/**
 * LLM provider adapters: `mockLlm` (deterministic, no network).
 *
 * @module
 */
export { type MockLlm, mockLlm, type MockLlmOptions, type MockLlmStats } from "./mock_llm.ts";
