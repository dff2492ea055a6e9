// Checks the mock upstream's numeric options, for `startMockUpstream` and for the command line alike.

/** The numeric options and what each accepts. */
export const NUMERIC_OPTIONS = {
  port: { valid: (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535, text: "0 to 65535" },
  latencyMs: { valid: (n: number) => Number.isFinite(n) && n >= 0, text: "a number >= 0" },
  tokensPerSecond: { valid: (n: number) => Number.isFinite(n) && n > 0, text: "a number > 0" },
  errorRate: { valid: (n: number) => n >= 0 && n <= 1, text: "0 to 1" },
  hangRate: { valid: (n: number) => n >= 0 && n <= 1, text: "0 to 1" },
  seed: { valid: (n: number) => Number.isSafeInteger(n), text: "an integer" },
} as const;

/** The name of a numeric option. */
export type NumericOption = keyof typeof NUMERIC_OPTIONS;

/**
 * Say what is wrong with a value of a numeric option, or `undefined` if
 * nothing is, e.g. "must be 0 to 1, current value is 2"; `shown` is how the
 * value was written (the flag's text on the command line).
 *
 * @example
 * ```ts
 * import { optionProblem } from "./_mock_upstream_options.ts";
 *
 * console.assert(optionProblem("errorRate", 0.5) === undefined);
 * console.assert(optionProblem("errorRate", 2) === "must be 0 to 1, current value is 2");
 * ```
 */
export function optionProblem(
  name: NumericOption,
  value: number,
  shown: string = String(value),
): string | undefined {
  const { valid, text } = NUMERIC_OPTIONS[name];
  return valid(value) ? undefined : `must be ${text}, current value is ${shown}`;
}

/**
 * Say what is wrong with a set of numeric options, naming the first bad one
 * (`undefined` values are skipped), or with their rates together.
 *
 * @example
 * ```ts
 * import { optionsProblem } from "./_mock_upstream_options.ts";
 *
 * console.assert(optionsProblem({ port: 0, errorRate: 0.1 }) === undefined);
 * console.assert(optionsProblem({ errorRate: 0.6, hangRate: 0.6 })?.startsWith("errorRate plus"));
 * ```
 */
export function optionsProblem(
  options: Partial<Record<NumericOption, number | undefined>>,
): string | undefined {
  for (const [name, value] of Object.entries(options) as [NumericOption, number | undefined][]) {
    const problem = value === undefined ? undefined : optionProblem(name, value);
    if (problem) return `${name} ${problem}`;
  }
  const rates = (options.errorRate ?? 0) + (options.hangRate ?? 0);
  if (rates > 1) return `errorRate plus hangRate must be at most 1, current value is ${rates}`;
  return undefined;
}
