// `npm run property [-- --short] [--seed N] [--runs N] [--keep]`: property tests of importability and propagation
// against real API servers, on a local two-cluster ClusterSet with one mcs-gossip node per cluster.
//
// Phase A ("verdicts"): fast-check generates exported-service content; the objects an importer would write of it are
// created with a server-side dry run in cluster-2; importProblem() must say "importable" exactly when every one of
// them is accepted. Phase B ("propagation"): fast-check generates Services, EndpointSlices and ServiceExports; each
// case is applied in cluster-1 and, within a bound, must end as a matching import in cluster-2 or as Valid=False
// with a reason on the export — never neither.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { importProblem, type ExportedService } from '../../src/core/index.js';
import { down, readState, up, type ClusterSetState } from '../harness/clusterset.js';
import { repoRoot } from '../harness/paths.js';
import { admin, ensureNamespace } from '../tests/kube-helpers.js';
import { nodeHttp, nodeReady } from '../tests/node-helpers.js';
import { exportedServiceArb, FOCI, type Focus } from './content.js';
import { caseArb, caseName, type CaseSpec } from './objects.js';
import { PropagationFailure, runCase, type PropagationContext } from './propagation.js';
import { resultTable, show, type PhaseRow } from './report.js';
import { checkVerdict, type Admin } from './verdicts.js';

const USAGE = `Usage: npm run property -- [--short] [--seed N] [--runs N] [--keep] [--phase verdicts|propagation]
                            [--only PROPERTY --path PATH] [--bound-ms MS] [--attach DIR]

Starts a two-cluster ClusterSet with one mcs-gossip node each (in a fresh temporary directory), then:
  phase A "verdicts":    10 × runs cases of exported-service content; for each, importProblem() against the API
                         server of cluster-2, which dry-runs the ServiceImport, derived Service and imported slices
                         an importer would write (split over the properties verdicts/${FOCI.join(', verdicts/')})
  phase B "propagation": runs cases of Service + EndpointSlices + ServiceExport applied in cluster-1; each must end
                         as a matching import in cluster-2 or Valid=False with a reason on the export
Prints the seed, a table, counterexamples (shrunk), writes a JSON result to .property-results/. Exit 0 when every
property held, 1 otherwise, 2 on bad usage.

  --short            25 propagation cases (and 250 verdicts) instead of 300 (and 3000)
  --seed N           the fast-check seed (default: random, printed)
  --runs N           propagation cases (verdict cases: 10 × N)
  --keep             keep the ClusterSet's directory (logs, results) after stopping it
  --phase P          run only phase verdicts or propagation
  --only PROPERTY    run only this property (e.g. verdicts/ports, propagation)
  --path PATH        with --only and --seed: replay fast-check's counterexample path
  --bound-ms MS      how long a propagation case may take (default 20000)
  --attach DIR       use the ClusterSet already running in DIR (not stopped; for development)
  -h, --help         this help`;

const NODE_ARGS = ['--heartbeat-interval=1s', '--sync-interval=5s', '--log-level=info'];
const NAMESPACE = 'property';
const VERDICT_NAMESPACE = 'verdicts';
const VERDICT_NAME = 'verdict';

const log = (line: string) => process.stdout.write(`[property ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

class UsageError extends Error {}

interface Options {
  readonly short: boolean;
  readonly seed: number;
  readonly seedGiven: boolean;
  readonly runs: number;
  readonly keep: boolean;
  readonly phases: readonly ('verdicts' | 'propagation')[];
  readonly only?: string;
  readonly path?: string;
  readonly boundMs: number;
  readonly attach?: string;
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} ${v}: a whole number ≥ ${min} is needed`);
  return n;
}

const PROPERTIES = [...FOCI.map((f) => `verdicts/${f}`), 'propagation'];

function parse(argv: readonly string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        short: { type: 'boolean' },
        seed: { type: 'string' },
        runs: { type: 'string' },
        keep: { type: 'boolean' },
        phase: { type: 'string' },
        only: { type: 'string' },
        path: { type: 'string' },
        'bound-ms': { type: 'string' },
        attach: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  const short = values.short === true;
  const seed = int('seed', values.seed, -(2 ** 31));
  if (values.phase !== undefined && values.phase !== 'verdicts' && values.phase !== 'propagation')
    throw new UsageError(`--phase ${values.phase}: verdicts or propagation`);
  if (values.only !== undefined && !PROPERTIES.includes(values.only))
    throw new UsageError(`--only ${values.only}: one of ${PROPERTIES.join(', ')}`);
  if (values.path !== undefined && (values.only === undefined || seed === undefined))
    throw new UsageError('--path needs --only and --seed');
  const phases =
    values.only !== undefined
      ? [values.only === 'propagation' ? ('propagation' as const) : ('verdicts' as const)]
      : values.phase === undefined
        ? (['verdicts', 'propagation'] as const)
        : [values.phase as 'verdicts' | 'propagation'];
  return {
    short,
    seed: seed ?? Math.floor(Math.random() * 2 ** 31),
    seedGiven: seed !== undefined,
    runs: int('runs', values.runs, 1) ?? (short ? 25 : 300),
    keep: values.keep === true,
    phases,
    only: values.only,
    path: values.path,
    boundMs: int('bound-ms', values['bound-ms'], 1000) ?? 20_000,
    attach: values.attach,
  };
}

// ---- running one property

interface PropertyResult {
  readonly property: string;
  readonly row: PhaseRow;
  readonly seed: number;
  readonly numRuns: number;
  readonly numSkips: number;
  readonly failed: boolean;
  readonly interrupted: boolean;
  readonly counterexample?: unknown;
  readonly counterexamplePath?: string;
  readonly numShrinks?: number;
  readonly shrinkStoppedAfterMs?: number;
  readonly error?: string;
  readonly reproduce?: string;
  readonly stats: Record<string, unknown>;
}

/** Counters of one property; they count the run before shrinking starts, not the shrinking. */
class Tally {
  cases = 0;
  imported = 0;
  invalid = 0;
  rejected = 0;
  wireBound = 0;
  readonly reasons = new Map<string, number>();
  readonly rejections = new Map<string, number>();
  readonly latencies: number[] = [];
  failedAt: number | undefined;
  stopped = false;
  bump(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }
  get counting(): boolean {
    return this.failedAt === undefined;
  }
}

function sorted(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map.entries()].sort((a, b) => b[1] - a[1]));
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function reproduceCommand(o: Options, property: string, path: string | null): string {
  const base = `npm run property -- --seed ${o.seed} --runs ${o.runs}`;
  return path === null ? `${base} --only ${property}` : `${base} --only ${property} --path ${path}`;
}

async function runProperty<T>(
  o: Options,
  property: string,
  arb: fc.Arbitrary<T>,
  numRuns: number,
  shrinkBudgetMs: number,
  tally: Tally,
  check: (v: T) => Promise<void>,
): Promise<Omit<PropertyResult, 'row' | 'stats'>> {
  const prop = fc.asyncProperty(arb, async (v) => {
    // Past the shrinking budget, every candidate passes at once: fast-check ends with the smallest failure so far.
    if (tally.failedAt !== undefined && Date.now() - tally.failedAt > shrinkBudgetMs) {
      tally.stopped = true;
      return;
    }
    try {
      await check(v);
    } catch (err) {
      if (!fc.PreconditionFailure.isFailure(err)) tally.failedAt ??= Date.now();
      throw err;
    }
  });
  let details: fc.RunDetails<[T]> | undefined;
  const capture: fc.Plugin<[T]> = () => ({
    onAllRunsComplete: (d) => {
      details = d;
    },
  });
  const params: fc.Parameters<[T]> = {
    seed: o.seed,
    numRuns,
    verbose: fc.VerbosityLevel.Verbose,
    plugins: [capture],
    maxSkipsPerRun: 20,
  };
  if (o.path !== undefined && o.only === property) params.path = o.path;
  try {
    await fc.assert(prop, params);
  } catch (err) {
    if (details === undefined) throw err;
  }
  const d = details!;
  const failed = d.failed;
  const out: Omit<PropertyResult, 'row' | 'stats'> = {
    property,
    seed: d.seed,
    numRuns: d.numRuns,
    numSkips: d.numSkips,
    failed,
    interrupted: d.interrupted,
  };
  if (!failed) return out;
  const err = d.errorInstance;
  return {
    ...out,
    counterexample: d.counterexample?.[0],
    counterexamplePath: d.counterexamplePath ?? undefined,
    numShrinks: d.numShrinks,
    ...(tally.stopped ? { shrinkStoppedAfterMs: shrinkBudgetMs } : {}),
    error: err instanceof Error ? err.message : String(err),
    reproduce: reproduceCommand(o, property, d.counterexamplePath),
  };
}

function printFailure(r: Omit<PropertyResult, 'row' | 'stats'>, extra = ''): void {
  const lines = [
    `FAILED ${r.property} (seed ${r.seed}) after ${r.numRuns} cases, shrunk ${r.numShrinks ?? 0} times` +
      (r.shrinkStoppedAfterMs === undefined ? '' : ` (shrinking stopped after ${r.shrinkStoppedAfterMs / 1000} s)`),
    `counterexample (long strings and lists shortened): ${show(r.counterexample)}`,
    `${extra}error: ${r.error}`,
    `reproduce: ${r.reproduce}`,
  ];
  for (const l of lines.join('\n').split('\n')) log(`  ${l}`);
}

// ---- phase A

async function verdicts(o: Options, two: Admin): Promise<PropertyResult[]> {
  const total = o.runs * 10;
  const per = Math.ceil(total / FOCI.length);
  log(
    `phase A (verdicts): ${per * FOCI.length} cases over ${FOCI.length} properties; dry runs in ${VERDICT_NAMESPACE}/ of cluster-2. ` +
      'IP families are limited to ["IPv4"] and invalid ones: the harness clusters are single-stack IPv4 ' +
      '(service CIDR 10.10<i>.0.0/16, see cidrsOf), where the derived Service of an IPv6 or dual-stack import is ' +
      'refused although importProblem (which cannot know the importer) accepts it. A Headless import with ports has ' +
      'its derived Service dry-run as if ClusterSetIP with IPv4 (its ports join the derived Service of a merged ClusterSetIP import).',
  );
  const out: PropertyResult[] = [];
  for (const focus of FOCI) {
    const property = `verdicts/${focus}`;
    if (o.only !== undefined && o.only !== property) continue;
    const tally = new Tally();
    const t0 = Date.now();
    const r = await runProperty<ExportedService>(
      o,
      property,
      exportedServiceArb(focus as Focus),
      per,
      o.short ? 60_000 : 180_000,
      tally,
      async (svc) => {
        const outcome = await checkVerdict(two, svc, VERDICT_NAMESPACE, VERDICT_NAME);
        if (!tally.counting) return;
        tally.cases++;
        if (outcome === 'importable') tally.imported++;
        else if (outcome === 'wire-bound') tally.wireBound++;
        else tally.invalid++;
        const p = importProblem(svc);
        tally.bump(tally.reasons, p === undefined ? 'importable' : `${p.reason} ${p.field.replace(/\[.*$/, '[…]')}`);
      },
    );
    const seconds = (Date.now() - t0) / 1000;
    const row: PhaseRow = {
      phase: property,
      cases: r.numRuns,
      imported: tally.imported,
      invalid: tally.invalid,
      wireBound: tally.wireBound,
      failures: r.failed ? 1 : 0,
      seconds,
    };
    log(
      `${property}: ${r.failed ? 'FAILED' : 'held'} — ${r.numRuns} cases, ${tally.imported} importable, ${tally.invalid} unimportable (API server agrees), ${tally.wireBound} over a wire bound only, ${seconds.toFixed(1)} s`,
    );
    if (r.failed) {
      const e = r.counterexample as ExportedService | undefined;
      const p = e === undefined ? undefined : importProblem(e);
      printFailure(r, `importProblem(counterexample) = ${p === undefined ? 'undefined' : show(p)}\n`);
    }
    out.push({ ...r, row, stats: { byProblem: sorted(tally.reasons) } });
  }
  return out;
}

// ---- phase B

async function propagation(o: Options, harness: ClusterSetState, one: Admin, two: Admin): Promise<PropertyResult> {
  const property = 'propagation';
  const nodeStatus = async (cluster: string) => {
    const r = await nodeHttp(harness, cluster, '/status');
    const s = JSON.parse(r.body) as { refusedKeys?: unknown[]; unimportableRecords?: unknown[]; heldKeys?: unknown[] };
    return JSON.stringify({
      refusedKeys: s.refusedKeys?.slice(0, 5),
      unimportableRecords: s.unimportableRecords?.slice(-5),
      heldKeys: s.heldKeys?.slice(0, 5),
    }).slice(0, 2000);
  };
  const ctx: PropagationContext = { one, two, namespace: NAMESPACE, boundMs: o.boundMs, nodeStatus };
  const tally = new Tally();
  const rejectionSamples = new Map<string, { message: string; case: string }>();
  let counter = 0;
  log(
    `phase B (propagation): ${o.runs} cases in ${NAMESPACE}/ (bound ${o.boundMs} ms each); Services get ipFamilies ["IPv4"] ` +
      '(single-stack clusters; RequireDualStack now and then, which the API server refuses)',
  );
  const t0 = Date.now();
  const r = await runProperty<CaseSpec>(o, property, caseArb, o.runs, o.short ? 90_000 : 300_000, tally, async (c) => {
    const name = caseName(c.prefix, `c${(counter++).toString(36)}`);
    const started = Date.now();
    const result = await runCase(ctx, name, c);
    if (result.outcome === 'rejected') {
      if (tally.counting) {
        tally.rejected++;
        const key = `${result.object.replace(/ .*/, '')} ${result.code}: ${result.message.replace(/^.*?: /, '').slice(0, 110)}`;
        tally.bump(tally.rejections, key);
        if (!rejectionSamples.has(key)) rejectionSamples.set(key, { message: result.message, case: show(c) });
      }
      fc.pre(false);
    }
    if (result.outcome === 'failed') throw new PropagationFailure(`${NAMESPACE}/${name}: ${result.failure}`);
    if (!tally.counting) return;
    tally.cases++;
    tally.latencies.push(Date.now() - started);
    if (result.outcome === 'imported') tally.imported++;
    else {
      tally.invalid++;
      tally.bump(tally.reasons, result.reason ?? '');
    }
    if (tally.cases % 25 === 0)
      log(
        `  ${tally.cases} cases: ${tally.imported} imported, ${tally.invalid} marked invalid, ${tally.rejected} rejected by the API server`,
      );
  });
  const seconds = (Date.now() - t0) / 1000;
  const row: PhaseRow = {
    phase: property,
    cases: r.numRuns,
    imported: tally.imported,
    invalid: tally.invalid,
    rejected: tally.rejected,
    wireBound: 0,
    failures: r.failed ? 1 : 0,
    seconds,
  };
  const lat = tally.latencies;
  log(
    `propagation: ${r.failed ? 'FAILED' : 'held'} — ${r.numRuns} cases, ${tally.imported} imported, ${tally.invalid} marked invalid, ` +
      `${tally.rejected} rejected by the API server (discarded); per case median ${percentile(lat, 50)} ms, p95 ${percentile(lat, 95)} ms, max ${percentile(lat, 100)} ms`,
  );
  if (tally.reasons.size > 0) log(`  Valid=False reasons: ${JSON.stringify(sorted(tally.reasons))}`);
  for (const [m, n] of Object.entries(sorted(tally.rejections)).slice(0, 8)) log(`  rejected ${n}×: ${m}`);
  if (r.failed) printFailure(r);
  return {
    ...r,
    row,
    stats: {
      validFalseReasons: sorted(tally.reasons),
      rejections: sorted(tally.rejections),
      rejectionSamples: Object.fromEntries(rejectionSamples),
      caseMs: { median: percentile(lat, 50), p95: percentile(lat, 95), max: percentile(lat, 100) },
    },
  };
}

// ---- main

async function commitOf(): Promise<string> {
  const git = (args: string[]) =>
    new Promise<string>((res) =>
      execFile('git', args, { cwd: repoRoot, timeout: 10_000 }, (err, out) => res(err === null ? out.trim() : '')),
    );
  const sha = (await git(['rev-parse', '--short', 'HEAD'])) || 'unknown';
  const dirty = (await git(['status', '--porcelain', '--untracked-files=no'])) !== '';
  return dirty ? `${sha} (with uncommitted changes)` : sha;
}

async function main(argv: readonly string[]): Promise<number> {
  let o: Options | 'help';
  try {
    o = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const opts = o;
  log(
    `seed ${opts.seed}${opts.seedGiven ? '' : ' (random)'}; ${opts.short ? 'short' : 'full'} run, ${opts.runs} propagation cases`,
  );
  const t0 = Date.now();
  const dir = opts.attach ?? (await mkdtemp(join(tmpdir(), 'mcs-property-')));
  const ac = new AbortController();
  let stopping = false;
  const teardown = async () => {
    if (opts.attach === undefined) {
      log('stopping the ClusterSet');
      await down(dir).catch((err: unknown) => log(`down failed: ${(err as Error).message}`));
      if (!opts.keep) await rm(dir, { recursive: true, force: true });
      else log(`kept ${dir}`);
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping the ClusterSet and exiting (seed ${opts.seed})`);
    ac.abort(new Error(`interrupted by ${signal}`));
    void teardown().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: PropertyResult[] = [];
  let aborted: string | undefined;
  try {
    let harness: ClusterSetState;
    if (opts.attach !== undefined) {
      const s = await readState(opts.attach);
      if (s === undefined) throw new Error(`no ClusterSet in ${opts.attach}`);
      harness = s;
      log(`using the ClusterSet in ${opts.attach}`);
    } else {
      log(`starting a 2-cluster ClusterSet with nodes in ${dir}`);
      harness = await up({
        dir,
        clusters: 2,
        nodes: true,
        extraArgs: { 'mcs-gossip': NODE_ARGS },
        signal: ac.signal,
        onProgress: () => {},
      });
      log(`ClusterSet up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const one = admin(harness, 'cluster-1');
    const two = admin(harness, 'cluster-2');
    await Promise.all([ensureNamespace(one.core, NAMESPACE), ensureNamespace(two.core, NAMESPACE)]);
    await ensureNamespace(two.core, VERDICT_NAMESPACE);
    await Promise.all([nodeReady(harness, 'cluster-1'), nodeReady(harness, 'cluster-2')]);
    if (opts.phases.includes('verdicts')) results.push(...(await verdicts(opts, two)));
    if (opts.phases.includes('propagation')) results.push(await propagation(opts, harness, one, two));
  } catch (err) {
    aborted = (err as Error).stack ?? String(err);
    log(`run stopped: ${aborted}`);
  } finally {
    if (!stopping) await teardown();
  }
  const seconds = (Date.now() - t0) / 1000;
  const failed = results.filter((r) => r.failed);
  const report = {
    date: new Date().toISOString(),
    commit: await commitOf(),
    mode: opts.short ? 'short' : 'full',
    seed: opts.seed,
    runs: opts.runs,
    seconds,
    ...(aborted === undefined ? {} : { aborted }),
    properties: results.map((r) => ({
      ...r,
      counterexample: r.counterexample === undefined ? undefined : show(r.counterexample),
    })),
  };
  process.stdout.write(`\n${resultTable(results.map((r) => r.row))}\n\n`);
  log(
    `seed ${opts.seed}; ${results.length} properties, ${failed.length} failed; ${seconds.toFixed(1)} s in all` +
      (failed.length === 0 ? '' : `; reproduce: ${failed.map((r) => r.reproduce).join(' ; ')}`),
  );
  const resultsDir = join(repoRoot, '.property-results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${report.date.replace(/[:.]/g, '-')}-${report.mode}-seed${opts.seed}.json`);
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
  log(`results: ${file}`);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return aborted === undefined && failed.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
