// Polls a condition until it holds or a deadline passes; the harness never sleeps a fixed time.

import { HarnessError } from "./harness_error.ts";

/** Options for {@linkcode waitUntil}. */
export interface WaitUntilOptions {
  /** What is being waited for, for the error message. */
  what: string;
  /** Milliseconds before giving up. */
  timeout: number;
  /**
   * Milliseconds between two checks.
   *
   * @default {25}
   */
  interval?: number;
  /** Extra text for the timeout error, e.g. the service's log. */
  details?: () => string;
}

/**
 * Calls `check` until it returns true. An error thrown by `check` stops the
 * wait at once (a service that exited will never come up); running out of
 * time throws a {@linkcode HarnessError} naming `what`.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  options: WaitUntilOptions,
): Promise<void> {
  const { what, timeout, interval = 25, details } = options;
  const deadline = performance.now() + timeout;
  while (!(await check())) {
    if (performance.now() >= deadline) {
      const extra = details?.() ?? "";
      throw new HarnessError(
        `Timed out after ${timeout} ms waiting for ${what}${extra ? `\n${extra}` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
