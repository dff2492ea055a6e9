// Waits for the next event of one type a runtime emits, for tests that act once something happened.

import type { TroupeEvent } from "../../actors/events.ts";
import type { Runtime } from "../../actors/runtime.ts";

/** Resolve with the first event of `type` the runtime emits from now on. */
export function nextEvent(
  runtime: Pick<Runtime, "subscribe">,
  type: TroupeEvent["type"],
): Promise<TroupeEvent> {
  return new Promise((resolve) => {
    const stop = runtime.subscribe((event) => {
      if (event.type !== type) return;
      stop();
      resolve(event);
    });
  });
}
