// The events the persistence benches write: whole runs as the session actor emits them.

import type { TroupeEvent } from "../actors/events.ts";

let next = 0;

/**
 * `count` new events (a multiple of four): whole runs of four events each
 * (message.received, run.started, usage.recorded, run.completed), spread over
 * 50 sessions of one org, all with the time of the call. Ids never repeat
 * within a process.
 */
export function runEvents(count: number): TroupeEvent[] {
  const events: TroupeEvent[] = [];
  const ts = Date.now();
  while (events.length < count) {
    const n = next++;
    const base = { org: "acme", session: `s${n % 50}`, ts };
    const run = `run-${n}`;
    const messages = [`msg-${n}`];
    events.push(
      {
        ...base,
        id: `${n}-a`,
        type: "message.received",
        message: messages[0]!,
        policy: "merge",
        length: 42,
      },
      { ...base, id: `${n}-b`, type: "run.started", run, messages },
      {
        ...base,
        id: `${n}-c`,
        type: "usage.recorded",
        run,
        provider: "mock",
        model: n % 2 === 0 ? "small" : "large",
        inputTokens: 120,
        outputTokens: 48,
        cachedTokens: 0,
        reasoningTokens: 0,
        totalTokens: 168,
        source: "reported",
        status: "completed",
        latencyMs: 230,
        ttftMs: 40,
        messages,
      },
      { ...base, id: `${n}-d`, type: "run.completed", run, messages, finishReason: "stop" },
    );
  }
  return events;
}
