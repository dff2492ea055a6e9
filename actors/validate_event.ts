// Checks an event received from the bus against the `TroupeEvent` union before a persister stores it.

import { type EventEnvelope, POLICIES, type TroupeEvent, type TroupeEventType } from "./events.ts";

/** What {@linkcode validateEvent} concludes about one piece of data. */
export type EventValidation =
  | { ok: true; event: TroupeEvent }
  | { ok: false; reason: string; id: string | null };

/** One field's rule: a test and the words that say what it accepts. */
interface FieldRule {
  /** Whether the value is acceptable. */
  test(value: unknown): boolean;
  /** What the field must be, completing "x must be ...". */
  expected: string;
}

const MAX_ID_LENGTH = 128;

function rule(expected: string, test: (value: unknown) => boolean): FieldRule {
  return { expected, test };
}

function oneOf(...values: readonly string[]): FieldRule {
  return rule(
    `one of ${values.join(", ")}`,
    (value) => typeof value === "string" && values.includes(value),
  );
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isDuration(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

const NAME = rule("a non-empty string", isNonEmptyString);
const TEXT = rule("a string", (value) => typeof value === "string");
const IDS = rule(
  "an array of non-empty strings",
  (value) => Array.isArray(value) && value.every(isNonEmptyString),
);
const COUNT = rule("a non-negative integer", isCount);
const DURATION = rule("a non-negative finite number", isDuration);
const FLAG = rule("a boolean", (value) => typeof value === "boolean");

/** The type-specific fields of one event type, every one of them, each with its rule. */
type FieldTable = {
  [T in TroupeEventType]: {
    [K in Exclude<keyof Extract<TroupeEvent, { type: T }>, keyof EventEnvelope | "type">]-?:
      FieldRule;
  };
};

/**
 * The one place that says what each event type carries. The compiler checks
 * that it names every field of every event type, and no other.
 */
const EVENT_FIELDS: FieldTable = {
  "session.activated": { historyLength: COUNT },
  "session.passivated": { reason: oneOf("idle", "evicted", "shutdown", "deleted") },
  "session.deleted": { reason: oneOf("requested", "retention") },
  "message.received": { message: NAME, policy: oneOf(...POLICIES), length: COUNT },
  "message.rejected": { message: NAME, run: NAME, reason: oneOf("busy") },
  "message.dropped": { message: NAME, reason: oneOf("cancelled", "shutdown") },
  "run.started": { run: NAME, messages: IDS },
  "run.superseded": {
    run: NAME,
    supersededBy: NAME,
    policy: oneOf("merge", "interrupt"),
    messages: IDS,
    started: FLAG,
  },
  "run.completed": { run: NAME, messages: IDS, finishReason: NAME },
  "run.failed": { run: NAME, messages: IDS, code: NAME, error: TEXT },
  "run.cancelled": { run: NAME, messages: IDS, reason: oneOf("cancelled", "shutdown") },
  "usage.recorded": {
    run: NAME,
    provider: NAME,
    model: NAME,
    inputTokens: COUNT,
    outputTokens: COUNT,
    cachedTokens: COUNT,
    reasoningTokens: COUNT,
    totalTokens: COUNT,
    source: oneOf("reported", "estimated"),
    status: oneOf("completed", "cancelled", "failed"),
    latencyMs: DURATION,
    ttftMs: rule("null or a non-negative finite number", (v) => v === null || isDuration(v)),
    messages: IDS,
  },
  "llm.attempted": {
    run: NAME,
    request: NAME,
    attempt: rule("an integer >= 1", (v) => isCount(v) && (v as number) >= 1),
    provider: NAME,
    model: NAME,
    outcome: oneOf("completed", "failed", "cancelled"),
    status: rule(
      "null or an HTTP status",
      (v) => v === null || (isCount(v) && (v as number) < 600),
    ),
    code: rule("null or a non-empty string", (v) => v === null || isNonEmptyString(v)),
    error: rule("null or a string", (v) => v === null || typeof v === "string"),
    retryInMs: rule("null or a non-negative finite number", (v) => v === null || isDuration(v)),
    latencyMs: DURATION,
  },
  "request.rejected": { code: NAME, reason: TEXT },
};

/**
 * Every event type, in the order `EVENT_FIELDS` lists them.
 *
 * @example
 * ```ts
 * import { EVENT_TYPES } from "./validate_event.ts";
 *
 * console.assert(EVENT_TYPES.includes("usage.recorded"));
 * ```
 */
export const EVENT_TYPES: readonly TroupeEventType[] = Object.keys(
  EVENT_FIELDS,
) as TroupeEventType[];

/** The envelope every event carries, checked before its type-specific fields. */
const ENVELOPE: Record<keyof EventEnvelope, FieldRule> = {
  id: rule(
    `a non-empty string of at most ${MAX_ID_LENGTH} characters`,
    (value) => isNonEmptyString(value) && value.length <= MAX_ID_LENGTH,
  ),
  ts: rule("a finite number", (value) => typeof value === "number" && Number.isFinite(value)),
  org: NAME,
  session: NAME,
};

function show(value: unknown): string {
  if (value === undefined) return "missing";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  return Array.isArray(value) ? "an array" : `a value of type ${typeof value}`;
}

/** The rules as field and rule pairs, made once: every event persisted is checked against them. */
type RuleList = readonly (readonly [field: string, rule: FieldRule])[];
const ENVELOPE_RULES: RuleList = Object.entries(ENVELOPE);
const TYPE_RULES = new Map<string, RuleList>(
  Object.entries(EVENT_FIELDS).map(([type, rules]) => [type, Object.entries(rules)]),
);

function firstBreach(
  where: string,
  record: Record<string, unknown>,
  rules: RuleList,
): string | null {
  for (const [field, { test, expected }] of rules) {
    const value = record[field];
    if (!test(value)) {
      return `${where}: ${field} must be ${expected}, current value is ${show(value)}`;
    }
  }
  return null;
}

/**
 * Check that data received from the bus is a well-formed {@linkcode TroupeEvent}:
 * the envelope (`id`, `type`, `ts`, `org`, `session`) and every field its type
 * requires, with its JavaScript type. A refusal names the first bad field and
 * its value, and carries the event's id when the id itself was usable, so the
 * dead letter can point back to it. Fields beyond those the type requires are
 * kept as they are.
 *
 * @example Refusing a usage record with a negative token count
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateEvent } from "./validate_event.ts";
 *
 * const result = validateEvent({
 *   id: "e1", type: "run.started", ts: 1, org: "o", session: "s", run: "r1", messages: ["m1"],
 * });
 * assert.ok(result.ok);
 *
 * const bad = validateEvent({ id: "e2", type: "session.activated", ts: 1, org: "o", session: "s", historyLength: -1 });
 * assert.deepEqual(bad, {
 *   ok: false,
 *   id: "e2",
 *   reason: "session.activated: historyLength must be a non-negative integer, current value is -1",
 * });
 * ```
 */
export function validateEvent(data: unknown): EventValidation {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return {
      ok: false,
      id: null,
      reason: `event must be an object, current value is ${show(data)}`,
    };
  }
  const record = data as Record<string, unknown>;
  const id = ENVELOPE.id.test(record.id) ? record.id as string : null;
  const type = record.type;
  const rules = typeof type === "string" ? TYPE_RULES.get(type) : undefined;
  if (rules === undefined) {
    return {
      ok: false,
      id,
      reason: `event: type must be one of ${EVENT_TYPES.join(", ")}, current value is ${
        show(type)
      }`,
    };
  }
  const reason = firstBreach(type as string, record, ENVELOPE_RULES) ??
    firstBreach(type as string, record, rules);
  return reason === null ? { ok: true, event: data as TroupeEvent } : { ok: false, id, reason };
}
