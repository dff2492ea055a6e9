// Tells whether a promise has settled yet, without waiting for it: for tests that prove something has not happened.

/**
 * Whether a promise has settled, checked once every microtask queued so far
 * (and those they queue) has run: a macrotask later.
 */
export async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return settled;
}
