/**
 * Event bus adapters: `memoryBus` (in-process, the embedded default).
 *
 * @module
 */
export { memoryBus, type MemoryBusOptions } from "./memory_bus.ts";
