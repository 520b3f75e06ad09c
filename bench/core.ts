// The core at ClusterSet scale: resolve, merge and digest, timed with performance.now() and printed as a table.
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ClusterSetState, deltaFor, digestOf, resolve } from '../src/core/index.js';
import type { Endpoint, ExportedService, ExportRecord, Hlc } from '../src/core/index.js';

const CLUSTERS = 5;
const SERVICES = 10_000;
const ENDPOINTS = 20;
const NAMESPACES = 100;
const DELTA = 1_000;

function clusterId(c: number): string {
  return `cluster-${c + 1}`;
}

function exportedService(s: number, c: number): ExportedService {
  const endpoints: Endpoint[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    endpoints.push({
      // A valid, unique IPv4 address per (cluster, service, endpoint): resolution skips unimportable records.
      addresses: [`10.${c}.${((s * ENDPOINTS + e) >> 8) & 255}.${(s * ENDPOINTS + e) & 255}`],
      conditions: { ready: e % 10 !== 9, serving: true, terminating: false },
      zone: `zone-${e % 3}`,
      nodeName: `node-${c}-${e % 7}`,
    });
  }
  return {
    // Every 10th service has a newer export with an extra port in one cluster: conflicts are part of the work.
    exportCreatedMs: 1_700_000_000_000 + c * 1_000,
    type: 'ClusterSetIP',
    ports:
      s % 10 === 0 && c === 1
        ? [
            { name: 'http', protocol: 'TCP', port: 80 },
            { name: 'metrics', protocol: 'TCP', port: 9090 },
          ]
        : [{ name: 'http', protocol: 'TCP', port: 80 }],
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
    exportedLabels: { app: `svc-${s}` },
    exportedAnnotations: {},
    endpointGroups: [{ addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints }],
  };
}

function record(s: number, c: number, version: Hlc): ExportRecord {
  return {
    origin: clusterId(c),
    namespace: `ns-${s % NAMESPACES}`,
    name: `svc-${s}`,
    version,
    removed: false,
    service: exportedService(s, c),
    proof: new Uint8Array(96),
  };
}

/** Runs `fn` `warmup` times untimed, then `runs` times, each after an untimed `setup`; sorted samples in ms. */
function time(runs: number, fn: (i: number) => void, warmup = 2, setup: (i: number) => void = () => {}): number[] {
  for (let i = 0; i < warmup; i++) {
    setup(-1 - i);
    fn(-1 - i);
  }
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    setup(i);
    const t0 = performance.now();
    fn(i);
    samples.push(performance.now() - t0);
  }
  return samples.sort((a, b) => a - b);
}

interface Row {
  readonly what: string;
  readonly size: string;
  readonly samples: readonly number[];
  readonly targetMs?: number;
}

function fmt(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0);
}

function printTable(rows: readonly Row[]): void {
  const header = ['operation', 'size', 'median ms', 'min ms', 'max ms', 'runs', 'target', 'met'];
  const lines = rows.map((r) => {
    const median = r.samples[Math.floor(r.samples.length / 2)]!;
    return [
      r.what,
      r.size,
      fmt(median),
      fmt(r.samples[0]!),
      fmt(r.samples[r.samples.length - 1]!),
      String(r.samples.length),
      r.targetMs === undefined ? '' : `< ${r.targetMs} ms`,
      r.targetMs === undefined ? '' : median < r.targetMs ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(row(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(row(l));
}

export async function run(argv: readonly string[]): Promise<void> {
  const runs = Number(argv[0] ?? 15);
  const rows: Row[] = [];
  const v0: Hlc = { wallMs: 1_700_000_000_000, logical: 0 };

  const records: ExportRecord[] = [];
  for (let c = 0; c < CLUSTERS; c++) for (let s = 0; s < SERVICES; s++) records.push(record(s, c, v0));
  const total = `${SERVICES} svc × ${CLUSTERS} clusters × ${ENDPOINTS} ep`;
  const load = loadavg()[0]!.toFixed(1);
  console.log(
    `mcs-gossip core bench — Node ${process.version}, ${availableParallelism()} CPUs, load average ${load}; ` +
      `${records.length} records (${total})\n`,
  );

  // Cold start, as after a restart: build the state from all records (hashing each once), then the first resolve,
  // with nothing to reuse. One state alive at a time, so each run starts from the same heap.
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => `ns-${n}`);
  let resolution: ReturnType<typeof resolve> | undefined;
  let state = new ClusterSetState();
  const mergeAll: number[] = [];
  const coldResolve: number[] = [];
  const coldRuns = Math.min(runs, 7);
  for (let i = -1; i < coldRuns; i++) {
    state = new ClusterSetState();
    const t0 = performance.now();
    state.merge(records);
    const t1 = performance.now();
    resolution = resolve(state, { localCluster: clusterId(0), namespaces });
    const t2 = performance.now();
    if (i >= 0) {
      mergeAll.push(t1 - t0);
      coldResolve.push(t2 - t1);
    }
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  rows.push({
    what: 'merge all (cold state, hashes every record)',
    size: `${records.length} records`,
    samples: sorted(mergeAll),
  });
  rows.push({
    what: 'resolve, cold (first pass over a new state)',
    size: total,
    samples: sorted(coldResolve),
    targetMs: 200,
  });
  // A 1,000-record delta from one origin: updates of existing keys at newer versions, new for every run.
  const deltas = Array.from({ length: runs + 2 }, (_, i) =>
    Array.from({ length: DELTA }, (_, k) => record(k * 7, 2, { wallMs: v0.wallMs + 1 + i, logical: k })),
  );
  rows.push({
    what: 'merge delta (newer versions of held records)',
    size: `${DELTA} records into ${records.length}`,
    samples: time(runs, (i) => state.merge(deltas[i < 0 ? -1 - i : i + 2]!)),
    targetMs: 5,
  });
  rows.push({
    what: 'merge delta again (all stale: duplicates)',
    size: `${DELTA} records into ${records.length}`,
    samples: time(runs, () => state.merge(deltas[0]!)),
  });

  // Incremental: what a running node does after each delta; only the keys the delta touched are recomputed.
  const moreDeltas = Array.from({ length: runs + 2 }, (_, i) =>
    Array.from({ length: DELTA }, (_, k) => record(k * 7 + 3, 3, { wallMs: v0.wallMs + 100 + i, logical: k })),
  );
  resolve(state, { localCluster: clusterId(0), namespaces });
  rows.push({
    what: 'resolve after a 1,000-record delta (incremental)',
    size: total,
    samples: time(
      runs,
      () => {
        resolution = resolve(state, { localCluster: clusterId(0), namespaces });
      },
      2,
      (i) => state.merge(moreDeltas[i < 0 ? -1 - i : i + 2]!),
    ),
    targetMs: 200,
  });
  rows.push({
    what: 'resolve, nothing changed',
    size: total,
    samples: time(runs, () => {
      resolution = resolve(state, { localCluster: clusterId(0), namespaces });
    }),
  });
  const held = Array.from({ length: CLUSTERS }, (_, c) => state.recordsOf(clusterId(c))).flat();
  rows.push({
    what: 'digest from scratch (hash every record)',
    size: `${held.length} records`,
    samples: time(runs, () => digestOf(held)),
    targetMs: 50,
  });
  rows.push({
    what: 'digest (per-origin, maintained incrementally)',
    size: `${state.size} records`,
    samples: time(runs * 10, () => state.digest()),
    targetMs: 50,
  });
  rows.push({
    what: 'bucket digests of every origin',
    size: `${CLUSTERS} × 256 buckets`,
    samples: time(runs * 10, () => {
      for (let c = 0; c < CLUSTERS; c++) state.bucketDigest(clusterId(c));
    }),
  });

  // Anti-entropy after one lost update: digest round, bucket round, delta of one bucket.
  const peer = new ClusterSetState();
  peer.merge(records);
  for (const d of [...deltas, ...moreDeltas]) peer.merge(d);
  const lost = record(123, 4, { wallMs: v0.wallMs + 10_000, logical: 0 });
  state.merge([lost]);
  let sent = 0;
  rows.push({
    what: 'anti-entropy plan after one lost update',
    size: `${state.size} records`,
    samples: time(runs, () => {
      const first = deltaFor(state, { digests: peer.digest() });
      const second = deltaFor(state, {
        digests: peer.digest(),
        buckets: first.compareBuckets.map((o) => peer.bucketDigest(o)),
      });
      sent = second.records.length;
    }),
  });

  printTable(rows);
  const slices = resolution?.endpointSlices.length ?? 0;
  console.log(
    `\nresolve output: ${resolution?.serviceImports.length ?? 0} ServiceImports, ${slices} EndpointSlices; ` +
      `anti-entropy sent ${sent} records for 1 lost update.`,
  );
}
