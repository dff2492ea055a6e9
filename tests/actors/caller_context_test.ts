// A caller's own conversation (SendInput.context) replaces the stored history in its run's prompt.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import fc from "fast-check";
import { buildPrompt } from "../../actors/build_prompt.ts";
import { InvalidInputError } from "../../actors/errors.ts";
import type { ChatMessage } from "../../actors/ports.ts";
import { createRuntime } from "../../actors/runtime.ts";
import type { Batch, QueuedMessage, SessionContext } from "../../actors/session_types.ts";
import { checkContext } from "../../actors/validate.ts";
import { mockLlm } from "../../adapters/llm/mock_llm.ts";

function session(overrides: Partial<SessionContext> = {}): SessionContext {
  return {
    org: "o",
    session: "s",
    debounceMs: 0,
    join: "\n---\n",
    historyLimit: 50,
    system: "",
    running: null,
    queue: [],
    history: [
      { id: "m0", role: "user", content: "stored question", ts: 0 },
      { id: "r0", role: "assistant", content: "stored answer", ts: 1, answered: ["m0"] },
    ],
    ...overrides,
  };
}

function batch(...messages: Array<Partial<QueuedMessage> & { content: string }>): Batch {
  return {
    run: "r1",
    messages: messages.map((m, i) => ({ id: `m${i + 1}`, receivedAt: i, committed: false, ...m })),
  };
}

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
  { role: "assistant", content: "hello" },
];

Deno.test("a run whose message brings a context answers from it, not from the stored history", () => {
  const prompt = buildPrompt(session(), batch({ content: "and now?", context: CONVERSATION }));
  assertEquals(prompt, [...CONVERSATION, { role: "user", content: "and now?" }]);
});

Deno.test("the runtime's system prompt still comes first before a caller's context", () => {
  const prompt = buildPrompt(
    session({ system: "house rules" }),
    batch({ content: "q", context: [{ role: "user", content: "earlier" }] }),
  );
  assertEquals(prompt.map((m) => m.content), ["house rules", "earlier", "q"]);
});

Deno.test("a merged run with context joins the earlier message the newest call did not resend", () => {
  const prompt = buildPrompt(
    session(),
    batch({ content: "book a table", context: [] }, { content: "for four", context: [] }),
  );
  assertEquals(prompt, [{ role: "user", content: "book a table\n---\nfor four" }]);
});

Deno.test("a merged run with context leaves out an earlier message the newest call resent", () => {
  // A client that keeps the conversation resends the first text as a trailing turn of the second call.
  const prompt = buildPrompt(
    session(),
    batch({ content: "book a table", context: [] }, {
      content: "book a table\n\nfor four",
      context: [],
    }),
  );
  assertEquals(prompt, [{ role: "user", content: "book a table\n\nfor four" }]);
});

Deno.test("only whole lines count as resent: a message that is part of a line is kept", () => {
  const prompt = buildPrompt(
    session(),
    batch({ content: "four", context: [] }, { content: "for four people", context: [] }),
  );
  assertEquals(prompt.at(-1)!.content, "four\n---\nfor four people");
});

Deno.test("the newest message decides: without a context the stored history is used", () => {
  const prompt = buildPrompt(
    session(),
    batch({ content: "first", context: CONVERSATION }, { content: "second" }),
  );
  assertEquals(prompt.map((m) => m.content), [
    "stored question",
    "stored answer",
    "first\n---\nsecond",
  ]);
});

Deno.test("property: a merged prompt holds the newest message whole and every earlier one once", () => {
  const line = fc.stringMatching(/^[a-d ]{1,6}$/);
  fc.assert(
    fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), fc.boolean(), (texts, resend) => {
      const earlier = texts.slice(0, -1);
      const newest = resend ? [...earlier, texts.at(-1)!].join("\n\n") : texts.at(-1)!;
      const prompt = buildPrompt(
        session(),
        batch(...earlier.map((content) => ({ content, context: [] })), {
          content: newest,
          context: [],
        }),
      );
      const turn = prompt.at(-1)!.content;
      assert(prompt.length === 1);
      assert(turn.endsWith(newest));
      for (const text of earlier) assert(turn.split(/\n/).includes(text));
      // Resent text is never repeated: the turn is exactly the newest message.
      if (resend) assertEquals(turn, newest);
    }),
  );
});

Deno.test("checkContext keeps role and content only and names the turn that is wrong", () => {
  const copy = checkContext([{ role: "user", content: "hi", extra: 1 }], 10, 5);
  assertEquals(copy, [{ role: "user", content: "hi" }]);
  const cases: Array<[unknown, string]> = [
    ["nope", "context"],
    [[1], "context[0]"],
    [[{ role: "tool", content: "x" }], "context[0].role"],
    [[{ role: "user", content: "ok" }, { role: "user", content: 5 }], "context[1].content"],
    [[{ role: "user", content: "far too long" }], "context[0].content"],
    [new Array(6).fill({ role: "user", content: "x" }), "context"],
  ];
  for (const [value, field] of cases) {
    try {
      checkContext(value, 10, 5);
      assert(false, `expected ${JSON.stringify(value)} to be refused`);
    } catch (error) {
      assert(error instanceof InvalidInputError);
      assertEquals(error.field, field);
    }
  }
});

Deno.test("runtime: the provider gets the caller's context; history still stores the message and answer", async () => {
  const llm = mockLlm();
  await using runtime = createRuntime({ llm });
  await runtime.send({ session: "s1", content: "stored" });
  const reply = await runtime.send({
    session: "s1",
    content: "new",
    context: [{ role: "user", content: "from the caller" }],
  });
  assertEquals(reply.status, "completed");
  assertEquals(reply.model, "mock-model");
  assertEquals(reply.finishReason, "stop");
  assertEquals(llm.requests.at(-1)!.messages, [
    { role: "user", content: "from the caller" },
    { role: "user", content: "new" },
  ]);
  const history = await runtime.history({ session: "s1" });
  assertEquals(history.messages.map((m) => m.content), ["stored", "stored", "new", "new"]);
});

Deno.test("runtime: a context that is not a conversation is refused before anything runs", async () => {
  const llm = mockLlm();
  await using runtime = createRuntime({ llm });
  await rejects(
    runtime.send({
      session: "s1",
      content: "x",
      context: [{ role: "robot", content: "x" }] as unknown as ChatMessage[],
    }),
    (error: unknown) => error instanceof InvalidInputError && error.field === "context[0].role",
  );
  assertEquals(llm.stats.calls, 0);
});
