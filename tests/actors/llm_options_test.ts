// A message's provider options (SendInput.options) reach its run's provider call; a merged run uses the last message's.

import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { InvalidInputError } from "../../actors/errors.ts";
import { createRuntime } from "../../actors/runtime.ts";
import { checkLlmOptions } from "../../actors/validate.ts";
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
