// Main-thread timer drift while 1,000 streams run: provider on the main thread against the LLM worker pool.
//
// Run: deno run --allow-all bench/stream_lag.ts [--streams 1000] [--tokens 60] [--tps 30]
// The mock upstream runs in its own process. Three phases in one run: idle
// (the floor), the OpenAI-compatible provider on the main thread, and the
// same provider in `llmPool` workers. Each phase measures how late a 10 ms
// timer fires on the main thread while the streams run, and (on Linux) the
// CPU time the main thread itself used: drift on a saturated machine comes
// from the scheduler as much as from the event loop, the CPU share tells
// which.

import { parseArgs } from "node:util";
import type { LlmProvider } from "../actors/ports.ts";
import { openAiCompatible } from "../adapters/llm/openai_compatible.ts";
import { llmPool } from "../adapters/workers/llm_pool.ts";
import { percentile } from "../scripts/_load_stats.ts";
import { startUpstream } from "../scripts/_perf_processes.ts";
import { drift } from "./_drift.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    streams: { type: "string", default: "1000" },
    tokens: { type: "string", default: "60" },
    tps: { type: "string", default: "30" },
  },
});
const STREAMS = Number(values.streams);
const TOKENS = Number(values.tokens);
const TPS = Number(values.tps);

const content = Array.from({ length: TOKENS }, (_, i) => `token${i}`).join(" ");

/** Run every stream at once; resolve with what arrived. */
async function streams(llm: LlmProvider): Promise<{ deltas: number; chars: number }> {
  let deltas = 0;
  let chars = 0;
  await Promise.all(Array.from({ length: STREAMS }, (_, i) =>
    llm.complete(
      { org: "bench", session: `s${i}`, run: `r${i}`, messages: [{ role: "user", content }] },
      {
        signal: AbortSignal.timeout(120_000),
        onDelta: (text) => {
          deltas++;
          chars += text.length;
        },
      },
    )));
  return { deltas, chars };
}

/** CPU time used so far by the main thread and by the whole process, in ms (Linux only). */
function cpuMs(): { main: number; all: number } | undefined {
  try {
    const read = (path: string) => {
      const fields = Deno.readTextFileSync(path).split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
    };
    return { main: read(`/proc/self/task/${Deno.pid}/stat`), all: read("/proc/self/stat") };
  } catch {
    return undefined;
  }
}

function cpuShare(before: ReturnType<typeof cpuMs>, wallMs: number): string {
  const after = cpuMs();
  if (before === undefined || after === undefined) return "";
  const share = (ms: number) => `${((ms / wallMs) * 100).toFixed(0)}%`;
  return `, CPU: main thread ${share(after.main - before.main)} of a core, process ${
    share(after.all - before.all)
  }`;
}

function report(name: string, lateness: number[], wallMs: number, extra = "") {
  const f = (n: number) => n.toFixed(2);
  const sorted = lateness.toSorted((a, b) => a - b);
  console.log(
    `${name.padEnd(34)} drift p50 ${f(percentile(sorted, 50))} ms  p99 ${
      f(percentile(sorted, 99))
    } ms  max ${f(Math.max(...lateness))} ms  (${lateness.length} ticks, ${
      (wallMs / 1000).toFixed(2)
    } s)${extra}`,
  );
}

await using upstream = await startUpstream(ROOT, 50, TPS);
const options = { baseUrl: `${upstream.url}/v1`, model: "mock-model", timeoutMs: 120_000 };
console.log(
  `${STREAMS} concurrent streams of ${TOKENS} tokens at ${TPS} tokens/s, ` +
    `${navigator.hardwareConcurrency} cores, upstream in its own process`,
);

{
  const probe = await bystander();
  const start = performance.now();
  const lateness = await drift(new Promise((resolve) => setTimeout(resolve, 2000)));
  const floor = await probe.stop();
  report("idle", lateness, performance.now() - start);
  report("  an idle process meanwhile", floor, performance.now() - start);
}

async function phase(name: string, llm: LlmProvider) {
  // A first round opens the connections; the second is measured.
  await streams(llm);
  const probe = await bystander();
  const start = performance.now();
  const cpu = cpuMs();
  const running = streams(llm);
  const lateness = await drift(running);
  const { deltas, chars } = await running;
  const wall = performance.now() - start;
  const expected = STREAMS * content.length;
  const extra = `, ${deltas} onDelta calls, ${chars}/${expected} chars${cpuShare(cpu, wall)}`;
  const floor = await probe.stop();
  report(name, lateness, wall, extra);
  report("  an idle process meanwhile", floor, wall);
}

/**
 * Start `_drift_probe.ts`, a process that only measures its own timer drift:
 * what the machine's scheduler costs any thread that wakes up during the
 * phase. `stop()` ends it and returns its lateness samples.
 */
async function bystander(): Promise<{ stop(): Promise<number[]> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `${ROOT}bench/_drift_probe.ts`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { done, value } = await lines.read();
    if (done) {
      throw new Error("Cannot measure the bystander: the drift probe exited before it was ready");
    }
    text += value;
  }
  return {
    async stop() {
      await child.stdin.close();
      for (;;) {
        const { done, value } = await lines.read();
        if (done) break;
        text += value;
      }
      await child.status;
      return JSON.parse(text.slice(text.indexOf("ready\n") + "ready\n".length)) as number[];
    },
  };
}

await phase("provider on the main thread", openAiCompatible(options));
{
  await using pool = llmPool({ provider: { kind: "openai-compatible", options } });
  await pool.ready();
  await phase(`llmPool (${navigator.hardwareConcurrency} workers)`, pool);
}
