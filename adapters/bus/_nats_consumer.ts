// The NATS bus's durable consumption: one pull consumer per group, batched, re-opened after failures.

import { delay } from "@std/async";
import { nanos } from "@nats-io/transport-node";
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import type { ConsumeOptions, Delivery } from "../../actors/ports.ts";
import { checkConsumeOptions } from "./_check_consume.ts";
import { BusError, type BusErrorHandler } from "./errors.ts";
import { natsToken } from "./nats_subject.ts";

/** What consumption needs from the bus. */
export interface ConsumerContext {
  /** Creates and inspects consumers. */
  jsm: JetStreamManager;
  /** Pulls messages. */
  js: JetStreamClient;
  /** The stream the events are in. */
  stream: string;
  /** How long the server waits for an ack before delivering again, in ms. */
  ackWaitMs: number;
  /** Aborted when the bus closes: every consumption ends. */
  closing: AbortSignal;
  /** Where failures are reported before the loop retries. */
  onError: BusErrorHandler;
}

// Backoff before re-opening a consumption that failed: 100 ms doubling to 5 s.
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
// How long one pull request stays open at the server; the client re-pulls on its own, and
// after a reconnect it re-checks the consumer within this time.
const PULL_EXPIRES_MS = 5_000;
const TIMEOUT = Symbol("timeout");
const decoder = new TextDecoder();

/**
 * Check the consume options, then return the loop: a durable pull consumer
 * named after the group (sanitised with `natsToken`), created once if absent
 * (explicit acks, deliver all, `max_ack_pending` at least four batches),
 * yielding batches until the signal aborts. A failure (server restarted,
 * consumer gone) is reported and the consumption re-opened with backoff.
 */
export function consumeGroup(
  context: ConsumerContext,
  group: string,
  options: ConsumeOptions,
): AsyncIterable<Delivery[]> {
  checkConsumeOptions(options);
  return loop(context, natsToken(group), options);
}

async function* loop(
  context: ConsumerContext,
  name: string,
  options: ConsumeOptions,
): AsyncGenerator<Delivery[]> {
  const { js, stream, onError } = context;
  const { batchSize, maxWaitMs } = options;
  const signal = AbortSignal.any([options.signal, context.closing]);
  let failures = 0;
  let provisioned = false;
  while (!signal.aborted) {
    const opened = new AbortController();
    const stopOnAbort = () => opened.abort();
    signal.addEventListener("abort", stopOnAbort, { once: true });
    try {
      if (!provisioned) provisioned = await ensureConsumer(context, name, batchSize);
      const consumer = await js.consumers.get(stream, name);
      const messages = await consumer.consume({
        max_messages: batchSize,
        expires: PULL_EXPIRES_MS,
      });
      opened.signal.addEventListener("abort", () => messages.close(), { once: true });
      if (signal.aborted) messages.close();
      for await (const batch of batches(messages, batchSize, maxWaitMs)) {
        failures = 0;
        yield batch;
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      throw new Error("the pull consumption ended on its own");
    } catch (error) {
      if (signal.aborted) return;
      onError(
        new BusError(
          "consume_failed",
          `Cannot pull from consumer ${name} of stream ${stream}: retrying`,
          { cause: error },
        ),
      );
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) {
        provisioned = false;
      }
      const backoff = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** failures++);
      await delay(backoff * (0.5 + Math.random() / 2), { signal }).catch(() => {});
    } finally {
      signal.removeEventListener("abort", stopOnAbort);
      opened.abort();
    }
  }
}

/** Create the durable consumer if it is absent, or widen its ack window for larger batches. */
async function ensureConsumer(
  context: ConsumerContext,
  name: string,
  batchSize: number,
): Promise<boolean> {
  const { jsm, stream, ackWaitMs } = context;
  const maxAckPending = Math.max(1_000, batchSize * 4);
  try {
    const info = await jsm.consumers.info(stream, name);
    const current = info.config.max_ack_pending ?? -1;
    if (current !== -1 && current < batchSize * 2) {
      await jsm.consumers.update(stream, name, { max_ack_pending: maxAckPending });
    }
    return true;
  } catch (error) {
    if (
      !(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)
    ) {
      throw error;
    }
  }
  await jsm.consumers.add(stream, {
    durable_name: name,
    ack_policy: "explicit",
    ack_wait: nanos(ackWaitMs),
    deliver_policy: "all",
    max_ack_pending: maxAckPending,
  });
  return true;
}

/**
 * Group messages into batches: a batch is handed over when it holds
 * `batchSize` deliveries or `maxWaitMs` after its first one arrived.
 */
async function* batches(
  messages: AsyncIterable<JsMsg>,
  batchSize: number,
  maxWaitMs: number,
): AsyncGenerator<Delivery[]> {
  const iterator = messages[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<JsMsg>> | undefined;
  for (;;) {
    const first = await (next ?? iterator.next());
    next = undefined;
    if (first.done) return;
    const batch = [delivery(first.value)];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMEOUT), maxWaitMs);
    });
    try {
      while (batch.length < batchSize) {
        next ??= iterator.next();
        const result = await Promise.race([next, expired]);
        if (result === TIMEOUT) break;
        next = undefined;
        if (result.done) {
          yield batch;
          return;
        }
        batch.push(delivery(result.value));
      }
    } finally {
      clearTimeout(timer);
    }
    yield batch;
  }
}

/** A message as the port's `Delivery`: parsed JSON (or the raw text), its attempt, ack and nak. */
function delivery(message: JsMsg): Delivery {
  const text = decoder.decode(message.data);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = text; // not JSON: handed over as it is, for the persister to dead-letter
  }
  return {
    data,
    attempt: message.info.deliveryCount,
    ack() {
      try {
        // Not ackAck: a confirmed round trip per message cost a quarter of the end-to-end rate.
        // A lost ack only means a redelivery, which the store's unique event id absorbs.
        message.ack();
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(
          new BusError(
            "consume_failed",
            `Cannot acknowledge message ${message.seq}: the connection refused the ack`,
            { cause: error },
          ),
        );
      }
    },
    nak(delayMs) {
      message.nak(delayMs);
    },
  };
}
