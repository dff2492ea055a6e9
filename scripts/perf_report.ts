// Measures Troupe beside the naive baseline on loopback, in one bounded run, and writes docs/performance.*.

/**
 * Starts the mock upstream, the naive baseline server and Troupe (as `deno task
 * start` runs it, on a temporary SQLite file under `./data`) as subprocesses, and
 * measures with `scripts/load.ts`:
 *
 * - (a) Troupe's embedded mock LLM at 0 ms against the baseline's echo, native
 *   API, events persisted, over 25–200 sessions;
 * - (b) a mock upstream at 50 ms, sessions sending 25 messages one after another;
 * - (c) the same with 30% double texting (a second message 20 ms after the first);
 * - (d) added latency: one-shot requests straight to a 0 ms mock upstream, through
 *   Troupe and through the baseline, sequentially and at 1,000 requests/s open loop.
 *
 * Troupe and the baseline are measured at each point of the same run, in
 * alternating order. It writes `performance.json`, `performance.svg` and the
 * generated part of `performance.md` in `docs/` (or `--out DIR`); `--quick` runs
 * a shorter sweep for a smoke test. Run it with `deno task perf`; it takes about
 * two minutes.
 *
 * @module
 */

import { delay } from "@std/async";
import { parseArgs } from "node:util";
import { type LoadOptions, runLoad } from "./load.ts";
import { renderFigures, replaceFigures } from "./_perf_markdown.ts";
import {
  denoCommand,
  type ServerProcess,
  startBaseline,
  startTroupe,
  startUpstream,
} from "./_perf_processes.ts";
import {
  type AddedLatency,
  type Calibration,
  type Machine,
  type Measured,
  type PerfResults,
  type Skipped,
  type Sweep,
  type SweepPoint,
  verdicts,
} from "./_perf_results.ts";
import { renderChart } from "./_perf_svg.ts";
import { CLIENT_KINDS } from "./_load_transport.ts";
import type { LoadApi } from "./_load_api.ts";

/** How long and how wide the report measures. */
interface Plan {
  sweep: number[];
  zeroMsDurationMs: number;
  messages: number;
  sequentialRequests: number;
  openLoopMs: number;
  calibrationMs: number;
  warmupMs: number;
}

const FULL: Plan = {
  sweep: [25, 50, 100, 200],
  zeroMsDurationMs: 3_000,
  messages: 25,
  sequentialRequests: 500,
  openLoopMs: 3_000,
  calibrationMs: 1_500,
  warmupMs: 1_000,
};

const QUICK: Plan = {
  sweep: [25, 200],
  zeroMsDurationMs: 1_000,
  messages: 5,
  sequentialRequests: 100,
  openLoopMs: 1_000,
  calibrationMs: 500,
  warmupMs: 300,
};

const UPSTREAM_LATENCY_MS = 50;
const DOUBLE_TEXT = 0.3;
const OPEN_LOOP_RATE = 1_000;
const MODEL = "mock-model";
// A load that has not finished after this long is cut (it should take seconds).
const SWEEP_CAP_MS = 30_000;
// Lets a server finish writing what a run left behind before the next run starts.
const SETTLE_MS = 300;

function log(message: string): void {
  console.error(`[perf] ${message}`);
}

function summary(result: Measured): string {
  if ("skipped" in result) return `skipped (${result.skipped})`;
  return `${Math.round(result.requestsPerSecond)} req/s, ${
    Math.round(result.turnsPerSecond)
  } turns/s, p99 ${result.requestLatencyMs.p99} ms, turn p99 ${result.turnLatencyMs.p99} ms, upstream ${result.upstreamCalls}, errors ${
    JSON.stringify(result.errors)
  }`;
}

/** Start Troupe, or say why it did not start (the server is being built while this runs). */
async function tryTroupe(
  ...args: Parameters<typeof startTroupe>
): Promise<ServerProcess | Skipped> {
  try {
    return await startTroupe(...args);
  } catch (error) {
    const text = (error as Error).message;
    const lines = text.split("\n").map((line) => line.trim());
    const line = lines.find((l) => l.startsWith("error:") || l.includes('"level":"error"')) ??
      lines[0]!;
    const reason = jsonError(line)
      .replace(/^error:\s*(Uncaught\s*(\(in promise\)\s*)?)?/, "")
      .replace(/, run again with.*$/, "").slice(0, 240);
    log(`troupe did not start: ${text}`);
    return { skipped: `Troupe did not start (${reason})` };
  }
}

/** The `error` (else `msg`) of a JSON log line, or the line itself. */
function jsonError(line: string): string {
  try {
    const parsed = JSON.parse(line);
    return String(parsed.error ?? parsed.msg ?? line);
  } catch {
    return line;
  }
}

function skippedFor(server: ServerProcess | Skipped): Skipped | undefined {
  return "skipped" in server ? server : undefined;
}

async function measure(
  label: string,
  server: ServerProcess | Skipped,
  options: LoadOptions,
): Promise<Measured> {
  const skipped = skippedFor(server);
  if (skipped) {
    log(`${label}: ${summary(skipped)}`);
    return skipped;
  }
  const result = await runLoad((server as ServerProcess).url, options);
  log(`${label}: ${summary(result)}`);
  await delay(SETTLE_MS);
  return result;
}

async function warmUp(server: ServerProcess | Skipped, plan: Plan, api: LoadApi) {
  if (skippedFor(server)) return;
  await runLoad((server as ServerProcess).url, {
    api,
    sessions: 20,
    messagesPerSession: 1_000_000,
    freshSessions: true,
    durationMs: plan.warmupMs,
    sessionPrefix: "warmup-",
  });
}

/** Each point runs both servers; the first server alternates so that drift favours neither. */
async function sweep(
  plan: Plan,
  servers: { troupe: ServerProcess | Skipped; baseline: ServerProcess | Skipped },
  label: string,
  load: (sessions: number) => LoadOptions,
): Promise<SweepPoint[]> {
  const points: SweepPoint[] = [];
  for (const [index, sessions] of plan.sweep.entries()) {
    const results: Partial<Record<"troupe" | "baseline", Measured>> = {};
    const order = index % 2 === 0
      ? ["troupe", "baseline"] as const
      : ["baseline", "troupe"] as const;
    for (const name of order) {
      results[name] = await measure(`${label} ${sessions} sessions ${name}`, servers[name], {
        ...load(sessions),
        sessionPrefix: `${label}-${name}-${sessions}-`,
      });
    }
    points.push({ sessions, troupe: results.troupe!, baseline: results.baseline! });
  }
  return points;
}

async function calibrate(baseline: ServerProcess, plan: Plan): Promise<Calibration[]> {
  const rows: Calibration[] = [];
  for (const client of CLIENT_KINDS) {
    const result = await runLoad(baseline.url, {
      client,
      sessions: 64,
      messagesPerSession: 10_000_000,
      durationMs: plan.calibrationMs,
      sessionPrefix: `calibrate-${client}-`,
    });
    log(`calibration ${client}: ${summary(result)}`);
    rows.push({
      client,
      concurrency: 64,
      requestsPerSecond: result.requestsPerSecond,
      p99: result.requestLatencyMs.p99,
    });
    await delay(SETTLE_MS);
  }
  return rows;
}

/** Where and how one report runs. */
interface Run {
  /** The repository root. */
  root: string;
  /** The scratch directory for Troupe's SQLite files, relative to the root. */
  work: string;
  plan: Plan;
  /** Extra `TROUPE_*` settings for Troupe (`--troupe-env`). */
  troupeEnv: Record<string, string>;
}

async function scenarioA({ root, work, plan, troupeEnv }: Run) {
  await using baseline = await startBaseline(root, null);
  const calibration = await calibrate(baseline, plan);
  const troupe = await tryTroupe({ root, databaseUrl: `${work}/troupe-a.db`, env: troupeEnv });
  try {
    await warmUp(troupe, plan, "native");
    await warmUp(baseline, plan, "native");
    const points = await sweep(plan, { troupe, baseline }, "a", (sessions) => ({
      sessions,
      messagesPerSession: 1_000_000,
      durationMs: plan.zeroMsDurationMs,
    }));
    const a: Sweep = {
      scenario: "a",
      title: "Embedded mock LLM, 0 ms",
      load:
        `Troupe answers from its embedded \`mockLlm\` (no upstream hop), events persisted to SQLite; the baseline answers at once with an echo. Each session sends messages one after another for ${
          plan.zeroMsDurationMs / 1000
        } s (native API).`,
      points,
    };
    return { calibration, a };
  } finally {
    if (!skippedFor(troupe)) await (troupe as ServerProcess).close();
  }
}

/** Whether Troupe called the upstream for a message, or answered from its embedded mock. */
async function probeUpstream(
  troupe: ServerProcess,
  upstream: ServerProcess,
): Promise<Skipped | undefined> {
  const stats = async () =>
    (await (await fetch(`${upstream.url}/stats`)).json()).requests as number;
  const before = await stats();
  const response = await fetch(`${troupe.url}/v1/sessions/perf-probe/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content: "probe" }),
  });
  await response.body?.cancel();
  if (!response.ok) return { skipped: `Troupe answered the probe message ${response.status}` };
  if ((await stats()) > before) return undefined;
  return {
    skipped: "Troupe answered from its embedded mock: it does not call TROUPE_LLM_BASE_URL yet",
  };
}

async function troupeWithUpstream(
  { root, troupeEnv }: Run,
  databaseUrl: string,
  upstream: ServerProcess,
): Promise<ServerProcess | Skipped> {
  const troupe = await tryTroupe({
    root,
    databaseUrl,
    llm: { baseUrl: `${upstream.url}/v1`, model: MODEL },
    env: troupeEnv,
  });
  if (skippedFor(troupe)) return troupe;
  const problem = await probeUpstream(troupe as ServerProcess, upstream);
  if (problem === undefined) return troupe;
  await (troupe as ServerProcess).close();
  return problem;
}

async function scenariosBC(run: Run): Promise<Sweep[]> {
  const { root, work, plan } = run;
  await using upstream = await startUpstream(root, UPSTREAM_LATENCY_MS);
  await using baseline = await startBaseline(root, `${upstream.url}/v1`);
  const troupe = await troupeWithUpstream(run, `${work}/troupe-bc.db`, upstream);
  try {
    await warmUp(troupe, plan, "native");
    await warmUp(baseline, plan, "native");
    const upstreamStatsUrl = `${upstream.url}/stats`;
    const common = {
      messagesPerSession: plan.messages,
      durationMs: SWEEP_CAP_MS,
      upstreamStatsUrl,
    };
    const b = await sweep(plan, { troupe, baseline }, "b", (sessions) => ({ ...common, sessions }));
    const c = await sweep(plan, { troupe, baseline }, "c", (sessions) => ({
      ...common,
      sessions,
      doubleTextProbability: DOUBLE_TEXT,
    }));
    return [
      {
        scenario: "b",
        title: `Mock upstream, ${UPSTREAM_LATENCY_MS} ms`,
        load:
          `An HTTP mock upstream answering after ${UPSTREAM_LATENCY_MS} ms; each session sends ${plan.messages} messages one after another (native API).`,
        points: b,
      },
      {
        scenario: "c",
        title: `Mock upstream, ${UPSTREAM_LATENCY_MS} ms, ${DOUBLE_TEXT * 100}% double texting`,
        load: `As (b), but ${
          DOUBLE_TEXT * 100
        }% of turns are double-texted: a second message on the same session 20 ms after the first. Upstream calls are counted by the mock upstream.`,
        points: c,
      },
    ];
  } finally {
    if (!skippedFor(troupe)) await (troupe as ServerProcess).close();
  }
}

/** Whether Troupe serves the OpenAI-compatible endpoint. */
async function hasOpenAi(troupe: ServerProcess | Skipped): Promise<boolean> {
  if (skippedFor(troupe)) return false;
  const response = await fetch(`${(troupe as ServerProcess).url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-session-id": "perf-probe-openai" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "probe" }] }),
  });
  await response.body?.cancel();
  return response.status === 200;
}

async function scenarioD(run: Run): Promise<AddedLatency> {
  const { root, work, plan } = run;
  await using upstream = await startUpstream(root, 0);
  await using baseline = await startBaseline(root, `${upstream.url}/v1`);
  const troupe = await troupeWithUpstream(run, `${work}/troupe-d.db`, upstream);
  try {
    const api = (await hasOpenAi(troupe)) ? "openai" : "native";
    const paths = [["direct", upstream, "openai"], ["troupe", troupe, api], [
      "baseline",
      baseline,
      api,
    ]] as const;
    for (const [, server, pathApi] of paths) await warmUp(server, plan, pathApi);
    const run = async (mode: string, options: LoadOptions) => {
      const row: Partial<Record<"direct" | "troupe" | "baseline", Measured>> = {};
      for (const [name, server, pathApi] of paths) {
        row[name] = await measure(`d ${mode} ${name}`, server, {
          ...options,
          api: pathApi,
          // The request a plain OpenAI client sends: no X-Session-Id, a one-shot session.
          oneShot: pathApi === "openai",
          sessionPrefix: `d-${mode}-${name}-`,
        });
      }
      return { direct: row.direct!, troupe: row.troupe!, baseline: row.baseline! };
    };
    const sequential = await run("sequential", {
      sessions: 1,
      messagesPerSession: plan.sequentialRequests,
      freshSessions: true,
      durationMs: SWEEP_CAP_MS,
    });
    const openLoop = await run("open", { rate: OPEN_LOOP_RATE, durationMs: plan.openLoopMs });
    return {
      upstreamLatencyMs: 0,
      api,
      sequential,
      openLoop: { ...openLoop, rate: OPEN_LOOP_RATE },
    };
  } finally {
    if (!skippedFor(troupe)) await (troupe as ServerProcess).close();
  }
}

/** The CPU model from /proc/cpuinfo (which Deno reads only with --allow-all), else from lscpu. */
async function cpuModel(): Promise<string> {
  const pattern = /^model name\s*:\s*(.+)$/im;
  try {
    return pattern.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1]?.trim() ?? "unknown CPU";
  } catch {
    // Not readable here: ask lscpu.
  }
  try {
    const { stdout } = await new Deno.Command("lscpu", { stdout: "piped", stderr: "null" })
      .output();
    return pattern.exec(new TextDecoder().decode(stdout))?.[1]?.trim() ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

async function describeMachine(): Promise<Machine> {
  return {
    cpu: await cpuModel(),
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    loadAverage: Deno.loadavg(),
  };
}

function notesOf(results: Omit<PerfResults, "notes">): string[] {
  const notes: string[] = [];
  const skipped = new Set<string>();
  for (const sweep of results.sweeps) {
    for (const point of sweep.points) {
      if ("skipped" in point.troupe) skipped.add(`(${sweep.scenario}) ${point.troupe.skipped}`);
    }
  }
  const dTroupe = results.addedLatency.openLoop.troupe;
  if ("skipped" in dTroupe) skipped.add(`(d) ${dTroupe.skipped}`);
  for (const reason of skipped) notes.push(`TODO: Troupe not measured in ${reason}.`);
  if (results.addedLatency.api === "native" && !("skipped" in dTroupe)) {
    notes.push(
      "(d) went through the native API: Troupe did not answer `POST /v1/chat/completions` with 200 when this ran.",
    );
  }
  return notes;
}

// Set by the report itself for each server it starts.
const REPORT_SETS = [
  "TROUPE_PORT",
  "TROUPE_DATABASE_URL",
  "TROUPE_LLM_BASE_URL",
  "TROUPE_LLM_MODEL",
];

/** `--troupe-env TROUPE_DEBOUNCE_MS=30` flags as settings; only `TROUPE_*` the report does not set. */
function parseTroupeEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const match = /^(TROUPE_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (match === null || REPORT_SETS.includes(match[1]!)) {
      throw new TypeError(
        `Cannot parse --troupe-env: it must be TROUPE_NAME=value for a setting other than ${
          REPORT_SETS.join(", ")
        }, current value is ${JSON.stringify(pair)}`,
      );
    }
    env[match[1]!] = match[2]!;
  }
  return env;
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean" },
      out: { type: "string" },
      "troupe-env": { type: "string", multiple: true },
    },
    strict: true,
    allowPositionals: false,
  });
  const plan = values.quick ? QUICK : FULL;
  const troupeEnv = parseTroupeEnv(values["troupe-env"] ?? []);
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const out = values.out ?? `${root}/docs`;
  const started = performance.now();
  const machine = await describeMachine();
  await Deno.mkdir(`${root}/data`, { recursive: true });
  const workDir = await Deno.makeTempDir({ dir: `${root}/data`, prefix: "perf-" });
  const work = `./data/${workDir.split("/").pop()}`;
  let measured;
  try {
    const run: Run = { root, work, plan, troupeEnv };
    const { calibration, a } = await scenarioA(run);
    const bc = await scenariosBC(run);
    const addedLatency = await scenarioD(run);
    measured = { calibration, sweeps: [a, ...bc], addedLatency };
  } finally {
    await Deno.remove(workDir, { recursive: true });
  }
  const partial = {
    generatedAt: new Date().toISOString(),
    seconds: Math.round((performance.now() - started) / 1000),
    machine,
    troupeEnv,
    ...measured,
  };
  const results: PerfResults = { ...partial, notes: notesOf(partial) };

  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/performance.json`, JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile(`${out}/performance.svg`, renderChart(results.sweeps));
  const docPath = `${out}/performance.md`;
  let doc = "# Performance\n";
  try {
    doc = await Deno.readTextFile(docPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.writeTextFile(docPath, replaceFigures(doc, renderFigures(results)));
  // Leave the files as `deno fmt --check` (the check task) wants them: tables padded, lines wrapped.
  const fmt = await new Deno.Command(denoCommand(), {
    args: ["fmt", "--quiet", docPath, `${out}/performance.json`],
    cwd: root,
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!fmt.success) {
    log(`deno fmt did not format ${out} (excluded by deno.json, as ./data is, or it failed)`);
  }
  log(`wrote ${out}/performance.{json,svg,md} in ${results.seconds} s`);
  console.log(JSON.stringify(verdicts(results), null, 2));
}

if (import.meta.main) await main(Deno.args);
