// Picks the runtime's store and bus from its options: objects as given, URLs opened in the background.

import { memoryBus } from "../adapters/bus/memory_bus.ts";
import { natsBus } from "../adapters/bus/nats_bus.ts";
import { memoryStore } from "../adapters/store/memory_store.ts";
import { openStore } from "../adapters/store/open_store.ts";
import type { TroupeEvent } from "./events.ts";
import type { EventBus, EventQueries, EventStore, Store, Unsubscribe } from "./ports.ts";

/** The consumer group of the runtime's persisters. */
export const PERSISTER_GROUP = "persisters";

/** What the composition root works with. */
export interface Adapters {
  store: Store;
  /** The store's event side, when it has one. */
  events: EventStore | null;
  /** The store's queries, when it has them. */
  queries: EventQueries | null;
  bus: EventBus;
  /** Resolves once URLs are open; rejects with the reason one could not be. */
  ready: Promise<void>;
}

/** The store and bus settings of the runtime. */
export interface AdapterOptions {
  store?: Store | string | undefined;
  bus?: EventBus | string | undefined;
  /** Whether events should be persisted when the store can take them. */
  persist: boolean;
  /**
   * Replies wait for their history: a store opened from a URL writes history
   * at the end of the loop turn instead of waiting 5 ms for more appends.
   */
  durableReplies?: boolean;
}

function hasEvents(store: object): store is EventStore {
  return typeof (store as Partial<EventStore>).writeEvents === "function" &&
    typeof (store as Partial<EventStore>).writeDeadLetters === "function";
}

function hasQueries(store: object): store is EventQueries {
  return typeof (store as Partial<EventQueries>).usageTotals === "function" &&
    typeof (store as Partial<EventQueries>).auditTrail === "function";
}

/**
 * Resolve the store and bus: a string store is a file path or a
 * `postgres://` URL, a string bus a `nats://` URL; both open in the
 * background and every call waits for them. Without a bus, a memory bus is
 * made, with a persister group when events will be persisted (so none is
 * kept for nobody).
 */
export function resolveAdapters(options: AdapterOptions): Adapters {
  const opening: Promise<unknown>[] = [];
  let store: Store;
  if (typeof options.store === "string") {
    const pending = openStore(options.store, options.durableReplies ? { historyGroupMs: 0 } : {});
    opening.push(pending);
    store = lazyStore(pending);
  } else {
    store = options.store ?? memoryStore();
  }
  const events = options.persist && hasEvents(store) ? store : null;
  let bus: EventBus;
  if (typeof options.bus === "string") {
    const pending = natsBus({ servers: options.bus });
    opening.push(pending);
    bus = lazyBus(pending);
  } else {
    bus = options.bus ?? memoryBus(events === null ? {} : { groups: [PERSISTER_GROUP] });
  }
  const ready = Promise.all(opening).then(() => {});
  // The runtime's calls report a failed open; this copy must not crash the process.
  ready.catch(() => {});
  return { store, events, queries: hasQueries(store) ? store : null, bus, ready };
}

type FullStore =
  & Store
  & Required<Pick<Store, "listSessions" | "deleteSession" | "idleSessions">>
  & EventStore
  & EventQueries;

/** Resolve once the events published so far are stored: `persisted()`, or `flush()` on a bus without it. */
export function persisted(bus: EventBus): Promise<void> {
  return bus.persisted?.() ?? bus.flush();
}

/** A store whose calls wait until it is open. */
function lazyStore(opening: Promise<FullStore>): FullStore {
  opening.catch(() => {});
  return {
    appendHistory: async (org, session, entries) =>
      (await opening).appendHistory(org, session, entries),
    readHistory: async (org, session, query) => (await opening).readHistory(org, session, query),
    listSessions: async (org, query) => (await opening).listSessions(org, query),
    deleteSession: async (org, session, options) =>
      (await opening).deleteSession(org, session, options),
    idleSessions: async (before, limit) => (await opening).idleSessions(before, limit),
    writeEvents: async (events) => (await opening).writeEvents(events),
    writeDeadLetters: async (letters) => (await opening).writeDeadLetters(letters),
    usageTotals: async (query) => (await opening).usageTotals(query),
    auditTrail: async (query) => (await opening).auditTrail(query),
    close: async () => {
      const store = await opening.catch(() => null);
      await store?.close();
    },
  };
}

/** The bound of events held while the bus is still connecting. */
const EARLY_LIMIT = 10_000;

/** A bus that keeps what is published until it is connected, then hands it over in order. */
function lazyBus(opening: Promise<EventBus>): EventBus {
  let bus: EventBus | null = null;
  const early: TroupeEvent[] = [];
  const waiting = new Map<(event: TroupeEvent) => void, Unsubscribe | null>();
  opening.then((connected) => {
    bus = connected;
    for (const handler of waiting.keys()) waiting.set(handler, connected.subscribe(handler));
    for (const event of early) connected.publish(event);
    early.length = 0;
  }, () => {});
  return {
    publish(event) {
      if (bus === null) early.push(event);
      else bus.publish(event);
    },
    subscribe(handler) {
      waiting.set(handler, bus?.subscribe(handler) ?? null);
      return () => {
        waiting.get(handler)?.();
        waiting.delete(handler);
      };
    },
    consume(group, consumeOptions) {
      return (async function* () {
        const connected = await opening;
        if (connected.consume === undefined) {
          throw new TypeError("Cannot consume: the bus has no consumer groups");
        }
        yield* connected.consume(group, consumeOptions);
      })();
    },
    saturated: () => bus === null ? early.length >= EARLY_LIMIT : bus.saturated?.() ?? false,
    flush: async () => (await opening).flush(),
    // The events held until the bus connected were handed over before this wait begins.
    persisted: async () => persisted(await opening),
    close: async () => {
      const connected = await opening.catch(() => null);
      await connected?.close();
    },
  };
}
