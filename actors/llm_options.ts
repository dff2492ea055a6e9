// The provider options a caller may pass on, their checks, and their names on the OpenAI wire.

import { InvalidInputError } from "./errors.ts";
import type { JsonSchemaFormat, LlmOptions, ResponseFormat } from "./ports.ts";
import { checkInteger, show as showValue } from "./validate.ts";

/** The most a caller may ask a provider to generate in one call. */
export const MAX_TOKENS_LIMIT = 1_000_000;

/** The highest sampling temperature a caller may ask for (the lowest is 0). */
export const MAX_TEMPERATURE = 2;

/** The most stop sequences one call may name (OpenAI's limit). */
export const MAX_STOP_SEQUENCES = 4;

/**
 * Every option but `model`, with its name in an OpenAI chat completions body.
 * (`model` is not an option on that wire: the body's model is the route's own.)
 */
export const WIRE_NAMES = {
  maxTokens: "max_tokens",
  temperature: "temperature",
  topP: "top_p",
  stop: "stop",
  seed: "seed",
  presencePenalty: "presence_penalty",
  frequencyPenalty: "frequency_penalty",
  responseFormat: "response_format",
  reasoningEffort: "reasoning_effort",
} as const satisfies Record<Exclude<keyof LlmOptions, "model">, string>;

/** An option that has a name on the OpenAI wire. */
export type WireOption = keyof typeof WIRE_NAMES;

/** Every option name of {@linkcode LlmOptions}, in the order error messages list them. */
export const OPTION_NAMES: readonly (keyof LlmOptions)[] = [
  "model",
  ...Object.keys(WIRE_NAMES) as WireOption[],
];

const SCHEMA_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const EFFORT = /^[a-z]{1,32}$/;

/** As validate.ts shows a value, but a number by its value and an array as one. */
function show(value: unknown): string {
  if (typeof value === "number") return String(value);
  return Array.isArray(value) ? "an array" : showValue(value);
}

function refuse(field: string, action: string, rule: string, value: unknown): never {
  throw new InvalidInputError(
    field,
    `Cannot ${action}: ${field} must be ${rule}, current value is ${show(value)}`,
  );
}

function numberIn(field: string, value: unknown, min: number, max: number, action: string) {
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    refuse(field, action, `a number from ${min} to ${max}`, value);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Check one provider option, given under `field` (its name in the caller's
 * terms, e.g. `options.topP` or `top_p`, which every refusal names). `wire`
 * says the value is in OpenAI's wire shape: `stop` may be one string, and a
 * `json_schema` response format keeps its schema under `json_schema` (else
 * `jsonSchema`). Returns the option in Troupe's shape.
 *
 * @example
 * ```ts
 * import { checkLlmOption } from "./llm_options.ts";
 *
 * console.assert(checkLlmOption("topP", "top_p", 0.9, "complete the chat", true) === 0.9);
 * const stop = checkLlmOption("stop", "stop", "END", "complete the chat", true);
 * console.assert(JSON.stringify(stop) === '["END"]');
 * ```
 */
export function checkLlmOption<K extends keyof LlmOptions>(
  key: K,
  field: string,
  value: unknown,
  action: string,
  wire: boolean,
): NonNullable<LlmOptions[K]> {
  return check(key, field, value, action, wire) as NonNullable<LlmOptions[K]>;
}

function check(
  key: keyof LlmOptions,
  field: string,
  value: unknown,
  action: string,
  wire: boolean,
): unknown {
  switch (key) {
    case "model":
      if (typeof value !== "string" || value.trim() === "" || value.length > 256) {
        refuse(field, action, "a non-empty string of at most 256 characters", value);
      }
      return value;
    case "maxTokens":
      return checkInteger(field, value, 1, MAX_TOKENS_LIMIT, action);
    case "temperature":
      return numberIn(field, value, 0, MAX_TEMPERATURE, action);
    case "topP":
      return numberIn(field, value, 0, 1, action);
    case "presencePenalty":
    case "frequencyPenalty":
      return numberIn(field, value, -2, 2, action);
    case "seed":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) {
        refuse(field, action, "a whole number", value);
      }
      return value;
    case "stop":
      return checkStop(field, value, action, wire);
    case "responseFormat":
      return checkResponseFormat(field, value, action, wire);
    case "reasoningEffort":
      if (typeof value !== "string" || !EFFORT.test(value)) {
        refuse(field, action, 'a lower-case word such as "low", "medium" or "high"', value);
      }
      return value;
  }
}

function checkStop(field: string, value: unknown, action: string, wire: boolean): string[] {
  const rule = wire
    ? `a non-empty string or an array of 1 to ${MAX_STOP_SEQUENCES} non-empty strings`
    : `an array of 1 to ${MAX_STOP_SEQUENCES} non-empty strings`;
  const list = wire && typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_STOP_SEQUENCES) {
    refuse(field, action, rule, value);
  }
  list.forEach((item, i) => {
    if (typeof item !== "string" || item === "") {
      refuse(list === value ? `${field}[${i}]` : field, action, "a non-empty string", item);
    }
  });
  return [...list] as string[];
}

function checkResponseFormat(
  field: string,
  value: unknown,
  action: string,
  wire: boolean,
): ResponseFormat {
  const schemaKey = wire ? "json_schema" : "jsonSchema";
  const rule =
    `an object { type: "text" | "json_object" } or { type: "json_schema", ${schemaKey}: { name, schema? } }`;
  if (!isObject(value)) refuse(field, action, rule, value);
  const { type } = value;
  if (type !== "text" && type !== "json_object" && type !== "json_schema") {
    refuse(`${field}.type`, action, '"text", "json_object" or "json_schema"', type);
  }
  const allowed = type === "json_schema" ? ["type", schemaKey] : ["type"];
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new InvalidInputError(
        `${field}.${key}`,
        `Cannot ${action}: ${field}.${key} is not a field of a ${
          JSON.stringify(type)
        } response format; its fields are ${allowed.join(" and ")}`,
      );
    }
  }
  if (type !== "json_schema") return { type };
  return { type, jsonSchema: checkJsonSchema(`${field}.${schemaKey}`, value[schemaKey], action) };
}

function checkJsonSchema(field: string, value: unknown, action: string): JsonSchemaFormat {
  if (!isObject(value)) {
    refuse(field, action, "an object { name, description?, schema?, strict? }", value);
  }
  const format: JsonSchemaFormat = { name: "" };
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined || (item === null && key !== "name")) continue;
    const at = `${field}.${key}`;
    switch (key) {
      case "name":
        if (typeof item !== "string" || !SCHEMA_NAME.test(item)) {
          refuse(at, action, "1 to 64 letters, digits, '_' or '-'", item);
        }
        format.name = item;
        break;
      case "description":
        if (typeof item !== "string") refuse(at, action, "a string", item);
        format.description = item;
        break;
      case "schema":
        if (!isObject(item)) refuse(at, action, "a JSON Schema object", item);
        format.schema = item;
        break;
      case "strict":
        if (typeof item !== "boolean") refuse(at, action, "true or false", item);
        format.strict = item;
        break;
      default:
        throw new InvalidInputError(
          at,
          `Cannot ${action}: ${at} is not a field of a JSON schema format; its fields are name, description, schema and strict`,
        );
    }
  }
  if (format.name === "") {
    refuse(`${field}.name`, action, "1 to 64 letters, digits, '_' or '-'", value.name);
  }
  return format;
}

/**
 * An option's value as an OpenAI chat completions body carries it (a
 * `json_schema` response format's schema under `json_schema`).
 *
 * @example
 * ```ts
 * import { wireValue } from "./llm_options.ts";
 *
 * const format = wireValue("responseFormat", { type: "json_schema", jsonSchema: { name: "a" } });
 * console.assert(JSON.stringify(format) === '{"type":"json_schema","json_schema":{"name":"a"}}');
 * ```
 */
export function wireValue<K extends WireOption>(
  key: K,
  value: NonNullable<LlmOptions[K]>,
): unknown {
  if (key !== "responseFormat") return value;
  const format = value as ResponseFormat;
  return format.type === "json_schema"
    ? { type: format.type, json_schema: format.jsonSchema }
    : { type: format.type };
}

/**
 * Check the provider options of a message, named as {@linkcode LlmOptions}
 * names them (`maxTokens` a whole number from 1 to 1,000,000, `temperature` 0
 * to 2, `topP` 0 to 1, the penalties -2 to 2, `stop` 1 to 4 non-empty
 * strings, ...); any other key is refused (a typo such as `max_tokens` would
 * otherwise be ignored without a word). Absent or `undefined` keys are left
 * out of the result.
 *
 * @example
 * ```ts
 * import { checkLlmOptions } from "./llm_options.ts";
 *
 * const options = checkLlmOptions({ maxTokens: 64, temperature: 0.2, stop: ["\n\n"] }, "send");
 * console.assert(options.maxTokens === 64 && options.stop?.length === 1);
 * ```
 */
export function checkLlmOptions(value: unknown, action: string): LlmOptions {
  const rule = `an object { ${OPTION_NAMES.map((name) => `${name}?`).join(", ")} }`;
  if (!isObject(value)) refuse("options", action, rule, value);
  const options: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (field === undefined) continue;
    if (!(OPTION_NAMES as readonly string[]).includes(key)) {
      throw new InvalidInputError(
        `options.${key}`,
        `Cannot ${action}: options.${key} is not an option; the options are ${
          OPTION_NAMES.join(", ")
        }`,
      );
    }
    options[key] = check(key as keyof LlmOptions, `options.${key}`, field, action, false);
  }
  return options as LlmOptions;
}
