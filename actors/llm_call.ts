// The effect behind a run: starts and stops the provider call, records its usage, reports back.

import type { AnyActorRef } from "xstate";
import { CancelledError, PoolSaturatedError } from "./errors.ts";
import type { EventBody } from "./events.ts";
import type { Clock, LlmAttempt, LlmProvider, LlmRequest, Usage } from "./ports.ts";
import type { LlmRunInput, LlmRunOutput } from "./session_machine.ts";
import { addUsage, estimateTokens, usageOf } from "./usage.ts";

/** What the LLM call actions need from the runtime. */
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

/** The two effects of the session machine's `running` state. */
export interface LlmCallActions {
  /** Entry of `running`: start the call; its outcome comes back as `llm.done` or `llm.failed`. */
  startCall(args: { self: AnyActorRef }, input: unknown): void;
  /** Exit of `running`: abort the call in flight, if any. */
  stopCall(args: { self: AnyActorRef }): void;
}

/**
 * Make the `startCall` and `stopCall` actions of the session machine. Each
 * call gets its own `AbortController`; leaving the `running` state aborts it,
 * the provider's `fetch` with it, and nothing the stopped call produces
 * reaches the actor: its deltas are dropped and its outcome is not sent. A
 * run superseded within the tick it started never reaches the provider. Every
 * call made records usage: reported counts when it completed, an estimate (prompt
 * plus the text streamed so far) when it was cancelled or failed.
 *
 * The call is not an invoked child actor: creating, registering and stopping
 * one actor per run cost more than the rest of a message's path together
 * (see `bench/session_bench.ts`); the machine still reads as a statechart
 * (`running` has entry `startCall` and exit `stopCall`) and still guards every
 * result by its run id.
 *
 * @example
 * ```ts
 * import { llmCallActions } from "./llm_call.ts";
 * import { sessionMachine } from "./session_machine.ts";
 * import { systemClock } from "./clock.ts";
 * import { mockLlm } from "../adapters/llm/mock_llm.ts";
 *
 * const machine = sessionMachine.provide({
 *   actions: llmCallActions({
 *     llm: mockLlm(),
 *     clock: systemClock,
 *     publish: () => {},
 *     deltaSink: () => undefined,
 *   }),
 * });
 * console.assert(machine.id === "session");
 * ```
 */
export function llmCallActions(deps: LlmCallDeps): LlmCallActions {
  const inFlight = new WeakMap<AnyActorRef, AbortController>();
  const call = llmCall(deps);
  return {
    startCall({ self }, params) {
      const input = params as LlmRunInput;
      const controller = new AbortController();
      const { signal } = controller;
      inFlight.set(self, controller);
      // Call on the next microtask: messages that arrive in the same tick (a
      // burst, or messages queued behind an activation) supersede this run
      // before any upstream request is made, so a burst costs one call.
      queueMicrotask(() => {
        if (signal.aborted) return;
        call(input, signal).then((output) => {
          if (signal.aborted) return;
          inFlight.delete(self);
          self.send({ type: "llm.done", run: input.run, output });
        }, (error) => {
          if (signal.aborted) return;
          inFlight.delete(self);
          self.send({ type: "llm.failed", run: input.run, error });
        });
      });
    },
    stopCall({ self }) {
      const controller = inFlight.get(self);
      if (controller === undefined) return;
      inFlight.delete(self);
      controller.abort(new CancelledError("The run was superseded or cancelled"));
    },
  };
}

/** One provider call with its usage record. */
function llmCall(deps: LlmCallDeps) {
  const { llm, clock, publish, deltaSink } = deps;
  return async function call(input: LlmRunInput, signal: AbortSignal): Promise<LlmRunOutput> {
    const startedAt = clock.now();
    const sink = deltaSink(input);
    let firstAt: number | null = null;
    let streamedChars = 0;
    // Only a run whose caller streams asks for deltas: without `onDelta` a provider may answer
    // in one piece (openAiCompatible then asks its upstream for one JSON body, not a stream),
    // and the run's usage then has no time to first token.
    const onDelta = sink === undefined ? undefined : (text: string) => {
      if (signal.aborted) return;
      if (firstAt === null) firstAt = clock.now();
      streamedChars += text.length;
      sink(text);
    };
    // The usage record must be storable whatever the provider said and the clock did: a
    // record the persister refused as invalid would be a lost one. A wall clock stepped back
    // (NTP) gives a negative duration; a provider may name no model.
    const record = (status: "completed" | "cancelled" | "failed", usage: Usage, model: string) => {
      const now = clock.now();
      publish(input.org, input.session, {
        type: "usage.recorded",
        run: input.run,
        provider: llm.name,
        model: model === "" ? llm.model || llm.name : model,
        ...usage,
        status,
        latencyMs: Math.max(0, now - startedAt),
        ttftMs: firstAt === null ? null : Math.max(0, firstAt - startedAt),
        messages: input.answered,
      });
    };
    // Every upstream attempt is an event, a cancelled one too: it may have cost tokens.
    let attempted = false;
    // An attempt refused by a full pool never left this process.
    let sentUpstream = false;
    const onAttempt = (attempt: LlmAttempt) => {
      attempted = true;
      if (attempt.code !== "pool_saturated") sentUpstream = true;
      publish(input.org, input.session, { type: "llm.attempted", run: input.run, ...attempt });
    };
    // What every attempt cost, as the provider counted it (retries and cancels included).
    let spent: Usage | null = null;
    let spentModel: string | null = null;
    const onUsage = (usage: Usage, model: string) => {
      spent = spent === null ? usage : addUsage(spent, usage);
      spentModel = model;
    };
    const request: LlmRequest = {
      org: input.org,
      session: input.session,
      run: input.run,
      messages: input.messages,
    };
    if (input.options !== undefined) request.options = input.options;
    try {
      const completion = await llm.complete(
        request,
        onDelta === undefined
          ? { signal, onAttempt, onUsage }
          : { signal, onDelta, onAttempt, onUsage },
      );
      // A provider that ignores its signal still never gets a stale answer delivered.
      if (signal.aborted) throw signal.reason;
      record("completed", spent ?? completion.usage, completion.model);
      return { completion, finishedAt: clock.now() };
    } catch (error) {
      // A full pool started nothing: with no upstream request before, nothing to record.
      if (error instanceof PoolSaturatedError && !sentUpstream && spent === null) throw error;
      record(
        signal.aborted ? "cancelled" : "failed",
        // A cancelled call may settle before its provider's report of what it cost: estimate.
        spent ?? unreported(input, attempted && !signal.aborted, streamedChars),
        spentModel ?? llm.model ?? llm.name,
      );
      throw error;
    }
  };
}

/**
 * The usage of a failed or cancelled call whose provider gave none. A failed
 * call whose provider reported its attempts also had what each may have cost
 * reported (the port's contract), so none means nothing was spent: an error
 * status, a refused connection. Otherwise an estimate: the prompt, and a
 * quarter token a character streamed.
 */
function unreported(input: LlmRunInput, trusted: boolean, streamedChars: number): Usage {
  if (trusted) return usageOf(0, 0, "estimated");
  const prompt = input.messages.reduce((n, m) => n + estimateTokens(m.content), 0);
  return usageOf(prompt, Math.ceil(streamedChars / 4), "estimated");
}
