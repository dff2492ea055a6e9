// Turns a batch of events into the rows the SQL store writes: audit, usage and folded run rows.

import type { TroupeEvent, UsageRecorded } from "../../actors/events.ts";
import type { AuditEventsTable, RunsTable, UsageEventsTable } from "./schema.ts";

/** The rows one batch of events becomes. */
export interface EventRows {
  /** One per event. */
  audit: AuditEventsTable[];
  /** One per `usage.recorded` event. */
  usage: UsageEventsTable[];
  /**
   * One per run with a `run.*` event in the batch, folded: the start time of
   * its last `run.started` (or `null`), and its latest ending (status,
   * messages, end time) or, without one, status `started` and `ended_at` `null`.
   */
  runs: RunsTable[];
}

const RUN_ENDINGS: Partial<Record<TroupeEvent["type"], string>> = {
  "run.completed": "completed",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
  "run.superseded": "superseded",
};

/**
 * The rows of a batch. Run rows are folded per run id, because one multi-row
 * `ON CONFLICT DO UPDATE` may not touch the same row twice (PostgreSQL), and
 * so that a run started and ended in one batch costs one row write, not two.
 * Throws a `TypeError` if an event cannot be serialised.
 */
export function eventRows(events: readonly TroupeEvent[]): EventRows {
  const audit: AuditEventsTable[] = [];
  const usage: UsageEventsTable[] = [];
  const starts = new Map<string, RunsTable>();
  const ends = new Map<string, RunsTable>();
  for (const event of events) {
    audit.push({
      id: event.id,
      type: event.type,
      org: event.org,
      session: event.session,
      run: "run" in event ? event.run : null,
      ts: event.ts,
      body: JSON.stringify(event),
    });
    if (event.type === "usage.recorded") {
      usage.push(usageRow(event));
    } else if (event.type === "run.started") {
      starts.set(event.run, runRow(event, "started", event.ts, null));
    } else if ("messages" in event) {
      const status = RUN_ENDINGS[event.type];
      const previous = ends.get(event.run);
      if (status !== undefined && (previous === undefined || previous.ended_at! <= event.ts)) {
        ends.set(event.run, runRow(event, status, null, event.ts));
      }
    }
  }
  const runs = [...ends.values()];
  for (const start of starts.values()) {
    const end = ends.get(start.id);
    if (end === undefined) runs.push(start);
    else end.started_at = start.started_at;
  }
  return { audit, usage, runs };
}

function runRow(
  event: TroupeEvent & { run: string; messages: string[] },
  status: string,
  startedAt: number | null,
  endedAt: number | null,
): RunsTable {
  return {
    id: event.run,
    org: event.org,
    session: event.session,
    status,
    messages: JSON.stringify(event.messages),
    started_at: startedAt,
    ended_at: endedAt,
  };
}

function usageRow(event: UsageRecorded): UsageEventsTable {
  return {
    id: event.id,
    org: event.org,
    session: event.session,
    run: event.run,
    provider: event.provider,
    model: event.model,
    input_tokens: event.inputTokens,
    output_tokens: event.outputTokens,
    cached_tokens: event.cachedTokens,
    reasoning_tokens: event.reasoningTokens,
    total_tokens: event.totalTokens,
    source: event.source,
    status: event.status,
    latency_ms: event.latencyMs,
    ttft_ms: event.ttftMs,
    messages: JSON.stringify(event.messages),
    ts: event.ts,
  };
}
