// 2,000 concurrent LLM calls against the mock upstream (50 ms latency): the pool against the ideal and bare fetch.
//
// Run: deno run --allow-all bench/pool_e2e.ts [--calls 2000] [--latency-ms 50] [--rounds 5]
// The mock upstream runs in its own process. Every contender makes all its
// calls at once, round after round (the first round, which opens the
// connections, is not counted); the median round is compared with the ideal
// time (the upstream's latency: every call waits for it at the same time) and
// with bare `fetch` calls from the main thread, the floor of this machine.

import { parseArgs } from "node:util";
import type { LlmProvider, LlmRequest } from "../actors/ports.ts";
import { openAiCompatible } from "../adapters/llm/openai_compatible.ts";
import { llmPool } from "../adapters/workers/llm_pool.ts";
import { percentile } from "../scripts/_load_stats.ts";
import { startUpstream } from "../scripts/_perf_processes.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "2000" },
    "latency-ms": { type: "string", default: "50" },
    rounds: { type: "string", default: "5" },
  },
});
const CALLS = Number(values.calls);
const LATENCY_MS = Number(values["latency-ms"]);
const ROUNDS = Number(values.rounds);

function request(i: number): LlmRequest {
  return {
    org: "bench",
    session: `s${i}`,
    run: `r${i}`,
    messages: [{ role: "user", content: `hello number ${i}` }],
  };
}

/** Time `ROUNDS` rounds of `CALLS` concurrent calls after one warm-up round; the median wall time. */
async function measure(call: (i: number) => Promise<unknown>): Promise<number> {
  const round = async () => {
    const start = performance.now();
    await Promise.all(Array.from({ length: CALLS }, (_, i) => call(i)));
    return performance.now() - start;
  };
  await round();
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) times.push(await round());
  return percentile(times.toSorted((a, b) => a - b), 50);
}

function viaProvider(llm: LlmProvider) {
  return (i: number) => llm.complete(request(i), { signal: AbortSignal.timeout(60_000) });
}

await using upstream = await startUpstream(ROOT, LATENCY_MS);
const baseUrl = `${upstream.url}/v1`;
const options = { baseUrl, model: "mock-model" };
const results: [string, number][] = [];

const endpoint = `${baseUrl}/chat/completions`;
// The same request the provider sends (a stream with its usage chunk), read whole, parsed not at all.
results.push([
  "bare fetch, main thread",
  await measure(async (i) => {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({
        model: "mock-model",
        messages: request(i).messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    await response.text();
  }),
]);
results.push([
  "openAiCompatible, main thread",
  await measure(viaProvider(openAiCompatible(options))),
]);
{
  await using pool = llmPool({ provider: { kind: "openai-compatible", options } });
  await pool.ready();
  results.push([
    `llmPool openai-compatible (${pool.stats().size} workers)`,
    await measure(viaProvider(pool)),
  ]);
}
{
  await using pool = llmPool({ provider: { kind: "mock", options: { latencyMs: LATENCY_MS } } });
  await pool.ready();
  results.push([
    `llmPool mock, no network (${pool.stats().size} workers)`,
    await measure(viaProvider(pool)),
  ]);
}

const floor = results[0]![1];
console.log(
  `${CALLS} concurrent calls, upstream latency ${LATENCY_MS} ms (ideal ${LATENCY_MS} ms), ` +
    `median of ${ROUNDS} rounds, ${navigator.hardwareConcurrency} cores`,
);
for (const [name, ms] of results) {
  console.log(
    `${name.padEnd(44)} ${ms.toFixed(1).padStart(7)} ms  ${(ms / LATENCY_MS).toFixed(2)}x ideal  ${
      (ms / floor).toFixed(2)
    }x bare fetch`,
  );
}
