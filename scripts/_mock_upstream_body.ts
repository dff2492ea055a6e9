// Response bodies of the mock upstream sent step by step with delays, which a close or a cancel cuts short.

import { delay as stdDelay } from "@std/async";
import type { Outcome } from "./_mock_upstream_stats.ts";

/** One piece of a body and the time to wait before sending it. */
export interface Step {
  /** Text to send. */
  data: string;
  /** Milliseconds to wait first. */
  delayMs: number;
}

/** Options of {@linkcode bodyResponse}. */
export interface BodyOptions {
  /** Records how the request ended; only its first call counts. */
  end: (outcome: Outcome) => void;
  /** Aborted when the server closes: the body ends at once, cleanly. */
  closing: AbortSignal;
  /** The `Content-Type`. */
  type: string;
  /**
   * The whole answer, when the steps stop short of it (a drop): its length
   * goes out as `Content-Length`, so the client's read fails when the body
   * ends early, and Deno logs nothing (erroring the stream would log a stack).
   */
  whole?: string;
}

/**
 * A 200 response whose body sends each step after its delay, pulled one at a
 * time so the delays are real. Whoever ends it first (the last step, a client
 * cancel, the server closing) records the outcome.
 *
 * @example
 * ```ts
 * import { bodyResponse } from "./_mock_upstream_body.ts";
 *
 * const outcomes: string[] = [];
 * const steps = [{ data: "a", delayMs: 0 }, { data: "b", delayMs: 1 }];
 * const response = bodyResponse(steps, {
 *   end: (outcome) => outcomes.push(outcome),
 *   closing: new AbortController().signal,
 *   type: "text/plain",
 * });
 * console.assert((await response.text()) === "ab" && outcomes[0] === "completed");
 * ```
 */
export function bodyResponse(steps: Step[], options: BodyOptions): Response {
  const { end, closing, type, whole } = options;
  const headers: Record<string, string> = { "content-type": type, "cache-control": "no-cache" };
  if (whole !== undefined) {
    headers["content-length"] = String(new TextEncoder().encode(whole).byteLength);
  }
  const encoder = new TextEncoder();
  const stopped = new AbortController();
  let index = 0;
  let close = () => {};
  const finish = (outcome: Outcome) => {
    end(outcome);
    stopped.abort();
    closing.removeEventListener("abort", onClosing);
  };
  const onClosing = () => {
    finish("aborts");
    close();
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      close = () => controller.close();
      if (closing.aborted) onClosing();
      else closing.addEventListener("abort", onClosing, { once: true });
    },
    async pull(controller) {
      const step = steps[index++];
      if (step === undefined) {
        finish(whole === undefined ? "completed" : "errors");
        controller.close();
        return;
      }
      try {
        await delay(step.delayMs, stopped.signal);
      } catch {
        return; // Ended by a cancel or a close, which recorded the outcome.
      }
      controller.enqueue(encoder.encode(step.data));
    },
    cancel() {
      finish("aborts");
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers });
}

/**
 * Resolve after `ms`, or reject with the signal's reason if it aborts first;
 * the timer is cleared either way.
 *
 * @example
 * ```ts
 * import { delay } from "./_mock_upstream_body.ts";
 *
 * await delay(1, new AbortController().signal);
 * ```
 */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // No timer for no wait: a stream sent all at once must not cost a timer a chunk.
  if (ms <= 0) return Promise.resolve();
  return stdDelay(ms, { signal });
}

/**
 * Reject with the signal's reason when it aborts; never resolve.
 *
 * @example
 * ```ts
 * import { untilAborted } from "./_mock_upstream_body.ts";
 *
 * const controller = new AbortController();
 * const waiting = untilAborted(controller.signal);
 * controller.abort();
 * await waiting.catch(() => {});
 * ```
 */
export function untilAborted(signal: AbortSignal): Promise<never> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
