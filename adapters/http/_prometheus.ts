// Writes Prometheus's text exposition format (version 0.0.4): families, samples and histograms.

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label names to values; values are escaped when written. */
export type Labels = Readonly<Record<string, string>>;

/** Start a family: its `# HELP` and `# TYPE` lines. */
export function family(
  out: string[],
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
  out.push(`# TYPE ${name} ${type}`);
}

/** One sample line. */
export function sample(out: string[], name: string, labels: Labels, value: number): void {
  out.push(`${name}${labelText(labels)} ${numberText(value)}`);
}

/**
 * A histogram's samples: cumulative `_bucket` lines per upper bound (the last
 * is `+Inf`), then `_sum` and `_count`.
 */
export function histogramSamples(
  out: string[],
  name: string,
  labels: Labels,
  histogram: { le: readonly number[]; cumulative: readonly number[]; sum: number; count: number },
): void {
  for (let i = 0; i < histogram.le.length; i++) {
    const le = histogram.le[i]!;
    sample(out, `${name}_bucket`, { ...labels, le: numberText(le) }, histogram.cumulative[i]!);
  }
  if (histogram.le[histogram.le.length - 1] !== Infinity) {
    sample(out, `${name}_bucket`, { ...labels, le: "+Inf" }, histogram.count);
  }
  sample(out, `${name}_sum`, labels, histogram.sum);
  sample(out, `${name}_count`, labels, histogram.count);
}

function labelText(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length === 0) return "";
  const parts = names.map((name) =>
    `${name}="${labels[name]!.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return `{${parts.join(",")}}`;
}

function numberText(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
