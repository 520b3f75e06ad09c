/**
 * The Kubernetes side of one node: caches of the cluster's objects, the cluster's identity, its local exports as the
 * core computes them, and a writer that makes the cluster hold what resolution says, through a work queue.
 */
import * as k8s from '@kubernetes/client-node';
import { apiClient } from './api-client.js';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  compareStrings,
  LABEL_SERVICE_NAME,
  localExportOf,
  serviceKey,
  sliceOwnerKey,
  type EndpointSliceObject,
  type ExportedService,
  type KeyOutcome,
  type LocalExport,
  type LocalExports,
  type Resolution,
  type ServiceExportObject,
  type ServiceKey,
  type ServiceObject,
  type NamespaceMissing,
  type UnimportableRecord,
} from '../core/index.js';
import { ClusterIpPlanner, rangesOf, serviceIpIndex, type ServiceCidrObject } from './cluster-ip.js';
import { Coalescer } from './coalescer.js';
import { canonical, sameDesired } from './compare.js';
import {
  ABOUT_GROUP,
  ABOUT_VERSION,
  BOOTSTRAP_PROPERTY,
  CLUSTER_ID_PROPERTY,
  CLUSTERSET_PROPERTY,
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_NAME,
  DEFAULT_LEASE_RENEW_DEADLINE_MS,
  DEFAULT_LEASE_RETRY_MS,
  DEFAULT_QUEUE_BURST,
  DEFAULT_QUEUE_QPS,
  DEFAULT_RESYNC_MS,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_MAX_MS,
  FIELD_MANAGER,
  MCS_GROUP,
  LEFT_ANNOTATION,
  MCS_VERSION,
  PEER_PROPERTY,
} from './constants.js';
import { indexResolution, type DesiredService } from './desired.js';
import { parseBootstrapProperty, validateIdentity, type IdentityStatus } from './identity.js';
import { DEFAULT_API_TIMEOUT_MS, withTimeout } from './api-options.js';
import { describeError } from './errors.js';
import {
  IMPORT_INDEX,
  ImportWriter,
  importedSlicesOf,
  LOCAL_INDEX,
  isDerivedService,
  isImportedSlice,
  localSlicesOf,
  ReconcileError,
} from './import-writer.js';
import { ResilientInformer, type KubeObject } from './informer.js';
import { LeaderElector } from './leader-election.js';
import { KubeMetrics } from './metrics.js';
import type { ClusterProperty, ServiceExport, ServiceImport } from './objects.js';
import { WorkQueue } from './work-queue.js';

export interface LeaderElectionInit {
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Lease name. Default `mcs-gossip`. */
  readonly name?: string;
  /** This replica's identity (pod name). */
  readonly identity: string;
  /** Default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that could not renew this long steps down. Default 10 s (below the lease duration). */
  readonly renewDeadlineMs?: number;
  /** Renew / retry period. Default 2 s (below the renew deadline). */
  readonly retryPeriodMs?: number;
}

export interface KubeAdapterInit {
  readonly kubeConfig: k8s.KubeConfig;
  readonly logger?: Logger;
  /** Where the metrics go. Default: a private Registry. */
  readonly metricsRegistry?: Registry;
  /** Elect one writer among replicas with a Lease. Default: no election, this replica writes. */
  readonly leaderElection?: LeaderElectionInit;
  /** Reconciles started per second at most. Default 50. */
  readonly qps?: number;
  /** Reconcile burst. Default 200. */
  readonly burst?: number;
  /** Concurrent reconciles. Default 4. */
  readonly concurrency?: number;
  /** Every key is re-checked this often (a no-op when nothing differs). Default 5 min. */
  readonly resyncIntervalMs?: number;
  /**
   * Local changes fire `local:change` at once (in the next turn of the event loop, so the watch events read together
   * go together), and then at most once per this many ms while changes keep coming. Default 2: a pass recomputes
   * only the keys touched and the publisher coalesces its deltas on its own (25 ms), so a longer wait would only
   * delay an export whose Service or slices changed just before it (a manifest applied at once).
   */
  readonly localDebounceMs?: number;
  /** Keys of a periodic resync re-checked per second at most (a lane of their own, behind events). Default 20. */
  readonly resyncQps?: number;
}

/**
 * Which origins this node knows as well as the ClusterSet does (see docs/reliability.md). A key whose objects in the
 * cluster name a source cluster that is not settled is held: nothing of it is written or deleted until it is.
 */
export interface OriginGate {
  /** This cluster: its exports come from the (listed) caches, so it is always settled. */
  readonly localCluster: string;
  isSettled(origin: string): boolean;
  /** Changes whenever an origin became settled: held keys are checked again only then. */
  readonly revision: number;
}

/**
 * A key whose writes the API server refused is tried again on the next change of what it should hold, on a resync,
 * or on an event of its objects once this long has passed, doubling per refusal up to the resync interval.
 */
const REFUSED_RETRY_BASE_MS = 30_000;
/** A key's refusals are reported (log, Event) at most this often, unless the refusal is new. */
const REFUSAL_REPORT_MS = 60_000;

/** A key whose last reconcile the API server refused (HTTP 4xx), as `/status` reports it. */
export interface RefusedKey {
  readonly key: ServiceKey;
  /** Every refused write, one line each: verb, resource, object and the API server's answer. */
  readonly message: string;
  /** Refusals in a row of the same desired state. */
  readonly attempts: number;
  /** When an event of the key's objects may retry it (a change of the desired state or a resync retries it at once). */
  readonly retryAfter: string;
}

/** A list (the first step of every cache) may take this long; then it fails and is retried with backoff. */
const LIST_TIMEOUT_MS = 60_000;

/** Readiness as `/readyz` reports it. */
export interface KubeReadiness {
  readonly ready: boolean;
  readonly reason: string;
}

/** What changed locally since the last `local:change`. */
export interface LocalChangeDetail {
  /** Keys whose local export may have changed (a Service, EndpointSlice or ServiceExport event); undefined: any. */
  readonly keys: readonly ServiceKey[] | undefined;
  /** Namespaces created, deleted or being deleted: imports into them appear or go. */
  readonly namespaces: readonly string[];
}

export interface KubeAdapterEvents {
  /** The identity changed (became valid, invalid, or another valid identity). */
  identity: CustomEvent<IdentityStatus>;
  /** Local exports or namespaces may have changed (coalesced). */
  'local:change': CustomEvent<LocalChangeDetail>;
  /** Leadership changed (always true without leader election, once started). */
  leader: CustomEvent<boolean>;
  /** The bootstrap ClusterProperty changed. */
  bootstrap: CustomEvent<readonly string[]>;
}

/**
 * One cluster's Kubernetes adapter.
 *
 * @example
 * ```ts
 * const kube = new KubeAdapter({ kubeConfig, logger });
 * kube.on('local:change', () => gossip.setLocalExports(kube.localExports()?.desired ?? new Map()));
 * await kube.start();
 * kube.apply(resolve(state, { localCluster, namespaces: kube.namespaces(), localExports: kube.localExports()?.exports }));
 * // then, per event, only the keys it touched:
 * kube.applyKeys(resolveKeys(state, keys, { localCluster, namespaces: new Set(kube.namespaces()), localExports }));
 * ```
 */
export class KubeAdapter extends EventTarget {
  readonly metrics: KubeMetrics;
  readonly #init: KubeAdapterInit;
  readonly #log: Logger;
  readonly #kc: k8s.KubeConfig;
  readonly #custom: k8s.CustomObjectsApi;
  readonly namespacesCache: ResilientInformer<k8s.V1Namespace>;
  readonly servicesCache: ResilientInformer<k8s.V1Service>;
  readonly endpointSlicesCache: ResilientInformer<k8s.V1EndpointSlice>;
  readonly serviceExportsCache: ResilientInformer<ServiceExport>;
  readonly serviceImportsCache: ResilientInformer<ServiceImport>;
  readonly clusterPropertiesCache: ResilientInformer<ClusterProperty>;
  readonly #informers: ResilientInformer<KubeObject>[];
  readonly #writer: ImportWriter;
  readonly #clusterIps = new ClusterIpPlanner();
  readonly #networking: k8s.NetworkingV1Api;
  #rangesRefresh: Promise<void> | undefined;
  #rangesProblem: string | undefined;
  readonly #queue: WorkQueue;
  readonly #elector: LeaderElector | undefined;
  #identity: IdentityStatus = { ok: false, reason: 'ClusterPropertiesUnavailable', message: 'not started' };
  #bootstrap: string[] = [];
  #propertiesListed = false;
  #leader = false;
  #started = false;
  #desired: Map<ServiceKey, DesiredService> | undefined;
  #gate: OriginGate | undefined;
  /** Keys left as they are because their objects name an origin that is not settled: key → those origins. */
  readonly #held = new Map<ServiceKey, readonly string[]>();
  #heldRevision: number | undefined;
  /** Aborted when writing stops, so writes in flight end at once. */
  #writing = new AbortController();
  /** The canonical text of a desired state, computed only when a refusal needs it. */
  readonly #desiredText = new WeakMap<DesiredService, string>();
  /** Keys whose last reconcile the API server refused, with the desired state that was refused. */
  readonly #refused = new Map<
    ServiceKey,
    { text: string | undefined; actual: string; until: number; attempts: number; message: string; reported: number }
  >();
  /** Live records resolution skipped as not importable, by origin/key: logged once per new problem. */
  #unimportable = new Map<string, UnimportableRecord>();
  /** The keys of `#unimportable`. */
  #unimportableKeys = new Set<ServiceKey>();
  /** Exported services of the last resolution not imported for want of their namespace, by namespace/name. */
  #namespaceMissing = new Map<string, NamespaceMissing>();
  /** This cluster's exports by key; undefined: recomputed from the caches on the next read. */
  #local: { byKey: Map<ServiceKey, LocalExport>; desired: Map<ServiceKey, ExportedService> } | undefined;
  /** `localExports()` sorted, until the next change. */
  #localSorted: LocalExports | undefined;
  /** Keys whose export must be recomputed on the next read. */
  readonly #localDirty = new Set<ServiceKey>();
  /** What the next `local:change` reports. */
  #pendingKeys: Set<ServiceKey> | undefined = new Set();
  readonly #pendingNamespaces = new Set<string>();
  readonly #localEvents: Coalescer;
  #resyncTimer: NodeJS.Timeout | undefined;

  constructor(init: KubeAdapterInit) {
    super();
    this.#init = init;
    this.#kc = init.kubeConfig;
    this.#log = (init.logger ?? pino({ level: 'silent' })).child({ component: 'kube' });
    this.metrics = new KubeMetrics(init.metricsRegistry);
    this.#custom = apiClient(this.#kc, k8s.CustomObjectsApi);
    const core = apiClient(this.#kc, k8s.CoreV1Api);
    const discovery = apiClient(this.#kc, k8s.DiscoveryV1Api);
    const custom = this.#custom;
    const informer = <T extends KubeObject>(
      resource: string,
      path: string,
      list: () => Promise<k8s.KubernetesListObject<T>>,
      onChange: (obj: T, previousIndex?: string) => void,
      indexBy?: (obj: T) => string | undefined,
    ) =>
      new ResilientInformer<T>({
        kubeConfig: this.#kc,
        resource,
        path,
        list,
        ...(indexBy === undefined ? {} : { indexBy }),
        logger: this.#log,
        onChange: (obj, _verb, previousIndex) => onChange(obj, previousIndex),
        onError: () => this.metrics.informerErrors.inc({ resource }),
        onSynced: () => this.#onSynced(resource),
      });
    const listCustom =
      <T extends KubeObject>(group: string, version: string, plural: string) =>
      async () =>
        (await custom.listCustomObjectForAllNamespaces(
          { group, version, resourcePlural: plural },
          withTimeout(LIST_TIMEOUT_MS),
        )) as k8s.KubernetesListObject<T>;

    this.namespacesCache = informer(
      'namespaces',
      '/api/v1/namespaces',
      () => core.listNamespace({}, withTimeout(LIST_TIMEOUT_MS)),
      (n) => this.#namespaceChanged(n.metadata?.name ?? ''),
    );
    this.servicesCache = informer(
      'services',
      '/api/v1/services',
      () => core.listServiceForAllNamespaces({}, withTimeout(LIST_TIMEOUT_MS)),
      (s) => {
        if (isDerivedService(s)) this.#enqueue(`${s.metadata?.namespace}/${s.metadata?.labels?.[LABEL_SERVICE_NAME]}`);
        else this.#localChanged(serviceKey(s.metadata?.namespace ?? '', s.metadata?.name ?? ''));
      },
      serviceIpIndex,
    );
    this.endpointSlicesCache = informer(
      'endpointslices',
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => discovery.listEndpointSliceForAllNamespaces({}, withTimeout(LIST_TIMEOUT_MS)),
      (s, previousIndex) => {
        // A slice relabelled to another service (or between local and imported) changes its old key too.
        if (previousIndex?.startsWith(LOCAL_INDEX)) this.#localChanged(previousIndex.slice(LOCAL_INDEX.length));
        else if (previousIndex?.startsWith(IMPORT_INDEX)) this.#enqueue(previousIndex.slice(IMPORT_INDEX.length));
        if (isImportedSlice(s)) this.#enqueue(`${s.metadata?.namespace}/${s.metadata?.labels?.[LABEL_SERVICE_NAME]}`);
        else {
          const key = sliceOwnerKey(s as EndpointSliceObject);
          if (key !== undefined) this.#localChanged(key);
        }
      },
      sliceIndex,
    );
    this.serviceExportsCache = informer<ServiceExport>(
      'serviceexports',
      `/apis/${MCS_GROUP}/${MCS_VERSION}/serviceexports`,
      listCustom(MCS_GROUP, MCS_VERSION, 'serviceexports'),
      (se) => {
        const key = serviceKey(se.metadata.namespace ?? '', se.metadata.name ?? '');
        this.#localChanged(key);
        this.#enqueue(key);
      },
    );
    this.serviceImportsCache = informer<ServiceImport>(
      'serviceimports',
      `/apis/${MCS_GROUP}/${MCS_VERSION}/serviceimports`,
      listCustom(MCS_GROUP, MCS_VERSION, 'serviceimports'),
      (si) => this.#enqueue(`${si.metadata.namespace}/${si.metadata.name}`),
    );
    this.clusterPropertiesCache = informer<ClusterProperty>(
      'clusterproperties',
      `/apis/${ABOUT_GROUP}/${ABOUT_VERSION}/clusterproperties`,
      async () =>
        (await custom.listClusterCustomObject(
          { group: ABOUT_GROUP, version: ABOUT_VERSION, plural: 'clusterproperties' },
          withTimeout(LIST_TIMEOUT_MS),
        )) as k8s.KubernetesListObject<ClusterProperty>,
      () => {
        // During a (re)list the cache fills one object at a time: judge the identity once it is complete.
        if (this.clusterPropertiesCache.synced) this.#evaluateIdentity();
      },
    );
    this.#informers = [
      this.clusterPropertiesCache,
      this.namespacesCache,
      this.servicesCache,
      this.endpointSlicesCache,
      this.serviceExportsCache,
      this.serviceImportsCache,
    ] as ResilientInformer<KubeObject>[];

    this.#networking = apiClient(this.#kc, k8s.NetworkingV1Api);
    this.#writer = new ImportWriter({
      kubeConfig: this.#kc,
      logger: this.#log,
      metrics: this.metrics,
      signal: () => this.#writing.signal,
      clusterIps: this.#clusterIps,
      onServiceRangesStale: () => this.#serviceRangesStale(),
      caches: {
        namespaces: this.namespacesCache,
        services: this.servicesCache,
        endpointSlices: this.endpointSlicesCache,
        serviceExports: this.serviceExportsCache,
        serviceImports: this.serviceImportsCache,
      },
    });
    this.#localEvents = new Coalescer(() => this.#emitLocalChange(), init.localDebounceMs ?? 2);
    this.#queue = new WorkQueue({
      process: (key) => this.#reconcile(key),
      backgroundQps: init.resyncQps ?? 20,
      qps: init.qps ?? DEFAULT_QUEUE_QPS,
      burst: init.burst ?? DEFAULT_QUEUE_BURST,
      concurrency: init.concurrency ?? 4,
      retryBaseMs: DEFAULT_RETRY_BASE_MS,
      retryMaxMs: DEFAULT_RETRY_MAX_MS,
      onError: (key, err, attempt) => {
        const level = attempt > 3 ? 'warn' : 'debug';
        this.#log[level]({ key, attempt, err: describeError(err) }, 'reconcile failed; retrying');
      },
    });
    const le = init.leaderElection;
    this.#elector =
      le === undefined
        ? undefined
        : new LeaderElector({
            kubeConfig: this.#kc,
            namespace: le.namespace,
            name: le.name ?? DEFAULT_LEASE_NAME,
            identity: le.identity,
            leaseDurationMs: le.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS,
            renewDeadlineMs: le.renewDeadlineMs ?? DEFAULT_LEASE_RENEW_DEADLINE_MS,
            retryPeriodMs: le.retryPeriodMs ?? DEFAULT_LEASE_RETRY_MS,
            logger: this.#log,
            onChange: (leader) => this.#setLeader(leader),
          });
  }

  /** Typed listener registration; returns a function that removes the listener. */
  on<K extends keyof KubeAdapterEvents>(type: K, listener: (evt: KubeAdapterEvents[K]) => void): () => void {
    const l = (evt: Event): void => listener(evt as KubeAdapterEvents[K]);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
  }

  isStarted(): boolean {
    return this.#started;
  }

  /** Starts the caches (resolves once each listed, or failed and is retrying) and the election. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.metrics.identityReady.set(0);
    await Promise.all([...this.#informers.map((i) => i.start()), this.#refreshServiceRanges()]);
    this.#evaluateIdentity();
    if (this.#elector !== undefined) this.#elector.start();
    else this.#setLeader(true);
    this.#resyncTimer = setInterval(() => this.#resync(true), this.#init.resyncIntervalMs ?? DEFAULT_RESYNC_MS);
    this.#resyncTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#queue.stop();
    this.#localEvents.cancel();
    if (this.#resyncTimer !== undefined) clearInterval(this.#resyncTimer);
    await this.#elector?.stop();
    await Promise.all(this.#informers.map((i) => i.stop()));
  }

  /** This cluster's identity, or why it has none. */
  identity(): IdentityStatus {
    return this.#identity;
  }

  /** Bootstrap peers from the bootstrap ClusterProperty. */
  bootstrapPeers(): readonly string[] {
    return this.#bootstrap;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  /** Ready when the identity is valid and every cache has listed. */
  readiness(): KubeReadiness {
    if (!this.#started) return { ready: false, reason: 'not started' };
    if (!this.#identity.ok) return { ready: false, reason: `${this.#identity.reason}: ${this.#identity.message}` };
    const unsynced = this.#informers.filter((i) => !i.synced);
    if (unsynced.length > 0) {
      return {
        ready: false,
        reason: `waiting for ${unsynced.map((i) => `${i.resource}${i.lastError ? ` (${i.lastError})` : ''}`).join(', ')}`,
      };
    }
    return { ready: true, reason: this.#leader ? 'ok (leader)' : 'ok (standby)' };
  }

  /** Keys held as they are in the cluster until the origins their objects name are settled, with those origins. */
  heldKeys(): ReadonlyMap<ServiceKey, readonly string[]> {
    return this.#held;
  }

  /** Keys whose last reconcile the API server refused, sorted. */
  refusedKeys(): RefusedKey[] {
    return [...this.#refused]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, r]) => ({
        key,
        message: r.message,
        attempts: r.attempts,
        retryAfter: new Date(r.until).toISOString(),
      }));
  }

  /** Live records of the last resolution that importers could not write (skipped), by namespace/name and origin. */
  unimportableRecords(): UnimportableRecord[] {
    return [...this.#unimportable.values()];
  }

  /** Exported services of the last resolution not imported here because their namespace does not exist. */
  namespaceMissing(): NamespaceMissing[] {
    return [...this.#namespaceMissing.values()];
  }

  /** Live namespaces (not being deleted): imports appear only there. */
  namespaces(): string[] {
    return this.namespacesCache
      .list()
      .filter((n) => n.metadata?.deletionTimestamp === undefined)
      .map((n) => n.metadata?.name ?? '')
      .filter((n) => n !== '');
  }

  /**
   * What this cluster exports, from the caches; undefined while the identity is missing or invalid, or while a cache
   * it is computed from has not listed since start (an empty cache would read as "nothing exported" and tombstone
   * every export of this cluster in the whole ClusterSet).
   */
  localExports(): LocalExports | undefined {
    const local = this.localExportsByKey();
    if (local === undefined) return undefined;
    this.#localSorted ??= {
      exports: [...local.byKey].sort(([a], [b]) => compareStrings(a, b)).map(([, e]) => e),
      desired: local.desired,
    };
    return this.#localSorted;
  }

  /**
   * {@link KubeAdapter.localExports} by key, brought up to date by recomputing only the keys events touched since
   * the last read (a Service, its EndpointSlices or its ServiceExport changed). Undefined when `localExports()` is.
   */
  localExportsByKey():
    | {
        readonly byKey: ReadonlyMap<ServiceKey, LocalExport>;
        readonly desired: ReadonlyMap<ServiceKey, ExportedService>;
      }
    | undefined {
    if (!this.#identity.ok || !this.#listed(this.#localSources)) return undefined;
    if (this.#local === undefined) {
      this.#localDirty.clear();
      this.#localSorted = undefined;
      const byKey = new Map<ServiceKey, LocalExport>();
      const desired = new Map<ServiceKey, ExportedService>();
      const slices = new Map<ServiceKey, EndpointSliceObject[]>();
      for (const s of this.endpointSlicesCache.list()) {
        if (isImportedSlice(s)) continue;
        const key = sliceOwnerKey(s as EndpointSliceObject);
        if (key === undefined) continue;
        const list = slices.get(key);
        if (list === undefined) slices.set(key, [s as EndpointSliceObject]);
        else list.push(s as EndpointSliceObject);
      }
      for (const se of this.serviceExportsCache.list()) {
        const { namespace = '', name = '' } = se.metadata;
        const key = serviceKey(namespace, name);
        const svc = this.servicesCache.get(name, namespace);
        const e = localExportOf(
          key,
          se as ServiceExportObject,
          svc === undefined || isDerivedService(svc) ? undefined : (svc as ServiceObject),
          slices.get(key) ?? [],
        );
        if (e === undefined) continue;
        byKey.set(key, e);
        if (e.service !== undefined) desired.set(key, e.service);
      }
      this.#local = { byKey, desired };
      return this.#local;
    }
    if (this.#localDirty.size > 0) {
      this.#localSorted = undefined;
      for (const key of this.#localDirty) {
        const e = this.#localExportOf(key);
        if (e === undefined) this.#local.byKey.delete(key);
        else this.#local.byKey.set(key, e);
        if (e?.service === undefined) this.#local.desired.delete(key);
        else this.#local.desired.set(key, e.service);
      }
      this.#localDirty.clear();
    }
    return this.#local;
  }

  /** One key's local export, from the caches (see localExportOf). */
  #localExportOf(key: ServiceKey): LocalExport | undefined {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const se = this.serviceExportsCache.get(name, namespace);
    if (se === undefined) return undefined;
    const svc = this.servicesCache.get(name, namespace);
    const slices = this.endpointSlicesCache.byIndex(localSlicesOf(key)) as EndpointSliceObject[];
    return localExportOf(
      key,
      se as ServiceExportObject,
      svc === undefined || isDerivedService(svc) ? undefined : (svc as ServiceObject),
      slices,
    );
  }

  /**
   * Sets what this cluster should hold and converges to it (only real differences are written). Ignored while the
   * identity is invalid. Writing starts once every cache the writer reads has listed; each start of writing re-checks
   * every key we own, so leftovers of an earlier run go. Keys whose objects name an origin `gate` does not call
   * settled are left as they are (and re-checked on every call).
   */
  apply(resolution: Resolution, gate?: OriginGate): void {
    if (!this.#identity.ok) return;
    this.#noteUnimportable(resolution.unimportable);
    this.#noteNamespaceMissing(resolution.namespaceMissing);
    const next = indexResolution(resolution);
    const before = this.#desired ?? new Map<ServiceKey, DesiredService>();
    this.#desired = next;
    const changed: ServiceKey[] = [];
    // Unchanged keys keep the core's very objects (resolution is memoised per key): compared by reference first.
    for (const [key, d] of next) if (!sameDesired(before.get(key), d)) changed.push(key);
    for (const key of before.keys()) if (!next.has(key)) changed.push(key);
    this.#applied(changed, gate);
  }

  /**
   * Sets what some keys should hold (those an event touched, see `resolveKeys`) and converges them; the other keys
   * keep what they had. Ignored while the identity is invalid; returns false (and does nothing) when there is no
   * whole state to update — before a first {@link KubeAdapter.apply}, or since writing stopped — so the caller gives
   * one.
   */
  applyKeys(outcomes: ReadonlyMap<ServiceKey, KeyOutcome>, gate?: OriginGate): boolean {
    if (!this.#identity.ok) return true;
    if (this.#desired === undefined) return false;
    const changed: ServiceKey[] = [];
    let unimportable = false;
    for (const [key, o] of outcomes) {
      const d: DesiredService | undefined =
        o.serviceImport === undefined && o.exportConditions === undefined && o.endpointSlices.length === 0
          ? undefined
          : {
              ...(o.serviceImport === undefined ? {} : { serviceImport: o.serviceImport }),
              endpointSlices: o.endpointSlices,
              ...(o.exportConditions === undefined ? {} : { exportConditions: o.exportConditions }),
            };
      const prior = this.#desired.get(key);
      if (d === undefined) this.#desired.delete(key);
      else this.#desired.set(key, d);
      if (!sameDesired(prior, d)) changed.push(key);
      const hadProblems = this.#unimportableKeys.has(key);
      if (hadProblems || o.unimportable.length > 0) unimportable = true;
      this.#noteNamespaceMissingOf(key, o.namespaceMissing);
    }
    if (unimportable) {
      const records = [...this.#unimportable.values()].filter((r) => !outcomes.has(serviceKey(r.namespace, r.name)));
      for (const o of outcomes.values()) records.push(...o.unimportable);
      this.#noteUnimportable(records);
    }
    this.metrics.namespaceMissing.set(this.#namespaceMissing.size);
    this.#applied(changed, gate);
    return true;
  }

  #applied(changed: ServiceKey[], gate: OriginGate | undefined): void {
    this.#gate = gate;
    if (gate?.revision !== this.#heldRevision) {
      this.#heldRevision = gate?.revision;
      for (const key of this.#held.keys()) changed.push(key);
    }
    for (const key of changed) this.#enqueue(key);
    this.#maybeStartQueue();
  }

  /** Resolves when no reconcile is queued, running or waiting for a retry (tests). */
  async idle(): Promise<void> {
    await this.#queue.idle();
  }

  /**
   * Writes the peer ClusterProperty (this node's bootstrap entries, for operators to paste into other clusters)
   * when it differs. Only the leader writes; errors are logged.
   */
  async publishPeer(value: string): Promise<void> {
    if (!this.#leader || !this.#identity.ok) return;
    const current = this.clusterPropertiesCache.get(PEER_PROPERTY);
    if (current?.spec?.value === value && current.metadata.annotations?.[LEFT_ANNOTATION] === undefined) return;
    const body: ClusterProperty = {
      apiVersion: `${ABOUT_GROUP}/${ABOUT_VERSION}`,
      kind: 'ClusterProperty',
      metadata: { name: PEER_PROPERTY },
      spec: { value },
    };
    const params = {
      group: ABOUT_GROUP,
      version: ABOUT_VERSION,
      plural: 'clusterproperties',
      fieldManager: FIELD_MANAGER,
    };
    try {
      if (current === undefined) {
        this.clusterPropertiesCache.wrote(
          (await this.#custom.createClusterCustomObject(
            { ...params, body },
            withTimeout(DEFAULT_API_TIMEOUT_MS),
          )) as ClusterProperty,
        );
      } else {
        body.metadata.resourceVersion = current.metadata.resourceVersion;
        this.clusterPropertiesCache.wrote(
          (await this.#custom.replaceClusterCustomObject(
            { ...params, name: PEER_PROPERTY, body },
            withTimeout(DEFAULT_API_TIMEOUT_MS),
          )) as ClusterProperty,
        );
      }
      this.metrics.apiWrites.inc({ resource: 'clusterproperties', verb: current ? 'update' : 'create', result: 'ok' });
    } catch (err) {
      this.metrics.apiWrites.inc({
        resource: 'clusterproperties',
        verb: current ? 'update' : 'create',
        result: 'error',
      });
      this.#log.warn({ err: describeError(err) }, `writing ClusterProperty ${PEER_PROPERTY} failed`);
    }
  }

  /**
   * After this cluster left its ClusterSet (an explicit leave): removes every ServiceImport, derived Service and
   * imported slice the node wrote, since a cluster outside a ClusterSet imports nothing, and its imports would
   * otherwise go stale for ever. Export conditions stay. Only the leader, and only from caches that listed. Errors
   * are logged; what failed stays (a later leave or a re-join converges it).
   */
  async withdrawImports(): Promise<void> {
    if (!this.#leader || !this.#listed(this.#writerSources)) return;
    this.#writing = new AbortController(); // the queue is stopped (no identity): these are the only writes
    let removed = 0;
    for (const key of this.#writer.actualKeys()) {
      if (!this.#leader) break;
      try {
        await this.#writer.reconcile(key, undefined);
        removed++;
      } catch (err) {
        this.#log.warn({ key, err: describeError(err) }, 'removing an import after the leave failed');
      }
    }
    this.#log.info({ keys: removed }, 'removed the imports of the ClusterSet this cluster left');
  }

  /**
   * Marks the peer ClusterProperty as left (`mcs-gossip leave` waits for it): the node has announced to the
   * ClusterSet that this cluster left. Errors are logged.
   */
  async recordLeave(clusterSetName: string, delivered: boolean): Promise<void> {
    const current = this.clusterPropertiesCache.get(PEER_PROPERTY);
    if (!this.#leader || current === undefined) return;
    const annotations = {
      ...current.metadata.annotations,
      [LEFT_ANNOTATION]: `${clusterSetName} ${new Date().toISOString()}${delivered ? '' : ' undelivered'}`,
    };
    const body: ClusterProperty = { ...current, metadata: { ...current.metadata, annotations } };
    try {
      const replaced = (await this.#custom.replaceClusterCustomObject(
        {
          group: ABOUT_GROUP,
          version: ABOUT_VERSION,
          plural: 'clusterproperties',
          name: PEER_PROPERTY,
          body,
          fieldManager: FIELD_MANAGER,
        },
        withTimeout(DEFAULT_API_TIMEOUT_MS),
      )) as ClusterProperty;
      this.clusterPropertiesCache.wrote(replaced);
      this.metrics.apiWrites.inc({ resource: 'clusterproperties', verb: 'update', result: 'ok' });
    } catch (err) {
      this.metrics.apiWrites.inc({ resource: 'clusterproperties', verb: 'update', result: 'error' });
      this.#log.warn({ err: describeError(err) }, `marking ClusterProperty ${PEER_PROPERTY} as left failed`);
    }
  }

  // ---- internals

  #emit<K extends keyof KubeAdapterEvents>(type: K, detail: KubeAdapterEvents[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #onSynced(resource: string): void {
    if (resource === 'clusterproperties') this.#evaluateIdentity();
    else {
      this.#localChanged();
      this.#maybeStartQueue();
    }
  }

  get #localSources(): readonly ResilientInformer<KubeObject>[] {
    return [this.namespacesCache, this.servicesCache, this.endpointSlicesCache, this.serviceExportsCache] as never;
  }

  get #writerSources(): readonly ResilientInformer<KubeObject>[] {
    return [...this.#localSources, this.serviceImportsCache as never];
  }

  #listed(caches: readonly ResilientInformer<KubeObject>[]): boolean {
    return caches.every((c) => c.listed);
  }

  #evaluateIdentity(): void {
    if (!this.#started) return;
    let next: IdentityStatus;
    if (this.clusterPropertiesCache.synced) this.#propertiesListed = true;
    // A watch that fails after a successful list keeps its cache: a dropped connection is not a lost identity.
    if (!this.#propertiesListed) {
      next = {
        ok: false,
        reason: 'ClusterPropertiesUnavailable',
        message: `cannot list ClusterProperties (${ABOUT_GROUP}/${ABOUT_VERSION}): ${this.clusterPropertiesCache.lastError ?? 'not listed yet'}`,
      };
    } else {
      const value = (name: string) => this.clusterPropertiesCache.get(name)?.spec?.value;
      next = validateIdentity(value(CLUSTER_ID_PROPERTY), value(CLUSTERSET_PROPERTY));
      const bootstrap = parseBootstrapProperty(value(BOOTSTRAP_PROPERTY));
      if (canonical(bootstrap) !== canonical(this.#bootstrap)) {
        this.#bootstrap = bootstrap;
        this.#emit('bootstrap', bootstrap);
      }
    }
    if (canonical(next) === canonical(this.#identity)) return;
    const before = this.#identity;
    this.#identity = next;
    this.metrics.identityReady.set(next.ok ? 1 : 0);
    if (next.ok) {
      this.#log.info({ ...next.identity }, 'cluster identity');
      this.#local = undefined;
      this.#localSorted = undefined;
      this.#pendingKeys = undefined;
      this.#maybeStartQueue();
    } else {
      this.metrics.identityProblems.inc({ reason: next.reason });
      this.#log.error(
        { reason: next.reason },
        `cluster identity unusable: ${next.message}; exporting and importing nothing`,
      );
      this.#stopWriting();
    }
    if (before.ok !== next.ok || next.ok) this.#emit('identity', next);
  }

  #setLeader(leader: boolean): void {
    this.#leader = leader;
    this.metrics.leader.set(leader ? 1 : 0);
    if (!leader) this.#stopWriting();
    this.#emit('leader', leader);
    this.#maybeStartQueue();
  }

  #stopWriting(): void {
    // Stays aborted until writing starts again: every later request of a reconcile in flight fails at once.
    this.#writing.abort(new Error('writing stopped (leadership or identity lost)'));
    this.#queue.stop();
    this.#desired = undefined;
    this.#held.clear();
    this.metrics.heldKeys.set(0);
    this.#refused.clear();
    this.metrics.refusedKeys.set(0);
  }

  /**
   * Starts writing once this replica leads, the identity is valid, a resolution was given and every cache the writer
   * reads has listed since start; then every key we own or want is checked once.
   */
  #maybeStartQueue(): void {
    if (!this.#started || !this.#leader || !this.#identity.ok || this.#desired === undefined) return;
    if (this.#queue.isStarted() || !this.#listed(this.#writerSources)) return;
    if (this.#writing.signal.aborted) this.#writing = new AbortController();
    this.#queue.start();
    this.#resync(false);
  }

  #enqueue(key: ServiceKey): void {
    if (!this.#started) return;
    this.#queue.add(key);
    this.metrics.queueDepth.set(this.#queue.length);
  }

  /**
   * The API server refused a picked address as outside its service ranges: they changed. The API server picks until
   * they are read again, after any read in flight (which may have listed before the change).
   */
  #serviceRangesStale(): void {
    this.#clusterIps.setRanges(new Map());
    const inFlight = this.#rangesRefresh;
    if (inFlight === undefined) void this.#refreshServiceRanges();
    else void inFlight.then(() => this.#refreshServiceRanges());
  }

  /**
   * Reads the cluster's service ranges (ServiceCIDRs), from which the writer picks the ClusterSetIPs of new derived
   * Services; at start, on each periodic resync, and when the API server refused a pick as out of range. Without them
   * (an API server before 1.33, or RBAC without `servicecidrs`: HTTP 404 or 403), the API server picks, one write
   * later; said once. Any other failure (a timeout, a 5xx) keeps the ranges last read.
   */
  #refreshServiceRanges(): Promise<void> {
    if (this.#rangesRefresh !== undefined) return this.#rangesRefresh;
    const read = async (): Promise<void> => {
      try {
        const list = await this.#networking.listServiceCIDR({}, withTimeout(DEFAULT_API_TIMEOUT_MS));
        const before = this.#clusterIps.cidrs.join();
        this.#clusterIps.setRanges(rangesOf(list.items as ServiceCidrObject[]));
        const after = this.#clusterIps.cidrs;
        if (after.join() !== before || this.#rangesProblem !== undefined)
          this.#log.info({ serviceCidrs: after }, 'service ranges for ClusterSetIPs');
        this.#rangesProblem = undefined;
      } catch (err) {
        const problem = describeError(err);
        const code = err instanceof k8s.ApiException ? err.code : 0;
        const unavailable = code === 403 || code === 404;
        if (problem !== this.#rangesProblem)
          this.#log.info(
            { err: problem },
            unavailable
              ? 'cannot read the ServiceCIDRs: the API server picks ClusterSetIPs (a write later per new import)'
              : 'cannot read the ServiceCIDRs now: the ranges last read stay in use',
          );
        this.#rangesProblem = problem;
        if (unavailable) this.#clusterIps.setRanges(new Map());
      }
    };
    this.#rangesRefresh = read().finally(() => {
      this.#rangesRefresh = undefined;
    });
    return this.#rangesRefresh;
  }

  /**
   * Checks every key we own or want: at once when writing starts (leftovers of an earlier run go), in the background
   * lane on the periodic resync (behind every event).
   */
  #resync(background: boolean): void {
    if (background) void this.#refreshServiceRanges();
    if (this.#desired === undefined) return;
    // A resync still under way (more keys than its lane checks in an interval) is not queued again on top.
    if (background && this.#queue.backgroundLength > 0) return;
    for (const r of this.#refused.values()) r.until = Date.now(); // a resync tries refused keys again too
    for (const key of new Set([...this.#desired.keys(), ...this.#writer.actualKeys()])) {
      if (!this.#started) return;
      if (background) this.#queue.addBackground(key);
      else this.#queue.add(key);
    }
    this.metrics.queueDepth.set(this.#queue.length);
  }

  /** A local object of `key` changed (undefined: anything may have, e.g. a cache relisted). */
  #localChanged(key?: ServiceKey): void {
    if (key === undefined || this.#local === undefined) {
      this.#local = undefined;
      this.#localSorted = undefined;
      this.#pendingKeys = undefined;
    } else {
      this.#localDirty.add(key);
      this.#pendingKeys?.add(key);
    }
    if (this.#started) this.#localEvents.schedule();
  }

  #namespaceChanged(namespace: string): void {
    this.#pendingNamespaces.add(namespace);
    if (this.#started) this.#localEvents.schedule();
  }

  /** Recomputes every local export from the caches and fires `local:change` for all keys (a periodic safety net). */
  recomputeLocalExports(): void {
    this.#localChanged();
  }

  /**
   * Fires a pending `local:change` now (synchronously) instead of on its timer: a resolve pass calls it first, so it
   * never sees a local export its listener has not published yet (a ServiceExport's Ready would read Pending).
   */
  flushLocalChange(): void {
    if (!this.#localEvents.pending) return;
    this.#localEvents.cancel();
    this.#emitLocalChange();
  }

  #emitLocalChange(): void {
    const keys = this.#pendingKeys === undefined ? undefined : [...this.#pendingKeys];
    const namespaces = [...this.#pendingNamespaces];
    this.#pendingKeys = new Set();
    this.#pendingNamespaces.clear();
    this.#emit('local:change', { keys, namespaces });
  }

  async #reconcile(key: ServiceKey): Promise<void> {
    const desired = this.#desired;
    this.metrics.queueDepth.set(this.#queue.length);
    if (desired === undefined || !this.#leader || !this.#identity.ok) return;
    const gate = this.#gate;
    if (gate !== undefined) {
      const unsettled = [...this.#writer.sourcesOf(key)].filter((o) => o !== gate.localCluster && !gate.isSettled(o));
      if (unsettled.length > 0) {
        if (!this.#held.has(key))
          this.#log.info({ key, origins: unsettled }, 'holding the import until its origins sync');
        this.#held.set(key, unsettled.sort());
        this.metrics.heldKeys.set(this.#held.size);
        return;
      }
      if (this.#held.delete(key)) this.metrics.heldKeys.set(this.#held.size);
    }
    // A refused key waits for a change of what it should hold, of what the cluster holds of it (an object deleted
    // or changed by someone else), a resync, or its backoff; events of the writes it failed alone do not retry it.
    const refused = this.#refused.get(key);
    // What this reconcile writes: the desired state as it is now (the map changes under a running reconcile, its
    // states never do). Its text is computed only when a refusal needs it (it serialises the whole key).
    const want = desired.get(key);
    const wantText = () => this.#textOf(want);
    if (
      refused !== undefined &&
      refused.text === wantText() &&
      refused.actual === this.#writer.actualFingerprint(key) &&
      Date.now() < refused.until
    )
      return;
    const end = this.metrics.reconcileDuration.startTimer();
    try {
      await this.#writer.reconcile(key, want);
      this.metrics.reconciles.inc({ result: 'ok' });
      if (this.#refused.delete(key)) {
        this.metrics.refusedKeys.set(this.#refused.size);
        this.#log.info({ key }, 'writes of the key are accepted again');
      }
    } catch (err) {
      if (err instanceof ReconcileError && err.refused && this.#leader) {
        // Sending the same writes again would be refused again: report them, and retry only on a change.
        this.metrics.reconciles.inc({ result: 'refused' });
        await this.#refuse(key, wantText(), refused, err);
        return;
      }
      this.metrics.reconciles.inc({ result: 'error' });
      throw err;
    } finally {
      end();
    }
  }

  /** The canonical text of a desired state (what a refusal remembers), computed once per desired state. */
  #textOf(d: DesiredService | undefined): string | undefined {
    if (d === undefined) return undefined;
    let text = this.#desiredText.get(d);
    if (text === undefined) {
      text = canonical(d);
      this.#desiredText.set(d, text);
    }
    return text;
  }

  async #refuse(
    key: ServiceKey,
    text: string | undefined,
    before: { text: string | undefined; attempts: number; message: string; reported: number } | undefined,
    err: ReconcileError,
  ): Promise<void> {
    const attempts = before !== undefined && before.text === text ? before.attempts + 1 : 1;
    const resync = this.#init.resyncIntervalMs ?? DEFAULT_RESYNC_MS;
    const delay = Math.min(REFUSED_RETRY_BASE_MS * 2 ** Math.min(attempts - 1, 20), resync);
    const actual = this.#writer.actualFingerprint(key);
    // Logged and recorded as an Event when the refusal is new, or different and the last report is a minute old
    // (an API server's answer often names a changing value: a busy key must not make an Event per change).
    const now = Date.now();
    const report =
      before === undefined || (before.message !== err.message && now - before.reported >= REFUSAL_REPORT_MS);
    const reported = report ? now : (before?.reported ?? now);
    this.#refused.set(key, { text, actual, until: now + delay, attempts, message: err.message, reported });
    this.metrics.refusedKeys.set(this.#refused.size);
    if (report) {
      this.#log.warn(
        { key, attempts, err: err.message },
        'the API server refused writes of the key; retrying on a change',
      );
      await this.#writer.reportRefusal(key, err);
    }
  }

  /** {@link KubeAdapter.applyKeys}: one key's namespace-missing note (logged when new). */
  #noteNamespaceMissingOf(key: ServiceKey, m: NamespaceMissing | undefined): void {
    if (m === undefined) {
      this.#namespaceMissing.delete(key);
      return;
    }
    if (!this.#namespaceMissing.has(key)) this.#logNamespaceMissing(key, m);
    this.#namespaceMissing.set(key, m);
  }

  #logNamespaceMissing(key: string, m: NamespaceMissing): void {
    this.#log.info(
      { key, exporters: m.exporters },
      `not importing ${key} (exported by ${m.exporters.join(', ')}): namespace ${m.namespace} does not exist in this cluster; create it to import the service`,
    );
  }

  /** Logs each service newly skipped for want of its namespace (once, until it is imported or unexported). */
  #noteNamespaceMissing(missing: readonly NamespaceMissing[]): void {
    const next = new Map<string, NamespaceMissing>();
    for (const m of missing) {
      const key = `${m.namespace}/${m.name}`;
      next.set(key, m);
      if (!this.#namespaceMissing.has(key)) this.#logNamespaceMissing(key, m);
    }
    this.#namespaceMissing = next;
    this.metrics.namespaceMissing.set(next.size);
  }

  #noteUnimportable(records: readonly UnimportableRecord[]): void {
    const next = new Map<string, UnimportableRecord>();
    for (const r of records) next.set(`${r.origin}\u0000${r.namespace}/${r.name}`, r);
    const perOrigin = new Map<string, number>();
    for (const [id, r] of next) {
      perOrigin.set(r.origin, (perOrigin.get(r.origin) ?? 0) + 1);
      const before = this.#unimportable.get(id);
      if (before === undefined || before.problem.message !== r.problem.message) {
        this.#log.warn(
          { origin: r.origin, key: `${r.namespace}/${r.name}`, reason: r.problem.reason },
          `skipping the export of ${r.namespace}/${r.name} by ${r.origin}: ${r.problem.message}`,
        );
      }
    }
    for (const r of this.#unimportable.values())
      if (!perOrigin.has(r.origin)) this.metrics.unimportableRecords.remove({ origin: r.origin });
    for (const [origin, n] of perOrigin) this.metrics.unimportableRecords.set({ origin }, n);
    this.#unimportable = next;
    this.#unimportableKeys = new Set([...next.values()].map((r) => serviceKey(r.namespace, r.name)));
  }
}

/** The slices index: a local slice by the key of its Service, an imported one by the key of its import. */
export function sliceIndex(s: k8s.V1EndpointSlice): string | undefined {
  if (isImportedSlice(s))
    return importedSlicesOf(`${s.metadata?.namespace ?? ''}/${s.metadata?.labels?.[LABEL_SERVICE_NAME]}`);
  const key = sliceOwnerKey(s as EndpointSliceObject);
  return key === undefined ? undefined : localSlicesOf(key);
}
