// /metrics: Prometheus text that parses, and counters that move with the requests and runs behind them.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createRuntime, type Runtime } from "../../../actors/runtime.ts";
import { createHandler } from "../../../adapters/http/handler.ts";
import { createMetrics, type Metrics, type MetricsSource } from "../../../adapters/http/metrics.ts";
import { mockLlm, type MockLlmOptions } from "../../../adapters/llm/mock_llm.ts";
import { eventually } from "../../_helpers/eventually.ts";
import { nextEvent } from "../../_helpers/next_event.ts";

const IN_FLIGHT_MS = 60_000;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample with this name and these labels (among others), or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

/**
 * Parse Prometheus's text format strictly: every sample must belong to a
 * family announced by `# TYPE`, labels must be well formed, values numbers.
 */
function parse(text: string): Exposition {
  assert(text.endsWith("\n"), "the exposition ends with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
    if (type !== null) {
      assert(!types.has(type[1]!), `family ${type[1]} announced once`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert(match !== null, `a sample line: ${JSON.stringify(line)}`);
    const [, name, labelText = "", valueText] = match;
    const labels: Record<string, string> = {};
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    while (labelPattern.lastIndex < labelText.length) {
      const label = labelPattern.exec(labelText);
      assert(label !== null, `well-formed labels: ${labelText}`);
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    }
    const value = valueText === "+Inf" ? Infinity : Number(valueText);
    assert(!Number.isNaN(value), `a number: ${valueText}`);
    const family = name!.replace(/_(bucket|sum|count)$/, "");
    assert(
      types.has(name!) || types.get(family) === "histogram",
      `sample ${name} belongs to a family with a TYPE`,
    );
    samples.push({ name: name!, labels, value });
  }
  return {
    types,
    samples,
    value(name, labels = {}) {
      const found = samples.filter((s) =>
        s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
      );
      assert(found.length <= 1, `at most one ${name} ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}

/** Every histogram's buckets rise, and its +Inf bucket equals its count. */
function assertHistogramsConsistent(exposition: Exposition): void {
  for (const [family, type] of exposition.types) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const sample of exposition.samples) {
      if (sample.name !== `${family}_bucket`) continue;
      const { le: _, ...rest } = sample.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), sample]);
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        assert(
          Number(buckets[i]!.labels.le!.replace("+Inf", "Infinity")) >
            Number(buckets[i - 1]!.labels.le!.replace("+Inf", "Infinity")),
        );
        assert(buckets[i]!.value >= buckets[i - 1]!.value, `${family} ${key} buckets rise`);
      }
      assertEquals(buckets.at(-1)!.labels.le, "+Inf");
      assertEquals(buckets.at(-1)!.value, exposition.value(`${family}_count`, JSON.parse(key)));
    }
  }
}

interface Server extends AsyncDisposable {
  url: string;
  runtime: Runtime;
  metrics: Metrics;
  scrape(): Promise<Exposition>;
}

function serve(llm: MockLlmOptions = {}, source: MetricsSource = {}): Server {
  const runtime = createRuntime({ llm: mockLlm(llm) });
  const metrics = createMetrics({ runtime, source, eventLoopSampleMs: 10 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createHandler({ runtime, metrics }),
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    runtime,
    metrics,
    async scrape() {
      const response = await fetch(`${url}/metrics`);
      assertEquals(response.status, 200);
      assertEquals(
        response.headers.get("content-type"),
        "text/plain; version=0.0.4; charset=utf-8",
      );
      const exposition = parse(await response.text());
      assertHistogramsConsistent(exposition);
      return exposition;
    },
    async [Symbol.asyncDispose]() {
      await runtime.shutdown({ graceMs: 0 });
      await server.shutdown();
      metrics.close();
    },
  };
}

async function chat(url: string, content: string, session?: string): Promise<Response> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(session === undefined ? {} : { "x-session-id": session }),
    },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content }] }),
  });
  await response.body?.cancel();
  return response;
}

Deno.test("requests are counted by route template, method and status, with a latency histogram", async () => {
  await using s = serve();
  const before = await s.scrape();
  const requests = "troupe_http_requests_total";
  const completions = { route: "/v1/chat/completions", method: "POST" };
  assertEquals(before.value(requests, { ...completions, status: "200" }), undefined);

  for (const content of ["a", "b"]) assertEquals((await chat(s.url, content)).status, 200);
  const history = await fetch(`${s.url}/v1/sessions/any-session/messages`);
  await history.body?.cancel();
  const missing = await fetch(`${s.url}/no/such/route`);
  await missing.body?.cancel();
  const odd = await fetch(`${s.url}/healthz`, { method: "PATCH" });
  await odd.body?.cancel();

  const after = await s.scrape();
  assertEquals(after.types.get(requests), "counter");
  assertEquals(after.value(requests, { ...completions, status: "200" }), 2);
  // Paths are counted by template: the session id is not a label.
  assertEquals(
    after.value(requests, {
      route: "/v1/sessions/{session}/messages",
      method: "GET",
      status: "200",
    }),
    1,
  );
  assertEquals(after.value(requests, { route: "unmatched", method: "GET", status: "404" }), 1);
  assertEquals(after.value(requests, { route: "/healthz", method: "PATCH", status: "405" }), 1);
  // The first scrape is counted too.
  assertEquals(after.value(requests, { route: "/metrics", method: "GET", status: "200" }), 1);
  const latency = "troupe_http_request_duration_seconds";
  assertEquals(after.types.get(latency), "histogram");
  assertEquals(after.value(`${latency}_count`, completions), 2);
  assert(after.value(`${latency}_sum`, completions)! > 0);
});

Deno.test("an unknown method is counted as OTHER, so the label set stays bounded", () => {
  using metrics = createMetrics({ eventLoopSampleMs: 0 });
  const route = { path: /^\/healthz$/, methods: {} };
  metrics.observeRequest(route, "FROB", 405, 0.001);
  metrics.observeRequest(null, "FROB", 404, 0.001);
  const exposition = parse(metrics.render());
  assertEquals(
    exposition.value("troupe_http_requests_total", { route: "/healthz", method: "OTHER" }),
    1,
  );
  assertEquals(
    exposition.value("troupe_http_requests_total", { route: "unmatched", method: "OTHER" }),
    1,
  );
});

Deno.test("runs in flight, superseded runs, finished runs and tokens follow the runtime's events", async () => {
  await using s = serve({
    latencyMs: (r) => r.messages.at(-1)!.content === "first" ? IN_FLIGHT_MS : 0,
  });
  const started = nextEvent(s.runtime, "run.started");
  const first = chat(s.url, "first", "s1");
  await started;
  const during = await s.scrape();
  assertEquals(during.value("troupe_runs_in_flight"), 1);
  assertEquals(during.value("troupe_active_sessions"), 1);
  assertEquals(during.value("troupe_runs_superseded_total", { policy: "merge" }), 0);

  assertEquals((await chat(s.url, "second", "s1")).status, 200);
  assertEquals((await first).status, 409);
  const after = await s.scrape();
  assertEquals(after.value("troupe_runs_in_flight"), 0);
  assertEquals(after.value("troupe_runs_superseded_total", { policy: "merge" }), 1);
  assertEquals(after.value("troupe_runs_finished_total", { outcome: "superseded" }), 1);
  assertEquals(after.value("troupe_runs_finished_total", { outcome: "completed" }), 1);
  // Both calls count: the aborted one ("first": 2 tokens in, none out) and the merged one
  // ("first\n---\nsecond", 16 characters: 4 tokens in, 4 out), a token per four characters.
  const input = after.value("troupe_llm_tokens_total", { model: "mock-model", kind: "input" })!;
  const output = after.value("troupe_llm_tokens_total", { model: "mock-model", kind: "output" })!;
  assertEquals(input, 2 + 4);
  assertEquals(output, 4);
});

Deno.test("label values are escaped: a model name with quotes, backslashes and a newline round-trips", async () => {
  const model = 'we"ird\\model\nname';
  await using s = serve({ model });
  assertEquals((await chat(s.url, "hello")).status, 200);
  const exposition = await s.scrape();
  assertEquals(exposition.value("troupe_llm_tokens_total", { model, kind: "output" }), 2);
});

Deno.test("pool queue depth, pool histograms and persister lag come from the source", async () => {
  let queued = 3;
  const waitMs = { le: [1, 10, Infinity], counts: [1, 3, 4], sum: 42, count: 4 };
  await using s = serve({}, {
    pools: () => [{ name: "llm", queued, inFlight: 2, waitMs }],
    persisterLag: () => 17,
  });
  let exposition = await s.scrape();
  assertEquals(exposition.value("troupe_pool_queue_depth", { pool: "llm" }), 3);
  assertEquals(exposition.value("troupe_pool_in_flight", { pool: "llm" }), 2);
  assertEquals(exposition.value("troupe_persister_lag_events"), 17);
  assertEquals(exposition.types.get("troupe_pool_wait_seconds"), "histogram");
  assertEquals(exposition.value("troupe_pool_wait_seconds_bucket", { pool: "llm", le: "0.01" }), 3);
  assertEquals(exposition.value("troupe_pool_wait_seconds_sum", { pool: "llm" }), 0.042);
  assert(!exposition.types.has("troupe_pool_run_seconds"), "no run histogram was given");
  queued = 0;
  exposition = await s.scrape();
  assertEquals(exposition.value("troupe_pool_queue_depth", { pool: "llm" }), 0);
});

Deno.test("without a source the pool and persister families are left out, not faked", () => {
  using metrics = createMetrics({ eventLoopSampleMs: 0 });
  const exposition = parse(metrics.render());
  assert(!exposition.types.has("troupe_pool_queue_depth"));
  assert(!exposition.types.has("troupe_persister_lag_events"));
  assert(!exposition.types.has("troupe_event_loop_lag_seconds"), "the sampler is off");
});

Deno.test("event-loop lag shows a blocked event loop", async () => {
  using metrics = createMetrics({ eventLoopSampleMs: 10 });
  const lag = () => parse(metrics.render()).value("troupe_event_loop_lag_seconds")!;
  assertEquals(lag(), 0);
  // Block the loop for 300 ms: the next timer runs at least ~290 ms late, however noisy the machine.
  const until = performance.now() + 300;
  while (performance.now() < until) { /* busy */ }
  await eventually("the sampler to see the block", () => lag() >= 0.25, 10_000);
});

Deno.test("the event-loop sampler never keeps a process alive", async () => {
  const url = new URL("../../../adapters/http/metrics.ts", import.meta.url).href;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { createMetrics } from "${url}"; createMetrics({ eventLoopSampleMs: 5 });`,
    ],
    stdout: "null",
    stderr: "piped",
    // A sampler that held the process open would run into this bound.
    signal: AbortSignal.timeout(60_000),
  }).output();
  assertEquals(code, 0, new TextDecoder().decode(stderr));
});

Deno.test("createMetrics refuses a negative sample interval or an empty window", () => {
  for (const options of [{ eventLoopSampleMs: -1 }, { eventLoopWindow: 0 }]) {
    try {
      createMetrics(options);
      assert(false, `expected ${JSON.stringify(options)} to be refused`);
    } catch (error) {
      assert(error instanceof RangeError && error.message.startsWith("Cannot create the metrics"));
    }
  }
});
