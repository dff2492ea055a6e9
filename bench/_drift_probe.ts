// A bystander for bench/stream_lag.ts: an idle process that measures its own timer drift until its stdin closes.
//
// Run by stream_lag.ts, not by hand: `deno run bench/_drift_probe.ts`, then
// close its stdin; it prints `ready` on a line of its own once it measures,
// then, at the end, the lateness of each 10 ms timer, in ms, as one JSON
// array. It does nothing else, so its drift is what the machine's scheduler
// alone costs a thread that wants to wake up at that moment: the floor under
// the drift measured on Troupe's main thread in the same phase.

import { drift } from "./_drift.ts";

/** Resolves when stdin closes (nothing is ever sent on it). */
async function stdinClosed(): Promise<void> {
  for await (const _ of Deno.stdin.readable) {
    // Nothing is sent; the loop ends when stdin closes.
  }
}

console.log("ready");
console.log(JSON.stringify(await drift(stdinClosed())));
