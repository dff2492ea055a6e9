// Setting up the NATS bus: checking its options and provisioning its stream, once, at start.

import { nanos } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { isSafeSubject } from "./nats_subject.ts";

/** The options of the NATS bus with their defaults applied. */
export interface ResolvedOptions {
  /** Server URL(s). */
  servers: string | string[];
  /** Stream name. */
  stream: string;
  /** Subject prefix. */
  subjectPrefix: string;
  /** Backlog bound of `saturated()`. */
  maxBuffered: number;
  /** Duplicate window, in ms. */
  duplicateWindowMs: number;
  /** Publishes awaiting their ack at once. */
  maxInFlight: number;
  /** Bounded wait of `close()`, in ms. */
  closeTimeoutMs: number;
  /** Consumers' ack wait, in ms. */
  ackWaitMs: number;
  /** A publish's wait for its ack, in ms. */
  publishTimeoutMs: number;
}

/** Throw a `TypeError` or `RangeError` at once on an option that cannot work. */
export function checkNatsBusOptions(options: ResolvedOptions): void {
  const { stream, subjectPrefix, maxBuffered, duplicateWindowMs, maxInFlight } = options;
  const servers = [options.servers].flat();
  if (servers.length === 0 || servers.some((url) => typeof url !== "string" || url === "")) {
    throw new TypeError(
      `Cannot create the NATS bus: servers must be one or more URLs, current value is ${
        JSON.stringify(options.servers)
      }`,
    );
  }
  if (!/^[A-Za-z0-9_-]+$/.test(stream)) {
    throw new TypeError(
      `Cannot create the NATS bus: stream must be letters, digits, _ or -, current value is ${
        JSON.stringify(stream)
      }`,
    );
  }
  if (!isSafeSubject(subjectPrefix)) {
    throw new TypeError(
      "Cannot create the NATS bus: subjectPrefix must be dot-separated tokens of letters, digits, _ or -, " +
        `current value is ${JSON.stringify(subjectPrefix)}`,
    );
  }
  for (const [key, value] of Object.entries({ maxBuffered, maxInFlight })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot create the NATS bus: ${key} must be a positive integer, current value is ${value}`,
      );
    }
  }
  if (!Number.isFinite(duplicateWindowMs) || duplicateWindowMs < 1) {
    throw new RangeError(
      `Cannot create the NATS bus: duplicateWindowMs must be a positive number, current value is ${duplicateWindowMs}`,
    );
  }
  if (!(options.closeTimeoutMs >= 0)) {
    throw new RangeError(
      `Cannot create the NATS bus: closeTimeoutMs must be >= 0, current value is ${options.closeTimeoutMs}`,
    );
  }
  for (const key of ["ackWaitMs", "publishTimeoutMs"] as const) {
    if (!(options[key] >= 1)) {
      throw new RangeError(
        `Cannot create the NATS bus: ${key} must be >= 1, current value is ${options[key]}`,
      );
    }
  }
}

/** Create the stream, or bring an existing one to the subjects and window the bus needs. */
export async function provisionStream(
  jsm: JetStreamManager,
  stream: string,
  subjects: string,
  duplicateWindowMs: number,
): Promise<void> {
  const duplicateWindow = nanos(duplicateWindowMs);
  try {
    const { config } = await jsm.streams.info(stream);
    const wanted = config.subjects.includes(subjects)
      ? config.subjects
      : [...config.subjects, subjects];
    if (wanted !== config.subjects || config.duplicate_window !== duplicateWindow) {
      await jsm.streams.update(stream, {
        ...config,
        subjects: wanted,
        duplicate_window: duplicateWindow,
      });
    }
    return;
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) {
      throw error;
    }
  }
  await jsm.streams.add({
    name: stream,
    subjects: [subjects],
    storage: "file",
    duplicate_window: duplicateWindow,
  });
}
