// Builds the conversation one run sends to the provider.

import type { ChatMessage } from "./ports.ts";
import type { Batch, SessionContext } from "./session_types.ts";

/**
 * Build the prompt of a run: the system prompt, the history before the run's
 * messages, then the run's messages joined into one user turn.
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

function inBatch(batch: Batch, id: string): boolean {
  for (const message of batch.messages) if (message.id === id) return true;
  return false;
}
