// Printing for the property test: counterexamples with long strings and arrays shortened, the final table.
import { table } from '../harness/wait.js';

/** `value` with strings over 120 characters and arrays over 12 items shortened (for printing only). */
export function compact(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.length <= 120) return value;
    const bytes = Buffer.byteLength(value, 'utf8');
    return `${value.slice(0, 40)}…<${value.length} UTF-16 units, ${bytes} UTF-8 bytes>…${value.slice(-20)}`;
  }
  if (Array.isArray(value)) {
    const items =
      value.length <= 12 ? value : [...value.slice(0, 8), `…<${value.length - 10} more>…`, ...value.slice(-2)];
    return items.map(compact);
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value);
    const shown =
      entries.length <= 40 ? entries : [...entries.slice(0, 30), ['…', `<${entries.length - 30} more entries>`]];
    for (const [k, v] of shown) out[k.length > 120 ? (compact(k) as string) : k] = compact(v);
    return out;
  }
  return value;
}

export function show(value: unknown): string {
  return JSON.stringify(compact(value), null, 2);
}

export interface PhaseRow {
  readonly phase: string;
  readonly cases: number;
  readonly imported: number;
  readonly invalid: number;
  /** Undefined where it does not apply (phase A: the dry-run refusals are the "marked invalid" column). */
  readonly rejected?: number;
  readonly wireBound: number;
  readonly failures: number;
  readonly seconds: number;
}

export function resultTable(rows: readonly PhaseRow[]): string {
  const head = [
    'phase',
    'cases',
    'imported',
    'marked invalid',
    'rejected by API server',
    'wire bound only',
    'failures',
    'seconds',
  ];
  return table([
    head,
    head.map((h) => '-'.repeat(h.length)),
    ...rows.map((r) => [
      r.phase,
      String(r.cases),
      String(r.imported),
      String(r.invalid),
      r.rejected === undefined ? '-' : String(r.rejected),
      String(r.wireBound),
      String(r.failures),
      r.seconds.toFixed(1),
    ]),
  ]);
}
