// `npm run bench -- churn`: 1,000 endpoint changes in 10 s to one exported service's EndpointSlices in cluster-1,
// on 3 real clusters with nodes. Measures how long after the last change every other cluster's imported slices
// equal the final state (seen through watches, never polled), and how many API writes the other clusters' nodes
// make for it against the number of distinct slice states written. See docs/benchmarks.md#churn.
import { parseArgs } from 'node:util';
import { lineChart, percentiles, printTable, writeResults, type Row } from './report.js';
import {
  auditedWrites,
  breakdown,
  endpoint,
  endpointState,
  exportBody,
  exportPath,
  importedSlicesOf,
  Informer,
  intFlag,
  KubeError,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  MANAGED_BY_BENCH,
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
} from './clusters.js';

const NS = 'bench';
const ORIGIN = 'cluster-1';
const SERVICE = 'churn';
const CLUSTERS = 3;
const TARGET_CONVERGE_MS = 2000;

const USAGE = `Usage: npm run bench -- churn [flags]

  --changes N      endpoint changes (default 1000; --quick 200)
  --duration S     over this many seconds (default 10; --quick 2)
  --slices N       EndpointSlices of the service in cluster-1, updated in parallel (default 4)
  --endpoints N    endpoints per slice (default 10)
  --timeout S      give up waiting for convergence after this long (default 60)
  --quick          fewer changes (same rate), for development
  --verbose        the harness's progress lines
`;

interface Options {
  readonly changes: number;
  readonly durationMs: number;
  readonly slices: number;
  readonly endpoints: number;
  readonly timeoutMs: number;
  readonly quick: boolean;
  readonly verbose: boolean;
}

function parse(argv: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      changes: { type: 'string' },
      duration: { type: 'string' },
      slices: { type: 'string' },
      endpoints: { type: 'string' },
      timeout: { type: 'string' },
      quick: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const quick = values.quick;
  const o: Options = {
    changes: intFlag(values, 'changes', quick ? 200 : 1000),
    durationMs: intFlag(values, 'duration', quick ? 2 : 10) * 1000,
    slices: intFlag(values, 'slices', 4),
    endpoints: intFlag(values, 'endpoints', 10),
    timeoutMs: intFlag(values, 'timeout', 60) * 1000,
    quick,
    verbose: values.verbose,
  };
  if (o.slices * o.endpoints > 100)
    throw new Error('--slices × --endpoints must be at most 100 (the node imports at most 100 endpoints per slice)');
  return o;
}

/** A fresh address per change (10.201.100.1 …): every slice state written is distinct. */
const addressOf = (k: number) => `10.201.${100 + Math.floor(k / 250)}.${(k % 250) + 1}`;

const round = (v: number) => Math.round(v * 10) / 10;

interface WriteRecord {
  readonly k: number;
  readonly slice: string;
  readonly due: number;
  readonly sent: number;
  readonly done: number;
}

async function measure(cs: BenchClusterSet, o: Options) {
  const { names, state } = cs;
  const remotes = names.filter((c) => c !== ORIGIN);
  const origin = cs.kube(ORIGIN);
  await cs.namespace(NS);

  const slices = new Map<string, Informer>();
  const waits = new Waits();
  /** Per cluster: arrival times of the watch events of the service's imported slices, and the states they show. */
  const events = new Map<string, number[]>(names.map((c) => [c, []]));
  const seenStates = new Map<string, Set<string>>(names.map((c) => [c, new Set()]));
  const lastEventAt = new Map<string, number>();
  for (const c of names) {
    const inf = new Informer(cs.kube(c), slicePath(NS), `${LABEL_MANAGED_BY}=${MANAGED_BY_NODE}`);
    slices.set(c, inf);
    inf.on((_type, obj, at) => {
      if (obj.metadata.labels?.[LABEL_SERVICE_NAME] !== SERVICE) return;
      events.get(c)!.push(at);
      lastEventAt.set(c, at);
      seenStates.get(c)!.add(endpointState(importedSlicesOf(inf, SERVICE, ORIGIN)));
    });
    waits.follow(inf);
    await inf.start();
  }
  // cluster-1's own slices, watched too: when a watcher (such as the node) first sees each update.
  const own = new Informer(origin, slicePath(NS), `${LABEL_MANAGED_BY}=${MANAGED_BY_BENCH}`);
  const ownSeen = new Map<string, number>();
  own.on((_type, obj, at) => {
    if (obj.metadata.resourceVersion !== undefined) ownSeen.set(obj.metadata.resourceVersion, at);
  });
  waits.follow(own);
  await own.start();
  const remoteState = (c: string) => endpointState(importedSlicesOf(slices.get(c)!, SERVICE, ORIGIN));

  // The service: S slices of E endpoints, exported; wait until every cluster imports it.
  await origin.create(svcPath(NS), serviceBody(SERVICE));
  const current = new Map<string, EndpointSlice>();
  for (let s = 0; s < o.slices; s++) {
    const eps = Array.from({ length: o.endpoints }, (_, e) => endpoint(`10.201.${s}.${e + 1}`, true));
    const slice = await origin.create(slicePath(NS), sliceBody(SERVICE, `${SERVICE}-${s}`, eps));
    current.set(slice.metadata.name, slice);
  }
  const initial = endpointState(current.values());
  const imported = names.map((c) =>
    waits.until(`${SERVICE} imported in ${c}`, () => remoteState(c) === initial, o.timeoutMs),
  );
  await origin.create(exportPath(NS), exportBody(SERVICE));
  await Promise.all(imported);
  process.stderr.write(`  ${SERVICE} imported in every cluster with ${o.slices * o.endpoints} endpoints\n`);

  const before = await settledWrites(state);
  const auditSince = Date.now();
  for (const c of names) {
    events.set(c, []);
    seenStates.get(c)!.clear();
  }

  // The churn: change k goes to slice k mod S at start + k × interval; each slice's updates are sequential (so its
  // final state is the last one written), the slices' chains run side by side.
  const interval = o.durationMs / o.changes;
  const sliceNames = [...current.keys()];
  const writes: WriteRecord[] = [];
  const written = new Set<string>();
  let conflicts = 0;
  const start = now() + 50;
  await Promise.all(
    sliceNames.map(async (sliceName, s) => {
      for (let k = s; k < o.changes; k += o.slices) {
        const due = start + k * interval;
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        const slice = current.get(sliceName)!;
        const e = Math.floor(k / o.slices) % o.endpoints;
        const eps = (slice.endpoints ?? []).map((x, i) => (i === e ? endpoint(addressOf(k), k % 3 !== 0) : x));
        const sent = now();
        let next: EndpointSlice;
        try {
          next = await origin.replace(slicePath(NS), { ...slice, endpoints: eps });
        } catch (err) {
          if (!(err instanceof KubeError && err.status === 409)) throw err;
          conflicts++;
          const fresh = await origin.request<EndpointSlice>('GET', `${slicePath(NS)}/${sliceName}`);
          next = await origin.replace(slicePath(NS), { ...fresh, endpoints: eps });
        }
        const done = now();
        current.set(sliceName, next);
        written.add(`${sliceName}\n${endpointState([next])}`);
        writes.push({ k, slice: sliceName, due, sent, done });
      }
    }),
  );
  const lastDone = Math.max(...writes.map((w) => w.done));
  const lastSent = Math.max(...writes.map((w) => w.sent));
  const final = endpointState(current.values());
  const firstSent = Math.min(...writes.map((w) => w.sent));
  // The last change: the latest of the watch events in cluster-1 that show each slice's final update.
  const finalVersions = [...current.values()].map((x) => x.metadata.resourceVersion!);
  await waits.until(
    'the final updates seen in cluster-1',
    () => finalVersions.every((v) => ownSeen.has(v)),
    o.timeoutMs,
  );
  const lastSeen = Math.max(...finalVersions.map((v) => ownSeen.get(v)!));
  process.stderr.write(
    `  ${writes.length} slice updates in ${Math.round(lastDone - firstSent)} ms; waiting for the other clusters\n`,
  );

  // Convergence: the first watch event after which a cluster's imported slices equal the final state.
  const convergedAt = new Map<string, number | undefined>();
  await Promise.all(
    names.map(async (c) => {
      try {
        const at = remoteState(c) === final ? (lastEventAt.get(c) ?? now()) : undefined;
        convergedAt.set(
          c,
          at ?? (await waits.until(`final state in ${c}`, () => remoteState(c) === final, o.timeoutMs)),
        );
      } catch (err) {
        process.stderr.write(`  ${err instanceof Error ? err.message : String(err)}\n`);
        convergedAt.set(c, undefined);
      }
    }),
  );
  const since = (t: number) =>
    Object.fromEntries([...convergedAt].map(([c, at]) => [c, at === undefined ? undefined : round(at - t)]));
  const after = await settledWrites(state, 2000);
  const per = writesBetween(after, before);
  const audit = await auditedWrites(state, auditSince, Date.now(), remotes);
  for (const i of [...slices.values(), own]) await i.stop();

  const isSlice = (k: string) => k.startsWith('endpointslices ');
  const remoteWrites = sumClusters(per, remotes);
  const lat = percentiles(writes.map((w) => w.done - w.sent));
  const lag = percentiles(writes.map((w) => w.sent - w.due));
  return {
    changes: writes.length,
    distinctStates: written.size,
    conflicts,
    durationMs: lastDone - firstSent,
    ratePerS: writes.length / ((lastDone - firstSent) / 1000),
    writeLatency: lat,
    scheduleLag: lag,
    /** From the watch event in cluster-1 of the last change (the primary figure). */
    convergeMs: since(lastSeen),
    /** From the last update's request being sent, and from its response. */
    convergeFromSentMs: since(lastSent),
    convergeFromResponseMs: since(lastDone),
    lastChangeSeenAfterResponseMs: round(lastSeen - lastDone),
    remoteSliceWrites: total(remoteWrites.ok, isSlice),
    remoteSliceWritesByCluster: Object.fromEntries(remotes.map((c) => [c, total(per.get(c)!.ok, isSlice)])),
    remoteWritesByResource: Object.fromEntries(remoteWrites.ok),
    remoteFailedWrites: Object.fromEntries(remoteWrites.failed),
    remoteAuditedWrites: Object.fromEntries(audit),
    originWritesByResource: Object.fromEntries(per.get(ORIGIN)!.ok),
    watchEvents: Object.fromEntries(names.map((c) => [c, events.get(c)!.length])),
    statesSeen: Object.fromEntries(names.map((c) => [c, seenStates.get(c)!.size])),
    watchRestarts: [...slices.values(), own].reduce((n, i) => n + i.restarts, 0),
    finalState: final.split('\n'),
    // Timelines (ms from the first change) for the chart.
    timeline: {
      start: firstSent,
      lastDone,
      writes: writes.map((w) => round(w.done - firstSent)).sort((a, b) => a - b),
      events: Object.fromEntries(names.map((c) => [c, events.get(c)!.map((t) => round(t - firstSent))])),
    },
  };
}

type Result = Awaited<ReturnType<typeof measure>>;

/** Cumulative count over time, one point per 100 ms. */
function cumulative(times: readonly number[], endMs: number): [number, number][] {
  const sorted = [...times].sort((a, b) => a - b);
  const out: [number, number][] = [];
  let i = 0;
  for (let t = 0; t <= endMs + 100; t += 100) {
    while (i < sorted.length && sorted[i]! <= t) i++;
    out.push([t / 1000, i]);
  }
  return out;
}

function report(r: Result, o: Options): { table: string; svg: string } {
  const conv = Object.entries(r.convergeMs).filter(([c]) => c !== ORIGIN);
  const worstOf = (m: Record<string, number | undefined>) => {
    const v = Object.entries(m)
      .filter(([c]) => c !== ORIGIN)
      .map(([, x]) => x);
    return v.some((x) => x === undefined) ? undefined : Math.max(...v.map((x) => x!));
  };
  const worst = worstOf(r.convergeMs);
  const yes = (ok: boolean, miss: string) => (ok ? 'yes' : `no: ${miss}`);
  const ms = (v: number | undefined) =>
    v === undefined ? `not within ${o.timeoutMs / 1000} s` : `${Math.round(v)} ms`;
  const rows: Row[] = [
    {
      measure: 'endpoint changes written in cluster-1',
      value: `${r.changes} slice updates in ${(r.durationMs / 1000).toFixed(2)} s = ${Math.round(r.ratePerS)}/s (${o.slices} slices updated side by side)`,
    },
    {
      measure: '  update latency (write → response)',
      value: `p50 ${r.writeLatency.p50.toFixed(1)} ms, p99 ${r.writeLatency.p99.toFixed(1)} ms; behind schedule p99 ${r.scheduleLag.p99.toFixed(1)} ms; ${r.conflicts} conflicts`,
    },
    ...conv.map(([c, v]) => ({
      measure: `converged in ${c} after the last change`,
      value: ms(v),
      target: `≤ ${TARGET_CONVERGE_MS} ms`,
      met: yes(v !== undefined && v <= TARGET_CONVERGE_MS, ms(v)),
    })),
    {
      measure: 'converged in every other cluster',
      value: ms(worst),
      target: `≤ ${TARGET_CONVERGE_MS} ms`,
      met: yes(worst !== undefined && worst <= TARGET_CONVERGE_MS, ms(worst)),
    },
    {
      measure: '  the same, from the last update sent / from its response',
      value: `${ms(worstOf(r.convergeFromSentMs))} / ${ms(worstOf(r.convergeFromResponseMs))}`,
    },
    {
      measure: 'remote endpointslice writes (other clusters’ nodes, ok)',
      value: `${r.remoteSliceWrites} (${Object.entries(r.remoteSliceWritesByCluster)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')}) for ${r.distinctStates} distinct slice states`,
      target: `≤ ${r.distinctStates}`,
      met: yes(r.remoteSliceWrites <= r.distinctStates, `${(r.remoteSliceWrites / r.distinctStates).toFixed(2)}×`),
    },
    {
      measure: '  all remote writes by resource and verb',
      value:
        breakdown(new Map(Object.entries(r.remoteWritesByResource))) +
        (Object.keys(r.remoteFailedWrites).length > 0
          ? `; failed: ${breakdown(new Map(Object.entries(r.remoteFailedWrites)))}`
          : ''),
    },
    {
      measure: '  remote writes in the audit logs',
      value: breakdown(new Map(Object.entries(r.remoteAuditedWrites))),
    },
    {
      measure: '  cluster-1 node writes (its own import)',
      value: breakdown(new Map(Object.entries(r.originWritesByResource))),
    },
    {
      measure: 'imported-slice watch events / distinct states seen',
      value: names(r)
        .map((c) => `${c} ${r.watchEvents[c]} / ${r.statesSeen[c]}`)
        .join(', '),
    },
  ];
  const table = printTable(
    `churn (${CLUSTERS} clusters; ${r.changes} endpoint changes over ${o.durationMs / 1000} s to ${o.slices} EndpointSlices × ${o.endpoints} endpoints of one exported service in cluster-1; ` +
      'converged = first watch event after which the imported slices equal the final state, from the watch event in cluster-1 of the last change)',
    [
      { key: 'measure', title: 'measure' },
      { key: 'value', title: 'value' },
      { key: 'target', title: 'target' },
      { key: 'met', title: 'met' },
    ],
    rows,
  );
  const end = Math.max(r.timeline.lastDone - r.timeline.start, ...Object.values(r.timeline.events).flat());
  const svg = lineChart({
    title: `churn: ${r.changes} endpoint changes in cluster-1, imported-slice updates seen elsewhere`,
    xLabel: 's from the first change',
    yLabel: 'cumulative count',
    series: [
      { label: 'updates in cluster-1', points: cumulative(r.timeline.writes, end) },
      ...names(r)
        .filter((c) => c !== ORIGIN)
        .map((c) => ({ label: `watch events in ${c}`, points: cumulative(r.timeline.events[c]!, end) })),
    ],
  });
  return { table, svg };
}

const names = (r: Result) => Object.keys(r.watchEvents);

export async function run(argv: readonly string[]): Promise<void> {
  const o = parse(argv);
  if (o === undefined) return;
  const r = await withClusterSet('churn', CLUSTERS, (cs) => measure(cs, o), { verbose: o.verbose });
  if (r.watchRestarts > 0)
    process.stdout.write(`note: ${r.watchRestarts} watch streams were reopened during the run\n`);
  const { table, svg } = report(r, o);
  const audited = Object.entries(r.remoteAuditedWrites).reduce((n, [, v]) => n + v, 0);
  const counted = Object.entries(r.remoteWritesByResource).reduce((n, [, v]) => n + v, 0);
  if (audited !== counted)
    process.stdout.write(
      `note: the other clusters' nodes counted ${counted} writes, their audit logs show ${audited}\n`,
    );
  await writeResults('churn', { options: o, targets: { convergeMs: TARGET_CONVERGE_MS }, ...r }, { svg, table });
}
