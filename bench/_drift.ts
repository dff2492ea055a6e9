// Timer drift: how late a 10 ms timer fires, sampled until something settles. Used by stream_lag.ts and its probe.

/** The timer whose lateness is sampled, in ms. */
export const TICK_MS = 10;

/**
 * Sample how late a `TICK_MS` timer fires, one after another, until `done`
 * settles; resolves with each lateness in ms.
 *
 * @example
 * ```ts
 * import { drift } from "./_drift.ts";
 *
 * const lateness = await drift(new Promise((resolve) => setTimeout(resolve, 50)));
 * console.assert(lateness.length > 0 && lateness.every((ms) => ms >= -1));
 * ```
 */
export async function drift(done: Promise<unknown>): Promise<number[]> {
  const lateness: number[] = [];
  let finished = false;
  done.finally(() => (finished = true)).catch(() => {});
  while (!finished) {
    const due = performance.now() + TICK_MS;
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    lateness.push(performance.now() - due);
  }
  return lateness;
}
