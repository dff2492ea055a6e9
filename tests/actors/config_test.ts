// Configuration tests: defaults, variables, flags over variables, and refusals that name the setting.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { CONFIG_ENV_VARS, CONFIG_FLAGS, DEFAULT_CONFIG, parseConfig } from "../../actors/config.ts";
import { InvalidInputError } from "../../actors/errors.ts";

/** Assert that `run` throws an InvalidInputError naming `field` in both `field` and message. */
function assertRefuses(run: () => unknown, field: string, accepts: string): void {
  assertThrows(run, (error: unknown) => {
    assert(error instanceof InvalidInputError, `expected InvalidInputError, got ${error}`);
    assertEquals(error.field, field);
    assert(error.message.startsWith(`Cannot start: ${field} must be`), error.message);
    assert(error.message.includes(accepts), error.message);
    assert(error.message.includes("current value is"), error.message);
    return true;
  });
}

Deno.test("parseConfig with nothing set gives the laptop-safe defaults", () => {
  assertEquals(parseConfig({}), {
    host: "127.0.0.1",
    port: 8787,
    policy: "merge",
    debounceMs: 0,
    idleTimeoutMs: 300_000,
    maxActiveSessions: 10_000,
    sessionRetentionMs: 0,
    logLevel: "info",
    maxBodyBytes: 1_048_576,
    databaseUrl: "./data/troupe.db",
    natsUrl: null,
    durableReplies: false,
    ...LLM_DEFAULTS,
    ...RATE_LIMIT_DEFAULTS,
  });
  assertEquals(parseConfig({}), { ...DEFAULT_CONFIG });
});

// With no upstream configured, the embedded mock answers; these only shape a configured one.
const LLM_DEFAULTS = {
  llmBaseUrl: null,
  llmApiKey: null,
  llmModel: null,
  llmFallbackModels: [],
  llmTimeoutMs: 60_000,
  llmDeadlineMs: 180_000,
  llmRetries: 2,
  llmWorkers: 0,
  llmWorkerConcurrency: 512,
  llmQueueBound: 10_000,
  llmMaxReplyBytes: 16 * 1024 * 1024,
  llmMaxTokensParameter: "max_tokens",
};

// On by default, generous: 10 requests/s per session, 1,000/s per org, bursts of a minute's worth.
const RATE_LIMIT_DEFAULTS = {
  rateLimitSession: 600,
  rateLimitOrg: 60_000,
  rateLimitWindowMs: 60_000,
  rateLimitAlgorithm: "token-bucket",
};

const GOOD_ENV: Record<string, string> = {
  TROUPE_HOST: "localhost",
  TROUPE_PORT: "0",
  TROUPE_POLICY: "interrupt",
  TROUPE_DEBOUNCE_MS: "25",
  TROUPE_IDLE_TIMEOUT_MS: "1000",
  TROUPE_MAX_ACTIVE_SESSIONS: "3",
  TROUPE_SESSION_RETENTION_MS: "86400000",
  TROUPE_LOG_LEVEL: "debug",
  TROUPE_MAX_BODY_BYTES: "2048",
  TROUPE_DATABASE_URL: "postgres://troupe:secret@db.internal:5432/troupe",
  TROUPE_NATS_URL: "nats://127.0.0.1:4222",
  TROUPE_DURABLE_REPLIES: "true",
  TROUPE_LLM_BASE_URL: "https://api.example.com/v1/",
  TROUPE_LLM_API_KEY: "sk-test-123",
  TROUPE_LLM_MODEL: "gpt-4o-mini",
  TROUPE_LLM_FALLBACK_MODELS: "gpt-4o, meta-llama/Llama-3.1-8B:free",
  TROUPE_LLM_TIMEOUT_MS: "1000",
  TROUPE_LLM_DEADLINE_MS: "5000",
  TROUPE_LLM_RETRIES: "3",
  TROUPE_LLM_WORKERS: "2",
  TROUPE_LLM_WORKER_CONCURRENCY: "64",
  TROUPE_LLM_QUEUE_BOUND: "100",
  TROUPE_LLM_MAX_REPLY_BYTES: "65536",
  TROUPE_LLM_MAX_TOKENS_PARAMETER: "max_completion_tokens",
  TROUPE_RATE_LIMIT_SESSION: "0",
  TROUPE_RATE_LIMIT_ORG: "50",
  TROUPE_RATE_LIMIT_WINDOW_MS: "1000",
  TROUPE_RATE_LIMIT_ALGORITHM: "sliding-window",
};

Deno.test("parseConfig reads every TROUPE_* variable", () => {
  const config = parseConfig(GOOD_ENV);
  assertEquals(config, {
    host: "localhost",
    port: 0,
    policy: "interrupt",
    debounceMs: 25,
    idleTimeoutMs: 1000,
    maxActiveSessions: 3,
    sessionRetentionMs: 86_400_000,
    logLevel: "debug",
    maxBodyBytes: 2048,
    databaseUrl: "postgres://troupe:secret@db.internal:5432/troupe",
    natsUrl: "nats://127.0.0.1:4222",
    durableReplies: true,
    llmBaseUrl: "https://api.example.com/v1",
    llmApiKey: "sk-test-123",
    llmModel: "gpt-4o-mini",
    llmFallbackModels: ["gpt-4o", "meta-llama/Llama-3.1-8B:free"],
    llmTimeoutMs: 1000,
    llmDeadlineMs: 5000,
    llmRetries: 3,
    llmWorkers: 2,
    llmWorkerConcurrency: 64,
    llmQueueBound: 100,
    llmMaxReplyBytes: 65536,
    llmMaxTokensParameter: "max_completion_tokens",
    rateLimitSession: 0,
    rateLimitOrg: 50,
    rateLimitWindowMs: 1000,
    rateLimitAlgorithm: "sliding-window",
  });
});

Deno.test("CONFIG_ENV_VARS lists exactly the variables parseConfig reads", () => {
  assertEquals([...CONFIG_ENV_VARS].sort(), [
    "TROUPE_DATABASE_URL",
    "TROUPE_DEBOUNCE_MS",
    "TROUPE_DURABLE_REPLIES",
    "TROUPE_HOST",
    "TROUPE_IDLE_TIMEOUT_MS",
    "TROUPE_LLM_API_KEY",
    "TROUPE_LLM_BASE_URL",
    "TROUPE_LLM_DEADLINE_MS",
    "TROUPE_LLM_FALLBACK_MODELS",
    "TROUPE_LLM_MAX_REPLY_BYTES",
    "TROUPE_LLM_MAX_TOKENS_PARAMETER",
    "TROUPE_LLM_MODEL",
    "TROUPE_LLM_QUEUE_BOUND",
    "TROUPE_LLM_RETRIES",
    "TROUPE_LLM_TIMEOUT_MS",
    "TROUPE_LLM_WORKERS",
    "TROUPE_LLM_WORKER_CONCURRENCY",
    "TROUPE_LOG_LEVEL",
    "TROUPE_MAX_ACTIVE_SESSIONS",
    "TROUPE_MAX_BODY_BYTES",
    "TROUPE_NATS_URL",
    "TROUPE_POLICY",
    "TROUPE_PORT",
    "TROUPE_RATE_LIMIT_ALGORITHM",
    "TROUPE_RATE_LIMIT_ORG",
    "TROUPE_RATE_LIMIT_SESSION",
    "TROUPE_RATE_LIMIT_WINDOW_MS",
    "TROUPE_SESSION_RETENTION_MS",
  ]);
});

Deno.test("TROUPE_DURABLE_REPLIES reads true, false, 1 and 0, in any case", () => {
  const read = (value: string) => parseConfig({ TROUPE_DURABLE_REPLIES: value }).durableReplies;
  assertEquals(["true", " TRUE ", "1", "false", "False", "0"].map(read), [
    true,
    true,
    true,
    false,
    false,
    false,
  ]);
  assertEquals(parseConfig({}, ["--durable-replies", "1"]).durableReplies, true);
  assertEquals(parseConfig({}).durableReplies, false);
});

Deno.test("a flag overrides its variable, in both --name value and --name=value forms", () => {
  const env = { TROUPE_HOST: "localhost", TROUPE_PORT: "9000", TROUPE_POLICY: "reject" };
  const config = parseConfig(env, ["--host", "::1", "--port=0", "--max-body-bytes", "10"]);
  assertEquals(config.host, "::1");
  assertEquals(config.port, 0);
  assertEquals(config.maxBodyBytes, 10);
  assertEquals(config.policy, "reject");
});

Deno.test("every setting has a flag", () => {
  const config = parseConfig({}, [
    "--host=localhost",
    "--port=1",
    "--policy=enqueue",
    "--debounce-ms=2",
    "--idle-timeout-ms=3",
    "--max-active-sessions=4",
    "--session-retention-ms=13",
    "--log-level=warn",
    "--max-body-bytes=5",
    "--database-url=memory",
    "--nats-url=tls://nats.internal:4222",
    "--durable-replies=true",
    "--llm-base-url=http://127.0.0.1:9/v1",
    "--llm-api-key=k",
    "--llm-model=m",
    "--llm-fallback-models=a,b",
    "--llm-timeout-ms=6",
    "--llm-deadline-ms=7",
    "--llm-retries=0",
    "--llm-workers=1",
    "--llm-worker-concurrency=8",
    "--llm-queue-bound=9",
    "--llm-max-reply-bytes=2048",
    "--llm-max-tokens-parameter=max_completion_tokens",
    "--rate-limit-session=10",
    "--rate-limit-org=11",
    "--rate-limit-window-ms=12",
    "--rate-limit-algorithm=token-bucket",
  ]);
  assertEquals(config, {
    host: "localhost",
    port: 1,
    policy: "enqueue",
    debounceMs: 2,
    idleTimeoutMs: 3,
    maxActiveSessions: 4,
    sessionRetentionMs: 13,
    logLevel: "warn",
    maxBodyBytes: 5,
    databaseUrl: "memory",
    natsUrl: "tls://nats.internal:4222",
    durableReplies: true,
    llmBaseUrl: "http://127.0.0.1:9/v1",
    llmApiKey: "k",
    llmModel: "m",
    llmFallbackModels: ["a", "b"],
    llmTimeoutMs: 6,
    llmDeadlineMs: 7,
    llmRetries: 0,
    llmWorkers: 1,
    llmWorkerConcurrency: 8,
    llmQueueBound: 9,
    llmMaxReplyBytes: 2048,
    llmMaxTokensParameter: "max_completion_tokens",
    rateLimitSession: 10,
    rateLimitOrg: 11,
    rateLimitWindowMs: 12,
    rateLimitAlgorithm: "token-bucket",
  });
  assertEquals(CONFIG_FLAGS.length, CONFIG_ENV_VARS.length);
});

Deno.test("an empty or blank variable counts as unset", () => {
  assertEquals(parseConfig({ TROUPE_PORT: "", TROUPE_HOST: "  " }).port, 8787);
  assertEquals(parseConfig({ TROUPE_PORT: "", TROUPE_HOST: "  " }).host, "127.0.0.1");
});

Deno.test("parseConfig is pure: it ignores the process environment", () => {
  Deno.env.set("TROUPE_PORT", "1234");
  try {
    assertEquals(parseConfig({}).port, 8787);
  } finally {
    Deno.env.delete("TROUPE_PORT");
  }
});

const BAD_VALUES: [variable: string, flag: string, value: string, accepts: string][] = [
  ["TROUPE_PORT", "--port", "abc", "a whole number from 0 to 65535"],
  ["TROUPE_PORT", "--port", "65536", "a whole number from 0 to 65535"],
  ["TROUPE_PORT", "--port", "-1", "a whole number from 0 to 65535"],
  ["TROUPE_PORT", "--port", "1e3", "a whole number from 0 to 65535"],
  ["TROUPE_PORT", "--port", "80.5", "a whole number from 0 to 65535"],
  ["TROUPE_HOST", "--host", "http://x", "a host name or an IP address"],
  ["TROUPE_HOST", "--host", "a b", "a host name or an IP address"],
  ["TROUPE_POLICY", "--policy", "later", "one of merge, enqueue, reject, interrupt"],
  ["TROUPE_DEBOUNCE_MS", "--debounce-ms", "soon", "a whole number from 0 to 2147483647"],
  ["TROUPE_DEBOUNCE_MS", "--debounce-ms", "2147483648", "a whole number from 0 to 2147483647"],
  ["TROUPE_IDLE_TIMEOUT_MS", "--idle-timeout-ms", "0", "a whole number from 1 to 2147483647"],
  ["TROUPE_MAX_ACTIVE_SESSIONS", "--max-active-sessions", "0", "a whole number from 1 to"],
  ["TROUPE_SESSION_RETENTION_MS", "--session-retention-ms", "1d", "a whole number from 0 to"],
  ["TROUPE_LOG_LEVEL", "--log-level", "verbose", "one of debug, info, warn, error"],
  ["TROUPE_MAX_BODY_BYTES", "--max-body-bytes", "0", "a whole number from 1 to"],
  ["TROUPE_MAX_BODY_BYTES", "--max-body-bytes", "1MB", "a whole number from 1 to"],
  ["TROUPE_DATABASE_URL", "--database-url", "mysql://x/y", "a file path or a postgres:// URL"],
  ["TROUPE_DATABASE_URL", "--database-url", "postgres://[::1", "a file path or a postgres:// URL"],
  [
    "TROUPE_DATABASE_URL",
    "--database-url",
    "sqlite:./data/x.db",
    'a "sqlite:" URL; give the SQLite file\'s path alone',
  ],
  ["TROUPE_DATABASE_URL", "--database-url", "file:troupe.db", 'a "file:" URL'],
  ["TROUPE_NATS_URL", "--nats-url", "127.0.0.1:4222", "a nats:// or tls:// URL"],
  ["TROUPE_NATS_URL", "--nats-url", "http://x", "a nats:// or tls:// URL"],
  ["TROUPE_DURABLE_REPLIES", "--durable-replies", "yes", "true or false (or 1 or 0)"],
  ["TROUPE_DURABLE_REPLIES", "--durable-replies", "on", "true or false (or 1 or 0)"],
  ["TROUPE_LLM_BASE_URL", "--llm-base-url", "ftp://x/v1", "an http:// or https:// URL"],
  ["TROUPE_LLM_BASE_URL", "--llm-base-url", "api.openai.com", "an http:// or https:// URL"],
  [
    "TROUPE_LLM_BASE_URL",
    "--llm-base-url",
    "http://127.0.0.1:11434/v1/chat/completions",
    "the API's base URL such as https://api.openai.com/v1",
  ],
  ["TROUPE_LLM_MODEL", "--llm-model", "gpt 4", "a model name"],
  ["TROUPE_LLM_RETRIES", "--llm-retries", "11", "a whole number from 0 to 10"],
  ["TROUPE_LLM_TIMEOUT_MS", "--llm-timeout-ms", "0", "a whole number from 1 to"],
  ["TROUPE_LLM_MAX_REPLY_BYTES", "--llm-max-reply-bytes", "1000", "a whole number from 1024 to"],
  [
    "TROUPE_LLM_MAX_TOKENS_PARAMETER",
    "--llm-max-tokens-parameter",
    "max_output_tokens",
    "one of max_tokens, max_completion_tokens",
  ],
  ["TROUPE_RATE_LIMIT_SESSION", "--rate-limit-session", "-1", "a whole number from 0 to"],
  ["TROUPE_RATE_LIMIT_ORG", "--rate-limit-org", "lots", "a whole number from 0 to"],
  ["TROUPE_RATE_LIMIT_WINDOW_MS", "--rate-limit-window-ms", "0", "a whole number from 1 to"],
  [
    "TROUPE_RATE_LIMIT_ALGORITHM",
    "--rate-limit-algorithm",
    "leaky",
    "one of token-bucket, sliding-window",
  ],
];

Deno.test("each bad variable is refused with a message naming it and what it accepts", () => {
  for (const [variable, , value, accepts] of BAD_VALUES) {
    assertRefuses(() => parseConfig({ [variable]: value }), variable, accepts);
  }
});

Deno.test("each bad flag is refused with a message naming it, even when its variable is good", () => {
  for (const [variable, flag, value, accepts] of BAD_VALUES) {
    const env = { [variable]: GOOD_ENV[variable] };
    assertRefuses(() => parseConfig(env, [`${flag}=${value}`]), flag, accepts);
  }
});

Deno.test("the refusal quotes the value as given", () => {
  assertThrows(
    () => parseConfig({ TROUPE_PORT: "abc" }),
    (error: unknown) =>
      error instanceof InvalidInputError &&
      error.message ===
        'Cannot start: TROUPE_PORT must be a whole number from 0 to 65535, current value is "abc"',
  );
});

Deno.test("an unknown flag, a stray argument or a flag without a value is refused and the accepted flags listed", () => {
  for (const args of [["--prot", "80"], ["serve"], ["--port"], ["-p", "80"]]) {
    assertThrows(() => parseConfig({}, args), (error: unknown) => {
      assert(error instanceof InvalidInputError);
      assertEquals(error.field, "args");
      assert(error.message.startsWith("Cannot start: "), error.message);
      assert(error.message.includes("--host, --port, --policy"), error.message);
      return true;
    });
  }
});

Deno.test("an upstream without a model is refused, naming TROUPE_LLM_MODEL", () => {
  assertThrows(() => parseConfig({ TROUPE_LLM_BASE_URL: "http://127.0.0.1:8080/v1" }), (error) => {
    assert(error instanceof InvalidInputError);
    assertEquals(error.field, "TROUPE_LLM_MODEL");
    return true;
  });
});

Deno.test("the LLM API key is never echoed in a refusal, nor credentials in the base URL", () => {
  for (
    const [env, field] of [
      [{ TROUPE_LLM_API_KEY: "sk secret with spaces" }, "TROUPE_LLM_API_KEY"],
      [{ TROUPE_LLM_BASE_URL: "https://user:sk-secret@api.example.com/v1" }, "TROUPE_LLM_BASE_URL"],
    ] as const
  ) {
    assertThrows(() => parseConfig(env), (error) => {
      assert(error instanceof InvalidInputError);
      assertEquals(error.field, field);
      assert(!error.message.includes("secret"), error.message);
      return true;
    });
  }
});

Deno.test("TROUPE_DATABASE_URL takes any file path, a drive letter's colon included", () => {
  for (const path of ["./data/troupe.db", "/var/lib/troupe/t.db", "C:\\troupe\\t.db", "memory"]) {
    assertEquals(parseConfig({ TROUPE_DATABASE_URL: path }).databaseUrl, path);
  }
});
