// Draws the performance report's chart: throughput and p99 against concurrency, Troupe beside the baseline.

import type { LoadResult } from "./load.ts";
import { isSkipped, type Sweep } from "./_perf_results.ts";

const WIDTH = 960;
const ROW_HEIGHT = 256;
const TOP = 56;
const PANEL = { left: 70, right: 20, top: 50, bottom: 40 };
const SERIES = [
  { key: "troupe", label: "Troupe", color: "#c2410c", dash: "" },
  { key: "baseline", label: "naive baseline", color: "#2563eb", dash: "6 4" },
] as const;

/** What one panel plots. */
interface Metric {
  title: string;
  value: (result: LoadResult) => number;
}

/**
 * An SVG chart with one row per sweep and two panels per row: throughput and p99
 * latency against the number of sessions, one line for Troupe and one for the
 * baseline. Double-texting sweeps (scenario c) plot answered turns/s and the turn
 * p99, the others requests/s and the request p99. Skipped points are left out.
 *
 * @example
 * ```ts
 * import { renderChart } from "./_perf_svg.ts";
 *
 * const svg = renderChart([{ scenario: "a", title: "0 ms", load: "", points: [] }]);
 * console.assert(svg.startsWith("<svg") && svg.includes("0 ms"));
 * ```
 */
export function renderChart(sweeps: Sweep[]): string {
  const height = TOP + ROW_HEIGHT * sweeps.length;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${
      WIDTH / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="600">Throughput and p99 latency against concurrency (same run, same machine)</text>`,
    ...SERIES.map((series, i) => {
      const x = WIDTH / 2 - 130 + i * 150;
      return `<line x1="${x}" y1="40" x2="${
        x + 28
      }" y2="40" stroke="${series.color}" stroke-width="2.5" stroke-dasharray="${series.dash}"/>` +
        `<text x="${x + 34}" y="44">${series.label}</text>`;
    }),
  ];
  sweeps.forEach((sweep, row) => {
    const turns = sweep.scenario === "c";
    const metrics: Metric[] = [
      {
        title: turns ? "answered turns/s" : "requests/s",
        value: (r) => turns ? r.turnsPerSecond : r.requestsPerSecond,
      },
      {
        title: turns ? "p99 turn latency, ms" : "p99 latency, ms",
        value: (r) => turns ? r.turnLatencyMs.p99 : r.requestLatencyMs.p99,
      },
    ];
    const y0 = TOP + row * ROW_HEIGHT;
    parts.push(
      `<text x="${PANEL.left}" y="${
        y0 + 16
      }" font-size="13" font-weight="600">(${sweep.scenario}) ${escape(sweep.title)}</text>`,
    );
    metrics.forEach((metric, column) => {
      parts.push(panel(sweep, metric, column * (WIDTH / 2), TOP + row * ROW_HEIGHT));
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function panel(sweep: Sweep, metric: Metric, x0: number, y0: number): string {
  const w = WIDTH / 2 - PANEL.left - PANEL.right;
  const h = ROW_HEIGHT - PANEL.top - PANEL.bottom;
  const left = x0 + PANEL.left;
  const top = y0 + PANEL.top;
  const values = sweep.points.flatMap((point) =>
    SERIES.flatMap(({ key }) => isSkipped(point[key]) ? [] : [metric.value(point[key])])
  );
  const { max, step } = niceScale(Math.max(0, ...values));
  const count = sweep.points.length;
  const xAt = (i: number) => left + (count <= 1 ? w / 2 : (i * w) / (count - 1));
  const yAt = (value: number) => top + h - (value / max) * h;
  const out = [
    `<text x="${left}" y="${y0 + 38}" fill="#404040">${escape(metric.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#d4d4d4"/>`,
  ];
  for (let tick = 0; tick <= max + step / 2; tick += step) {
    const y = yAt(tick);
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + w}" y2="${y}" stroke="#eeeeee"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end" fill="#525252">${
        tickLabel(tick)
      }</text>`,
    );
  }
  sweep.points.forEach((point, i) => {
    out.push(
      `<text x="${xAt(i)}" y="${
        top + h + 16
      }" text-anchor="middle" fill="#525252">${point.sessions}</text>`,
    );
  });
  out.push(
    `<text x="${left + w / 2}" y="${
      top + h + 32
    }" text-anchor="middle" fill="#525252">sessions sending at once</text>`,
  );
  if (values.length === 0) {
    out.push(
      `<text x="${left + w / 2}" y="${
        top + h / 2
      }" text-anchor="middle" fill="#a3a3a3">not measured</text>`,
    );
  }
  for (const series of SERIES) {
    const points = sweep.points.flatMap((point, i) => {
      const result = point[series.key];
      return isSkipped(result) ? [] : [[xAt(i), yAt(metric.value(result))] as const];
    });
    if (points.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2.5" stroke-dasharray="${series.dash}" points="${
          points.map(([x, y]) => `${round(x)},${round(y)}`).join(" ")
        }"/>`,
      );
    }
    for (const [x, y] of points) {
      out.push(`<circle cx="${round(x)}" cy="${round(y)}" r="3.5" fill="${series.color}"/>`);
    }
  }
  return out.join("\n");
}

/** A round top for the axis and a step giving four or five ticks. */
function niceScale(value: number): { max: number; step: number } {
  if (value <= 0) return { max: 1, step: 0.25 };
  const rough = value / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  return { max: Math.ceil(value / step) * step, step };
}

function tickLabel(value: number): string {
  if (value >= 1000) return `${Math.round(value / 100) / 10}k`;
  return String(Math.round(value * 100) / 100);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
