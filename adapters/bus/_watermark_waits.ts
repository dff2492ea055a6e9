// Waits on an acknowledgement watermark: each resolves once every sequence up to its target is acked.

/** Open waits, each for every sequence up to its target to be acknowledged. */
export interface WatermarkWaits {
  /** Wait until the watermark passes `target`; targets must not decrease from call to call. */
  wait(target: number): Promise<void>;
  /** The watermark moved: every sequence below `mark` is acked. Releases the waits it meets. */
  reached(mark: number): void;
  /** Whether a wait is open. */
  open(): boolean;
  /** Resolve every open wait (nothing will ever meet them, and that is not an error). */
  resolveAll(): void;
  /** Reject every open wait with `error`. */
  rejectAll(error: unknown): void;
}

interface Wait {
  target: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Makes a queue of waits. Targets come in order (a wait is for what was
 * published before it), so the waits a move of the watermark meets are at the
 * front: with thousands open (durable replies), a move looks only at those it
 * releases, not at every one.
 *
 * @example
 * ```ts
 * import { watermarkWaits } from "./_watermark_waits.ts";
 *
 * const waits = watermarkWaits();
 * const done = waits.wait(2);
 * waits.reached(3); // sequences 0, 1 and 2 are acked
 * await done;
 * ```
 */
export function watermarkWaits(): WatermarkWaits {
  let waits: Wait[] = [];
  let first = 0;

  function clear(): void {
    waits = [];
    first = 0;
  }

  return {
    wait(target) {
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      waits.push({ target, resolve, reject });
      return promise;
    },
    reached(mark) {
      while (first < waits.length && waits[first]!.target < mark) waits[first++]!.resolve();
      if (first === waits.length) clear();
    },
    open: () => first < waits.length,
    resolveAll() {
      for (let i = first; i < waits.length; i++) waits[i]!.resolve();
      clear();
    },
    rejectAll(error) {
      for (let i = first; i < waits.length; i++) waits[i]!.reject(error);
      clear();
    },
  };
}
