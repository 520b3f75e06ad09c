// Shared setup of the benchmarks that run on real local clusters (propagation, churn): a ClusterSet with one
// mcs-gossip node per cluster in a temporary directory, always taken down again; a keep-alive JSON client per
// cluster (no rate limit, one TLS handshake per connection, not per request); list + watch caches whose events carry
// the time they arrived, and waits on them that resolve with that time (never polling); and the nodes' API-write
// counters.
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KubeConfig } from '@kubernetes/client-node';
import { down, kubeConfigFor, up, type ClusterSetState } from '../e2e/harness/clusterset.js';
import { eventually, sleep } from '../e2e/harness/wait.js';
import { auditWrites, SA_USER } from '../e2e/tests/kube-helpers.js';
import { nodeHttp, nodeReady } from '../e2e/tests/node-helpers.js';

export { sleep };

/** Milliseconds on the monotonic clock every timing of these benchmarks uses. */
export const now = (): number => performance.now();

// ---------------------------------------------------------------- flags

/** `--name N` as a whole number ≥ min, or `fallback` when absent. */
export function intFlag(values: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number ≥ ${min}, got "${String(raw)}"`);
  return n;
}

// ---------------------------------------------------------------- a keep-alive client

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export class KubeError extends Error {
  override readonly name = 'KubeError';
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

/**
 * A minimal Kubernetes JSON client on node:https with a keep-alive agent: requests reuse warm TLS connections, as
 * client-go's do (no client-side rate limit either). The floor and the benchmark's own writes go through it, so
 * neither pays a TLS handshake per request.
 */
export class Kube {
  private constructor(
    readonly cluster: string,
    readonly server: string,
    private readonly agent: https.Agent,
  ) {}

  static async of(kc: KubeConfig, cluster: string): Promise<Kube> {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const server = kc.getCurrentCluster()?.server;
    if (server === undefined) throw new Error(`no server for ${cluster}`);
    const agent = new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key });
    return new Kube(cluster, server, agent);
  }

  /** One request; JSON in and out; HTTP ≥ 300 is thrown as a {@link KubeError}. */
  request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (data !== undefined) {
        headers['content-type'] = contentType;
        headers['content-length'] = data.length;
      }
      const req = https.request(
        new URL(path, this.server),
        { method, agent: this.agent, headers, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 300) reject(new KubeError(status, method, path, text));
            else resolve((text === '' ? undefined : JSON.parse(text)) as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after 30 s`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  create<T extends KObject>(path: string, body: T): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  /** PUT of the whole object (with its resourceVersion, if set: optimistic concurrency). */
  replace<T extends KObject>(path: string, body: T): Promise<T> {
    return this.request<T>('PUT', `${path}/${body.metadata.name}`, body);
  }

  /**
   * A watch from `resourceVersion` (bookmarks on); `onEvent` gets each event with the time its bytes arrived.
   * Resolves when the server ends the stream, rejects on an error; `stop()` ends it.
   */
  watch(
    path: string,
    params: Record<string, string>,
    onEvent: (event: { type: string; object: KObject }, at: number) => void,
  ): { done: Promise<void>; stop: () => void } {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries({ ...params, watch: 'true', allowWatchBookmarks: 'true' }))
      url.searchParams.set(k, v);
    let req: ReturnType<typeof https.request> | undefined;
    let failure: Error | undefined;
    const done = new Promise<void>((resolve, reject) => {
      const end = () => (failure === undefined ? resolve() : reject(failure));
      req = https.request(url, { method: 'GET', agent: this.agent, headers: { accept: 'application/json' } }, (res) => {
        if ((res.statusCode ?? 0) !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            reject(new KubeError(res.statusCode ?? 0, 'WATCH', path, Buffer.concat(chunks).toString('utf8'))),
          );
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          const at = now();
          buf += chunk;
          let i: number;
          while (failure === undefined && (i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim() === '') continue;
            try {
              onEvent(JSON.parse(line) as { type: string; object: KObject }, at);
            } catch (err) {
              failure = err instanceof Error ? err : new Error(String(err));
              req?.destroy();
            }
          }
        });
        res.on('error', (err) => {
          failure ??= err;
        });
        res.on('close', end);
      });
      req.on('error', (err) => {
        failure ??= err;
        end();
      });
      req.end();
    });
    return {
      done,
      stop: () => {
        req?.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---------------------------------------------------------------- list + watch caches

/** A watch ended with 410 Gone: the cache lists again. */
class Gone extends Error {}

export type Listener = (type: string, object: KObject, at: number) => void;

/**
 * A cache of the objects at `path` (optionally a label selector): list, then watch from the list's
 * resourceVersion, resumed from the last one seen when the server ends the stream, listed again on 410 Gone. Every
 * change is passed to the listeners with the time its watch event arrived.
 */
export class Informer {
  readonly items = new Map<string, KObject>();
  readonly #listeners = new Set<Listener>();
  #rv = '';
  #stopped = false;
  #current: { stop: () => void } | undefined;
  #loop: Promise<void> | undefined;
  /** Watch streams opened after the first (server timeouts, errors): reported so a reconnect is never silent. */
  restarts = 0;

  constructor(
    readonly kube: Kube,
    readonly path: string,
    readonly labelSelector?: string,
  ) {}

  on(listener: Listener): void {
    this.#listeners.add(listener);
  }

  #emit(type: string, object: KObject, at: number): void {
    for (const l of this.#listeners) l(type, object, at);
  }

  #query(): string {
    return this.labelSelector === undefined ? '' : `?labelSelector=${encodeURIComponent(this.labelSelector)}`;
  }

  async #list(): Promise<void> {
    const list = await this.kube.request<{ metadata: { resourceVersion: string }; items: KObject[] }>(
      'GET',
      `${this.path}${this.#query()}`,
    );
    const at = now();
    const seen = new Set<string>();
    for (const o of list.items) {
      const key = o.metadata.name;
      seen.add(key);
      const old = this.items.get(key);
      this.items.set(key, o);
      if (old?.metadata.resourceVersion !== o.metadata.resourceVersion) this.#emit(old ? 'MODIFIED' : 'ADDED', o, at);
    }
    for (const [key, o] of [...this.items]) {
      if (!seen.has(key)) {
        this.items.delete(key);
        this.#emit('DELETED', o, at);
      }
    }
    this.#rv = list.metadata.resourceVersion;
  }

  /** Lists, then keeps watching in the background; resolves once the first list is in. */
  async start(): Promise<void> {
    await this.#list();
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let first = true;
    while (!this.#stopped) {
      if (!first) this.restarts++;
      first = false;
      try {
        const params: Record<string, string> = { resourceVersion: this.#rv };
        if (this.labelSelector !== undefined) params.labelSelector = this.labelSelector;
        const w = this.kube.watch(this.path, params, (e, at) => this.#onEvent(e, at));
        this.#current = w;
        await w.done;
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof Gone || (err instanceof KubeError && err.status === 410)) {
          await this.#list().catch(() => sleep(500));
        } else {
          await sleep(500);
        }
      }
    }
  }

  #onEvent(e: { type: string; object: KObject }, at: number): void {
    if (e.type === 'ERROR') {
      const code = (e.object as { code?: number }).code;
      throw code === 410 ? new Gone('watch expired') : new Error(`watch error ${JSON.stringify(e.object)}`);
    }
    const rv = e.object.metadata?.resourceVersion;
    if (rv !== undefined) this.#rv = rv;
    if (e.type === 'BOOKMARK') return;
    const key = e.object.metadata.name;
    if (e.type === 'DELETED') this.items.delete(key);
    else this.items.set(key, e.object);
    this.#emit(e.type, e.object, at);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#current?.stop();
    await this.#loop?.catch(() => {});
  }
}

/** A wait that resolves with the time of the watch event after which its condition first held. */
interface Waiter {
  readonly test: () => boolean;
  readonly resolve: (at: number) => void;
}

/**
 * Conditions over informer caches, checked on each of their events (and once when registered): `until` resolves
 * with the arrival time of the event that made the condition true, or rejects at its timeout.
 */
export class Waits {
  readonly #waiters = new Set<Waiter>();

  /** Every event of `informer` re-checks the waits. */
  follow(informer: Informer): void {
    informer.on((_type, _o, at) => this.check(at));
  }

  check(at: number): void {
    for (const w of [...this.#waiters]) {
      if (w.test()) {
        this.#waiters.delete(w);
        w.resolve(at);
      }
    }
  }

  until(what: string, test: () => boolean, timeoutMs: number): Promise<number> {
    if (test()) return Promise.resolve(now());
    const p = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new TimeoutError(`timed out after ${timeoutMs} ms: ${what}`));
      }, timeoutMs);
      const waiter: Waiter = {
        test,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
      this.#waiters.add(waiter);
    });
    // Handled here too: a wait left behind when its write failed must not end the process when it times out.
    p.catch(() => {});
    return p;
  }
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

// ---------------------------------------------------------------- endpoints

export interface Endpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  [k: string]: unknown;
}

export interface EndpointSlice extends KObject {
  addressType: string;
  endpoints?: Endpoint[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

/** One endpoint as compared: its addresses and its three conditions (unset read as the API reads them). */
export function endpointKey(e: Endpoint): string {
  const c = e.conditions ?? {};
  return `${e.addresses.join(',')} ready=${c.ready !== false} serving=${c.serving !== false} terminating=${c.terminating === true}`;
}

/** The endpoints of some slices as one comparable string: sorted endpoint keys. */
export function endpointState(slices: Iterable<EndpointSlice>): string {
  const keys: string[] = [];
  for (const s of slices) for (const e of s.endpoints ?? []) keys.push(endpointKey(e));
  return keys.sort().join('\n');
}

// ---------------------------------------------------------------- API paths and labels

export const NS_PATH = '/api/v1/namespaces';
export const svcPath = (ns: string) => `/api/v1/namespaces/${ns}/services`;
export const slicePath = (ns: string) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
export const exportPath = (ns: string) => `/apis/multicluster.x-k8s.io/v1beta1/namespaces/${ns}/serviceexports`;
export const importPath = (ns: string) => `/apis/multicluster.x-k8s.io/v1beta1/namespaces/${ns}/serviceimports`;
export const configMapPath = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;

/** Labels the node puts on imported slices (src/core/constants.ts). */
export const MANAGED_BY_NODE = 'mcs-gossip.x-k8s.io';
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const LABEL_SERVICE_NAME = 'multicluster.kubernetes.io/service-name';
export const LABEL_SOURCE_CLUSTER = 'multicluster.kubernetes.io/source-cluster';
/** The managed-by value of the benchmark's own slices: no controller of the cluster touches them. */
export const MANAGED_BY_BENCH = 'bench.mcs-gossip.x-k8s.io';

/** Imported slices of `name` from `origin` in an informer of the node's slices. */
export function importedSlicesOf(informer: Informer, name: string, origin: string): EndpointSlice[] {
  const out: EndpointSlice[] = [];
  for (const o of informer.items.values()) {
    const l = o.metadata.labels ?? {};
    if (l[LABEL_SERVICE_NAME] === name && l[LABEL_SOURCE_CLUSTER] === origin) out.push(o as EndpointSlice);
  }
  return out;
}

export function serviceBody(name: string, port = 80, targetPort = 8080): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { ports: [{ name: 'http', protocol: 'TCP', port, targetPort }] },
  };
}

export function sliceBody(service: string, name: string, endpoints: Endpoint[], port = 8080): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      labels: { 'kubernetes.io/service-name': service, [LABEL_MANAGED_BY]: MANAGED_BY_BENCH },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port }],
    endpoints,
  };
}

export function exportBody(name: string): KObject {
  return { apiVersion: 'multicluster.x-k8s.io/v1beta1', kind: 'ServiceExport', metadata: { name } };
}

export function endpoint(address: string, ready: boolean, zone = 'zone-a'): Endpoint {
  return { addresses: [address], conditions: { ready, serving: ready, terminating: false }, zone };
}

// ---------------------------------------------------------------- the nodes' API writes

/** `resource verb` → count of the node's API writes with result ok; `failed` counts the other results. */
export interface WriteCounts {
  readonly ok: Map<string, number>;
  readonly failed: Map<string, number>;
}

const WRITES = /^mcs_gossip_(?:kube_)?api_writes_total\{([^}]*)\} (\S+)$/;

/** The node's `mcs_gossip_kube_api_writes_total` series, read from its /metrics. */
export async function nodeWrites(state: ClusterSetState, cluster: string): Promise<WriteCounts> {
  const { code, body } = await nodeHttp(state, cluster, '/metrics');
  if (code !== 200) throw new Error(`/metrics of ${cluster}: HTTP ${code}`);
  const ok = new Map<string, number>();
  const failed = new Map<string, number>();
  for (const line of body.split('\n')) {
    const m = WRITES.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const key = `${labels.resource ?? '?'} ${labels.verb ?? '?'}`;
    const into = labels.result === 'ok' ? ok : failed;
    into.set(key, (into.get(key) ?? 0) + Number(m[2]));
  }
  return { ok, failed };
}

export async function allNodeWrites(state: ClusterSetState): Promise<Map<string, WriteCounts>> {
  const out = new Map<string, WriteCounts>();
  for (const c of state.clusters) out.set(c.name, await nodeWrites(state, c.name));
  return out;
}

export function total(m: ReadonlyMap<string, number>, filter: (key: string) => boolean = () => true): number {
  let n = 0;
  for (const [k, v] of m) if (filter(k)) n += v;
  return n;
}

/** after − before per key (keys with a zero difference left out). */
export function delta(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

/** Per cluster, the ok and failed writes between two readings of {@link allNodeWrites}. */
export function writesBetween(
  after: ReadonlyMap<string, WriteCounts>,
  before: ReadonlyMap<string, WriteCounts>,
): Map<string, WriteCounts> {
  const out = new Map<string, WriteCounts>();
  for (const [c, a] of after) {
    const b = before.get(c) ?? { ok: new Map(), failed: new Map() };
    out.set(c, { ok: delta(a.ok, b.ok), failed: delta(a.failed, b.failed) });
  }
  return out;
}

/** Sums `resource verb` counts over clusters. */
export function sumClusters(per: ReadonlyMap<string, WriteCounts>, clusters?: readonly string[]): WriteCounts {
  const ok = new Map<string, number>();
  const failed = new Map<string, number>();
  for (const [c, w] of per) {
    if (clusters !== undefined && !clusters.includes(c)) continue;
    for (const [k, v] of w.ok) ok.set(k, (ok.get(k) ?? 0) + v);
    for (const [k, v] of w.failed) failed.set(k, (failed.get(k) ?? 0) + v);
  }
  return { ok, failed };
}

/**
 * Reads the write counters until their total has not moved for `quietMs` (at most `maxMs`): the writes a change
 * causes may trail the moment it is visible (status patches, Events).
 */
export async function settledWrites(
  state: ClusterSetState,
  quietMs = 1500,
  maxMs = 15_000,
): Promise<Map<string, WriteCounts>> {
  const deadline = Date.now() + maxMs;
  let last = await allNodeWrites(state);
  let lastTotal = [...last.values()].reduce((n, w) => n + total(w.ok) + total(w.failed), 0);
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await sleep(250);
    const next = await allNodeWrites(state);
    const t = [...next.values()].reduce((n, w) => n + total(w.ok) + total(w.failed), 0);
    if (t !== lastTotal) {
      lastTotal = t;
      quietSince = Date.now();
    }
    last = next;
    if (Date.now() - quietSince >= quietMs) break;
  }
  return last;
}

/**
 * The node's successful writes in the API servers' audit logs between two wall-clock times (a cross-check of the
 * counters that also sees writes the node does not count), `resource[/subresource] verb` → count, over `clusters`.
 */
export async function auditedWrites(
  state: ClusterSetState,
  sinceMs: number,
  untilMs: number,
  clusters?: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of state.clusters) {
    if (clusters !== undefined && !clusters.includes(c.name)) continue;
    for (const w of await auditWrites(c.auditLog, SA_USER, sinceMs)) {
      if (Date.parse(w.time) > untilMs) continue;
      if (w.code !== undefined && (w.code < 200 || w.code >= 300)) continue;
      const k = `${w.resource}${w.subresource ? '/' + w.subresource : ''} ${w.verb}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
  }
  return out;
}

/** `a b: 1.5, c d: 0.5` of counts divided by `per`, largest first. */
export function breakdown(m: ReadonlyMap<string, number>, per = 1): string {
  return [...m]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${Number((v / per).toFixed(2))}`)
    .join(', ');
}

// ---------------------------------------------------------------- the ClusterSet

export interface BenchClusterSet {
  readonly state: ClusterSetState;
  readonly names: readonly string[];
  /** The admin client of each cluster. */
  kube(cluster: string): Kube;
  /** Creates a namespace in every cluster (the node imports only where the namespace exists). */
  namespace(name: string): Promise<void>;
}

/** Each node is ready (holding nothing back) and sees every other cluster alive. */
async function allConnected(state: ClusterSetState): Promise<void> {
  const names = state.clusters.map((c) => c.name);
  for (const c of names) await nodeReady(state, c, 120_000);
  for (const c of names) {
    await eventually(
      `${c} sees every other cluster alive`,
      async () => {
        const { body } = await nodeHttp(state, c, '/metrics');
        return names.every((o) => o === c || body.includes(`mcs_gossip_cluster_alive{cluster="${o}"} 1`))
          ? true
          : undefined;
      },
      120_000,
    );
  }
}

/**
 * Runs `fn` on a fresh ClusterSet of `clusters` clusters with one node each, in a temporary directory that is taken
 * down in any case (also on SIGINT/SIGTERM, which then exit 130). The directory is removed unless
 * `BENCH_KEEP_DIR` is set or `fn` failed (its logs are kept then, and named).
 */
export async function withClusterSet<T>(
  part: string,
  clusters: number,
  fn: (cs: BenchClusterSet) => Promise<T>,
  options: { readonly verbose?: boolean; readonly nodeArgs?: readonly string[] } = {},
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `mcs-gossip-bench-${part}-`));
  const abort = new AbortController();
  const kubes = new Map<string, Kube>();
  let stopping: Promise<void> | undefined;
  const teardown = () => {
    stopping ??= (async () => {
      for (const k of kubes.values()) k.close();
      await down(dir);
    })();
    return stopping;
  };
  // `on`, not `once`: tsx relays the signal to this process a second time, and a signal with no listener left
  // would end the process before the ClusterSet is down. Further signals are ignored while it goes down.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench ${part}: ${signal}, taking the ClusterSet in ${dir} down\n`);
    abort.abort();
    void teardown()
      .then(() => (process.env.BENCH_KEEP_DIR === undefined ? rm(dir, { recursive: true, force: true }) : undefined))
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let failed = true;
  try {
    const t0 = Date.now();
    process.stderr.write(`bench ${part}: starting ${clusters} clusters with nodes in ${dir}\n`);
    const state = await up({
      dir,
      clusters,
      nodes: true,
      timeoutMs: 420_000,
      signal: abort.signal,
      extraArgs: options.nodeArgs === undefined ? undefined : { 'mcs-gossip': options.nodeArgs },
      onProgress: (line) => {
        if (options.verbose === true) process.stderr.write(`  ${line}\n`);
      },
    });
    await allConnected(state);
    process.stderr.write(`bench ${part}: ${clusters} clusters up and connected in ${Date.now() - t0} ms\n`);
    for (const c of state.clusters) kubes.set(c.name, await Kube.of(kubeConfigFor(state, c.name), c.name));
    const kube = (c: string) => {
      const k = kubes.get(c);
      if (k === undefined) throw new Error(`no cluster ${c}`);
      return k;
    };
    const cs: BenchClusterSet = {
      state,
      names: state.clusters.map((c) => c.name),
      kube,
      async namespace(name) {
        for (const c of state.clusters) {
          await kube(c.name)
            .create(NS_PATH, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
            .catch((err: unknown) => {
              if (!(err instanceof KubeError && err.status === 409)) throw err;
            });
        }
      },
    };
    const out = await fn(cs);
    failed = false;
    return out;
  } finally {
    await teardown();
    if (interrupted) await new Promise(() => {}); // the signal handler ends the process
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (failed || process.env.BENCH_KEEP_DIR !== undefined) {
      process.stderr.write(`bench ${part}: kept ${dir} (logs under cluster-*/logs/)\n`);
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
