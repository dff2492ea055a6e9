// The worker side of a pool: serves handlers on the batched hot path, control through Comlink.

import * as Comlink from "comlink";
import {
  CALL,
  CANCEL,
  type ConnectConfig,
  type ConnectReply,
  FAILURE,
  PROGRESS,
  RESULT,
  TO_MAIN_STRIDE,
  TO_WORKER_STRIDE,
  type WorkerControl,
} from "./_protocol.ts";
import { decodeError, encodeError, installComlinkErrors, type WireError } from "./error_codec.ts";
import { flushScheduler } from "./_flush_scheduler.ts";

/**
 * What a handler receives with each call, besides its arguments.
 *
 * @example
 * ```ts
 * import type { WorkerCallContext } from "./expose_worker.ts";
 *
 * function count(ctx: WorkerCallContext<string>, n: number): number {
 *   for (let i = 0; i < n && !ctx.signal.aborted; i++) ctx.emit(`${i} `);
 *   return n;
 * }
 * console.assert(typeof count === "function");
 * ```
 */
export interface WorkerCallContext<P = unknown> {
  /** The pool's id of this call. */
  readonly id: number;
  /** Aborted when the caller's signal aborts (its reason is the caller's, rebuilt typed). */
  readonly signal: AbortSignal;
  /**
   * Send progress to the caller's `onProgress`, in order. Progress is batched
   * on its way (by time and size); strings of one call that wait in the same
   * batch are concatenated, so a stream of tokens costs a few messages, not
   * one per token. Everything emitted before the handler settles reaches the
   * caller before its result.
   */
  emit(progress: P): void;
}

/** A method a worker serves: the call context, then the caller's arguments. */
// deno-lint-ignore no-explicit-any
export type WorkerHandler = (ctx: WorkerCallContext<any>, ...args: any[]) => unknown;

/** The methods a worker serves, by name. */
export type WorkerHandlers = Record<string, WorkerHandler>;

/** Builds a worker's handlers from the pool's `init` value (a provider spec, a config). */
export type WorkerHandlersFactory<H extends WorkerHandlers> = (init: unknown) => H | Promise<H>;

/** Where a worker's control API listens: its global scope, or a `MessagePort`. */
export interface ControlEndpoint {
  /** Send a message. */
  // deno-lint-ignore no-explicit-any
  postMessage(message: any, transfer?: Transferable[]): void;
  /** Listen for messages. */
  addEventListener(type: string, listener: EventListenerOrEventListenerObject): void;
  /** Stop listening. */
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject): void;
}

/** Options of {@linkcode exposeWorker}. */
export interface ExposeWorkerOptions {
  /**
   * Where the control API listens. Only tests and inline use change it.
   * @default {globalThis} the worker's own scope
   */
  endpoint?: ControlEndpoint;
}

/**
 * Serve `handlers` (or what `factory(init)` builds) to the pool that created
 * this worker. Call it once, at the top of the worker module.
 *
 * The worker exposes a small control API through Comlink (connect, ping);
 * calls travel on a dedicated `MessagePort` in batches: everything one side
 * has to say within a tick goes in one message, and progress is flushed
 * every few milliseconds. A handler gets a {@linkcode WorkerCallContext} and
 * the caller's arguments; what it returns (or throws, rebuilt typed on the
 * other side) settles the call.
 *
 * @example A worker module, served in-process over a channel
 * ```ts
 * import { exposeWorker, type WorkerCallContext } from "./expose_worker.ts";
 *
 * const handlers = {
 *   add: (_ctx: WorkerCallContext, a: number, b: number) => a + b,
 * };
 * // In a worker module: exposeWorker(handlers);
 * const { port1, port2 } = new MessageChannel();
 * exposeWorker(handlers, { endpoint: port1 });
 * port1.close();
 * port2.close();
 * ```
 */
export function exposeWorker<H extends WorkerHandlers>(
  handlers: H | WorkerHandlersFactory<H>,
  options: ExposeWorkerOptions = {},
): void {
  const { endpoint = globalThis as unknown as ControlEndpoint } = options;
  installComlinkErrors();
  let server: Server | undefined;
  const control: WorkerControl = {
    async connect(port: MessagePort, config: ConnectConfig): Promise<ConnectReply> {
      if (server) throw new Error("Cannot connect the worker: it is connected already");
      const served = typeof handlers === "function" ? await handlers(config.init) : handlers;
      server = new Server(port, served, config);
      return { methods: Object.keys(served) };
    },
    ping: () => server?.calls.size ?? 0,
  };
  Comlink.expose(control, endpoint as Comlink.Endpoint);
}

// The classes below are internal: one object per call on the hot path keeps
// its shape stable, which V8 rewards; nothing outside this file sees them.

class Call implements WorkerCallContext {
  /** Index in the outbox of this call's waiting string progress, or -1. */
  textAt = -1;
  done = false;
  #controller: AbortController | undefined;
  #reason: unknown = undefined;
  #aborted = false;

  constructor(readonly id: number, readonly method: string, readonly server: Server) {}

  get signal(): AbortSignal {
    // Made on first use: most cheap calls never look at their signal.
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  emit(progress: unknown): void {
    if (!this.done) this.server.progress(this, progress);
  }
}

class Server {
  readonly calls = new Map<number, Call>();
  #outbox: unknown[] = [];
  #waitingText: Call[] = [];
  #chars = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #flush = () => this.flush();
  // Calls still running may settle in the same run of callbacks: worth batching.
  readonly #scheduler = flushScheduler(this.#flush, () => this.calls.size > 0);

  constructor(
    readonly port: MessagePort,
    readonly handlers: WorkerHandlers,
    readonly config: ConnectConfig,
  ) {
    port.onmessage = (event: MessageEvent<unknown[]>) => this.receive(event.data);
  }

  receive(batch: unknown[]): void {
    for (let i = 0; i < batch.length; i += TO_WORKER_STRIDE) {
      const id = batch[i + 1] as number;
      if (batch[i] === CALL) this.start(id, batch[i + 2] as string, batch[i + 3] as unknown[]);
      else if (batch[i] === CANCEL) {
        this.calls.get(id)?.abort(decodeError(batch[i + 2] as WireError));
      }
    }
  }

  start(id: number, method: string, args: unknown[]): void {
    const call = new Call(id, method, this);
    const handler = Object.hasOwn(this.handlers, method) ? this.handlers[method] : undefined;
    if (handler === undefined) {
      const known = Object.keys(this.handlers).join(", ");
      const error = new TypeError(`Cannot call ${method}: the worker serves only ${known}`);
      return this.settle(call, FAILURE, encodeError(error));
    }
    this.calls.set(id, call);
    let value: unknown;
    try {
      value = handler(call, ...args);
    } catch (error) {
      return this.settle(call, FAILURE, encodeError(error));
    }
    if (value instanceof Promise) {
      value.then(
        (result) => this.settle(call, RESULT, result),
        (error) => this.settle(call, FAILURE, encodeError(error)),
      );
    } else this.settle(call, RESULT, value);
  }

  progress(call: Call, progress: unknown): void {
    const outbox = this.#outbox;
    if (typeof progress === "string") {
      if (progress === "") return;
      if (call.textAt >= 0) outbox[call.textAt + 2] += progress;
      else {
        call.textAt = outbox.length;
        this.#waitingText.push(call);
        outbox.push(PROGRESS, call.id, progress);
      }
      this.#chars += progress.length;
      if (this.#chars >= this.config.progressFlushChars) return this.flushSoon();
    } else {
      call.textAt = -1;
      outbox.push(PROGRESS, call.id, progress);
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#flush, this.config.progressFlushMs);
    }
  }

  settle(call: Call, kind: typeof RESULT | typeof FAILURE, payload: unknown): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(call.id);
    this.#outbox.push(kind, call.id, payload);
    this.flushSoon();
  }

  flushSoon(): void {
    this.#scheduler.soon();
  }

  flush(): void {
    this.#scheduler.flushing();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#outbox;
    if (batch.length === 0) return;
    this.#outbox = [];
    this.#chars = 0;
    for (const call of this.#waitingText) call.textAt = -1;
    this.#waitingText.length = 0;
    try {
      this.port.postMessage(batch);
    } catch {
      this.postOneByOne(batch);
    }
  }

  /** A batch failed to clone: send its records one by one and fail the calls whose data cannot travel. */
  postOneByOne(batch: unknown[]): void {
    for (let i = 0; i < batch.length; i += TO_MAIN_STRIDE) {
      const id = batch[i + 1] as number;
      try {
        this.port.postMessage(batch.slice(i, i + TO_MAIN_STRIDE));
      } catch (error) {
        const what = batch[i] === PROGRESS ? "progress" : "result";
        const call = this.calls.get(id);
        call?.abort(error);
        if (call) {
          call.done = true;
          this.calls.delete(id);
        }
        const failure = new TypeError(
          `Cannot send the ${what} of call ${id}: it cannot be cloned (${
            (error as Error).message
          })`,
        );
        this.port.postMessage([FAILURE, id, encodeError(failure)]);
      }
    }
  }
}
