// A message's provider options (SendInput.options) reach its run's provider call; a merged run uses the last message's.

import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import { createRuntime } from "../../actors/runtime.ts";
import { checkLlmOptions } from "../../actors/llm_options.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";

Deno.test("a message's options reach the provider; a message without options sends none", async () => {
  const llm = mockLlm();
  await using runtime = createRuntime({ llm });
  const reply = await runtime.send({
    session: "s",
    content: "hello",
    options: { maxTokens: 64, temperature: 0.3, model: "small" },
  });
  assertEquals(reply.status, "completed");
  await runtime.send({ session: "s", content: "again" });
  assertEquals(llm.requests.map((r) => r.options), [
    { maxTokens: 64, temperature: 0.3, model: "small" },
    undefined,
  ]);
  // The provider reports the model it was asked for, and the usage event records it.
  assertEquals(reply.status === "completed" && reply.model, "small");
});

Deno.test("a merged run is called with the options of its last message, the one it answers as", async () => {
  const llm = mockLlm({ latencyMs: 50 });
  await using runtime = createRuntime({ llm, debounceMs: 20 });
  const first = runtime.send({ session: "s", content: "one", options: { maxTokens: 10 } });
  const second = runtime.send({ session: "s", content: "two", options: { temperature: 1.5 } });
  const [a, b] = await Promise.all([first, second]);
  assertEquals([a.status, b.status], ["superseded", "completed"]);
  assertEquals(llm.requests.length, 1);
  assertEquals(llm.requests[0]!.options, { temperature: 1.5 });
});

Deno.test("bad options are refused before anything runs, naming the field", async () => {
  const llm = mockLlm();
  await using runtime = createRuntime({ llm });
  const cases: Array<[unknown, string]> = [
    ["fast", "options"],
    [[1], "options"],
    [{ maxTokens: 0 }, "options.maxTokens"],
    [{ maxTokens: 1.5 }, "options.maxTokens"],
    [{ maxTokens: "10" }, "options.maxTokens"],
    [{ temperature: 2.5 }, "options.temperature"],
    [{ temperature: Number.NaN }, "options.temperature"],
    [{ model: "" }, "options.model"],
    [{ max_tokens: 10 }, "options.max_tokens"],
    [{ top_p: 0.5 }, "options.top_p"],
    [{ topP: 1.5 }, "options.topP"],
    [{ topP: -0.1 }, "options.topP"],
    [{ stop: [] }, "options.stop"],
    [{ stop: ["a", "b", "c", "d", "e"] }, "options.stop"],
    [{ stop: "END" }, "options.stop"],
    [{ stop: ["ok", ""] }, "options.stop[1]"],
    [{ stop: [7] }, "options.stop[0]"],
    [{ seed: 1.5 }, "options.seed"],
    [{ seed: "7" }, "options.seed"],
    [{ presencePenalty: 2.5 }, "options.presencePenalty"],
    [{ frequencyPenalty: -3 }, "options.frequencyPenalty"],
    [{ responseFormat: "json" }, "options.responseFormat"],
    [{ responseFormat: { type: "xml" } }, "options.responseFormat.type"],
    [{ responseFormat: { type: "json_schema" } }, "options.responseFormat.jsonSchema"],
    [
      { responseFormat: { type: "json_schema", jsonSchema: { name: "has space" } } },
      "options.responseFormat.jsonSchema.name",
    ],
    [
      { responseFormat: { type: "json_schema", jsonSchema: { schema: {} } } },
      "options.responseFormat.jsonSchema.name",
    ],
    [
      { responseFormat: { type: "json_schema", jsonSchema: { name: "a", schema: [] } } },
      "options.responseFormat.jsonSchema.schema",
    ],
    [
      { responseFormat: { type: "json_schema", jsonSchema: { name: "a", strict: "yes" } } },
      "options.responseFormat.jsonSchema.strict",
    ],
    [
      { responseFormat: { type: "json_schema", jsonSchema: { name: "a", format: "x" } } },
      "options.responseFormat.jsonSchema.format",
    ],
    [
      { responseFormat: { type: "json_schema", json_schema: { name: "a" } } },
      "options.responseFormat.json_schema",
    ],
    [
      { responseFormat: { type: "text", jsonSchema: { name: "a" } } },
      "options.responseFormat.jsonSchema",
    ],
    [{ reasoningEffort: "LOW" }, "options.reasoningEffort"],
    [{ reasoningEffort: "" }, "options.reasoningEffort"],
  ];
  for (const [options, field] of cases) {
    await rejects(
      // deno-lint-ignore no-explicit-any
      runtime.send({ session: "s", content: "x", options: options as any }),
      (error: unknown) => error instanceof InvalidInputError && error.field === field,
      JSON.stringify(options),
    );
  }
  assertEquals(llm.stats.calls, 0);
  // Undefined keys are left out, so an options object built from optional fields is fine.
  assertEquals(checkLlmOptions({ maxTokens: undefined, temperature: 0 }, "send"), {
    temperature: 0,
  });
});

Deno.test("every sampling and format option reaches the provider as given", async () => {
  const llm = mockLlm();
  await using runtime = createRuntime({ llm });
  const options = {
    maxTokens: 100,
    temperature: 0,
    topP: 0.9,
    stop: ["\n\n", "END"],
    seed: -42,
    presencePenalty: -2,
    frequencyPenalty: 0.5,
    responseFormat: {
      type: "json_schema" as const,
      jsonSchema: {
        name: "answer_1",
        description: "the answer",
        schema: { type: "object", properties: { a: { type: "string" } } },
        strict: true,
      },
    },
    reasoningEffort: "low",
  };
  assertEquals((await runtime.send({ session: "s", content: "x", options })).status, "completed");
  assertEquals(llm.requests[0]!.options, options);
  // The other two formats carry nothing but their type.
  for (const type of ["text", "json_object"] as const) {
    assertEquals(checkLlmOptions({ responseFormat: { type } }, "send"), {
      responseFormat: { type },
    });
  }
});

Deno.test("an unknown option's error lists every option", () => {
  try {
    checkLlmOptions({ top_p: 1 }, "send");
    throw new Error("not refused");
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    assertEquals(
      error.message,
      "Cannot send: options.top_p is not an option; the options are model, maxTokens, temperature, topP, stop, seed, presencePenalty, frequencyPenalty, responseFormat, reasoningEffort",
    );
  }
});
