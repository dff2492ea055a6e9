// Tells whether a promise has settled yet, without waiting for it: for tests that prove something has not happened.

/** Whether a promise has settled, checked after the microtasks queued so far ran. */
export async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol("pending");
  const first = await Promise.race([
    promise.then(() => true, () => true),
    Promise.resolve(pending),
  ]);
  return first !== pending;
}
