// A handler over a real runtime and the mock LLM, for the tests that call it without sockets.

import { createRuntime, type Runtime, type RuntimeOptions } from "../../../actors/runtime.ts";
import { createHandler, type HandlerDeps } from "../../../adapters/http/handler.ts";
import { type MockLlm, mockLlm, type MockLlmOptions } from "../../../adapters/llm/mock_llm.ts";

/** The origin the test requests are made against. */
export const BASE = "http://troupe.test";

/** A handler, its runtime and provider; disposing of it shuts the runtime down at once. */
export interface Setup extends AsyncDisposable {
  runtime: Runtime;
  llm: MockLlm;
  handler: (request: Request) => Promise<Response>;
  /** Errors the handler answered with a 500. */
  unexpected: unknown[];
}

/** Make a handler over a fresh runtime on `mockLlm(llmOptions)`. */
export function setup(
  llmOptions: MockLlmOptions = {},
  options: Omit<RuntimeOptions, "llm"> = {},
  deps: Omit<HandlerDeps, "runtime"> = {},
): Setup {
  const llm = mockLlm(llmOptions);
  const runtime = createRuntime({ llm, ...options });
  const unexpected: unknown[] = [];
  const handler = createHandler({ runtime, onError: (error) => unexpected.push(error), ...deps });
  return {
    runtime,
    llm,
    handler,
    unexpected,
    // Nothing a test leaves in flight may hold the test up.
    [Symbol.asyncDispose]: () => runtime.shutdown({ graceMs: 0 }),
  };
}

/** A JSON POST to `path` (a string body is sent as it is). */
export function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
