// The JetStream event bus: durable, deduplicated publishing and durable pull consumers per persister group.

import { deadline } from "@std/async";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { TroupeEvent } from "../../actors/events.ts";
import type { ConsumeOptions, Delivery, EventBus } from "../../actors/ports.ts";
import { jetStreamSender } from "./_jetstream_sender.ts";
import { ackFloorWaits } from "./_nats_ack_floor.ts";
import { consumeGroup } from "./_nats_consumer.ts";
import { publisher } from "./_nats_publisher.ts";
import { checkNatsBusOptions, provisionStream } from "./_nats_setup.ts";
import { fanOut } from "./_fan_out.ts";
import { BusError, type BusErrorHandler, logBusError } from "./errors.ts";
import { natsSubject, natsToken } from "./nats_subject.ts";

/** Options of {@linkcode natsBus}. */
export interface NatsBusOptions {
  /** The NATS server URL(s), e.g. `"nats://127.0.0.1:4222"`. */
  servers: string | string[];
  /**
   * The JetStream stream the events go to; created or updated at start.
   * Letters, digits, `_` and `-` only.
   * @default {"TROUPE"}
   */
  stream?: string;
  /**
   * The first token(s) of every subject: events go to
   * `<subjectPrefix>.<org>.<type>` and the stream takes `<subjectPrefix>.>`.
   * Dot-separated tokens of letters, digits, `_` and `-`.
   * @default {"troupe"}
   */
  subjectPrefix?: string;
  /**
   * How many events may wait for the stream's ack (queued or in flight)
   * before `saturated()` turns true. Publishing goes on past it: the bound is
   * what the runtime watches to stop accepting work.
   * @default {10_000}
   */
  maxBuffered?: number;
  /**
   * The stream's duplicate window: a message id seen within it is stored once.
   * @default {120_000}
   */
  duplicateWindowMs?: number;
  /**
   * How many publishes may await their ack at once. Each is a core publish
   * whose ack comes back on the bus's own inbox, so a wide window costs
   * little; end to end (publish to persisted) 1,024 ran ≈ 10% more events/s
   * than 256.
   * @default {1_024}
   */
  maxInFlight?: number;
  /**
   * How long `close()` waits for unacknowledged events before giving up on them.
   * @default {10_000}
   */
  closeTimeoutMs?: number;
  /**
   * How long the server waits for a consumer's ack before delivering again.
   * @default {30_000}
   */
  ackWaitMs?: number;
  /**
   * How long a publish waits for the stream's ack before it is sent again. A
   * reconnect sends the publishes still waiting again at once, whatever this is.
   * @default {5_000}
   */
  publishTimeoutMs?: number;
  /**
   * Receives what the bus cannot throw: a subscriber that threw (with its
   * event), the connection lost (once per disconnect), a publish being retried
   * (once per outage, with the first event concerned), an event published
   * after close, a pull being retried.
   * @default {writes a JSON line to stderr}
   */
  onError?: BusErrorHandler;
  /**
   * The connection name the server shows in its monitoring.
   * @default {"troupe"}
   */
  name?: string;
}

// How often `flush` looks at a consuming group's backlog.
const GROUP_POLL_MS = 20;
// How long JetStream API calls (stream and consumer info, acks) wait.
const API_TIMEOUT_MS = 5_000;
// Time between reconnect attempts; the client retries forever.
const RECONNECT_WAIT_MS = 1_000;

/**
 * A bus over NATS JetStream. At start it connects (reconnecting forever
 * afterwards) and creates or updates the stream once: subjects
 * `<subjectPrefix>.>`, file storage, the duplicate window.
 *
 * - `publish` never throws and never drops: the event is queued, and a
 *   background publisher sends it with its id as `Nats-Msg-Id`, up to
 *   `maxInFlight` awaiting their ack, retrying each with backoff until the
 *   stream acks it. Its subject is built with `natsSubject` (org and type
 *   percent-encoded token by token).
 * - `subscribe` is a local fan-out of the events this process publishes,
 *   delivered off the publisher's stack like the memory bus.
 * - `consume(group)` pulls from a durable consumer named after the group and
 *   survives server restarts; `ack()` waits for the server's confirmation.
 * - `saturated()` is true while `maxBuffered` events or more await their ack.
 * - `flush()` resolves once every event published before it is acked by the
 *   stream and the groups consuming in this process have acked it too (their
 *   ack floor reached its stream sequence; waiting at most `closeTimeoutMs`
 *   for them, and the rest stays in the stream). Later events are not waited
 *   for, so it ends under a steady load.
 * - `persisted()` resolves once every event published before it is acked by
 *   the stream: in JetStream's file storage, where a crash of this process
 *   cannot lose it. It does not wait for the groups.
 * - `close()` flushes for at most `closeTimeoutMs`, then drains the
 *   connection; it rejects with a `BusError` (`"undelivered"`) if events were
 *   left unacknowledged.
 *
 * An existing stream keeps its storage and other settings; only its subjects
 * and duplicate window are brought in line. Rejects with a `BusError`
 * (`"connect_failed"`) when the server cannot be reached at start or the
 * stream cannot be provisioned.
 *
 * Durability: the stream acks a publish before its file store syncs to disk.
 * A server crash (`kill -9`) loses nothing acked; for power loss run the
 * server with `sync_interval: always` or three replicas. The duplicate window
 * only spans `duplicateWindowMs`, so the store's unique event id remains the
 * last defence against duplicates.
 *
 * @example Options for a local server (connects only when NATS_URL is set)
 * ```ts
 * import { natsBus, type NatsBusOptions } from "./nats_bus.ts";
 *
 * const url = Deno.env.get("NATS_URL");
 * const options: NatsBusOptions = { servers: url ?? "nats://127.0.0.1:4222", maxBuffered: 1_000 };
 * if (url) {
 *   await using bus = await natsBus(options);
 *   bus.publish({ id: crypto.randomUUID(), ts: Date.now(), org: "acme", session: "s", type: "session.activated", historyLength: 0 });
 *   await bus.flush();
 * }
 * ```
 */
export async function natsBus(options: NatsBusOptions): Promise<EventBus & AsyncDisposable> {
  const {
    servers,
    stream = "TROUPE",
    subjectPrefix = "troupe",
    maxBuffered = 10_000,
    duplicateWindowMs = 120_000,
    maxInFlight = 1_024,
    closeTimeoutMs = 10_000,
    ackWaitMs = 30_000,
    publishTimeoutMs = 5_000,
    onError = logBusError,
    name = "troupe",
  } = options;
  checkNatsBusOptions({
    servers,
    stream,
    subjectPrefix,
    maxBuffered,
    duplicateWindowMs,
    maxInFlight,
    closeTimeoutMs,
    ackWaitMs,
    publishTimeoutMs,
  });

  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      noAsyncTraces: true,
    });
  } catch (error) {
    throw new BusError("connect_failed", `Cannot connect to NATS at ${servers}`, { cause: error });
  }
  const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS, checkAPI: false });
  try {
    await provisionStream(jsm, stream, `${subjectPrefix}.>`, duplicateWindowMs);
  } catch (error) {
    await nc.close();
    throw new BusError("connect_failed", `Cannot create or update the stream ${stream}`, {
      cause: error,
    });
  }
  const js = jetstream(nc, { timeout: API_TIMEOUT_MS });
  const fan = fanOut(onError);
  const sender = jetStreamSender(nc, { timeoutMs: publishTimeoutMs });
  const outbox = publisher({
    send: sender.send,
    subjectOf: (event) => natsSubject(subjectPrefix, event),
    maxInFlight,
    onError,
  });
  const closing = new AbortController();
  let closed: Promise<void> | undefined;

  // A lost connection is reported once. Its reconnect ends the waits the outage left behind:
  // publishes whose acks went with the old connection (they would wait out their timeout) and
  // backoffs grown to seconds meanwhile. The iteration ends when the connection closes.
  (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect" && !closing.signal.aborted) {
        onError(
          new BusError(
            "disconnected",
            `Lost the connection to NATS at ${status.server}: reconnecting every ${RECONNECT_WAIT_MS} ms; events wait in the outbox meanwhile`,
          ),
        );
      } else if (status.type === "reconnect") {
        sender.reconnected();
        outbox.retryNow();
      }
    }
  })().catch((error) => onError(error));

  function publish(event: TroupeEvent): void {
    if (closed !== undefined) {
      onError(new BusError("closed", `Cannot publish event ${event.id}: the bus is closed`), event);
      return;
    }
    fan.publish(event);
    outbox.enqueue(event);
  }

  // Groups consuming in this process, by consumer name, with how many loops each runs.
  const consuming = new Map<string, number>();

  // A group stops being waited on once it no longer consumes here (nothing here would ack).
  const ackFloors = ackFloorWaits(async (name) => {
    if (!consuming.has(name) || nc.isClosed()) return Infinity;
    return (await jsm.consumers.info(stream, name)).ack_floor.stream_seq;
  }, GROUP_POLL_MS);

  /**
   * Every event published before the call is in the stream, and this process's groups have
   * acked it (or `closeTimeoutMs` passed: the events stay in the stream, a group consumes
   * them later). Later events are not waited for: the groups' ack floors are compared with
   * the stream sequence of the newest ack, not with an empty backlog.
   */
  async function flush(): Promise<void> {
    fan.deliver();
    await outbox.flush();
    const seq = outbox.streamSeq();
    await Promise.all(
      [...consuming.keys()].map((name) => ackFloors.reach(name, seq, closeTimeoutMs)),
    );
  }

  function consume(group: string, consumeOptions: ConsumeOptions): AsyncIterable<Delivery[]> {
    const batches = consumeGroup(
      { jsm, js, stream, ackWaitMs, closing: closing.signal, onError },
      group,
      consumeOptions,
    );
    const name = natsToken(group);
    return (async function* () {
      consuming.set(name, (consuming.get(name) ?? 0) + 1);
      try {
        yield* batches;
      } finally {
        const left = consuming.get(name)! - 1;
        if (left === 0) consuming.delete(name);
        else consuming.set(name, left);
      }
    })();
  }

  async function shutdown(): Promise<void> {
    closing.abort();
    ackFloors.stop();
    fan.deliver();
    await deadline(outbox.flush(), closeTimeoutMs).catch(() => {});
    const undelivered = outbox.stop();
    sender.close();
    fan.clear();
    if (undelivered === 0) {
      await deadline(nc.drain(), closeTimeoutMs).catch(() => {});
    }
    if (!nc.isClosed()) await nc.close();
    if (undelivered > 0) {
      throw new BusError(
        "undelivered",
        `Cannot close the NATS bus cleanly: ${undelivered} events were not acknowledged by the stream`,
        { undelivered },
      );
    }
  }

  function close(): Promise<void> {
    closed ??= shutdown();
    return closed;
  }

  return {
    publish,
    subscribe: (handler) => fan.subscribe(handler),
    consume,
    saturated: () => outbox.backlog() >= maxBuffered,
    flush,
    persisted: () => outbox.flush(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
