// `npm run bench -- size [--only import|export] [--quick] [--imports N] [--import-endpoints E] [--services N]
// [--exported N] [--export-endpoints E] [--unexported-endpoints E] [--changes N] [--spacing-ms MS]
// [--idle-seconds T] [--concurrency C]`: one real node (the compiled `mcs-gossip run` the harness starts against a
// real kube-apiserver) at size, on each side of the data path:
// - import: it joins (through its bootstrap ClusterProperty) a ClusterSet of 3 origin clusters — gossip nodes run in
//   this process, each with an in-memory cluster — that export 1,000 services × 10 endpoints between them; it writes
//   their ServiceImports, derived Services and EndpointSlices;
// - export: its cluster holds 5,000 Services with EndpointSlices (1,000 exported, × 100 endpoints), created before
//   the node starts; it publishes them to an observer gossip node run in this process.
// For each: the time from the node's start to steady state (every import written, seen through the API / every
// export held by the observer), RSS, idle CPU, then single endpoint changes one after another — each at least
// --spacing-ms after the one before and after the one before was visible (an imported slice seen through a watch /
// the record held by the observer) — with the node process's CPU over those changes (from /proc/<pid>/stat: the whole
// process, so GC threads included) minus its idle CPU over the same wall time, per change. Objects are created
// through the API with --concurrency requests in flight; their setup time is reported apart.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ClusterSetState as GossipState, serviceKey } from '../src/core/index.js';
import type { ExportedService, ExportRecord, ServiceKey } from '../src/core/index.js';
import {
  createGossipNode,
  generateIdentityKey,
  loadPsk,
  MemoryCluster,
  syntheticService,
} from '../src/gossip/index.js';
import type { GossipNode } from '../src/gossip/index.js';
import { down, kubeConfigFor, repoRoot, startComponent, stopComponent, up } from '../e2e/harness/clusterset.js';
import type { ClusterSetState, ComponentState } from '../e2e/harness/clusterset.js';
import { barChart, percentiles, printTable, writeResults } from './report.js';
import type { Column, Percentiles, Row } from './report.js';

const CLUSTER = 'cluster-1';
const NAMESPACE = 'bench';
const MCS = { group: 'multicluster.x-k8s.io', version: 'v1beta1' } as const;
const ABOUT = { group: 'about.k8s.io', version: 'v1beta1', plural: 'clusterproperties' } as const;
const BOOTSTRAP_PROPERTY = 'bootstrap.mcs-gossip.x-k8s.io';
const IMPORTED_SLICES = 'endpointslice.kubernetes.io/managed-by=mcs-gossip.x-k8s.io';
const MB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => void process.stderr.write(`# size: ${line}\n`);
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
const now = (): number => performance.now();

// ---- the node process, seen from outside: /proc and /metrics

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU (user + system, every thread) the process has used, ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / ticksPerSecond()) * 1000;
}

/** Resident and peak resident memory, bytes. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Sums of a few counters of the node's /metrics (a scrape costs the node a little CPU: done outside the windows). */
async function counters(node: ComponentState): Promise<{
  writes: number;
  reconciles: number;
  heapUsed: number;
  heapTotal: number;
  byResource: Map<string, number>;
}> {
  const text = await (await fetch(new URL('/metrics', node.health))).text();
  // Writes by resource and verb (successful or not): what a node busy in the background is writing.
  const byResource = new Map<string, number>();
  for (const l of text.split('\n')) {
    const m = /^mcs_gossip_kube_api_writes_total\{(.*)\} (\S+)$/.exec(l);
    if (m === null) continue;
    const label = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(m[1]!)?.[1] ?? '?';
    const k = `${label('verb')} ${label('resource')} ${label('result')}`;
    byResource.set(k, (byResource.get(k) ?? 0) + Number(m[2]));
  }
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    writes: sum('mcs_gossip_kube_api_writes_total'),
    reconciles: sum('mcs_gossip_reconciles_total'),
    heapUsed: sum('nodejs_heap_size_used_bytes'),
    heapTotal: sum('nodejs_heap_size_total_bytes'),
    byResource,
  };
}

/** Per second, what changed between two readings of the writes by resource (only what did). */
function rates(a: Map<string, number>, b: Map<string, number>, seconds: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d > 0) out[k] = round(d / seconds, 2);
  }
  return out;
}

/**
 * Waits until the process uses under 5 % of a core over 2 s, twice in a row, or `maxMs` passed; returns how long it
 * waited and whether it got there.
 */
async function quiet(pid: number, maxMs: number): Promise<{ ms: number; quiet: boolean }> {
  const t0 = now();
  let calm = 0;
  while (now() - t0 < maxMs && calm < 2) {
    const c0 = cpuMs(pid);
    await sleep(2000);
    calm = cpuMs(pid) - c0 < 100 ? calm + 1 : 0;
  }
  return { ms: now() - t0, quiet: calm >= 2 };
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Retries what a busy API server refuses for a moment (429, 5xx, a reset connection). */
async function retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = err instanceof k8s.ApiException ? err.code : 0;
      if (attempt >= 5 || (code !== 0 && code !== 429 && code < 500))
        throw new Error(`${what}: ${String(err)}`, { cause: err });
      await sleep(200 * 2 ** attempt);
    }
  }
}

// ---- what both sides share: a one-cluster ClusterSet with its node stopped, gossip peers in this process

interface Side {
  readonly dir: string;
  readonly harness: ClusterSetState;
  readonly kc: k8s.KubeConfig;
  readonly clusterUpMs: number;
  /** RSS of the node in an empty cluster, bytes. */
  readonly emptyRss: number;
}

class Cleanup {
  readonly #steps: (() => Promise<unknown>)[] = [];
  add(step: () => Promise<unknown>): void {
    this.#steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse())
      await step().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

async function cluster(cleanup: Cleanup, which: string): Promise<Side> {
  const dir = await mkdtemp(join(tmpdir(), `mcs-gossip-bench-size-${which}-`));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  cleanup.add(() => down(dir));
  const t0 = now();
  log(`[${which}] starting a one-cluster ClusterSet with its node in ${dir}`);
  const harness = await up({ dir, clusters: 1, nodes: true, onProgress: () => undefined });
  const clusterUpMs = now() - t0;
  // The node as `up` started it, in an empty cluster and an empty ClusterSet: its RSS is the floor of any figure.
  const first = harness.clusters[0]!.components.find((c) => c.name === 'mcs-gossip')!;
  await quiet(first.pid, 30_000);
  const emptyRss = memory(first.pid).rss;
  // Stopped until its cluster (or its ClusterSet) is at size: the bench times its start.
  await stopComponent(harness, CLUSTER, 'mcs-gossip');
  const kc = kubeConfigFor(harness, CLUSTER);
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } });
  return { dir, harness, kc, clusterUpMs, emptyRss };
}

async function gossipPeer(cleanup: Cleanup, side: Side, clusterId: string, bootstrap: string[]): Promise<GossipNode> {
  const node = createGossipNode({
    clusterId,
    clusterSetName: side.harness.clusterSetName,
    privateKey: await generateIdentityKey(),
    psk: await loadPsk(join(side.dir, 'clusterset.key')),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    state: new GossipState(),
  });
  await node.start();
  cleanup.add(() => Promise.race([node.stop(), sleep(5000)]));
  return node;
}

const peerEntry = (n: GossipNode): string => `${n.clusterId}=${n.libp2p.getMultiaddrs()[0]!.toString()}`;

async function setBootstrap(side: Side, entries: readonly string[]): Promise<void> {
  await side.kc.makeApiClient(k8s.CustomObjectsApi).createClusterCustomObject({
    ...ABOUT,
    body: {
      apiVersion: `${ABOUT.group}/${ABOUT.version}`,
      kind: 'ClusterProperty',
      metadata: { name: BOOTSTRAP_PROPERTY },
      spec: { value: entries.join(',') },
    },
  });
}

/** Starts the node and returns its process record; steady state is waited for by the caller. */
async function startNode(side: Side): Promise<ComponentState> {
  return startComponent(side.harness, CLUSTER, 'mcs-gossip', 300_000);
}

export interface ChangeFigures {
  changes: number;
  /** Wall time of the changes and the tail after the last one, s. */
  windowSeconds: number;
  /** Node CPU over the changes beyond its idle rate over the same wall time, per change. */
  cpuMsPerChange: number;
  /** All the node's CPU over the changes, per change (idle rate included). */
  cpuMsPerChangeGross: number;
  visibleMs: Percentiles;
  apiWritesPerChange: number;
  /** API writes per change, by `verb resource result`. */
  apiWritesByResource: Record<string, number>;
  reconcilesPerChange: number;
}

export interface SideFigures {
  side: 'import' | 'export';
  scale: string;
  endpoints: number;
  clusterUpMs: number;
  setupMs: number;
  setupObjects: number;
  /** From the node's process start to steady state (polled every second on the import side). */
  steadyMs: number;
  /** From the node's process start until it went quiet (< 5 % of a core), or undefined if it did not in time. */
  quietMs: number | undefined;
  readyMs: number;
  /** RSS of the same node program in an empty cluster and ClusterSet. */
  emptyRssMb: number;
  rssMb: number;
  peakRssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  idleCpuMsPerSec: number;
  idleSeconds: number;
  idleReconcilesPerSec: number;
  /** API writes per second while idle, by `verb resource result`. */
  idleWritesPerSec: Record<string, number>;
  change: ChangeFigures;
}

/** The figures both sides measure the same way, rounded for the table and the JSON. */
function measuredFigures(
  side: Side,
  m: {
    setupMs: number;
    setupObjects: number;
    steadyMs: number;
    quietMs: number | undefined;
    readyMs: number;
    mem: { rss: number; hwm: number };
    after: { rss: number; hwm: number };
    still: Awaited<ReturnType<typeof idle>>;
    change: ChangeFigures;
  },
): Omit<SideFigures, 'side' | 'scale' | 'endpoints' | 'clusterUpMs'> {
  const { mem, after, still } = m;
  return {
    setupMs: round(m.setupMs, 0),
    setupObjects: m.setupObjects,
    steadyMs: round(m.steadyMs, 0),
    quietMs: m.quietMs === undefined ? undefined : round(m.quietMs, 0),
    readyMs: round(m.readyMs, 0),
    emptyRssMb: round(side.emptyRss / MB),
    rssMb: round(mem.rss / MB),
    peakRssMb: round(Math.max(after.hwm, mem.hwm) / MB),
    heapUsedMb: round(still.heapUsedMb),
    heapTotalMb: round(still.heapTotalMb),
    idleCpuMsPerSec: round(still.cpuMsPerSec, 2),
    idleSeconds: round(still.seconds),
    idleReconcilesPerSec: round(still.reconcilesPerSec, 2),
    idleWritesPerSec: still.writesPerSec,
    change: m.change,
  };
}

interface Options {
  imports: number;
  importEndpoints: number;
  origins: number;
  services: number;
  exported: number;
  exportEndpoints: number;
  unexportedEndpoints: number;
  changes: number;
  spacingMs: number;
  idleSeconds: number;
  quietMaxSeconds: number;
  concurrency: number;
}

/** The node's CPU rate over `seconds` (its idle rate once it has gone quiet). */
async function idle(pid: number, node: ComponentState, seconds: number) {
  const k0 = await counters(node);
  const c0 = cpuMs(pid);
  const t0 = now();
  await sleep(seconds * 1000);
  const c1 = cpuMs(pid);
  const t1 = now();
  const k1 = await counters(node);
  const s = (t1 - t0) / 1000;
  return {
    cpuMsPerSec: (c1 - c0) / s,
    seconds: s,
    reconcilesPerSec: (k1.reconciles - k0.reconciles) / s,
    writesPerSec: rates(k0.byResource, k1.byResource, s),
    heapUsedMb: k1.heapUsed / MB,
    heapTotalMb: k1.heapTotal / MB,
  };
}

/**
 * Makes `count` changes one after another (`change(i)` makes one and resolves once it is visible, with the time that
 * took) and returns the node's CPU per change beyond its idle rate.
 */
async function changes(
  pid: number,
  node: ComponentState,
  count: number,
  spacingMs: number,
  idleCpuMsPerSec: number,
  change: (i: number) => Promise<number>,
): Promise<ChangeFigures> {
  const k0 = await counters(node);
  const c0 = cpuMs(pid);
  const t0 = now();
  const visible: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = now();
    visible.push(await change(i));
    const wait = spacingMs - (now() - start);
    if (wait > 0) await sleep(wait);
  }
  // The tail: what the last change set off after it became visible (the node's own writes coming back through its
  // watches, status updates).
  await sleep(Math.max(1000, spacingMs));
  const c1 = cpuMs(pid);
  const t1 = now();
  const k1 = await counters(node);
  const windowSeconds = (t1 - t0) / 1000;
  const p = percentiles(visible);
  return {
    changes: count,
    windowSeconds: round(windowSeconds),
    cpuMsPerChange: round(Math.max(0, c1 - c0 - idleCpuMsPerSec * windowSeconds) / count, 2),
    cpuMsPerChangeGross: round((c1 - c0) / count, 2),
    visibleMs: { ...p, p50: round(p.p50), p99: round(p.p99), max: round(p.max) },
    apiWritesPerChange: round((k1.writes - k0.writes) / count, 2),
    apiWritesByResource: rates(k0.byResource, k1.byResource, count),
    reconcilesPerChange: round((k1.reconciles - k0.reconciles) / count, 2),
  };
}

/** A different address for change i (never one of the synthetic services' nor the clusters' CIDRs). */
const changedAddress = (i: number): string => `10.250.${(i >> 8) & 255}.${i & 255}`;

function withAddress(svc: ExportedService, endpoint: number, address: string): ExportedService {
  const [group, ...groups] = svc.endpointGroups;
  if (group === undefined) throw new Error('a service without endpoints');
  const endpoints = group.endpoints.map((e, j) => (j === endpoint ? { ...e, addresses: [address] } : e));
  return { ...svc, endpointGroups: [{ ...group, endpoints }, ...groups] };
}

// ---- the import side

async function importSide(o: Options, cleanup: Cleanup): Promise<SideFigures> {
  const side = await cluster(cleanup, 'import');
  const setupT0 = now();
  const origins: GossipNode[] = [];
  for (let k = 1; k <= o.origins; k++) {
    origins.push(
      await gossipPeer(
        cleanup,
        side,
        `origin-${k}`,
        origins.length > 0 ? [origins[0]!.libp2p.getMultiaddrs()[0]!.toString()] : [],
      ),
    );
  }
  const clusters = origins.map((n) => new MemoryCluster(n));
  // Service i comes from origin i mod 3: 1,000 services × 10 endpoints = 10,000 imported endpoints.
  const current = new Map<number, ExportedService>();
  for (let i = 0; i < o.imports; i++) current.set(i, syntheticService(i + 1, o.importEndpoints));
  clusters.forEach((c, k) => {
    const mine = new Map<ServiceKey, ExportedService>();
    for (const [i, svc] of current) if (i % o.origins === k) mine.set(key(i), svc);
    c.replaceAll(mine);
  });
  const deadline = now() + 120_000;
  while (!origins.every((n) => n.state.size === o.imports)) {
    if (now() > deadline) throw new Error('the origins did not converge among themselves within 120 s');
    await sleep(100);
  }
  const setupMs = now() - setupT0;
  log(`[import] ${o.origins} origins hold ${o.imports} services in ${Math.round(setupMs)} ms; starting the node`);
  await setBootstrap(side, origins.map(peerEntry));

  const t0 = now();
  const node = await startNode(side);
  const readyMs = now() - t0;
  const custom = side.kc.makeApiClient(k8s.CustomObjectsApi);
  const discovery = side.kc.makeApiClient(k8s.DiscoveryV1Api);
  const wantEndpoints = o.imports * o.importEndpoints;
  let lastLog = now();
  for (;;) {
    const sis = (await custom.listNamespacedCustomObject({
      ...MCS,
      plural: 'serviceimports',
      namespace: NAMESPACE,
    })) as {
      items: { spec?: { ips?: string[] } }[];
    };
    const withIps = sis.items.filter((si) => (si.spec?.ips?.length ?? 0) > 0).length;
    const slices = await discovery.listNamespacedEndpointSlice({
      namespace: NAMESPACE,
      labelSelector: IMPORTED_SLICES,
    });
    const eps = slices.items.reduce((s, sl) => s + (sl.endpoints?.length ?? 0), 0);
    if (withIps === o.imports && eps === wantEndpoints) break;
    if (now() - t0 > 900_000)
      throw new Error(`not at steady state after 900 s: ${withIps} imports with ips, ${eps} endpoints`);
    if (now() - lastLog > 15_000) {
      lastLog = now();
      log(`[import]   ${withIps}/${o.imports} ServiceImports with ips, ${eps}/${wantEndpoints} endpoints`);
    }
    await sleep(1000);
  }
  const steadyMs = now() - t0;
  log(`[import] steady state ${Math.round(steadyMs / 1000)} s after the node's start; waiting for it to go quiet`);
  const q = await quiet(node.pid, o.quietMaxSeconds * 1000);
  const quietMs = q.quiet ? now() - t0 : undefined;
  if (!q.quiet)
    log(`[import] the node is still busy after ${o.quietMaxSeconds} s; measuring its background rate anyway`);
  const still = await idle(node.pid, node, o.idleSeconds);
  const mem = memory(node.pid);

  // Single changes: one endpoint's address of one service, at its origin; visible once an imported slice carries it.
  const seen = new Map<string, () => void>();
  const watch = await new k8s.Watch(side.kc).watch(
    `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`,
    { labelSelector: IMPORTED_SLICES },
    (phase: string, obj: k8s.V1EndpointSlice) => {
      if (phase !== 'ADDED' && phase !== 'MODIFIED') return;
      for (const e of obj.endpoints ?? []) for (const a of e.addresses) seen.get(a)?.();
    },
    () => undefined,
  );
  cleanup.add(async () => watch.abort());
  await sleep(1000); // the watch's initial events
  log(`[import] ${o.changes} single endpoint changes`);
  const change = await changes(node.pid, node, o.changes, o.spacingMs, still.cpuMsPerSec, async (c) => {
    const i = (c * 7919) % o.imports;
    const address = changedAddress(c);
    const svc = withAddress(current.get(i)!, c % o.importEndpoints, address);
    current.set(i, svc);
    const visible = new Promise<void>((resolve) => seen.set(address, resolve));
    const start = now();
    clusters[i % o.origins]!.upsert(NAMESPACE, `svc-${i}`, svc);
    await Promise.race([
      visible,
      sleep(60_000).then(() => Promise.reject(new Error(`change ${c} not visible in 60 s`))),
    ]);
    seen.delete(address);
    return now() - start;
  });
  watch.abort();
  const after = memory(node.pid);
  return {
    side: 'import',
    scale: `${o.imports} services × ${o.importEndpoints} endpoints from ${o.origins} origins`,
    endpoints: wantEndpoints,
    clusterUpMs: round(side.clusterUpMs, 0),
    ...measuredFigures(side, { setupMs, setupObjects: 0, steadyMs, quietMs, readyMs, mem, after, still, change }),
  };
}

function key(i: number): ServiceKey {
  return serviceKey(NAMESPACE, `svc-${i}`);
}

// ---- the export side

function sliceOf(i: number, endpoints: number): k8s.V1EndpointSlice {
  const eps: k8s.V1Endpoint[] = [];
  for (let j = 0; j < endpoints; j++) {
    // 10.64.0.0 onwards: unique per endpoint, clear of the cluster's service (10.101/16) and pod (10.201/16) CIDRs.
    const n = i * 128 + j;
    eps.push({
      addresses: [`10.${64 + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`],
      conditions: { ready: true, serving: true, terminating: false },
      zone: `zone-${j % 3}`,
    });
  }
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-bench`,
      namespace: NAMESPACE,
      labels: { 'kubernetes.io/service-name': `svc-${i}`, 'endpointslice.kubernetes.io/managed-by': 'bench.example' },
    },
    addressType: 'IPv4',
    endpoints: eps,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

const holds = (r: ExportRecord | undefined, address: string): boolean =>
  r?.service?.endpointGroups.some((g) => g.endpoints.some((e) => e.addresses.includes(address))) === true;

async function exportSide(o: Options, cleanup: Cleanup): Promise<SideFigures> {
  const side = await cluster(cleanup, 'export');
  const core = side.kc.makeApiClient(k8s.CoreV1Api);
  const discovery = side.kc.makeApiClient(k8s.DiscoveryV1Api);
  const custom = side.kc.makeApiClient(k8s.CustomObjectsApi);
  log(
    `[export] creating ${o.services} Services (${o.exported} exported × ${o.exportEndpoints} endpoints, the others × ` +
      `${o.unexportedEndpoints}), ${o.concurrency} requests at a time`,
  );
  const setupT0 = now();
  const slices = new Map<number, k8s.V1EndpointSlice>();
  let objects = 0;
  const indices = Array.from({ length: o.services }, (_, i) => i);
  await pool(indices, o.concurrency, async (i) => {
    const name = `svc-${i}`;
    await retrying(`Service ${name}`, () =>
      core.createNamespacedService({
        namespace: NAMESPACE,
        body: { metadata: { name }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } },
      }),
    );
    objects++;
    const endpoints = i < o.exported ? o.exportEndpoints : o.unexportedEndpoints;
    if (endpoints > 0) {
      const slice = await retrying(`EndpointSlice of ${name}`, () =>
        discovery.createNamespacedEndpointSlice({ namespace: NAMESPACE, body: sliceOf(i, endpoints) }),
      );
      if (i < o.exported) slices.set(i, slice);
      objects++;
    }
    if (i < o.exported) {
      await retrying(`ServiceExport ${name}`, () =>
        custom.createNamespacedCustomObject({
          ...MCS,
          plural: 'serviceexports',
          namespace: NAMESPACE,
          body: { apiVersion: `${MCS.group}/${MCS.version}`, kind: 'ServiceExport', metadata: { name } },
        }),
      );
      objects++;
    }
  });
  const setupMs = now() - setupT0;
  log(`[export] ${objects} objects created in ${Math.round(setupMs / 1000)} s; starting the node`);

  const observer = await gossipPeer(cleanup, side, 'observer', []);
  const waiting = new Map<string, { key: string; resolve: () => void }>();
  observer.on('state:change', (evt) => {
    if (waiting.size === 0) return;
    for (const r of evt.detail.records) {
      for (const [address, w] of waiting) if (`${r.namespace}/${r.name}` === w.key && holds(r, address)) w.resolve();
    }
  });
  await setBootstrap(side, [peerEntry(observer)]);
  const t0 = now();
  const node = await startNode(side);
  const readyMs = now() - t0;
  const complete = () =>
    observer.state
      .recordsOf(CLUSTER)
      .filter(
        (r) =>
          !r.removed && r.service?.endpointGroups.reduce((s, g) => s + g.endpoints.length, 0) === o.exportEndpoints,
      ).length;
  let lastLog = now();
  while (complete() < o.exported) {
    if (now() - t0 > 900_000) throw new Error(`not at steady state after 900 s: ${complete()} exports published`);
    if (now() - lastLog > 15_000) {
      lastLog = now();
      log(`[export]   ${complete()}/${o.exported} exports published`);
    }
    await sleep(100);
  }
  const steadyMs = now() - t0;
  log(`[export] steady state ${Math.round(steadyMs / 1000)} s after the node's start; waiting for it to go quiet`);
  const q = await quiet(node.pid, o.quietMaxSeconds * 1000);
  const quietMs = q.quiet ? now() - t0 : undefined;
  if (!q.quiet)
    log(`[export] the node is still busy after ${o.quietMaxSeconds} s; measuring its background rate anyway`);
  const still = await idle(node.pid, node, o.idleSeconds);
  const mem = memory(node.pid);

  // Single changes: one endpoint's address in one exported Service's slice, through the API; visible once the
  // observer holds the new record.
  log(`[export] ${o.changes} single endpoint changes`);
  const change = await changes(node.pid, node, o.changes, o.spacingMs, still.cpuMsPerSec, async (c) => {
    const i = (c * 7919) % o.exported;
    const address = changedAddress(c);
    const slice = slices.get(i)!;
    const endpoints = (slice.endpoints ?? []).map((e, j) =>
      j === c % o.exportEndpoints ? { ...e, addresses: [address] } : e,
    );
    const visible = new Promise<void>((resolve) => waiting.set(address, { key: `${NAMESPACE}/svc-${i}`, resolve }));
    const start = now();
    const updated = await retrying(`EndpointSlice of svc-${i}`, () =>
      discovery.replaceNamespacedEndpointSlice({
        name: slice.metadata!.name!,
        namespace: NAMESPACE,
        body: { ...slice, endpoints },
      }),
    );
    slices.set(i, updated);
    await Promise.race([
      visible,
      sleep(60_000).then(() => Promise.reject(new Error(`change ${c} not published in 60 s`))),
    ]);
    waiting.delete(address);
    return now() - start;
  });
  const after = memory(node.pid);
  return {
    side: 'export',
    scale: `${o.services} Services, ${o.exported} exported × ${o.exportEndpoints} endpoints`,
    endpoints: o.exported * o.exportEndpoints,
    clusterUpMs: round(side.clusterUpMs, 0),
    ...measuredFigures(side, { setupMs, setupObjects: objects, steadyMs, quietMs, readyMs, mem, after, still, change }),
  };
}

// ---- the command

/** Which build of the node ran: the harness builds dist/ from the working tree, which may differ from the commit. */
function build(): { builtAt?: string; changedSourceFiles?: number } {
  const out: { builtAt?: string; changedSourceFiles?: number } = {};
  try {
    out.builtAt = readFileSync(join(repoRoot, '.build-stamp'), 'utf8').trim();
  } catch {
    // never built by the harness
  }
  try {
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' });
    out.changedSourceFiles = status.split('\n').filter((l) => l.trim() !== '').length;
  } catch {
    // not a git checkout
  }
  return out;
}

export async function run(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      imports: { type: 'string' },
      'import-endpoints': { type: 'string', default: '10' },
      services: { type: 'string' },
      exported: { type: 'string' },
      'export-endpoints': { type: 'string', default: '100' },
      'unexported-endpoints': { type: 'string', default: '10' },
      changes: { type: 'string' },
      'spacing-ms': { type: 'string', default: '300' },
      'idle-seconds': { type: 'string' },
      concurrency: { type: 'string', default: '20' },
      'quiet-max-seconds': { type: 'string', default: '240' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`size: --${name} must be an integer ≥ ${min}`);
    return n;
  };
  const o: Options = {
    imports: int('imports', values.imports ?? (quick ? '100' : '1000'), 1),
    importEndpoints: int('import-endpoints', values['import-endpoints'], 1),
    origins: 3,
    services: int('services', values.services ?? (quick ? '500' : '5000'), 1),
    exported: int('exported', values.exported ?? (quick ? '100' : '1000'), 1),
    exportEndpoints: int('export-endpoints', values['export-endpoints'], 1),
    unexportedEndpoints: int('unexported-endpoints', values['unexported-endpoints'], 0),
    changes: int('changes', values.changes ?? (quick ? '10' : '50'), 1),
    spacingMs: int('spacing-ms', values['spacing-ms'], 0),
    idleSeconds: int('idle-seconds', values['idle-seconds'] ?? (quick ? '10' : '20'), 1),
    quietMaxSeconds: int('quiet-max-seconds', values['quiet-max-seconds'], 0),
    concurrency: int('concurrency', values.concurrency, 1),
  };
  if (o.exported > o.services) throw new Error('size: --exported cannot exceed --services');
  if (o.importEndpoints > 100 || o.exportEndpoints > 100)
    throw new Error('size: at most 100 endpoints per service (one slice each)');
  const only = values.only;
  if (only !== undefined && only !== 'import' && only !== 'export') throw new Error('size: --only import|export');

  const results: SideFigures[] = [];
  const cleanup = new Cleanup();
  const onSignal = () => {
    log('interrupted: tearing down');
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (only !== 'export') {
      try {
        results.push(await importSide(o, cleanup));
      } finally {
        await cleanup.run();
      }
    }
    if (only !== 'import') {
      try {
        results.push(await exportSide(o, cleanup));
      } finally {
        await cleanup.run();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await report(results, o);
}

async function report(results: readonly SideFigures[], o: Options): Promise<void> {
  const columns: Column[] = [
    { key: 'side', title: 'side' },
    { key: 'scale', title: 'size' },
    { key: 'setup', title: 'setup (objects)' },
    { key: 'steady', title: 'start → steady (→ quiet)' },
    { key: 'rss', title: 'RSS (peak; empty node)' },
    { key: 'heap', title: 'heap used / total' },
    { key: 'idle', title: 'idle CPU' },
    { key: 'cpu', title: 'CPU per change (gross)' },
    { key: 'visible', title: 'change visible p50 / p99 / max' },
    { key: 'writes', title: 'API writes per change' },
  ];
  const rows: Row[] = results.map((r) => ({
    side: r.side,
    scale: r.scale,
    setup: `${round(r.setupMs / 1000)} s${r.setupObjects > 0 ? ` (${r.setupObjects})` : ''}`,
    steady: `${round(r.steadyMs / 1000)} s (${r.quietMs === undefined ? 'never' : `${round(r.quietMs / 1000)} s`})`,
    rss: `${r.rssMb} MB (${r.peakRssMb}; ${r.emptyRssMb} MB)`,
    heap: `${r.heapUsedMb} / ${r.heapTotalMb} MB`,
    idle: `${r.idleCpuMsPerSec} ms/s`,
    cpu: `${r.change.cpuMsPerChange} ms (${r.change.cpuMsPerChangeGross})`,
    visible: `${r.change.visibleMs.p50} / ${r.change.visibleMs.p99} / ${r.change.visibleMs.max} ms`,
    writes: r.change.apiWritesPerChange,
  }));
  const imp = results.find((r) => r.side === 'import');
  const exp = results.find((r) => r.side === 'export');
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const perChange = (r: SideFigures | undefined, which: string): string => {
    const what = `≤ 5 ms per change on the ${which} node`;
    if (r === undefined) return `${what}: not measured`;
    const c = r.change.cpuMsPerChange;
    const busy =
      r.quietMs === undefined
        ? `; the node never went quiet (${r.idleCpuMsPerSec} ms/s in the background, ${r.idleReconcilesPerSec} reconciles/s): ` +
          `the figure is what the changes added to that, ${r.change.cpuMsPerChangeGross} ms gross`
        : '';
    return `${what} (${r.scale}): ${verdict(c <= 5)} (${c} ms${c > 5 ? `, ${round(c / 5)}× the target` : ''}${busy})`;
  };
  const targets = [
    perChange(imp, 'importing'),
    perChange(exp, 'exporting'),
    imp === undefined
      ? 'RSS ≤ 150 MB with 10,000 imported endpoints: not measured'
      : `RSS ≤ 150 MB with ${imp.endpoints.toLocaleString('en')} imported endpoints: ${verdict(imp.rssMb <= 150)} (${imp.rssMb} MB, peak ${imp.peakRssMb} MB; the same node in an empty cluster: ${imp.emptyRssMb} MB)${imp.endpoints < 10_000 ? ' — below the target size (--quick?)' : ''}`,
  ];
  const title =
    `size: one real node (compiled mcs-gossip run, real kube-apiserver) at size; CPU of the node process ` +
    `(/proc, all threads) beyond its idle rate, ${o.changes} single endpoint changes ≥ ${o.spacingMs} ms apart`;
  const after = ['Targets:', ...targets.map((t) => `- ${t}`), ''].join('\n');
  const text = `${printTable(title, columns, rows)}\n${after}`;
  process.stdout.write(after);
  const svg = barChart({
    title: 'one node at size: CPU per endpoint change',
    unit: 'ms of node CPU per change; target 5',
    groups: results.map((r) => ({
      label: `${r.side}: ${r.scale}`,
      values: [
        { label: 'CPU per change', value: r.change.cpuMsPerChange },
        { label: 'target', value: 5 },
      ],
    })),
  });
  await writeResults('size', { options: o, build: build(), sides: results, targets }, { svg, table: text });
}
