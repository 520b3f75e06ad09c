// The chaos run's results: one record per scenario, a plain table for the terminal, a JSON file beside the ClusterSet,
// and a markdown table in docs/reliability.md between the chaos markers.
import { readFile, writeFile } from 'node:fs/promises';
import { table } from '../harness/wait.js';
import type { Crash } from './context.js';
import type { Difference, LostExport } from './oracle.js';
import type { Check } from './scenarios.js';

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly faults: readonly string[];
  readonly changes: readonly string[];
  /** Heal → 0 differences; undefined when it never settled. */
  readonly settleMs: number | undefined;
  /** Differences from the oracle just before the heal (undefined: not readable, e.g. an API server down). */
  readonly diffsAtHeal: number | undefined;
  /** Expected objects compared at the last read (ServiceImports, derived Services, slices, export conditions). */
  readonly objects: number;
  readonly differences: readonly Difference[];
  readonly lost: readonly LostExport[];
  readonly changedIps: readonly string[];
  readonly orphans: number;
  readonly crashes: readonly Crash[];
  /** API writes by the nodes' ServiceAccount from the scenario's start to its settle. */
  readonly apiWrites: number | undefined;
  readonly checks: readonly Check[];
  readonly notes: readonly string[];
  readonly error?: string;
  /** Warnings and errors from the node logs, for failed scenarios. */
  readonly nodeLog?: Readonly<Record<string, readonly string[]>>;
  readonly durationMs: number;
  readonly pass: boolean;
}

export interface RunReport {
  readonly date: string;
  readonly commit: string;
  readonly mode: 'short' | 'full';
  readonly dir: string;
  readonly scenarios: readonly ScenarioResult[];
  readonly notYet: readonly string[];
  /** Set when the run stopped before every selected scenario ran. */
  readonly aborted?: string;
}

export function passed(r: Omit<ScenarioResult, 'pass'>): boolean {
  return (
    r.error === undefined &&
    r.settleMs !== undefined &&
    r.differences.length === 0 &&
    r.lost.length === 0 &&
    r.changedIps.length === 0 &&
    r.orphans === 0 &&
    r.crashes.length === 0 &&
    r.checks.every((c) => c.ok)
  );
}

const secs = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`);

function row(r: ScenarioResult): string[] {
  const checks = r.checks.length === 0 ? '-' : `${r.checks.filter((c) => c.ok).length}/${r.checks.length}`;
  return [
    r.name,
    r.diffsAtHeal === undefined ? '-' : String(r.diffsAtHeal),
    secs(r.settleMs),
    String(r.objects),
    String(r.differences.length),
    String(r.lost.length),
    String(r.changedIps.length),
    String(r.orphans),
    String(r.crashes.length),
    r.apiWrites === undefined ? '?' : String(r.apiWrites),
    checks,
    r.pass ? 'pass' : r.error !== undefined ? 'ERROR' : 'FAIL',
  ];
}

const HEAD = [
  'SCENARIO',
  'DIFFS AT HEAL',
  'SETTLE',
  'OBJECTS',
  'DIFFS',
  'LOST',
  'IPS CHANGED',
  'ORPHANS',
  'CRASHES',
  'NODE WRITES',
];

/** The terminal report: the table, each scenario's faults, and the evidence of every failure. */
export function textReport(report: RunReport): string {
  const lines: string[] = [];
  lines.push(table([[...HEAD, 'CHECKS', 'RESULT'], ...report.scenarios.map(row)]));
  lines.push('');
  for (const r of report.scenarios) {
    lines.push(`${r.name}: ${r.title}`);
    for (const f of r.faults) lines.push(`  fault   ${f}`);
    for (const c of r.changes) lines.push(`  change  ${c}`);
    for (const c of r.checks) lines.push(`  check   ${c.ok ? 'ok' : 'FAIL'} ${c.name}: ${c.detail}`);
    for (const n of r.notes) lines.push(`  note    ${n}`);
    if (r.pass) continue;
    if (r.error !== undefined) lines.push(`  ERROR   ${r.error}`);
    for (const d of r.differences.slice(0, 15))
      lines.push(`  diff    ${d.cluster} ${d.kind} ${d.namespace}/${d.name} ${d.what}: ${d.detail}`);
    if (r.differences.length > 15) lines.push(`  diff    … ${r.differences.length - 15} more`);
    for (const l of r.lost)
      lines.push(`  lost    ${l.cluster} ${l.namespace}/${l.name} (valid at ${l.origins.join(', ')})`);
    for (const c of r.changedIps) lines.push(`  ips     ${c}`);
    for (const c of r.crashes) lines.push(`  crash   ${c.cluster} pid ${c.pid} at ${c.at}\n${indent(c.logTail, 10)}`);
    for (const [cluster, log] of Object.entries(r.nodeLog ?? {}))
      for (const l of log) lines.push(`  log     ${cluster} ${l}`);
  }
  lines.push('');
  if (report.notYet.length > 0) lines.push(`not yet: ${report.notYet.join(', ')}`);
  if (report.aborted !== undefined) lines.push(`ABORTED: ${report.aborted}`);
  return lines.join('\n');
}

function indent(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}

// ---- docs/reliability.md

export const BEGIN = '<!-- chaos:begin -->';
export const END = '<!-- chaos:end -->';

/** A markdown table padded as prettier pads it, so `prettier --check` stays clean on the doc. */
function markdownTable(rows: readonly (readonly string[])[]): string {
  const cells = rows.map((r) => r.map((c) => c.replace(/\|/g, '\\|')));
  const widths = cells[0]?.map((_, i) => Math.max(3, ...cells.map((r) => [...(r[i] ?? '')].length))) ?? [];
  const line = (r: readonly string[]) =>
    `| ${r.map((c, i) => c + ' '.repeat((widths[i] ?? 0) - [...c].length)).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n');
}

/** Prose wrapped at 120 columns, as the rest of the docs is. */
function wrap(text: string, width = 120): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

export function markdownSection(report: RunReport): string {
  const ok = report.scenarios.filter((r) => r.pass).length;
  const rows = [
    [
      'scenario',
      'fault',
      'diffs at heal',
      'settle',
      'objects',
      'diffs',
      'lost',
      'IPs changed',
      'orphans',
      'crashes',
      'node writes',
      'checks',
    ],
    ...report.scenarios.map((r) => {
      const [name, atHeal, settle, objects, diffs, lost, ips, orphans, crashes, writes, checks, result] = row(r);
      return [
        `${name ?? ''} (${result ?? ''})`,
        r.title,
        atHeal ?? '',
        settle ?? '',
        objects ?? '',
        diffs ?? '',
        lost ?? '',
        ips ?? '',
        orphans ?? '',
        crashes ?? '',
        writes ?? '',
        checks ?? '',
      ];
    }),
  ];
  const failures = report.scenarios
    .filter((r) => !r.pass)
    .map((r) => {
      const why = [
        r.error === undefined ? '' : `error: ${r.error}`,
        r.settleMs === undefined ? `never settled (${r.differences.length} differences)` : '',
        ...r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
        r.lost.length > 0 ? `${r.lost.length} lost exports` : '',
        r.changedIps.length > 0 ? `ClusterSetIPs changed: ${r.changedIps.slice(0, 3).join('; ')}` : '',
        r.crashes.length > 0 ? `${r.crashes.length} node crashes` : '',
      ].filter((s) => s !== '');
      return wrap(`- \`${r.name}\`: ${why.join('; ').slice(0, 600)}`).replace(/\n/g, '\n  ');
    });
  return [
    BEGIN,
    '',
    wrap(
      `Last run: ${report.date.slice(0, 16).replace('T', ' ')} UTC, commit ${report.commit}, ` +
        `\`npm run chaos${report.mode === 'short' ? ' -- --short' : ''}\` (3 clusters, endpoint TTL 6 s, heartbeat 1 s, ` +
        `sync 5 s): ${ok} of ${report.scenarios.length} scenarios passed. "diffs at heal" counts the differences from the ` +
        `oracle just before the fault ended (-: not readable, an API server was down); "settle" is the time from the end ` +
        `of the fault to the first read with none; "node writes" counts the nodes' API writes (audit log) during the ` +
        `scenario; "checks" are the scenario's own assertions.`,
    ),
    '',
    markdownTable(rows),
    ...(failures.length > 0 ? ['', 'Failures:', '', ...failures] : []),
    ...(report.notYet.length > 0 ? ['', wrap(`Not yet: ${report.notYet.join(', ')}.`)] : []),
    ...(report.aborted !== undefined ? ['', `The run was aborted: ${report.aborted}.`] : []),
    '',
    END,
  ].join('\n');
}

const INTRO =
  '`npm run chaos` (e2e/chaos/run.ts; `-- --short` for short faults, `-- --scenario NAME` for one) runs a local ' +
  'three-cluster ClusterSet with real nodes in a network namespace of its own, injects each fault with iptables ' +
  'rules between node addresses or by stopping processes, makes changes on both sides while it lasts, heals it, and ' +
  'waits until every cluster holds exactly what the oracle (e2e/chaos/oracle.ts) computes from ground truth.';

/** Replaces the section between the markers, or appends "## Chaos results" with them. */
export async function updateDoc(file: string, report: RunReport): Promise<void> {
  const text = await readFile(file, 'utf8');
  const section = markdownSection(report);
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const next =
    begin >= 0 && end > begin
      ? text.slice(0, begin) + section + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n## Chaos results\n\n${wrap(INTRO)}\n\n${section}\n`;
  await writeFile(file, next);
}

export async function writeJson(file: string, report: RunReport): Promise<void> {
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
}
