// The worker module of the LLM pool: builds the provider from its spec and serves `complete`.

import type {
  LlmAttempt,
  LlmCallOptions,
  LlmCompletion,
  LlmProvider,
  LlmRequest,
  Usage,
} from "../../actors/ports.ts";
import { exposeWorker, type WorkerCallContext, type WorkerHandler } from "./expose_worker.ts";
import { providerFromSpec, type ProviderSpec } from "./provider_spec.ts";

/**
 * What a `complete` call emits on its way: text (concatenated while it waits
 * for the next batch), one record per upstream attempt, one per usage report.
 */
export type LlmProgress = string | { attempt: LlmAttempt } | { usage: Usage; model: string };

/** Which of the caller's callbacks exist: the provider gets only those (it may behave differently without `onDelta`). */
export interface LlmWants {
  /** The caller passed `onDelta`. */
  deltas: boolean;
  /** The caller passed `onAttempt`. */
  attempts: boolean;
  /** The caller passed `onUsage`. */
  usage: boolean;
}

/** The methods an LLM worker serves. */
export interface LlmWorkerHandlers {
  /**
   * Run one call of the provider; its callbacks become progress sent to the
   * main thread. The request comes as its JSON text (`JSON.stringify` of an
   * `LlmRequest`), which is cheaper for the main thread to send than the object.
   */
  complete(
    ctx: WorkerCallContext<LlmProgress>,
    request: string,
    wants: LlmWants,
  ): Promise<LlmCompletion>;
  /** Handlers are looked up by name, as in every handler map. */
  [method: string]: WorkerHandler;
}

function handlersFor(provider: LlmProvider): LlmWorkerHandlers {
  return {
    complete(ctx, request, wants) {
      const options: LlmCallOptions = { signal: ctx.signal };
      if (wants.deltas) options.onDelta = (text) => ctx.emit(text);
      if (wants.attempts) options.onAttempt = (attempt) => ctx.emit({ attempt });
      if (wants.usage) options.onUsage = (usage, model) => ctx.emit({ usage, model });
      return provider.complete(JSON.parse(request) as LlmRequest, options);
    },
  };
}

exposeWorker((init) => handlersFor(providerFromSpec(init as ProviderSpec)));
