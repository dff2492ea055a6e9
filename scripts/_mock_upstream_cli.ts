// Parses the mock upstream's command-line flags into its options, naming the flag that is wrong.

import { parseArgs } from "node:util";
import { type NumericOption, optionProblem, optionsProblem } from "./_mock_upstream_options.ts";
import type { MockUpstreamOptions } from "./mock_upstream.ts";

const NUMERIC_FLAGS: Record<string, NumericOption> = {
  "port": "port",
  "latency-ms": "latencyMs",
  "tokens-per-second": "tokensPerSecond",
  "error-rate": "errorRate",
  "hang-rate": "hangRate",
  "seed": "seed",
};

const STRING = { type: "string" } as const;

const USAGE = "Usage: mock_upstream.ts [--port N] [--host H] [--latency-ms N] " +
  "[--tokens-per-second N] [--error-rate R] [--hang-rate R] [--seed N] [--model M]";

/**
 * Turn flags into options. A bad value throws a `RangeError` naming its flag,
 * an unknown flag a `TypeError` with the usage line.
 *
 * @example
 * ```ts
 * import { parseMockUpstreamArgs } from "./_mock_upstream_cli.ts";
 *
 * const options = parseMockUpstreamArgs(["--port", "8080", "--error-rate", "0.1"]);
 * console.assert(options.port === 8080 && options.errorRate === 0.1);
 * ```
 */
export function parseMockUpstreamArgs(args: string[]): MockUpstreamOptions {
  const flags = {
    ...Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, STRING])),
    "host": STRING,
    "model": STRING,
  };
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({ args, options: flags, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new TypeError(`Cannot parse arguments: ${(error as Error).message}\n${USAGE}`, {
      cause: error,
    });
  }
  const options: MockUpstreamOptions = {};
  for (const [flag, name] of Object.entries(NUMERIC_FLAGS)) {
    const text = values[flag];
    if (text === undefined) continue;
    const value = text.trim() === "" ? NaN : Number(text);
    const problem = optionProblem(name, value, JSON.stringify(text));
    if (problem) throw new RangeError(`Cannot parse --${flag}: ${problem}`);
    options[name] = value;
  }
  const rates = optionsProblem({ errorRate: options.errorRate, hangRate: options.hangRate });
  if (rates) throw new RangeError(`Cannot parse --error-rate and --hang-rate: ${rates}`);
  for (const [flag, name] of [["host", "hostname"], ["model", "model"]] as const) {
    const text = values[flag];
    if (text === undefined) continue;
    if (text === "") throw new RangeError(`Cannot parse --${flag}: it is empty`);
    options[name] = text;
  }
  return options;
}
