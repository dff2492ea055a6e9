// JetStream publishes without a request object each: core publishes whose acks come back on one inbox.

import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  TimeoutError,
} from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import { AckLostError, type SendFn } from "./_nats_publisher.ts";
import { BusError } from "./errors.ts";

/** Options of {@linkcode jetStreamSender}. */
export interface JetStreamSenderOptions {
  /** How long a publish waits for the stream's ack before it rejects, in ms. */
  timeoutMs: number;
}

/** Sends events to JetStream and matches the stream's acks to them. */
export interface JetStreamSender {
  /**
   * Publishes with `msgID` as `Nats-Msg-Id`; resolves on the stream's ack with
   * the stream sequence the event is stored under.
   */
  send: SendFn;
  /**
   * The connection was re-established: the acks of the publishes still waiting
   * went to the old one, or their publishes never reached the stream. Each
   * rejects at once with an `AckLostError` instead of at its timeout.
   */
  reconnected(): void;
  /** Stops listening for acks; publishes still waiting reject. */
  close(): void;
}

interface Waiting {
  subject: string;
  resolve: (seq: number) => void;
  reject: (error: Error) => void;
  /** When it times out, in `performance.now()` ms. */
  expires: number;
}

const decoder = new TextDecoder();

/**
 * A JetStream publisher for many publishes in flight. `js.publish()` makes a
 * request per message (a reply subscription entry, a timer, a promise chain
 * and a `TextDecoder`), which took two thirds of the event loop at 20,000
 * events/s. Here each publish is a core publish whose reply subject is
 * `<inbox>.<n>` under one wildcard subscription made at start; the ack is
 * matched by `n`, and one timer, armed only while publishes wait, rejects
 * those older than `timeoutMs`. What the stream sees is the same: a message
 * with a `Nats-Msg-Id` header and a reply subject for its ack.
 *
 * A publish rejects as `js.publish()` would: with the stream's error
 * (`JetStreamApiError`), a `NoRespondersError` when no stream listens on the
 * subject (the server's 503), a `TimeoutError` after `timeoutMs`; and with a
 * `BusError` (`publish_failed`) when the connection refused the message.
 * The subscription survives reconnects like any other.
 */
export function jetStreamSender(
  nc: NatsConnection,
  options: JetStreamSenderOptions,
): JetStreamSender {
  const { timeoutMs } = options;
  const prefix = `${createInbox()}.`;
  // In insertion order, so that the oldest publishes come first when sweeping.
  const waiting = new Map<number, Waiting>();
  let next = 0;
  let sweeper: ReturnType<typeof setTimeout> | undefined;

  const subscription = nc.subscribe(`${prefix}*`, {
    callback: (error, message) => {
      if (error === null) settle(message);
    },
  });

  function settle(message: Msg): void {
    const n = Number(message.subject.slice(prefix.length));
    const entry = waiting.get(n);
    if (entry === undefined) return; // timed out already: its retry has its own ack
    waiting.delete(n);
    const ack = readAck(message, entry.subject);
    if (typeof ack === "number") entry.resolve(ack);
    else entry.reject(ack);
  }

  function sweep(): void {
    sweeper = undefined;
    const now = performance.now();
    for (const [n, entry] of waiting) {
      if (entry.expires > now) break;
      waiting.delete(n);
      entry.reject(new TimeoutError());
    }
    arm();
  }

  function arm(): void {
    if (sweeper !== undefined || waiting.size === 0) return;
    const oldest = waiting.values().next().value!;
    sweeper = setTimeout(sweep, Math.max(1, oldest.expires - performance.now()));
  }

  function send(subject: string, payload: string, msgID: string): Promise<number> {
    const n = next++;
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const header = headers();
    header.set("Nats-Msg-Id", msgID);
    try {
      nc.publish(subject, payload, { reply: `${prefix}${n}`, headers: header });
    } catch (error) {
      return Promise.reject(
        new BusError("publish_failed", `Cannot publish: the connection refused the message`, {
          cause: error,
        }),
      );
    }
    waiting.set(n, { subject, resolve, reject, expires: performance.now() + timeoutMs });
    arm();
    return promise;
  }

  function reconnected(): void {
    const lost = [...waiting.values()];
    waiting.clear();
    for (const entry of lost) entry.reject(new AckLostError());
  }

  function close(): void {
    subscription.unsubscribe();
    clearTimeout(sweeper);
    sweeper = undefined;
    const error = new BusError("closed", "Cannot publish: the bus is closed");
    for (const entry of waiting.values()) entry.reject(error);
    waiting.clear();
  }

  return { send, reconnected, close };
}

/** The stream sequence of a stored message, or the error its ack reports. */
function readAck(message: Msg, subject: string): number | Error {
  if (message.headers?.code === 503) return new NoRespondersError(subject);
  if (message.headers?.hasError) {
    return new BusError(
      "publish_failed",
      `Cannot publish: the server answered ${message.headers.status}`,
    );
  }
  let ack: {
    stream?: unknown;
    seq?: unknown;
    error?: ConstructorParameters<typeof JetStreamApiError>[0];
  };
  try {
    ack = JSON.parse(decoder.decode(message.data));
  } catch (error) {
    return new BusError("publish_failed", "Cannot publish: the stream's ack is not JSON", {
      cause: error,
    });
  }
  if (ack.error !== undefined) return new JetStreamApiError(ack.error);
  if (typeof ack.stream !== "string" || ack.stream === "") {
    return new BusError("publish_failed", "Cannot publish: the stream's ack names no stream");
  }
  if (typeof ack.seq !== "number" || !Number.isSafeInteger(ack.seq) || ack.seq < 1) {
    return new BusError("publish_failed", "Cannot publish: the stream's ack has no sequence");
  }
  return ack.seq;
}
