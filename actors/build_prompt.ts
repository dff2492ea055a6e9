// Builds the conversation one run sends to the provider.

import type { ChatMessage } from "./ports.ts";
import type { Batch, SessionContext } from "./session_types.ts";

/**
 * Build the prompt of a run: the system prompt, the history before the run's
 * messages, then the run's messages joined into one user turn.
 *
 * When the run's newest message came with the caller's own conversation
 * (`context`, e.g. from an OpenAI-style call), that conversation takes the
 * place of the stored history. A merged run then leaves out an earlier
 * message that the newest one already repeats (a client that keeps the
 * conversation resends it), so nothing reaches the model twice.
 *
 * @example
 * ```ts
 * import { buildPrompt } from "./build_prompt.ts";
 *
 * const prompt = buildPrompt(
 *   { org: "o", session: "s", history: [], debounceMs: 0, join: " / ", historyLimit: 50, system: "", running: null, queue: [] },
 *   { run: "r1", messages: [{ id: "m1", content: "a", receivedAt: 0, committed: false }, { id: "m2", content: "b", receivedAt: 0, committed: false }] },
 * );
 * console.assert(prompt.length === 1 && prompt[0]!.content === "a / b");
 * ```
 */
export function buildPrompt(context: SessionContext, batch: Batch): ChatMessage[] {
  const live = batch.messages[batch.messages.length - 1]!;
  if (live.context !== undefined) return promptFromCallerContext(context, batch, live.context);
  const { history } = context;
  // The run's messages entered history when it started, so they are its tail:
  // the prompt is everything before them (history entries are chat messages
  // already: no copy per entry), then one turn joining them.
  let cut = history.length;
  while (cut > 0 && inBatch(batch, history[cut - 1]!.id)) cut--;
  const prompt: ChatMessage[] = context.system === ""
    ? history.slice(0, cut)
    : [{ role: "system", content: context.system }, ...history.slice(0, cut)];
  prompt.push({
    role: "user",
    content: batch.messages.length === 1
      ? batch.messages[0]!.content
      : batch.messages.map((m) => m.content).join(context.join),
  });
  return prompt;
}

function promptFromCallerContext(
  context: SessionContext,
  batch: Batch,
  conversation: ChatMessage[],
): ChatMessage[] {
  const live = batch.messages[batch.messages.length - 1]!;
  const turns: string[] = [];
  for (const message of batch.messages) {
    if (message === live || !repeats(live.content, message.content)) turns.push(message.content);
  }
  const prompt: ChatMessage[] = context.system === ""
    ? conversation.slice()
    : [{ role: "system", content: context.system }, ...conversation];
  prompt.push({ role: "user", content: turns.join(context.join) });
  return prompt;
}

/** Whether `text` holds `part` as whole lines: the way a client's joined turns hold an earlier one. */
function repeats(text: string, part: string): boolean {
  if (part === "") return false;
  for (let at = text.indexOf(part); at !== -1; at = text.indexOf(part, at + 1)) {
    const end = at + part.length;
    if ((at === 0 || text[at - 1] === "\n") && (end === text.length || text[end] === "\n")) {
      return true;
    }
  }
  return false;
}

function inBatch(batch: Batch, id: string): boolean {
  for (const message of batch.messages) if (message.id === id) return true;
  return false;
}
