// Tests the OpenAI-compatible provider inside a real Web Worker, built from options that crossed the boundary.

import assert from "node:assert/strict";
import type { LlmRequest } from "../../../actors/ports.ts";
import type { OpenAiCompatibleOptions } from "../../../adapters/llm/openai_compatible.ts";
import { startMockUpstream } from "../../../scripts/mock_upstream.ts";
import { eventually } from "../../_helpers/eventually.ts";

const REQUEST: LlmRequest = {
  org: "o",
  session: "s",
  run: "r",
  messages: [{ role: "user", content: "alpha beta gamma delta epsilon zeta eta theta" }],
};

async function inWorker(data: unknown): Promise<Record<string, unknown>> {
  const worker = new Worker(new URL("./_provider_worker.ts", import.meta.url), { type: "module" });
  try {
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
    });
    worker.postMessage(data);
    return await reply;
  } finally {
    worker.terminate();
  }
}

Deno.test("the provider streams and estimates usage inside a worker, from cloned options", async () => {
  await using upstream = startMockUpstream();
  const options: OpenAiCompatibleOptions = {
    baseUrl: upstream.url,
    apiKey: "sk-worker-test-key",
    model: "mock-model",
    headers: { "x-mock-usage-dialect": "none" },
    timeoutMs: 10_000,
    stream: true,
  };
  assert.deepEqual(structuredClone(options), options, "the options survive structured cloning");
  const { completion, deltas, error } = await inWorker({ options, request: REQUEST });
  assert.equal(error, undefined);
  const { text, usage } = completion as { text: string; usage: { source: string } };
  assert.equal(text, "alpha beta gamma delta epsilon zeta eta theta");
  assert.equal((deltas as string[]).length, 8);
  assert.equal(usage.source, "estimated", "the tokenizer loaded inside the worker");
});

Deno.test("a call cancelled inside a worker closes its upstream connection", async () => {
  await using upstream = startMockUpstream();
  const options: OpenAiCompatibleOptions = {
    baseUrl: upstream.url,
    model: "mock-model",
    headers: { "x-mock-tokens-per-second": "50" },
  };
  const { error, usages } = await inWorker({ options, request: REQUEST, cancelAfterDeltas: 2 });
  assert.equal(error, "cancelled in the worker");
  assert.equal((usages as Array<{ source: string }>)[0]!.source, "estimated");
  await eventually("the upstream to see the abort", () => upstream.stats().aborts === 1);
  assert.equal(upstream.stats().openConnections, 0);
});
