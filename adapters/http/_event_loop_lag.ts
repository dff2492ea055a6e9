// Samples event-loop lag as timer drift: how late a periodic timer fires.

/** A running sampler. */
export interface EventLoopLag {
  /** The largest lag seen over the window, in seconds (0 before the first sample). */
  maxSeconds(): number;
  /** Stop sampling. */
  close(): void;
}

/**
 * Fire a timer every `sampleMs` and keep how late each firing was (a busy
 * event loop runs timers late), over the newest `windowSamples` firings.
 * The timer is unref'd: it never keeps the process alive.
 */
export function sampleEventLoopLag(sampleMs: number, windowSamples: number): EventLoopLag {
  const lags = new Float64Array(windowSamples);
  let next = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags[next] = Math.max(0, now - last - sampleMs);
    next = (next + 1) % windowSamples;
    last = now;
  }, sampleMs);
  Deno.unrefTimer(timer);
  return {
    maxSeconds() {
      let max = 0;
      for (const lag of lags) if (lag > max) max = lag;
      return max / 1000;
    },
    close() {
      clearInterval(timer);
    },
  };
}
