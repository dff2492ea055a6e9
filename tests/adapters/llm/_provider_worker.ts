// A Web Worker that builds the OpenAI-compatible provider from posted options and runs one call, for the worker test.

/// <reference lib="deno.worker" />

import { openAiCompatible } from "../../../adapters/llm/openai_compatible.ts";
import type { Usage } from "../../../actors/ports.ts";

self.onmessage = async (event: MessageEvent) => {
  const { options, request, cancelAfterDeltas } = event.data;
  const llm = openAiCompatible(options);
  const controller = new AbortController();
  const deltas: string[] = [];
  const usages: Usage[] = [];
  const onDelta = (text: string) => {
    deltas.push(text);
    if (deltas.length === cancelAfterDeltas) controller.abort(new Error("cancelled in the worker"));
  };
  try {
    const completion = await llm.complete(request, {
      signal: controller.signal,
      onDelta,
      onUsage: (usage) => usages.push(usage),
    });
    self.postMessage({ completion, deltas, usages });
  } catch (error) {
    self.postMessage({ error: (error as Error).message, deltas, usages });
  }
};
