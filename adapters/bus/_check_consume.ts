// Validates the consume options both buses take, so that a bad batch size fails at the call.

import type { ConsumeOptions } from "../../actors/ports.ts";

/** Throw a `RangeError` if `batchSize` is not a positive integer or `maxWaitMs` is negative. */
export function checkConsumeOptions({ batchSize, maxWaitMs }: ConsumeOptions): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `Cannot consume: batchSize must be a positive integer, current value is ${batchSize}`,
    );
  }
  if (!Number.isFinite(maxWaitMs) || maxWaitMs < 0) {
    throw new RangeError(
      `Cannot consume: maxWaitMs must be a finite number >= 0, current value is ${maxWaitMs}`,
    );
  }
}
