/**
 * Troupe: an actor runtime for LLM agent servers. Every chat session is an
 * actor that orders its messages, supersedes a reply a newer message has
 * made stale, and folds double texts into one LLM call.
 *
 * @example
 * ```ts
 * import { createRuntime, mockLlm } from "./mod.ts";
 *
 * await using runtime = createRuntime({ llm: mockLlm({ latencyMs: 20 }) });
 * const first = runtime.send({ session: "s1", content: "book a table" });
 * const second = runtime.send({ session: "s1", content: "for four, at 8" });
 * const [a, b] = await Promise.all([first, second]);
 * console.assert(a.status === "superseded" && a.supersededBy === b.runId);
 * console.assert(b.status === "completed" && b.answered.join() === [a.messageId, b.messageId].join());
 * ```
 *
 * @module
 */
export {
  type AuditInput,
  CancelledError,
  createRuntime,
  type EventValidation,
  type HistoryInput,
  type HistoryResult,
  type IdGenerator,
  idGenerator,
  InvalidInputError,
  OverloadedError,
  type Persister,
  type PersisterCloseOptions,
  type PersisterFailure,
  type PersisterOptions,
  type PersisterStats,
  POLICIES,
  PoolSaturatedError,
  ProviderError,
  type Reply,
  type ReplyError,
  type ReplyStatus,
  type Runtime,
  type RuntimeOptions,
  type SendInput,
  type SessionListInput,
  type SessionRef,
  type SessionSettings,
  ShutdownError,
  type ShutdownOptions,
  startPersister,
  type StreamEvent,
  systemClock,
  TroupeError,
  type TroupeErrorCode,
  type TroupeErrorOptions,
  UnsupportedError,
  type UsageInput,
  validateEvent,
  WorkerCrashedError,
} from "./actors/mod.ts";
export type * from "./actors/ports.ts";
export type * from "./actors/events.ts";
export { memoryBus, type MemoryBusOptions } from "./adapters/bus/mod.ts";
export {
  type Fallback,
  type MaxTokensParameter,
  type MockLlm,
  mockLlm,
  type MockLlmOptions,
  type MockLlmStats,
  openAiCompatible,
  type OpenAiCompatibleOptions,
  type OpenAiCompatibleProvider,
  type OpenAiCompletion,
  resilient,
  type ResilientOptions,
} from "./adapters/llm/mod.ts";
export {
  type HistogramSnapshot,
  type LlmPool,
  llmPool,
  type LlmPoolOptions,
  type MockSpecOptions,
  type ProviderSpec,
  type WorkerExit,
  type WorkerPoolCloseOptions,
  type WorkerPoolStats,
} from "./adapters/workers/mod.ts";
export { memoryStore } from "./adapters/store/mod.ts";

// Run as the entry point (`deno task start`): start the standalone server.
if (import.meta.main) {
  const { main } = await import("./main.ts");
  await main(Deno.args);
}
