// Runs the LlmProvider contract against the mock provider, the real provider over HTTP, and the resilience wrapper.

import { ProviderError } from "../../../actors/errors.ts";
import { mockLlm } from "../../../adapters/llm/mock_llm.ts";
import { openAiCompatible } from "../../../adapters/llm/openai_compatible.ts";
import { resilient } from "../../../adapters/llm/resilient.ts";
import { startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { type ProviderBehaviour, runLlmProviderContract } from "./llm_provider_contract.ts";

const SCENARIO: Record<ProviderBehaviour, string> = { answer: "ok", hang: "hang", fail: "400" };

runLlmProviderContract({
  name: "mockLlm",
  create: (behaviour) => ({
    provider: mockLlm({
      latencyMs: behaviour === "hang" ? 60_000 : 0,
      ...(behaviour === "fail" ? { fail: () => new ProviderError("refused") } : {}),
    }),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  }),
});

for (const stream of [true, false]) {
  runLlmProviderContract({
    name: `openAiCompatible (stream: ${stream})`,
    create(behaviour) {
      const upstream = startMockUpstream();
      const provider = openAiCompatible({
        baseUrl: upstream.url,
        model: "mock-model",
        stream,
        headers: { "x-mock-scenario": SCENARIO[behaviour] },
      });
      return { provider, [Symbol.asyncDispose]: () => upstream.close() };
    },
  });
}

runLlmProviderContract({
  name: "resilient(openAiCompatible)",
  create(behaviour) {
    const upstream = startMockUpstream();
    const inner = openAiCompatible({
      baseUrl: upstream.url,
      model: "mock-model",
      headers: { "x-mock-scenario": SCENARIO[behaviour] },
    });
    const provider = resilient(inner, { retries: 1, minDelayMs: 0 });
    return { provider, [Symbol.asyncDispose]: () => upstream.close() };
  },
});
