// A bounded load driver for a Troupe server (or the naive baseline) on loopback; prints its figures as JSON.

/**
 * Sessions send messages one after another (awaiting each reply), optionally
 * double-texting (a second message on the same session 20 ms after the first);
 * or, with `--rate`, one-shot requests on a fixed open-loop schedule. The run
 * stops by itself at its request cap or its duration, and prints JSON: requests,
 * answered turns, throughput, latency percentiles per request and per turn,
 * errors by status and code, superseded messages, and the upstream calls made
 * (read from the mock upstream's `GET /stats` when `--upstream-stats` is given).
 *
 * Only loopback targets are accepted. Run it with
 * `deno task load --url http://127.0.0.1:8787 --sessions 200 --messages 25 --double-text 0.3`;
 * an API key is read from `TROUPE_LOAD_API_KEY` and never printed.
 *
 * The default client is a minimal HTTP/1.1 keep-alive client over `Deno.connect`
 * (`--client raw`): on this 2-core machine it costs about a third of the CPU per
 * request that keep-alive `fetch` does, so the driver takes less of the CPU the server
 * needs. `--client node` (node:http, keep-alive Agent) and `--client fetch` are there to compare.
 *
 * @module
 */

import { delay } from "@std/async";
import { apiRequest, classifyResponse, type Outcome } from "./_load_api.ts";
import {
  type LoadOptions,
  parseLoadArgs,
  type ResolvedLoadOptions,
  resolveLoadOptions,
} from "./_load_options.ts";
import { type LatencySummary, summarizeLatencies, tally } from "./_load_stats.ts";
import { createTransport } from "./_load_transport.ts";
import { seededRandom } from "./_mock_upstream_request.ts";

export type { LoadOptions, ResolvedLoadOptions } from "./_load_options.ts";
export type { LatencySummary } from "./_load_stats.ts";
export type { LoadApi } from "./_load_api.ts";
export type { ClientKind } from "./_load_transport.ts";

/** What a load run measured; every latency is in ms. */
export interface LoadResult {
  /** The run's settings, without the API key. */
  settings: Omit<ResolvedLoadOptions, "apiKey" | "content">;
  /** Why the run stopped: every session done, the request cap, or the duration. */
  stoppedBy: "done" | "requests" | "duration";
  /** From the first request to the last answer. */
  elapsedMs: number;
  /** Requests sent. */
  requests: number;
  /** Requests answered without error (completed or superseded). */
  answeredRequests: number;
  /** Requests answered with a completed reply. */
  completed: number;
  /** Messages superseded by a newer one on the same session (answered by its run). */
  superseded: number;
  /** Turns started (a double-texted turn is one turn of two requests). */
  turns: number;
  /** Turns with at least one completed reply. */
  answeredTurns: number;
  /** `answeredRequests` per second of `elapsedMs`. */
  requestsPerSecond: number;
  /** `answeredTurns` per second of `elapsedMs`. */
  turnsPerSecond: number;
  /** Latency of every request that got a response, from sending it to reading the whole answer. */
  requestLatencyMs: LatencySummary;
  /** Latency of answered turns: from the first message to the last reply. */
  turnLatencyMs: LatencySummary;
  /**
   * Open loop only (else `null`): how late the driver sent each request against its
   * schedule. Timers fire at a 1 ms grain, so sends are this late; a large value means
   * the driver itself fell behind.
   */
  scheduleLagMs: LatencySummary | null;
  /** Failed requests by cause: `http 503 overloaded`, `reply failed provider_error`, `aborted`, `network TypeError`. */
  errors: Record<string, number>;
  /** Chat completion requests the upstream received during the run, or `null` without `upstreamStatsUrl`. */
  upstreamCalls: number | null;
}

/**
 * Run a load against `url` (a loopback `http://` origin) and resolve with its figures.
 * Bad options throw a `RangeError` before any request is sent.
 *
 * @example Ten sessions of three messages against a local echo server
 * ```ts
 * import { runLoad } from "./load.ts";
 *
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => Response.json({ status: "completed", text: "ok" }),
 * );
 * const result = await runLoad(`http://127.0.0.1:${server.addr.port}`, {
 *   sessions: 10,
 *   messagesPerSession: 3,
 * });
 * console.assert(result.requests === 30 && result.answeredTurns === 30);
 * console.assert(result.stoppedBy === "done" && result.upstreamCalls === null);
 * ```
 */
export async function runLoad(url: string, options: LoadOptions = {}): Promise<LoadResult> {
  const settings = resolveLoadOptions(url, options);
  const { api, model, apiKey, content, maxRequests, sessionPrefix } = settings;
  const callsBefore = settings.upstreamStatsUrl === undefined
    ? undefined
    : await upstreamRequests(settings.upstreamStatsUrl);
  const transport = createTransport(settings.client, settings.url);

  const requestLatencies: number[] = [];
  const turnLatencies: number[] = [];
  const scheduleLags: number[] = [];
  const errors: Record<string, number> = {};
  const counts = { requests: 0, completed: 0, superseded: 0, turns: 0, answeredTurns: 0 };
  let stoppedBy: LoadResult["stoppedBy"] = "done";
  const random = seededRandom(settings.seed);
  const aborter = new AbortController();
  const start = performance.now();
  const deadline = start + settings.durationMs;
  let lastAnswer = start;
  const graceTimer = setTimeout(
    () => aborter.abort(new DOMException("The load's grace period is over", "TimeoutError")),
    settings.durationMs + settings.graceMs,
  );

  function underCap(): boolean {
    if (counts.requests < maxRequests) return true;
    stoppedBy = "requests";
    return false;
  }

  function beforeDeadline(): boolean {
    if (performance.now() < deadline) return true;
    if (stoppedBy === "done") stoppedBy = "duration";
    return false;
  }

  async function send(session: string, since = performance.now()): Promise<Outcome | undefined> {
    counts.requests++;
    const request = apiRequest(api, settings.oneShot ? null : session, content, {
      model,
      ...(apiKey === undefined ? {} : { apiKey }),
    });
    try {
      const response = await transport.post(
        request.path,
        request.headers,
        request.body,
        aborter.signal,
      );
      const now = performance.now();
      lastAnswer = Math.max(lastAnswer, now);
      requestLatencies.push(now - since);
      const outcome = classifyResponse(api, response);
      if (outcome.kind === "error") tally(errors, outcome.key);
      else counts[outcome.kind]++;
      return outcome;
    } catch (error) {
      lastAnswer = Math.max(lastAnswer, performance.now());
      tally(errors, aborter.signal.aborted ? "aborted" : `network ${(error as Error).name}`);
      return undefined;
    }
  }

  function endTurn(outcomes: (Outcome | undefined)[], since: number): void {
    if (!outcomes.some((outcome) => outcome?.kind === "completed")) return;
    counts.answeredTurns++;
    turnLatencies.push(performance.now() - since);
  }

  async function turn(session: string): Promise<void> {
    counts.turns++;
    const since = performance.now();
    const replies = [send(session, since)];
    if (random() < settings.doubleTextProbability) {
      await delay(settings.doubleTextDelayMs);
      if (underCap()) replies.push(send(session));
    }
    endTurn(await Promise.all(replies), since);
  }

  async function closedLoop(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < settings.sessions) {
        const session = `${sessionPrefix}s${next++}`;
        for (let message = 0; message < settings.messagesPerSession; message++) {
          if (!underCap() || !beforeDeadline()) return;
          await turn(settings.freshSessions ? `${session}-${message}` : session);
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(settings.concurrency, settings.sessions) }, worker),
    );
  }

  async function openLoop(rate: number): Promise<void> {
    const interval = 1000 / rate;
    const inFlight: Promise<void>[] = [];
    for (let i = 0; underCap(); i++) {
      const scheduled = start + i * interval;
      if (scheduled >= deadline) {
        stoppedBy = "duration";
        break;
      }
      const wait = scheduled - performance.now();
      if (wait > 0) await delay(wait);
      counts.turns++;
      const sentAt = performance.now();
      scheduleLags.push(sentAt - scheduled);
      inFlight.push(
        send(`${sessionPrefix}r${i}`, sentAt).then((outcome) => endTurn([outcome], sentAt)),
      );
    }
    await Promise.all(inFlight);
  }

  try {
    await (settings.rate === undefined ? closedLoop() : openLoop(settings.rate));
  } finally {
    clearTimeout(graceTimer);
    transport.close();
  }
  const callsAfter = settings.upstreamStatsUrl === undefined
    ? undefined
    : await upstreamRequests(settings.upstreamStatsUrl);

  const elapsedMs = lastAnswer - start;
  const perSecond = (count: number) =>
    elapsedMs > 0 ? Math.round((count * 10_000) / elapsedMs) / 10 : 0;
  const { apiKey: _key, content: _content, ...shown } = settings;
  const answeredRequests = counts.completed + counts.superseded;
  return {
    settings: shown,
    stoppedBy,
    elapsedMs: Math.round(elapsedMs * 1000) / 1000,
    requests: counts.requests,
    answeredRequests,
    completed: counts.completed,
    superseded: counts.superseded,
    turns: counts.turns,
    answeredTurns: counts.answeredTurns,
    requestsPerSecond: perSecond(answeredRequests),
    turnsPerSecond: perSecond(counts.answeredTurns),
    requestLatencyMs: summarizeLatencies(requestLatencies),
    turnLatencyMs: summarizeLatencies(turnLatencies),
    scheduleLagMs: settings.rate === undefined ? null : summarizeLatencies(scheduleLags),
    errors,
    upstreamCalls: callsBefore === undefined || callsAfter === undefined
      ? null
      : callsAfter - callsBefore,
  };
}

/** The `requests` counter of the mock upstream's `GET /stats`. */
async function upstreamRequests(statsUrl: string): Promise<number> {
  const response = await fetch(statsUrl);
  const body = await response.json();
  if (!response.ok || typeof body?.requests !== "number") {
    throw new Error(
      `Cannot read the upstream's calls: GET ${statsUrl} answered ${response.status} without a "requests" count`,
    );
  }
  return body.requests;
}

function readApiKey(): string | undefined {
  try {
    return Deno.env.get("TROUPE_LOAD_API_KEY") || undefined;
  } catch {
    return undefined; // no --allow-env for it: no key
  }
}

async function main(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseLoadArgs(args);
    const apiKey = readApiKey();
    if (apiKey !== undefined) parsed.options.apiKey = apiKey;
    resolveLoadOptions(parsed.url, parsed.options);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  console.log(JSON.stringify(await runLoad(parsed.url, parsed.options), null, 2));
}

if (import.meta.main) await main(Deno.args);
