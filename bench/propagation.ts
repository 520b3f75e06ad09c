// `npm run bench -- propagation`: how fast an export and an endpoint change in cluster-1 reach every other real
// cluster, against the floor of the machine (a write seen by a watch in cluster-1 plus one in cluster-2), and how
// many API writes the nodes make per export. Every arrival is timed by a watch started before the writes (never by
// polling); exports are sequential and spaced out, so this measures latency, not throughput. See
// docs/benchmarks.md#propagation.
import { parseArgs } from 'node:util';
import { barChart, percentiles, printTable, writeResults, type Percentiles, type Row } from './report.js';
import {
  auditedWrites,
  breakdown,
  configMapPath,
  endpoint,
  endpointState,
  exportBody,
  exportPath,
  importedSlicesOf,
  importPath,
  Informer,
  intFlag,
  LABEL_MANAGED_BY,
  MANAGED_BY_NODE,
  now,
  serviceBody,
  settledWrites,
  sleep,
  sliceBody,
  slicePath,
  sumClusters,
  svcPath,
  total,
  Waits,
  withClusterSet,
  writesBetween,
  type BenchClusterSet,
  type EndpointSlice,
  type WriteCounts,
} from './clusters.js';

const NS = 'bench';
const FLOOR_NS = 'bench-floor';
const ORIGIN = 'cluster-1';
const FLOOR_SECOND = 'cluster-2';
/** Endpoints per exported service (one slice). */
const ENDPOINTS = 3;

const TARGET = { p50Ratio: 3, p99Ratio: 5, p99Ms3: 300, writesPerExport3: 9.5 } as const;

const USAGE = `Usage: npm run bench -- propagation [flags]

  --clusters LIST          cluster counts to measure, each on a fresh ClusterSet (default 3,5)
  --exports N              measured exports (default 50; --quick 10)
  --endpoint-changes N     measured endpoint changes (default 50; --quick 10)
  --warmup N               exports made first and not counted (default 3; --quick 1)
  --gap MIN-MAX            pause between two measured changes, ms (default 300-500)
  --timeout SECONDS        give up on one change after this long (default 30)
  --quick                  fewer exports and changes, for development
  --verbose                the harness's progress lines
`;

interface Options {
  readonly clusters: readonly number[];
  readonly exports: number;
  readonly changes: number;
  readonly warmup: number;
  readonly gapMin: number;
  readonly gapMax: number;
  readonly timeoutMs: number;
  readonly quick: boolean;
  readonly verbose: boolean;
}

function parse(argv: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      clusters: { type: 'string', default: '3,5' },
      exports: { type: 'string' },
      'endpoint-changes': { type: 'string' },
      warmup: { type: 'string' },
      gap: { type: 'string', default: '300-500' },
      timeout: { type: 'string', default: '30' },
      quick: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const clusters = values.clusters.split(',').map((s) => Number(s.trim()));
  if (clusters.some((n) => !Number.isInteger(n) || n < 2 || n > 20))
    throw new Error(`--clusters takes cluster counts from 2 to 20, e.g. 3,5; got "${values.clusters}"`);
  const gap = /^(\d+)-(\d+)$/.exec(values.gap);
  if (gap === null || Number(gap[1]) > Number(gap[2]))
    throw new Error(`--gap takes MIN-MAX in ms, got "${values.gap}"`);
  const quick = values.quick;
  return {
    clusters,
    exports: intFlag(values, 'exports', quick ? 10 : 50),
    changes: intFlag(values, 'endpoint-changes', quick ? 10 : 50),
    warmup: intFlag(values, 'warmup', quick ? 1 : 3, 0),
    gapMin: Number(gap[1]),
    gapMax: Number(gap[2]),
    timeoutMs: intFlag(values, 'timeout', 30) * 1000,
    quick,
    verbose: values.verbose,
  };
}

// ---------------------------------------------------------------- one ClusterSet

interface ExportSample {
  /** ms from the ServiceExport create to: the ServiceImport with ips, the slices, both — in every other cluster. */
  readonly si: number;
  readonly slices: number;
  readonly remote: number;
  /** Both, in every cluster including cluster-1's own import. */
  readonly all: number;
  /** Both, per cluster. */
  readonly byCluster: Readonly<Record<string, number>>;
}

interface FloorSample {
  readonly first: number;
  readonly second: number;
  readonly sum: number;
}

interface WritesFigure {
  /** ok writes of every node / measured changes. */
  readonly perChange: number;
  readonly total: number;
  /** `resource verb` → ok writes per change, all nodes. */
  readonly byResource: Record<string, number>;
  /** cluster → ok writes per change of that cluster's node. */
  readonly byCluster: Record<string, number>;
  /** writes with a result other than ok (conflict, notfound, refused, error), all nodes. */
  readonly failed: Record<string, number>;
  /** The node's successful writes found in the audit logs, per change (a cross-check of the counters). */
  readonly auditPerChange: number;
  readonly auditByResource: Record<string, number>;
}

interface ClusterCountResult {
  readonly clusters: number;
  readonly floor: { readonly sum: Percentiles; readonly first: Percentiles; readonly second: Percentiles };
  readonly exportImport: Percentiles & { readonly timeouts: number };
  readonly exportServiceImport: Percentiles;
  readonly exportSlices: Percentiles;
  readonly exportAllClusters: Percentiles;
  readonly exportByCluster: Record<string, Percentiles>;
  readonly endpointChange: Percentiles & { readonly timeouts: number };
  readonly endpointByCluster: Record<string, Percentiles>;
  readonly exportWrites: WritesFigure;
  readonly endpointWrites: WritesFigure;
  readonly watchRestarts: number;
  readonly samples: {
    readonly floor: readonly FloorSample[];
    readonly exports: readonly ExportSample[];
    readonly endpointChanges: readonly Readonly<Record<string, number>>[];
  };
}

const round = (v: number) => Math.round(v * 10) / 10;

function writesFigure(
  per: ReadonlyMap<string, WriteCounts>,
  audit: ReadonlyMap<string, number>,
  changes: number,
): WritesFigure {
  const all = sumClusters(per);
  const perRes = (m: ReadonlyMap<string, number>) =>
    Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / changes) * 100) / 100]));
  return {
    perChange: total(all.ok) / changes,
    total: total(all.ok),
    byResource: perRes(all.ok),
    byCluster: Object.fromEntries([...per].map(([c, w]) => [c, total(w.ok) / changes])),
    failed: Object.fromEntries(all.failed),
    auditPerChange: total(audit) / changes,
    auditByResource: perRes(audit),
  };
}

async function measure(cs: BenchClusterSet, o: Options): Promise<ClusterCountResult> {
  const { names, state } = cs;
  const remotes = names.filter((c) => c !== ORIGIN);
  const origin = cs.kube(ORIGIN);
  await cs.namespace(NS);
  await cs.namespace(FLOOR_NS);

  // Watches in every cluster, started before any write.
  const imports = new Map<string, Informer>();
  const slices = new Map<string, Informer>();
  const floors = new Map<string, Informer>();
  const waits = new Waits();
  for (const c of names) {
    imports.set(c, new Informer(cs.kube(c), importPath(NS)));
    slices.set(c, new Informer(cs.kube(c), slicePath(NS), `${LABEL_MANAGED_BY}=${MANAGED_BY_NODE}`));
  }
  for (const c of [ORIGIN, FLOOR_SECOND])
    floors.set(c, new Informer(cs.kube(c), configMapPath(FLOOR_NS), 'bench=floor'));
  const informers = [...imports.values(), ...slices.values(), ...floors.values()];
  for (const i of informers) {
    waits.follow(i);
    await i.start();
  }

  const hasIps = (c: string, name: string) => {
    const si = imports.get(c)!.items.get(name) as { spec?: { ips?: string[] } } | undefined;
    return (si?.spec?.ips?.length ?? 0) > 0;
  };
  const slicesAre = (c: string, name: string, expected: string) => {
    const got = importedSlicesOf(slices.get(c)!, name, ORIGIN);
    return got.length > 0 && endpointState(got) === expected;
  };

  let floorSeq = 0;
  const floorOnce = async (): Promise<FloorSample> => {
    const parts: number[] = [];
    for (const c of [ORIGIN, FLOOR_SECOND]) {
      const name = `floor-${floorSeq++}`;
      const seen = waits.until(`${name} in ${c}`, () => floors.get(c)!.items.has(name), o.timeoutMs);
      const t0 = now();
      await cs.kube(c).create(configMapPath(FLOOR_NS), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, labels: { bench: 'floor' } },
        data: { n: String(floorSeq) },
      });
      parts.push((await seen) - t0);
    }
    return { first: parts[0]!, second: parts[1]!, sum: parts[0]! + parts[1]! };
  };

  /** The objects' slices, by service name: what the endpoint changes edit. */
  const own = new Map<string, EndpointSlice>();

  /** Service, EndpointSlice, then ServiceExport in cluster-1; timed from the ServiceExport create. */
  const exportOne = async (name: string, i: number): Promise<ExportSample | undefined> => {
    const eps = Array.from({ length: ENDPOINTS }, (_, k) =>
      endpoint(`10.201.${Math.floor(i / 50) % 100}.${(i % 50) * 5 + k + 1}`, true),
    );
    await origin.create(svcPath(NS), serviceBody(name));
    const slice = await origin.create(slicePath(NS), sliceBody(name, `${name}-a`, eps));
    own.set(name, slice);
    const expected = endpointState([slice]);
    const perCluster = names.map((c) => ({
      c,
      si: waits.until(`ServiceImport ${name} with ips in ${c}`, () => hasIps(c, name), o.timeoutMs),
      sl: waits.until(`slices of ${name} in ${c}`, () => slicesAre(c, name, expected), o.timeoutMs),
      both: waits.until(`${name} imported in ${c}`, () => hasIps(c, name) && slicesAre(c, name, expected), o.timeoutMs),
    }));
    const t0 = now();
    await origin.create(exportPath(NS), exportBody(name));
    try {
      const got = await Promise.all(
        perCluster.map(async (p) => ({ c: p.c, si: await p.si, sl: await p.sl, both: await p.both })),
      );
      const rem = got.filter((g) => g.c !== ORIGIN);
      return {
        si: Math.max(...rem.map((g) => g.si)) - t0,
        slices: Math.max(...rem.map((g) => g.sl)) - t0,
        remote: Math.max(...rem.map((g) => g.both)) - t0,
        all: Math.max(...got.map((g) => g.both)) - t0,
        byCluster: Object.fromEntries(got.map((g) => [g.c, round(g.both - t0)])),
      };
    } catch (err) {
      process.stderr.write(`  ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      await Promise.allSettled(perCluster.flatMap((p) => [p.si, p.sl, p.both]));
      return undefined;
    }
  };

  /** One endpoint of a slice in cluster-1 changes (ready toggled, or a new address); timed from its update. */
  const changeOne = async (j: number, exported: readonly string[]): Promise<Record<string, number> | undefined> => {
    const name = exported[j % exported.length]!;
    const slice = own.get(name)!;
    const eps = (slice.endpoints ?? []).map((e) => ({ ...e, conditions: { ...e.conditions } }));
    if (j % 2 === 0) {
      const ready = eps[0]!.conditions.ready === false;
      eps[0]!.conditions = { ready, serving: ready, terminating: false };
    } else {
      eps[1]!.addresses = [`10.201.${200 + (Math.floor(j / 250) % 50)}.${(j % 250) + 1}`];
    }
    const next: EndpointSlice = { ...slice, endpoints: eps };
    const expected = endpointState([next]);
    const perCluster = remotes.map((c) => ({
      c,
      at: waits.until(`endpoint change ${j} of ${name} in ${c}`, () => slicesAre(c, name, expected), o.timeoutMs),
    }));
    const t0 = now();
    own.set(name, await origin.replace(slicePath(NS), next));
    try {
      const got = await Promise.all(perCluster.map(async (p) => ({ c: p.c, at: await p.at })));
      return Object.fromEntries(got.map((g) => [g.c, g.at - t0]));
    } catch (err) {
      process.stderr.write(`  endpoint change ${j}: ${err instanceof Error ? err.message : String(err)}\n`);
      await Promise.allSettled(perCluster.map((p) => p.at));
      return undefined;
    }
  };

  const gap = (i: number) => o.gapMin + ((i * 7919) % (o.gapMax - o.gapMin + 1));
  const floor: FloorSample[] = [];
  const progress = (what: string, i: number, n: number, ms: number | undefined) => {
    if ((i + 1) % 10 === 0 || i + 1 === n)
      process.stderr.write(
        `  ${names.length} clusters: ${what} ${i + 1}/${n}, last ${ms === undefined ? 'timed out' : `${Math.round(ms)} ms`}\n`,
      );
  };

  for (let k = 0; k < o.warmup; k++) {
    await exportOne(`warm-${k}`, 1000 + k);
    await sleep(gap(k));
  }

  // Export phase: the write counters read when they have settled before and after.
  let before = await settledWrites(state);
  let auditSince = Date.now();
  const exportsDone: ExportSample[] = [];
  let exportTimeouts = 0;
  const exported: string[] = [];
  for (let i = 0; i < o.exports; i++) {
    const g = gap(i);
    await sleep(g / 2);
    floor.push(await floorOnce());
    await sleep(g / 2);
    const name = `svc-${i}`;
    const s = await exportOne(name, i);
    if (s === undefined) exportTimeouts++;
    else exportsDone.push(s);
    exported.push(name);
    progress('exports', i, o.exports, s?.remote);
  }
  let after = await settledWrites(state);
  const exportWrites = writesFigure(
    writesBetween(after, before),
    await auditedWrites(state, auditSince, Date.now()),
    o.exports,
  );

  // Endpoint-change phase.
  before = after;
  auditSince = Date.now();
  const changes: Record<string, number>[] = [];
  let changeTimeouts = 0;
  for (let j = 0; j < o.changes; j++) {
    const g = gap(j + o.exports);
    await sleep(g / 2);
    floor.push(await floorOnce());
    await sleep(g / 2);
    const s = await changeOne(j, exported);
    if (s === undefined) changeTimeouts++;
    else changes.push(s);
    progress('endpoint changes', j, o.changes, s === undefined ? undefined : Math.max(...Object.values(s)));
  }
  after = await settledWrites(state);
  const endpointWrites = writesFigure(
    writesBetween(after, before),
    await auditedWrites(state, auditSince, Date.now()),
    o.changes,
  );

  const watchRestarts = informers.reduce((n, i) => n + i.restarts, 0);
  for (const i of informers) await i.stop();

  const byCluster = (rows: readonly Readonly<Record<string, number>>[], clusters: readonly string[]) =>
    Object.fromEntries(clusters.map((c) => [c, percentiles(rows.map((r) => r[c]!).filter((v) => v !== undefined))]));
  return {
    clusters: names.length,
    floor: {
      sum: percentiles(floor.map((f) => f.sum)),
      first: percentiles(floor.map((f) => f.first)),
      second: percentiles(floor.map((f) => f.second)),
    },
    exportImport: { ...percentiles(exportsDone.map((s) => s.remote)), timeouts: exportTimeouts },
    exportServiceImport: percentiles(exportsDone.map((s) => s.si)),
    exportSlices: percentiles(exportsDone.map((s) => s.slices)),
    exportAllClusters: percentiles(exportsDone.map((s) => s.all)),
    exportByCluster: byCluster(
      exportsDone.map((s) => s.byCluster),
      names,
    ),
    endpointChange: { ...percentiles(changes.map((s) => Math.max(...Object.values(s)))), timeouts: changeTimeouts },
    endpointByCluster: byCluster(changes, remotes),
    exportWrites,
    endpointWrites,
    watchRestarts,
    samples: {
      floor: floor.map((f) => ({ first: round(f.first), second: round(f.second), sum: round(f.sum) })),
      exports: exportsDone.map((s) => ({
        si: round(s.si),
        slices: round(s.slices),
        remote: round(s.remote),
        all: round(s.all),
        byCluster: s.byCluster,
      })),
      endpointChanges: changes.map((s) => Object.fromEntries(Object.entries(s).map(([c, v]) => [c, round(v)]))),
    },
  };
}

// ---------------------------------------------------------------- report

function verdict(r: ClusterCountResult, p: Percentiles): { target: string; met: string } {
  const targets = [`p50 ≤ ${TARGET.p50Ratio}× floor`, `p99 ≤ ${TARGET.p99Ratio}× floor`];
  const misses: string[] = [];
  const p50x = p.p50 / r.floor.sum.p50;
  const p99x = p.p99 / r.floor.sum.p99;
  if (!(p50x <= TARGET.p50Ratio)) misses.push(`p50 ${p50x.toFixed(1)}×`);
  if (!(p99x <= TARGET.p99Ratio)) misses.push(`p99 ${p99x.toFixed(1)}×`);
  if (r.clusters === 3) {
    targets.push(`p99 < ${TARGET.p99Ms3} ms`);
    if (!(p.p99 < TARGET.p99Ms3)) misses.push(`p99 ${Math.round(p.p99)} ms`);
  }
  return { target: targets.join(', '), met: misses.length === 0 ? 'yes' : `no: ${misses.join(', ')}` };
}

function latencyRows(r: ClusterCountResult): Row[] {
  const n = r.clusters;
  const row = (phase: string, p: Percentiles, extra: Partial<Row> = {}): Row => ({
    clusters: n,
    phase,
    n: p.samples,
    p50: p.p50,
    p99: p.p99,
    max: p.max,
    ...extra,
  });
  const ratios = (p: Percentiles) => ({ r50: p.p50 / r.floor.sum.p50, r99: p.p99 / r.floor.sum.p99 });
  const timeouts = (t: number) => (t > 0 ? ` (${t} timed out, not counted)` : '');
  return [
    row('floor: write + watch in cluster-1, + in cluster-2', r.floor.sum),
    row('  floor part in cluster-1', r.floor.first),
    row('  floor part in cluster-2', r.floor.second),
    row('export → ServiceImport with ips, every other cluster', r.exportServiceImport, ratios(r.exportServiceImport)),
    row('export → imported slices, every other cluster', r.exportSlices, ratios(r.exportSlices)),
    row(`export → import (both), every other cluster${timeouts(r.exportImport.timeouts)}`, r.exportImport, {
      ...ratios(r.exportImport),
      ...verdict(r, r.exportImport),
    }),
    row('export → import, every cluster incl. cluster-1', r.exportAllClusters, ratios(r.exportAllClusters)),
    row(`endpoint change → slices, every other cluster${timeouts(r.endpointChange.timeouts)}`, r.endpointChange, {
      ...ratios(r.endpointChange),
      ...verdict(r, r.endpointChange),
    }),
  ];
}

function writeRows(r: ClusterCountResult): Row[] {
  const remotes = Object.keys(r.exportWrites.byCluster).filter((c) => c !== ORIGIN);
  const perRemote = (w: WritesFigure) => remotes.reduce((s, c) => s + (w.byCluster[c] ?? 0), 0) / remotes.length;
  const fmt = (m: Record<string, number>) => breakdown(new Map(Object.entries(m)));
  const failed = (w: WritesFigure) => {
    const n = Object.values(w.failed).reduce((a, b) => a + b, 0);
    return n === 0 ? '' : ` (+${n} failed: ${fmt(w.failed)})`;
  };
  const exportTarget =
    r.clusters === 3
      ? {
          target: `≤ ${TARGET.writesPerExport3}`,
          met:
            r.exportWrites.perChange <= TARGET.writesPerExport3 ? 'yes' : `no: ${r.exportWrites.perChange.toFixed(1)}`,
        }
      : {};
  return [
    {
      clusters: r.clusters,
      per: 'export',
      all: r.exportWrites.perChange,
      origin: r.exportWrites.byCluster[ORIGIN],
      remote: perRemote(r.exportWrites),
      audit: r.exportWrites.auditPerChange,
      ...exportTarget,
      breakdown: fmt(r.exportWrites.byResource) + failed(r.exportWrites),
    },
    {
      clusters: r.clusters,
      per: 'endpoint change',
      all: r.endpointWrites.perChange,
      origin: r.endpointWrites.byCluster[ORIGIN],
      remote: perRemote(r.endpointWrites),
      audit: r.endpointWrites.auditPerChange,
      breakdown: fmt(r.endpointWrites.byResource) + failed(r.endpointWrites),
    },
  ];
}

function chart(results: readonly ClusterCountResult[]): string {
  const groups = results.flatMap((r) => [
    { label: `${r.clusters} clusters: floor`, p: r.floor.sum },
    { label: `${r.clusters} clusters: export → import`, p: r.exportImport },
    { label: `${r.clusters} clusters: endpoint change`, p: r.endpointChange },
  ]);
  return barChart({
    title: 'propagation from cluster-1 to every other cluster, seen through watches',
    unit: 'ms',
    groups: groups.map((g) => ({
      label: g.label,
      values: [
        { label: 'p50', value: Math.round(g.p.p50 * 10) / 10 },
        { label: 'p99', value: Math.round(g.p.p99 * 10) / 10 },
      ],
    })),
  });
}

export async function run(argv: readonly string[]): Promise<void> {
  const o = parse(argv);
  if (o === undefined) return;
  const results: ClusterCountResult[] = [];
  for (const n of o.clusters) {
    results.push(await withClusterSet('propagation', n, (cs) => measure(cs, o), { verbose: o.verbose }));
  }
  const latency = printTable(
    `propagation (ms; ${o.exports} exports, ${o.changes} endpoint changes per cluster count, ${o.warmup} warm-up exports not counted; ` +
      `from the ServiceExport create / slice update in cluster-1 to the watch event in the last other cluster; ` +
      `floor = create + watch event of a ConfigMap in cluster-1, plus the same in cluster-2)`,
    [
      { key: 'clusters', title: 'clusters' },
      { key: 'phase', title: 'phase' },
      { key: 'n', title: 'n' },
      { key: 'p50', title: 'p50' },
      { key: 'p99', title: 'p99' },
      { key: 'max', title: 'max' },
      { key: 'r50', title: 'p50/floor' },
      { key: 'r99', title: 'p99/floor' },
      { key: 'target', title: 'target' },
      { key: 'met', title: 'met' },
    ],
    results.flatMap(latencyRows),
  );
  const writes = printTable(
    'API writes by the nodes (mcs_gossip_kube_api_writes_total, result ok, all nodes; per export or endpoint change)',
    [
      { key: 'clusters', title: 'clusters' },
      { key: 'per', title: 'per' },
      { key: 'all', title: 'all nodes' },
      { key: 'origin', title: 'cluster-1' },
      { key: 'remote', title: 'per other cluster' },
      { key: 'audit', title: 'audit log' },
      { key: 'target', title: 'target' },
      { key: 'met', title: 'met' },
      { key: 'breakdown', title: 'by resource and verb (all nodes)' },
    ],
    results.flatMap(writeRows),
  );
  const perCluster = printTable(
    'export → import by cluster (ms)',
    [
      { key: 'clusters', title: 'clusters' },
      { key: 'cluster', title: 'cluster' },
      { key: 'p50', title: 'export p50' },
      { key: 'p99', title: 'export p99' },
      { key: 'e50', title: 'endpoint p50' },
      { key: 'e99', title: 'endpoint p99' },
    ],
    results.flatMap((r) =>
      Object.entries(r.exportByCluster).map(([c, p]) => ({
        clusters: r.clusters,
        cluster: c === ORIGIN ? `${c} (own import)` : c,
        p50: p.p50,
        p99: p.p99,
        e50: r.endpointByCluster[c]?.p50,
        e99: r.endpointByCluster[c]?.p99,
      })),
    ),
  );
  for (const r of results) {
    for (const [what, w] of [
      ['export', r.exportWrites],
      ['endpoint change', r.endpointWrites],
    ] as const) {
      if (Math.abs(w.perChange - w.auditPerChange) > 0.05)
        process.stdout.write(
          `note: ${r.clusters} clusters: the nodes' counters say ${w.perChange.toFixed(2)} writes per ${what}, the audit logs ${w.auditPerChange.toFixed(2)} (${breakdown(new Map(Object.entries(w.auditByResource)))})\n`,
        );
    }
  }
  const restarts = results.reduce((n, r) => n + r.watchRestarts, 0);
  if (restarts > 0) process.stdout.write(`note: ${restarts} watch streams were reopened during the run\n`);
  await writeResults(
    'propagation',
    {
      options: o,
      targets: TARGET,
      results,
    },
    { svg: chart(results), table: [latency, writes, perCluster].join('\n') },
  );
}
