// Polls a condition until it holds, for tests that wait on real services instead of sleeping.

/** Polls `check` every 20 ms until it holds; fails after `timeout` ms naming `what`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeout = 30_000,
): Promise<void> {
  const end = performance.now() + timeout;
  while (!(await check())) {
    if (performance.now() > end) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
