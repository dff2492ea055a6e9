/**
 * The core of Troupe: the session machine, the runtime that wires it, the
 * ports adapters implement, the event types and the errors.
 *
 * @module
 */
export { createRuntime } from "./runtime.ts";
export type {
  AuditInput,
  HistoryInput,
  HistoryResult,
  Runtime,
  RuntimeOptions,
  SessionListInput,
  SessionRef,
  SessionSettings,
  ShutdownOptions,
  UsageInput,
} from "./runtime.ts";
export {
  type Batch,
  buildPrompt,
  type LlmDoneEvent,
  type LlmFailedEvent,
  type LlmRunInput,
  type LlmRunOutput,
  type MessageReceivedEvent,
  type QueuedMessage,
  type SessionCancelEvent,
  type SessionContext,
  type SessionEffect,
  type SessionEmitted,
  sessionMachine,
  type SessionMachineEvent,
  type SessionMachineInput,
} from "./session_machine.ts";
export type * from "./ports.ts";
export type * from "./events.ts";
export { POLICIES } from "./events.ts";
export type { Reply, ReplyError, ReplyStatus, SendInput, StreamEvent } from "./reply.ts";
export {
  CancelledError,
  InvalidInputError,
  OverloadedError,
  PoolSaturatedError,
  ProviderError,
  ShutdownError,
  TroupeError,
  type TroupeErrorCode,
  type TroupeErrorOptions,
  UnsupportedError,
  WorkerCrashedError,
} from "./errors.ts";
export { systemClock } from "./clock.ts";
export { type IdGenerator, idGenerator } from "./ids.ts";
export {
  type Persister,
  type PersisterCloseOptions,
  type PersisterFailure,
  type PersisterOptions,
  type PersisterStats,
  startPersister,
} from "./persister.ts";
export {
  type DeliveriesReceivedEvent,
  type PersisterContext,
  type PersisterEmitted,
  persisterMachine,
  type PersisterMachineEvent,
  type PersisterMachineInput,
  type PersisterStopEvent,
} from "./persister_machine.ts";
export { backoffDelay, writeBatch, type WriteInput, type WriteOutput } from "./persister_write.ts";
export { type EventValidation, validateEvent } from "./validate_event.ts";
