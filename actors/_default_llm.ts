// The provider of a runtime created without one: the TROUPE_LLM_* variables decide, else the mock.

import { llmFromSettings } from "../adapters/llm/from_config.ts";
import type { LlmPool } from "../adapters/workers/llm_pool.ts";
import { CONFIG_ENV_VARS, parseConfig } from "./config.ts";
import type { LlmProvider } from "./ports.ts";

const LLM_VARS = CONFIG_ENV_VARS.filter((name) => name.startsWith("TROUPE_LLM_"));

/**
 * The provider the environment configures: an upstream when
 * `TROUPE_LLM_BASE_URL` is set (and readable: without `--allow-env` for it,
 * it counts as unset), else `mockLlm()`. A bad value throws the
 * `InvalidInputError` that names the variable.
 */
export function defaultLlm(): { provider: LlmProvider; pool: LlmPool | null } {
  const env: Record<string, string | undefined> = {};
  for (const name of LLM_VARS) {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") continue;
    env[name] = Deno.env.get(name);
  }
  return llmFromSettings(parseConfig(env));
}
