/**
 * Event bus adapters:
 *
 * - `memoryBus`: in-process, the embedded default; consumer groups kept in memory.
 * - `natsBus`: NATS JetStream; publishes deduplicated by event id, durable pull
 *   consumers per persister group, subjects from `natsSubject`.
 *
 * @example Picking a bus
 * ```ts
 * import { memoryBus, natsBus } from "./mod.ts";
 *
 * const url = Deno.env.get("NATS_URL");
 * await using bus = url ? await natsBus({ servers: url }) : memoryBus();
 * await bus.flush();
 * ```
 *
 * @module
 */
export { memoryBus, type MemoryBusOptions } from "./memory_bus.ts";
export { natsBus, type NatsBusOptions } from "./nats_bus.ts";
export { isSafeSubject, natsSubject, natsToken } from "./nats_subject.ts";
export {
  BusError,
  type BusErrorCode,
  type BusErrorHandler,
  type BusErrorOptions,
  logBusError,
} from "./errors.ts";
