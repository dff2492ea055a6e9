// Pure helpers of the session machine: batches, history entries, replies and prompts.

import type { EventBody } from "./events.ts";
import type { HistoryEntry } from "./ports.ts";
import type { Reply, ReplyStatus } from "./reply.ts";
import type {
  Batch,
  QueuedMessage,
  SessionContext,
  SessionEffect,
  SessionEmitted,
} from "./session_types.ts";

/** The message whose caller waits on the batch: the newest. */
export function liveOf(batch: Batch): QueuedMessage {
  return batch.messages[batch.messages.length - 1]!;
}

/** The ids of the batch's messages, in arrival order. */
export function idsOf(batch: Batch): string[] {
  return batch.messages.map((m) => m.id);
}

/** A `session.reply` for one caller. */
export function reply(
  context: SessionContext,
  status: ReplyStatus,
  messageId: string,
  runId: string,
  extra: Partial<Reply> = {},
): SessionEffect {
  return {
    type: "session.reply",
    reply: {
      status,
      org: context.org,
      session: context.session,
      messageId,
      runId,
      text: "",
      answered: [],
      ...extra,
    },
  };
}

/** A `session.event` carrying one event body. */
export function said(body: EventBody): SessionEffect {
  return { type: "session.event", body };
}

/** The one `session.effects` event of a step. */
export function told(effects: SessionEffect[]): SessionEmitted {
  return { type: "session.effects", effects };
}

/** `history` then `entries`, keeping the newest `limit`: one new array, whatever is dropped. */
export function appended(
  history: HistoryEntry[],
  entries: HistoryEntry[],
  limit: number,
): HistoryEntry[] {
  const kept = history.slice(Math.max(0, history.length + entries.length - limit));
  for (let i = Math.max(0, entries.length - limit); i < entries.length; i++) kept.push(entries[i]!);
  return kept;
}

/** Commit the batch's new messages to history, in order; returns the entries written. */
export function commitEntries(batch: Batch): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const m of batch.messages) {
    if (m.committed) continue;
    entries.push({ id: m.id, role: "user", content: m.content, ts: m.receivedAt });
  }
  return entries;
}

/** The batch with every message marked as in history. */
export function markCommitted(batch: Batch): Batch {
  return { run: batch.run, messages: batch.messages.map((m) => ({ ...m, committed: true })) };
}

/** What starting `batch` tells: its new messages enter history, and the run is announced. */
export function startEffects(batch: Batch): SessionEffect[] {
  const entries = commitEntries(batch);
  const started = said({ type: "run.started", run: batch.run, messages: idsOf(batch) });
  return entries.length === 0 ? [started] : [{ type: "session.history", entries }, started];
}

/** The context once `batch` runs: its messages in history and marked so, the queue as given. */
export function startContext(
  context: SessionContext,
  batch: Batch,
  queue: Batch[],
): Pick<SessionContext, "running" | "queue" | "history"> {
  const entries = commitEntries(batch);
  if (entries.length === 0) return { running: batch, queue, history: context.history };
  return {
    running: markCommitted(batch),
    queue,
    history: appended(context.history, entries, context.historyLimit),
  };
}

/** Tell a batch's live caller it was superseded by `by`, and say so as an event. */
export function superseded(
  context: SessionContext,
  batch: Batch,
  by: string,
  policy: "merge" | "interrupt",
  started: boolean,
): SessionEffect[] {
  return [
    reply(context, "superseded", liveOf(batch).id, batch.run, { supersededBy: by }),
    said({
      type: "run.superseded",
      run: batch.run,
      supersededBy: by,
      policy,
      messages: idsOf(batch),
      started,
    }),
  ];
}
