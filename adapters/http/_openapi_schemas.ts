// The JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what Troupe's HTTP API sends and answers.

import { MAX_STOP_SEQUENCES, MAX_TEMPERATURE, MAX_TOKENS_LIMIT } from "../../actors/llm_options.ts";
import { EVENT_TYPES } from "../../actors/validate_event.ts";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const int = (description: string): Schema => ({ type: "integer", minimum: 0, description });
const str = (description: string): Schema => ({ type: "string", description });

/** A page read newest first with a `before` cursor: its items (oldest first) under `key`. */
const olderPage = (key: string, item: string): Schema => ({
  type: "object",
  required: [key, "next"],
  properties: {
    [key]: { type: "array", items: ref(item), description: "Oldest first." },
    next: {
      type: ["string", "null"],
      description: "Pass as `before` for the page before this one; null at the start.",
    },
  },
});

const USAGE_FIELDS = {
  inputTokens: int("Prompt tokens."),
  outputTokens: int("Generated tokens."),
  cachedTokens: int("Prompt tokens served from a cache."),
  reasoningTokens: int("Generated tokens spent on reasoning."),
  totalTokens: int("Input plus output."),
};

/**
 * The sampling and format options both APIs pass on to the provider, under
 * each API's names (`wire`: OpenAI's snake case, which may be `null`).
 */
function samplingFields(wire: boolean): Record<string, Schema> {
  const orNull = (type: string) => (wire ? [type, "null"] : type);
  const name = (camel: string, snake: string) => (wire ? snake : camel);
  const schemaKey = name("jsonSchema", "json_schema");
  const stopItems = { type: "string", minLength: 1 };
  return {
    [name("topP", "top_p")]: {
      type: orNull("number"),
      minimum: 0,
      maximum: 1,
      description: "Nucleus sampling: sample only from this top probability mass.",
    },
    stop: {
      ...(wire ? { type: ["string", "array", "null"], minLength: 1 } : { type: "array" }),
      items: stopItems,
      minItems: 1,
      maxItems: MAX_STOP_SEQUENCES,
      description: `Up to ${MAX_STOP_SEQUENCES} sequences at which generation stops.`,
    },
    seed: { type: orNull("integer"), description: "Ask for repeatable sampling (best effort)." },
    [name("presencePenalty", "presence_penalty")]: {
      type: orNull("number"),
      minimum: -2,
      maximum: 2,
      description: "Penalise tokens that already appeared.",
    },
    [name("frequencyPenalty", "frequency_penalty")]: {
      type: orNull("number"),
      minimum: -2,
      maximum: 2,
      description: "Penalise tokens by how often they already appeared.",
    },
    [name("responseFormat", "response_format")]: {
      type: orNull("object"),
      required: ["type"],
      additionalProperties: false,
      properties: {
        type: { type: "string", enum: ["text", "json_object", "json_schema"] },
        [schemaKey]: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            name: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
            description: { type: "string" },
            schema: { type: "object", description: "A JSON Schema the reply must match." },
            strict: { type: "boolean" },
          },
        },
      },
      description:
        `The shape of the reply; the upstream enforces it. ${schemaKey} goes with type json_schema only.`,
    },
    [name("reasoningEffort", "reasoning_effort")]: {
      type: orNull("string"),
      pattern: "^[a-z]{1,32}$",
      description: 'How hard a reasoning model thinks, e.g. "low", "medium", "high".',
    },
  };
}

/** Every schema the document refers to, by name. */
export const SCHEMAS: Record<string, Schema> = {
  Error: {
    type: "object",
    description: "The body of every error response.",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: str('Stable machine-readable code, e.g. "invalid_input", "rate_limited".'),
          message: str("What is wrong, for people."),
          field: str("The offending field, when one is to blame."),
        },
      },
    },
  },
  OpenAiError: {
    type: "object",
    description:
      "An error of the OpenAI-compatible routes: Troupe's error with OpenAI's `type` and `param` added.",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message", "type", "param"],
        properties: {
          code: str('Stable code, e.g. "superseded", "invalid_input", "provider_error".'),
          message: str("What is wrong, for people."),
          field: str("The offending field, when one is to blame."),
          type: str('OpenAI\'s error class, e.g. "invalid_request_error", "conflict_error".'),
          param: { type: ["string", "null"], description: "The offending field, or null." },
          run: str(
            "The run the message was part of (rejected: the run in flight that refused it).",
          ),
          superseded_by: str("superseded: the run that now answers the message."),
        },
      },
    },
  },
  Policy: {
    type: "string",
    enum: ["merge", "enqueue", "reject", "interrupt"],
    description: "What happens to a message that arrives while a run is in flight.",
  },
  SendMessage: {
    type: "object",
    additionalProperties: false,
    required: ["content"],
    properties: {
      content: { type: "string", minLength: 1, description: "The message; not blank." },
      id: {
        type: "string",
        pattern: "^[A-Za-z0-9._:@-]{1,128}$",
        description:
          "Your id for the message: sending the same id again answers the first outcome without a second run.",
      },
      policy: ref("Policy"),
      options: ref("LlmOptions"),
    },
  },
  LlmOptions: {
    type: "object",
    additionalProperties: false,
    description:
      "Provider options for this message's run; a merged run uses the options of its last message. The model is the server's (TROUPE_LLM_MODEL).",
    properties: {
      maxTokens: {
        type: "integer",
        minimum: 1,
        maximum: MAX_TOKENS_LIMIT,
        description: "Most tokens the reply may have.",
      },
      temperature: {
        type: "number",
        minimum: 0,
        maximum: MAX_TEMPERATURE,
        description: "Sampling temperature.",
      },
      ...samplingFields(false),
    },
  },
  Usage: {
    type: "object",
    required: [...Object.keys(USAGE_FIELDS), "source"],
    properties: {
      ...USAGE_FIELDS,
      source: {
        type: "string",
        enum: ["reported", "estimated"],
        description: "Whether the upstream reported the counts or Troupe estimated them.",
      },
    },
  },
  Reply: {
    type: "object",
    description: "The outcome of one message.",
    required: ["status", "org", "session", "messageId", "runId", "text", "answered"],
    properties: {
      status: {
        type: "string",
        enum: ["completed", "superseded", "rejected", "cancelled", "failed"],
      },
      org: str("The org of the session."),
      session: str("The session."),
      messageId: str("The message this reply is for."),
      runId: str("The run the message was part of when it ended (rejected: the run in flight)."),
      text: str('The answer (completed), else "".'),
      answered: {
        type: "array",
        items: { type: "string" },
        description: "The ids of the messages the run answered, in arrival order (completed).",
      },
      usage: ref("Usage"),
      model: str("The model that answered (completed)."),
      finishReason: {
        type: "string",
        enum: ["stop", "length", "content_filter", "tool_calls", "error"],
        description: "Why the provider stopped generating (completed).",
      },
      supersededBy: str("The run that now answers this message (superseded)."),
      error: {
        type: "object",
        description: "What went wrong (failed).",
        required: ["code", "message", "retryable"],
        properties: {
          code: str('Stable code, e.g. "provider_error", "shutting_down".'),
          message: str("For people."),
          retryable: { type: "boolean", description: "Whether sending again later may succeed." },
        },
      },
    },
  },
  HistoryEntry: {
    type: "object",
    required: ["id", "role", "content", "ts"],
    properties: {
      id: str("The message id (user turns) or the run id (assistant turns)."),
      role: { type: "string", enum: ["user", "assistant"] },
      content: str("The text as sent or answered."),
      ts: int("When it was received or produced, in ms since the epoch."),
      answered: {
        type: "array",
        items: { type: "string" },
        description: "Assistant turns: the ids of the user messages the run answered.",
      },
    },
  },
  HistoryPage: olderPage("messages", "HistoryEntry"),
  Event: {
    type: "object",
    description:
      "An event as Troupe emitted and stored it; each type's fields are listed in docs/events.md.",
    required: ["id", "type", "ts", "org", "session"],
    properties: {
      id: str("The event id (a UUIDv7)."),
      type: { type: "string", enum: [...EVENT_TYPES] },
      ts: int("When it happened, in ms since the epoch."),
      org: str("The org."),
      session: str("The session."),
      run: str("The run, for the events of a run."),
    },
    additionalProperties: true,
  },
  AuditPage: olderPage("events", "Event"),
  SessionPage: {
    type: "object",
    required: ["sessions", "next"],
    properties: {
      sessions: {
        type: "array",
        description: "Sessions with stored history, by session id.",
        items: {
          type: "object",
          required: ["session", "createdAt", "lastSeenAt"],
          properties: {
            session: str("The session id."),
            createdAt: int("The time of its first stored entry, in ms since the epoch."),
            lastSeenAt: int("The time of its newest stored entry, in ms since the epoch."),
          },
        },
      },
      next: {
        type: ["string", "null"],
        description: "Pass as `after` for the next page; null on the last page.",
      },
    },
  },
  UsageReport: {
    type: "object",
    required: ["groupBy", "from", "to", "totals"],
    properties: {
      groupBy: { type: "string", enum: ["session", "model", "none"] },
      from: { type: ["integer", "null"], description: "The start, in ms since the epoch." },
      to: { type: ["integer", "null"], description: "The end (exclusive), in ms since the epoch." },
      totals: {
        type: "array",
        items: {
          type: "object",
          required: ["key", "calls", ...Object.keys(USAGE_FIELDS)],
          properties: {
            key: {
              type: ["string", "null"],
              description: "The session or model of the group; null when not grouped.",
            },
            calls: int("LLM calls."),
            ...USAGE_FIELDS,
          },
        },
      },
    },
  },
  Health: {
    type: "object",
    required: ["status"],
    properties: { status: { type: "string", enum: ["ok", "ready", "draining"] } },
    additionalProperties: true,
  },
  ChatMessage: {
    type: "object",
    required: ["role"],
    properties: {
      role: { type: "string", enum: ["system", "developer", "user", "assistant"] },
      content: {
        description: "Text, or text parts (assistant turns may be null).",
        oneOf: [
          { type: "string" },
          {
            type: "array",
            items: {
              type: "object",
              required: ["type", "text"],
              properties: { type: { const: "text" }, text: { type: "string" } },
            },
          },
          { type: "null" },
        ],
      },
      name: str("Accepted and not used."),
    },
  },
  ChatCompletionRequest: {
    type: "object",
    required: ["model", "messages"],
    description:
      "OpenAI's chat completions body. The sampling and format parameters (max_tokens or max_completion_tokens, temperature, top_p, stop, seed, presence_penalty, frequency_penalty, response_format, reasoning_effort) go on to the provider; other OpenAI parameters (user, store, metadata, logit_bias, ...) are accepted and not used; tools, n > 1, logprobs and audio output are refused.",
    properties: {
      model: str("Echoed back; Troupe answers with its configured provider."),
      messages: {
        type: "array",
        minItems: 1,
        items: ref("ChatMessage"),
        description:
          "The conversation. Its trailing user turns are the session's new message; the rest is the conversation the run answers from.",
      },
      stream: { type: "boolean", default: false },
      stream_options: {
        type: ["object", "null"],
        properties: { include_usage: { type: "boolean", default: false } },
      },
      n: { type: "integer", const: 1 },
      max_tokens: {
        type: ["integer", "null"],
        minimum: 1,
        maximum: MAX_TOKENS_LIMIT,
        description: "Upper bound on generated tokens, passed to the provider.",
      },
      max_completion_tokens: {
        type: ["integer", "null"],
        minimum: 1,
        maximum: MAX_TOKENS_LIMIT,
        description: "The newer name of max_tokens; wins when both are sent.",
      },
      temperature: {
        type: ["number", "null"],
        minimum: 0,
        maximum: MAX_TEMPERATURE,
        description: "Sampling temperature, passed to the provider.",
      },
      ...samplingFields(true),
    },
  },
  OpenAiUsage: {
    type: "object",
    required: ["prompt_tokens", "completion_tokens", "total_tokens"],
    properties: {
      prompt_tokens: int("Prompt tokens."),
      completion_tokens: int("Generated tokens."),
      total_tokens: int("Both."),
      prompt_tokens_details: {
        type: "object",
        properties: { cached_tokens: int("Prompt tokens served from a cache.") },
      },
      completion_tokens_details: {
        type: "object",
        properties: { reasoning_tokens: int("Generated tokens spent on reasoning.") },
      },
    },
  },
  ChatCompletion: {
    type: "object",
    required: ["id", "object", "created", "model", "choices", "usage"],
    properties: {
      id: str("chatcmpl-..."),
      object: { const: "chat.completion" },
      created: int("Seconds since the epoch."),
      model: str("The model that answered."),
      choices: {
        type: "array",
        minItems: 1,
        maxItems: 1,
        items: {
          type: "object",
          required: ["index", "message", "finish_reason"],
          properties: {
            index: { const: 0 },
            message: {
              type: "object",
              required: ["role", "content"],
              properties: {
                role: { const: "assistant" },
                content: { type: "string" },
                refusal: { type: "null" },
              },
            },
            logprobs: { type: "null" },
            finish_reason: {
              type: "string",
              enum: ["stop", "length", "content_filter", "tool_calls"],
            },
          },
        },
      },
      usage: ref("OpenAiUsage"),
    },
  },
  ChatCompletionChunk: {
    type: "object",
    description:
      "One `data:` event of a stream. The first has `delta.role`, then one per piece of text, then one with `finish_reason`; with include_usage every chunk has `usage` (null but in the last, whose `choices` is empty).",
    required: ["id", "object", "created", "model", "choices"],
    properties: {
      id: str("The same on every chunk of a stream."),
      object: { const: "chat.completion.chunk" },
      created: int("Seconds since the epoch."),
      model: str("The model named in the request."),
      choices: {
        type: "array",
        maxItems: 1,
        items: {
          type: "object",
          required: ["index", "delta", "finish_reason"],
          properties: {
            index: { const: 0 },
            delta: {
              type: "object",
              properties: {
                role: { const: "assistant" },
                content: { type: "string" },
                refusal: { type: "null" },
              },
            },
            logprobs: { type: "null" },
            finish_reason: { type: ["string", "null"] },
          },
        },
      },
      usage: { oneOf: [ref("OpenAiUsage"), { type: "null" }] },
    },
  },
  ModelList: {
    type: "object",
    required: ["object", "data"],
    properties: {
      object: { const: "list" },
      data: {
        type: "array",
        items: {
          type: "object",
          required: ["id", "object", "created", "owned_by"],
          properties: {
            id: str("A model id."),
            object: { const: "model" },
            created: int("Seconds since the epoch."),
            owned_by: str('"troupe".'),
          },
        },
      },
    },
  },
};
