// The behaviour every LlmProvider owes its callers, as a suite each implementation runs.

import assert from "node:assert/strict";
import { CancelledError } from "../../../actors/errors.ts";
import type { LlmProvider, LlmRequest, Usage } from "../../../actors/ports.ts";

/** How the provider under test is told to behave. */
export type ProviderBehaviour = "answer" | "hang" | "fail";

/** A provider under test and what it holds. */
export interface ProviderUnderTest extends AsyncDisposable {
  /** The provider. */
  provider: LlmProvider;
}

/** Options of {@linkcode runLlmProviderContract}. */
export interface LlmProviderContractOptions {
  /** Names the implementation in test names. */
  name: string;
  /**
   * Make a provider that answers by echoing the last user turn, hangs until
   * its signal aborts, or fails.
   */
  create(behaviour: ProviderBehaviour): ProviderUnderTest | Promise<ProviderUnderTest>;
}

const REQUEST: LlmRequest = {
  org: "o",
  session: "s",
  run: "r",
  messages: [
    { role: "system", content: "be brief" },
    { role: "user", content: "the quick brown fox" },
  ],
};

function assertUsage(usage: Usage): void {
  for (const key of ["inputTokens", "outputTokens", "cachedTokens", "reasoningTokens"] as const) {
    assert.ok(Number.isSafeInteger(usage[key]) && usage[key] >= 0, `${key} is a count`);
  }
  assert.equal(usage.totalTokens, usage.inputTokens + usage.outputTokens);
  assert.ok(usage.cachedTokens <= usage.inputTokens);
  assert.ok(usage.reasoningTokens <= usage.outputTokens);
  assert.ok(usage.source === "reported" || usage.source === "estimated");
}

/**
 * Register the contract's tests for one implementation: it answers with
 * well-formed usage, its deltas add up to its text, a signal aborted before or
 * during a call rejects with the signal's reason, and a failure is an `Error`.
 */
export function runLlmProviderContract(options: LlmProviderContractOptions): void {
  const { name, create } = options;

  Deno.test(`${name}: answers, its deltas add up to its text, its usage is well formed`, async () => {
    await using under = await create("answer");
    const deltas: string[] = [];
    const usages: Usage[] = [];
    const completion = await under.provider.complete(REQUEST, {
      signal: new AbortController().signal,
      onDelta: (text) => deltas.push(text),
      onUsage: (usage) => usages.push(usage),
    });
    assert.equal(completion.text, "the quick brown fox");
    assert.equal(deltas.join(""), completion.text);
    assertUsage(completion.usage);
    for (const usage of usages) assertUsage(usage);
    assert.ok(completion.model !== "");
  });

  Deno.test(`${name}: without onDelta it answers the same text in one piece`, async () => {
    await using under = await create("answer");
    const completion = await under.provider.complete(REQUEST, {
      signal: new AbortController().signal,
    });
    assert.equal(completion.text, "the quick brown fox");
    assertUsage(completion.usage);
  });

  Deno.test(`${name}: a signal aborted before the call rejects with its reason`, async () => {
    await using under = await create("answer");
    const controller = new AbortController();
    const reason = new CancelledError("too late");
    controller.abort(reason);
    await assert.rejects(
      under.provider.complete(REQUEST, { signal: controller.signal }),
      (error) => error === reason,
    );
  });

  Deno.test(`${name}: aborting a call in flight rejects with the signal's reason`, async () => {
    await using under = await create("hang");
    const controller = new AbortController();
    const reason = new CancelledError("superseded");
    const call = under.provider.complete(REQUEST, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(call, (error) => error === reason);
  });

  Deno.test(`${name}: a failure rejects with an Error`, async () => {
    await using under = await create("fail");
    await assert.rejects(
      under.provider.complete(REQUEST, { signal: new AbortController().signal }),
      (error) => error instanceof Error && !(error instanceof CancelledError),
    );
  });
}
