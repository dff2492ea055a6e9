/**
 * Store adapters: `memoryStore` (history in memory).
 *
 * @module
 */
export { memoryStore } from "./memory_store.ts";
