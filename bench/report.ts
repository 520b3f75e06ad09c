// What every part of `npm run bench` prints and writes: a table on stdout, and under bench/results/ a JSON file with
// the machine, the versions and the figures, and an SVG chart. docs/benchmarks.md shows the latest of each.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

export interface Column {
  readonly key: string;
  readonly title: string;
}

export type Row = Readonly<Record<string, string | number | boolean | undefined>>;

/** Percentiles of a sample, in the sample's unit (nearest-rank). */
export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN, samples: sorted.length };
}

function cell(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  }
  return String(v);
}

/** A Markdown table (it reads as a plain table on a terminal and pastes into docs/benchmarks.md as is). */
export function formatTable(columns: readonly Column[], rows: readonly Row[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(r[c.key])));
  const widths = columns.map((c, i) => Math.max(c.title.length, 3, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export function printTable(title: string, columns: readonly Column[], rows: readonly Row[]): string {
  const text = `${title}\n\n${formatTable(columns, rows)}\n`;
  process.stdout.write(`\n${text}\n`);
  return text;
}

/** The machine and versions a result was measured on. */
export function machine(): Record<string, string | number> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    commit,
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(2)),
  };
}

export interface Series {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A line chart of a few series (x and y in their own units), as standalone SVG. */
export function lineChart(options: {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly logX?: boolean;
}): string {
  const W = 720;
  const H = 400;
  const m = { l: 70, r: 170, t: 40, b: 50 };
  const all = options.series.flatMap((s) => s.points);
  const fx = (x: number) => (options.logX ? Math.log10(Math.max(x, 1e-9)) : x);
  const xs = all.map((p) => fx(p[0]));
  const ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs, options.logX ? fx(1) : 0);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1) * 1.1;
  const px = (x: number) => m.l + ((fx(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y / y1) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(options.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${esc(options.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = (y1 / 5) * i;
    out.push(
      `<line x1="${m.l - 4}" y1="${py(y)}" x2="${W - m.r}" y2="${py(y)}" stroke="#ddd"/>`,
      `<text x="${m.l - 8}" y="${py(y) + 4}" text-anchor="end">${cell(Number(y.toPrecision(3)))}</text>`,
    );
  }
  const xTicks = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  for (const x of xTicks.length <= 12 ? xTicks : []) {
    out.push(`<text x="${px(x)}" y="${H - m.b + 16}" text-anchor="middle">${cell(x)}</text>`);
  }
  options.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const p of pts)
      out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = m.t + 16 * i;
    out.push(
      `<rect x="${W - m.r + 12}" y="${ly}" width="12" height="12" fill="${color}"/>`,
      `<text x="${W - m.r + 30}" y="${ly + 10}">${esc(s.label)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Grouped horizontal bars: one group per label, one bar per series value (same unit). */
export function barChart(options: {
  readonly title: string;
  readonly unit: string;
  readonly groups: readonly {
    readonly label: string;
    readonly values: readonly { readonly label: string; readonly value: number }[];
  }[];
}): string {
  const barH = 16;
  const m = { l: 200, r: 90, t: 40, b: 30 };
  const W = 760;
  const rows = options.groups.reduce((n, g) => n + g.values.length + 1, 0);
  const H = m.t + m.b + rows * barH;
  const max = Math.max(1e-9, ...options.groups.flatMap((g) => g.values.map((v) => v.value)));
  const scale = (v: number) => (v / max) * (W - m.l - m.r);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(options.title)} (${esc(options.unit)})</text>`,
  ];
  let y = m.t;
  for (const g of options.groups) {
    out.push(`<text x="8" y="${y + 12}" font-weight="bold">${esc(g.label)}</text>`);
    y += barH;
    g.values.forEach((v, i) => {
      const color = COLORS[i % COLORS.length]!;
      out.push(
        `<text x="${m.l - 6}" y="${y + 12}" text-anchor="end">${esc(v.label)}</text>`,
        `<rect x="${m.l}" y="${y + 2}" width="${Math.max(1, scale(v.value)).toFixed(1)}" height="${barH - 4}" fill="${color}"/>`,
        `<text x="${m.l + scale(v.value) + 4}" y="${y + 12}">${cell(v.value)}</text>`,
      );
      y += barH;
    });
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * Writes `bench/results/<part>.json` (the figures with the machine and the time) and `<part>.svg` when a chart is
 * given; returns the paths.
 */
export async function writeResults(
  part: string,
  figures: unknown,
  options: { readonly svg?: string; readonly table?: string } = {},
): Promise<{ json: string; svg?: string }> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, `${part}.json`);
  const body = { part, at: new Date().toISOString(), machine: machine(), figures, table: options.table };
  await writeFile(json, `${JSON.stringify(body, null, 2)}\n`);
  if (options.svg === undefined) return { json };
  const svg = path.join(RESULTS_DIR, `${part}.svg`);
  await writeFile(svg, options.svg);
  process.stdout.write(`wrote ${path.relative(process.cwd(), json)} and ${path.relative(process.cwd(), svg)}\n`);
  return { json, svg };
}
