// One worker of a pool, main side: spawn and connect it, batch its calls, read its answers.

import * as Comlink from "comlink";
import {
  CALL,
  CANCEL,
  type ConnectConfig,
  FAILURE,
  PROGRESS,
  RESULT,
  TO_MAIN_STRIDE,
  TO_WORKER_STRIDE,
  type WorkerControl,
} from "./_protocol.ts";
import { decodeError, type WireError } from "./error_codec.ts";
import { flushScheduler } from "./_flush_scheduler.ts";

/** A call sent to a worker and not yet answered. */
export interface PendingCall {
  readonly id: number;
  readonly method: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  readonly onProgress: ((progress: unknown) => void) | undefined;
  readonly signal: AbortSignal | undefined;
  /** The abort listener on `signal`, removed when the call settles. */
  onAbort: (() => void) | undefined;
  /** The caller was answered already (its signal aborted): the worker's answer is dropped. */
  cancelled: boolean;
  /** `performance.now()` when it was sent. */
  readonly sentAt: number;
}

/** What a slot tells its pool. */
export interface SlotEvents {
  /** A call got its answer (or its cancellation was confirmed): it left the slot. */
  settled(slot: WorkerSlot, call: PendingCall, ok: boolean): void;
  /** The worker is gone: `reason` says how, for people. */
  died(slot: WorkerSlot, reason: string, cause: unknown): void;
  /** The caller's `onProgress` threw: the pool cancels the call with that error. */
  progressFailed(slot: WorkerSlot, call: PendingCall, error: unknown): void;
}

/** One worker, its hot-path port and the calls it runs. */
export interface WorkerSlot {
  /** Its place in the pool, 0-based. */
  readonly index: number;
  /** Calls in flight (answered-by-cancel calls stay until the worker confirms). */
  readonly calls: Map<number, PendingCall>;
  /** Connected and serving; calls sent before this wait in the port. */
  ready: boolean;
  /** Terminated; never used again. */
  dead: boolean;
  /** Resolves once connected; rejects with why it never was. */
  readonly connected: Promise<void>;
  /** `performance.now()` of the last sign of life. */
  lastHeard: number;
  /** When the pending liveness ping was sent, or -1. */
  pingSentAt: number;
  /** Queue a call (sent at the end of the tick). */
  send(call: PendingCall, args: unknown[], transfer: Transferable[] | undefined): void;
  /** Ask the worker to abort a call; its reason travels encoded. */
  cancel(id: number, reason: WireError): void;
  /** Probe liveness through Comlink. */
  ping(): void;
  /** Terminate the worker and forget its port; `connected` rejects with `reason` if pending. Does not settle calls. */
  terminate(reason: unknown): void;
}

/** How to make a slot. */
export interface SlotSpec {
  index: number;
  url: string | URL;
  name: string;
  config: ConnectConfig;
  events: SlotEvents;
}

/** Spawn a worker, connect its hot path through Comlink, and wire its events to `events`. */
export function spawnSlot(spec: SlotSpec): WorkerSlot {
  const { index, url, name, config, events } = spec;
  const worker = new Worker(url, { type: "module", name: `${name}-${index}` });
  const channel = new MessageChannel();
  const port = channel.port1;
  const remote = Comlink.wrap<WorkerControl>(worker as unknown as Comlink.Endpoint);
  let outbox: unknown[] = [];
  let transfers: Transferable[] = [];
  // More than the call just sent in flight: other callers are active, batching pays.
  const scheduler = flushScheduler(flush, () => slot.calls.size > 1);
  const connected = Promise.withResolvers<void>();
  // Observed here so that a pool nobody awaits `ready()` on never reports an unhandled rejection.
  connected.promise.catch(() => {});

  const slot: WorkerSlot = {
    index,
    calls: new Map(),
    ready: false,
    dead: false,
    connected: connected.promise,
    lastHeard: performance.now(),
    pingSentAt: -1,
    send(call, args, transfer) {
      slot.calls.set(call.id, call);
      outbox.push(CALL, call.id, call.method, args);
      if (transfer !== undefined) transfers.push(...transfer);
      scheduler.soon();
    },
    cancel(id, reason) {
      outbox.push(CANCEL, id, reason, 0);
      scheduler.soon();
    },
    ping() {
      slot.pingSentAt = performance.now();
      remote.ping().then(() => {
        slot.pingSentAt = -1;
        slot.lastHeard = performance.now();
      }, () => {});
    },
    terminate(reason) {
      slot.dead = true;
      connected.reject(reason);
      worker.terminate();
      port.close();
      scheduler.close();
      outbox = [];
      transfers = [];
    },
  };

  function flush(): void {
    scheduler.flushing();
    if (slot.dead || outbox.length === 0) return;
    const batch = outbox;
    const transfer = transfers;
    outbox = [];
    transfers = [];
    try {
      port.postMessage(batch, transfer);
    } catch {
      postOneByOne(batch, transfer);
    }
  }

  /** The batch failed to clone: send record by record and fail the calls that cannot travel. */
  function postOneByOne(batch: unknown[], transfer: Transferable[]): void {
    for (let i = 0; i < batch.length; i += TO_WORKER_STRIDE) {
      const record = batch.slice(i, i + TO_WORKER_STRIDE);
      try {
        const args = record[0] === CALL ? record[3] as unknown[] : [];
        port.postMessage(record, transfer.filter((t) => args.includes(t)));
      } catch (error) {
        const call = slot.calls.get(record[1] as number);
        if (call === undefined) continue;
        slot.calls.delete(call.id);
        const message = `Cannot call ${call.method}: its arguments cannot be sent to a worker ` +
          `(${(error as Error).message})`;
        if (!call.cancelled) call.reject(new TypeError(message, { cause: error }));
        events.settled(slot, call, false);
      }
    }
  }

  port.onmessage = (event: MessageEvent<unknown[]>) => {
    slot.lastHeard = performance.now();
    const batch = event.data;
    for (let i = 0; i < batch.length; i += TO_MAIN_STRIDE) {
      const call = slot.calls.get(batch[i + 1] as number);
      if (call === undefined) continue;
      const kind = batch[i];
      if (kind === PROGRESS) {
        if (call.cancelled || call.onProgress === undefined) continue;
        try {
          call.onProgress(batch[i + 2]);
        } catch (error) {
          events.progressFailed(slot, call, error);
        }
        continue;
      }
      slot.calls.delete(call.id);
      if (kind === RESULT) {
        if (!call.cancelled) call.resolve(batch[i + 2]);
      } else if (kind === FAILURE && !call.cancelled) {
        call.reject(decodeError(batch[i + 2] as WireError));
      }
      events.settled(slot, call, kind === RESULT);
    }
  };
  port.onmessageerror = () => {
    events.died(slot, "a message from it could not be read", undefined);
  };
  worker.addEventListener("error", (event: ErrorEvent) => {
    // Handled here: left alone, a worker's uncaught error is rethrown in the main thread.
    event.preventDefault();
    events.died(slot, `it threw an uncaught error: ${event.message}`, event.error);
  });
  worker.addEventListener("messageerror", () => {
    events.died(slot, "a control message from it could not be read", undefined);
  });

  remote.connect(Comlink.transfer(channel.port2, [channel.port2]), config).then(() => {
    if (slot.dead) return;
    slot.ready = true;
    slot.lastHeard = performance.now();
    connected.resolve();
  }, (error: unknown) => {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    events.died(slot, `its handlers failed to start (${text})`, error);
  });
  return slot;
}
