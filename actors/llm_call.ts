// The invoked actor behind a run: calls the provider with the run's signal and records usage.

import { fromPromise } from "xstate";
import type { EventBody } from "./events.ts";
import type { Clock, LlmProvider, Usage } from "./ports.ts";
import type { LlmRunInput, LlmRunOutput } from "./session_machine.ts";
import { estimateTokens, usageOf } from "./usage.ts";

/** What the LLM call actor needs from the runtime. */
export interface LlmCallDeps {
  /** The provider. */
  llm: LlmProvider;
  /** Times the call. */
  clock: Clock;
  /** Publish the call's usage event. */
  publish(org: string, session: string, body: EventBody): void;
  /** Where the run's deltas go (the live caller's stream), or `undefined`. */
  deltaSink(input: LlmRunInput): ((text: string) => void) | undefined;
}

/**
 * Make the `llm` actor of the session machine. The machine's signal goes to
 * the provider, so leaving the `running` state aborts the call. Deltas reach
 * the live caller only while the signal is not aborted, so a superseded run
 * can never write into a newer run's stream. Every call records usage:
 * reported counts when it completed, an estimate (prompt plus the text
 * streamed so far) when it was cancelled or failed.
 *
 * @example
 * ```ts
 * import { llmCallActor } from "./llm_call.ts";
 * import { sessionMachine } from "./session_machine.ts";
 * import { systemClock } from "./clock.ts";
 * import { mockLlm } from "../adapters/llm/mock_llm.ts";
 *
 * const machine = sessionMachine.provide({
 *   actors: {
 *     llm: llmCallActor({
 *       llm: mockLlm(),
 *       clock: systemClock,
 *       publish: () => {},
 *       deltaSink: () => undefined,
 *     }),
 *   },
 * });
 * console.assert(machine.id === "session");
 * ```
 */
export function llmCallActor(deps: LlmCallDeps) {
  const { llm, clock, publish, deltaSink } = deps;
  return fromPromise<LlmRunOutput, LlmRunInput>(async ({ input, signal }) => {
    const startedAt = clock.now();
    const sink = deltaSink(input);
    let firstAt: number | null = null;
    let streamedChars = 0;
    const onDelta = (text: string) => {
      if (signal.aborted) return;
      if (firstAt === null) firstAt = clock.now();
      streamedChars += text.length;
      sink?.(text);
    };
    const record = (status: "completed" | "cancelled" | "failed", usage: Usage, model: string) => {
      publish(input.org, input.session, {
        type: "usage.recorded",
        run: input.run,
        provider: llm.name,
        model,
        ...usage,
        status,
        latencyMs: clock.now() - startedAt,
        ttftMs: firstAt === null ? null : firstAt - startedAt,
        messages: input.answered,
      });
    };
    try {
      const completion = await llm.complete(
        { org: input.org, session: input.session, run: input.run, messages: input.messages },
        { signal, onDelta },
      );
      // A provider that ignores its signal still never gets a stale answer delivered.
      if (signal.aborted) throw signal.reason;
      record("completed", completion.usage, completion.model);
      return { completion, finishedAt: clock.now() };
    } catch (error) {
      const prompt = input.messages.reduce((n, m) => n + estimateTokens(m.content), 0);
      const output = Math.ceil(streamedChars / 4);
      record(
        signal.aborted ? "cancelled" : "failed",
        usageOf(prompt, output, "estimated"),
        llm.model ?? llm.name,
      );
      throw error;
    }
  });
}
