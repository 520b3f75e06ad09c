/**
 * The oracle of the chaos suite: from the ground truth read from every cluster of a ClusterSet, what every cluster
 * MUST hold (computed with the project's own pure core, exactly as the nodes compute it), and an object-by-object diff
 * against what each cluster actually holds.
 *
 * Only the current truth matters: every cluster's exports are merged into one fresh `ClusterSetState` at a synthetic
 * version, as if gossip had converged, so the expectation is what the nodes converge to once faults stop.
 *
 * @example
 * ```ts
 * const truth = await readGroundTruth([{ name: 'cluster-1', kubeconfig: '/tmp/cs/cluster-1/kubeconfig' }, …]);
 * const differences = diffState(expectedState(truth), truth); // [] once every node converged
 * ```
 */
import * as k8s from '@kubernetes/client-node';
import {
  ClusterSetState,
  CONDITION_CONFLICT,
  CONDITION_READY,
  CONDITION_VALID,
  compareStrings,
  derivedServiceName,
  exportRecordsFromObjects,
  LABEL_SERVICE_NAME,
  LABEL_SOURCE_CLUSTER,
  resolve,
  serviceKey,
  splitServiceKey,
  withTransitionTimes,
  type ConditionData,
  type ImportedEndpointSliceObject,
  type LocalExport,
  type LocalObjects,
  type Resolution,
  type ServiceKey,
} from '../../src/core/index.js';
import { canonical, derivedServiceProjection, importProjection, sliceProjection } from '../../src/kube/compare.js';
import {
  ABOUT_GROUP,
  ABOUT_VERSION,
  CLUSTER_ID_PROPERTY,
  CLUSTERSET_PROPERTY,
  MCS_GROUP,
  MCS_VERSION,
} from '../../src/kube/constants.js';
import { derivedService, serviceImportBody, sliceBody } from '../../src/kube/desired.js';
import { validateIdentity } from '../../src/kube/identity.js';
import { isDerivedService, isImportedSlice } from '../../src/kube/import-writer.js';
import type { ClusterProperty, ServiceExport, ServiceImport } from '../../src/kube/objects.js';

// ---- ground truth

/** Everything read from one cluster: the inputs of its node and the objects its node wrote, as the API returned them. */
export interface ClusterTruth {
  /** The harness name of the cluster (its kubeconfig context); differences are reported under it. */
  readonly name: string;
  readonly clusterProperties: readonly ClusterProperty[];
  readonly namespaces: readonly k8s.V1Namespace[];
  /** Every Service, derived ones included (see {@link derivedServicesOf}). */
  readonly services: readonly k8s.V1Service[];
  /** ServiceExports with their status conditions. */
  readonly serviceExports: readonly ServiceExport[];
  /** Every EndpointSlice, imported ones included (see {@link importedSlicesOf}). */
  readonly endpointSlices: readonly k8s.V1EndpointSlice[];
  /** Every ServiceImport (spec and status.clusters): only the node writes them. */
  readonly serviceImports: readonly ServiceImport[];
}

/** One snapshot of a whole ClusterSet (each cluster read with one list per resource, not atomically). */
export interface GroundTruth {
  readonly clusters: readonly ClusterTruth[];
}

/** A cluster to read: its name and an admin kubeconfig file whose current context is that cluster. */
export interface ClusterAccess {
  readonly name: string;
  readonly kubeconfig: string;
}

export interface ReadOptions {
  /** Aborts the reads; default: a 30 s timeout. */
  readonly signal?: AbortSignal;
}

const READ_TIMEOUT_MS = 30_000;

async function readCluster(access: ClusterAccess): Promise<ClusterTruth> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(access.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  // Custom objects come back untyped; their shapes are the adapter's own (src/kube/objects.ts).
  const customList = async <T extends k8s.KubernetesObject>(resourcePlural: string): Promise<T[]> =>
    (
      (await custom.listCustomObjectForAllNamespaces({
        group: MCS_GROUP,
        version: MCS_VERSION,
        resourcePlural,
      })) as k8s.KubernetesListObject<T>
    ).items;
  const [clusterProperties, namespaces, services, serviceExports, endpointSlices, serviceImports] = await Promise.all([
    custom
      .listClusterCustomObject({ group: ABOUT_GROUP, version: ABOUT_VERSION, plural: 'clusterproperties' })
      .then((l) => (l as k8s.KubernetesListObject<ClusterProperty>).items),
    core.listNamespace().then((l) => l.items),
    core.listServiceForAllNamespaces().then((l) => l.items),
    customList<ServiceExport>('serviceexports'),
    discovery.listEndpointSliceForAllNamespaces().then((l) => l.items),
    customList<ServiceImport>('serviceimports'),
  ]);
  return { name: access.name, clusterProperties, namespaces, services, serviceExports, endpointSlices, serviceImports };
}

/** Reads the ground truth of every cluster (in parallel) with its admin kubeconfig. */
export async function readGroundTruth(
  clusters: readonly ClusterAccess[],
  options: ReadOptions = {},
): Promise<GroundTruth> {
  const signal = options.signal ?? AbortSignal.timeout(READ_TIMEOUT_MS);
  signal.throwIfAborted();
  // The client takes no signal: abandon the reads (they finish or fail on their own) rather than wait past it.
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return { clusters: await Promise.race([Promise.all(clusters.map(readCluster)), aborted]) };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

// ---- views of one cluster's truth

/** The cluster id, when the node would accept its identity (otherwise it exports, imports and writes nothing). */
export function clusterIdOf(c: ClusterTruth): string | undefined {
  const value = (name: string) => c.clusterProperties.find((p) => p.metadata.name === name)?.spec?.value;
  const identity = validateIdentity(value(CLUSTER_ID_PROPERTY), value(CLUSTERSET_PROPERTY));
  return identity.ok ? identity.identity.clusterId : undefined;
}

/** Live namespaces (not being deleted): like the node's, the only ones where imports may exist. */
export function liveNamespaces(c: ClusterTruth): string[] {
  return c.namespaces
    .filter((n) => n.metadata?.deletionTimestamp === undefined)
    .map((n) => n.metadata?.name ?? '')
    .filter((n) => n !== '')
    .sort(compareStrings);
}

/** Our imported slices in this cluster. */
export function importedSlicesOf(c: ClusterTruth): k8s.V1EndpointSlice[] {
  return c.endpointSlices.filter(isImportedSlice);
}

/** Our derived Services in this cluster. */
export function derivedServicesOf(c: ClusterTruth): k8s.V1Service[] {
  return c.services.filter(isDerivedService);
}

/**
 * The node's local inputs, with our own imported slices and derived Services left out as the adapter does, so what
 * the nodes wrote never feeds back into what they export. The client's `kind?: string` is narrowed to the core's.
 */
export function localObjectsOf(c: ClusterTruth): LocalObjects {
  return {
    namespaces: c.namespaces.map((n) => ({ ...n, kind: 'Namespace', metadata: n.metadata ?? {} })),
    services: c.services
      .filter((s) => !isDerivedService(s))
      .map((s) => ({ ...s, kind: 'Service', metadata: s.metadata ?? {} })),
    serviceExports: c.serviceExports.map((se) => ({ ...se, kind: 'ServiceExport' })),
    endpointSlices: c.endpointSlices
      .filter((s) => !isImportedSlice(s))
      .map((s) => ({ ...s, kind: 'EndpointSlice', metadata: s.metadata ?? {} })),
  };
}

// ---- expected state

/** What one cluster must hold. */
export interface ExpectedCluster {
  readonly name: string;
  /** Undefined: no valid identity, so its node exports nothing and nothing of ours is expected there. */
  readonly clusterId: string | undefined;
  /** Live namespaces. */
  readonly namespaces: readonly string[];
  /** Its ServiceExports with their validity at the origin (from `localExports`). */
  readonly exports: readonly LocalExport[];
  /** The core's resolution for this cluster: ServiceImports (ips empty), imported slices, export conditions. */
  readonly resolution: Resolution;
}

export interface ExpectedState {
  readonly clusters: readonly ExpectedCluster[];
}

export interface ExpectedOptions {
  /** Per cluster name, the origins (cluster ids) whose endpoints are withdrawn at that cluster. Default: none. */
  readonly withdrawn?: ReadonlyMap<string, readonly string[]>;
}

const NOTHING: Resolution = {
  serviceImports: [],
  endpointSlices: [],
  exportConditions: [],
  unimportable: [],
  namespaceMissing: [],
};

/** Runs the core for every cluster as the nodes do, over the merged exports of every member cluster. */
export function expectedState(truth: GroundTruth, options: ExpectedOptions = {}): ExpectedState {
  const state = new ClusterSetState();
  const locals = truth.clusters.map((c) => {
    const clusterId = clusterIdOf(c);
    const local = clusterId === undefined ? undefined : exportRecordsFromObjects(clusterId, localObjectsOf(c));
    if (local !== undefined) state.merge(local.records);
    return { c, clusterId, local };
  });
  return {
    clusters: locals.map(({ c, clusterId, local }): ExpectedCluster => {
      const namespaces = liveNamespaces(c);
      const resolution =
        clusterId === undefined || local === undefined
          ? NOTHING
          : resolve(state, {
              localCluster: clusterId,
              namespaces,
              withdrawnOrigins: options.withdrawn?.get(c.name) ?? [],
              localExports: local.exports,
            });
      return { name: c.name, clusterId, namespaces, exports: local?.exports ?? [], resolution };
    }),
  };
}

// ---- differences

export type DifferenceKind = 'ServiceImport' | 'EndpointSlice' | 'DerivedService' | 'ExportConditions';

export interface Difference {
  readonly cluster: string;
  readonly kind: DifferenceKind;
  readonly namespace: string;
  /** The object's own name (a derived Service's or slice's name, not the service's). */
  readonly name: string;
  /** missing: expected, absent; orphan: ours, present, not expected; different: present, not as expected. */
  readonly what: 'missing' | 'orphan' | 'different';
  readonly detail: string;
}

const OUR_CONDITIONS: ReadonlySet<string> = new Set([CONDITION_VALID, CONDITION_READY, CONDITION_CONFLICT]);
const KIND_ORDER: readonly DifferenceKind[] = ['ServiceImport', 'DerivedService', 'EndpointSlice', 'ExportConditions'];

function short(value: unknown): string {
  const text = value === undefined ? '<unset>' : canonical(value);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The paths where two projections differ, descending into objects (never arrays) so details name a field. */
function differingPaths(want: unknown, got: unknown, path = ''): string[] {
  if (isPlainObject(want) && isPlainObject(got)) {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort(compareStrings);
    return keys.flatMap((k) => differingPaths(want[k], got[k], path === '' ? k : `${path}.${k}`));
  }
  return canonical(want) === canonical(got) ? [] : [`${path}: want ${short(want)}, got ${short(got)}`];
}

/** What differs between two projections (canonical JSON strings), field by field. */
function projectionDetail(want: string, got: string): string[] {
  return want === got ? [] : differingPaths(JSON.parse(want), JSON.parse(got));
}

function conditionText(c: { readonly type: string; readonly status: string; readonly reason: string }): string {
  return `${c.type}=${c.status}/${c.reason}`;
}

function clusterIpsOf(svc: k8s.V1Service): string[] {
  return (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP === undefined ? [] : [svc.spec.clusterIP])).filter(
    (ip) => ip !== 'None' && ip !== '',
  );
}

function keyOf(meta: k8s.V1ObjectMeta | undefined): ServiceKey {
  return serviceKey(meta?.namespace ?? '', meta?.name ?? '');
}

function diffCluster(name: string, expected: Resolution, actual: ClusterTruth | undefined): Difference[] {
  const out: Difference[] = [];
  const add = (kind: DifferenceKind, key: ServiceKey, what: Difference['what'], detail: string) => {
    const { namespace, name: objectName } = splitServiceKey(key);
    out.push({ cluster: name, kind, namespace, name: objectName, what, detail });
  };
  const actualImports = new Map((actual?.serviceImports ?? []).map((si) => [keyOf(si.metadata), si]));
  const actualServices = new Map((actual?.services ?? []).map((s) => [keyOf(s.metadata), s]));
  const actualSlices = new Map((actual?.endpointSlices ?? []).map((s) => [keyOf(s.metadata), s]));

  // ServiceImports: spec (ips = the derived Service's clusterIPs) and status.clusters.
  const wantImports = new Map(
    expected.serviceImports.map((si) => [serviceKey(si.metadata.namespace, si.metadata.name), si]),
  );
  for (const [key, want] of wantImports) {
    const got = actualImports.get(key);
    if (got === undefined) {
      add('ServiceImport', key, 'missing', `${want.spec.type} import expected`);
      continue;
    }
    const derived = actualServices.get(
      serviceKey(want.metadata.namespace, derivedServiceName(want.metadata.namespace, want.metadata.name)),
    );
    // Without a derived Service there are no ips to compare with; its absence is reported on its own.
    const ips =
      want.spec.type !== 'ClusterSetIP'
        ? []
        : derived !== undefined && isDerivedService(derived)
          ? clusterIpsOf(derived)
          : (got.spec?.ips ?? []);
    const details = projectionDetail(importProjection(serviceImportBody(want, ips)), importProjection(got)).map((d) =>
      d.startsWith('spec.ips:') ? `${d} (spec.ips must be the derived Service's clusterIPs)` : d,
    );
    const wantClusters = want.status.clusters.map((c) => ({ cluster: c.cluster }));
    const gotClusters = (got.status?.clusters ?? []).map((c) => ({ cluster: c.cluster }));
    if (canonical(wantClusters) !== canonical(gotClusters))
      details.push(`status.clusters: want ${short(wantClusters)}, got ${short(gotClusters)}`);
    if (details.length > 0) add('ServiceImport', key, 'different', details.join('; '));
  }
  for (const key of actualImports.keys())
    if (!wantImports.has(key)) add('ServiceImport', key, 'orphan', 'no export of this service should reach here');

  // Derived Services: one per ClusterSetIP import (not owned by it: it is created first, see import-writer.ts).
  const wantDerived = new Map<ServiceKey, { svc: k8s.V1Service }>();
  for (const [, si] of wantImports) {
    if (si.spec.type !== 'ClusterSetIP') continue;
    const svc = derivedService(si);
    wantDerived.set(keyOf(svc.metadata), { svc });
  }
  for (const [key, { svc }] of wantDerived) {
    const got = actualServices.get(key);
    const of = `of ${svc.metadata?.namespace}/${svc.metadata?.labels?.[LABEL_SERVICE_NAME]}`;
    if (got === undefined) add('DerivedService', key, 'missing', `derived Service ${of} expected`);
    else if (!isDerivedService(got)) add('DerivedService', key, 'missing', `a Service not ours holds the name ${of}`);
    else {
      const details = projectionDetail(derivedServiceProjection(svc), derivedServiceProjection(got));
      if (details.length > 0) add('DerivedService', key, 'different', details.join('; '));
    }
  }
  for (const [key, svc] of actualServices)
    if (isDerivedService(svc) && !wantDerived.has(key))
      add('DerivedService', key, 'orphan', `no ClusterSetIP import of ${svc.metadata?.labels?.[LABEL_SERVICE_NAME]}`);

  // Imported EndpointSlices (owned by nothing; an owner is no difference).
  const wantSlices = new Map<ServiceKey, ImportedEndpointSliceObject>(
    expected.endpointSlices.map((s) => [serviceKey(s.metadata.namespace, s.metadata.name), s]),
  );
  for (const [key, want] of wantSlices) {
    const got = actualSlices.get(key);
    const source = `from ${want.metadata.labels[LABEL_SOURCE_CLUSTER] ?? '?'}`;
    if (got === undefined) add('EndpointSlice', key, 'missing', `${want.endpoints.length} endpoints ${source}`);
    else if (!isImportedSlice(got)) add('EndpointSlice', key, 'missing', `a slice not ours holds the name (${source})`);
    else {
      // Owned by nothing (an earlier version's may name an owner): only the content counts.
      const details = projectionDetail(sliceProjection(want), sliceProjection(got));
      if (details.length > 0) add('EndpointSlice', key, 'different', details.join('; '));
    }
  }
  for (const [key, s] of actualSlices)
    if (isImportedSlice(s) && !wantSlices.has(key))
      add('EndpointSlice', key, 'orphan', `from ${s.metadata?.labels?.[LABEL_SOURCE_CLUSTER] ?? '?'}`);

  // ServiceExport conditions: type, status and reason (messages and times are not the contract).
  const exports = new Map((actual?.serviceExports ?? []).map((se) => [keyOf(se.metadata), se]));
  for (const e of expected.exportConditions) {
    const key = serviceKey(e.namespace, e.name);
    const se = exports.get(key);
    const got = (se?.status?.conditions ?? []).filter((c) => OUR_CONDITIONS.has(c.type));
    const want = e.conditions.map(conditionText).sort(compareStrings);
    const have = got.map(conditionText).sort(compareStrings);
    if (got.length === 0) add('ExportConditions', key, 'missing', `want ${want.join(', ')}`);
    else if (canonical(want) !== canonical(have))
      add('ExportConditions', key, 'different', `want ${want.join(', ')}; got ${have.join(', ')}`);
  }
  return out;
}

function compareDifferences(a: Difference, b: Difference): number {
  return (
    compareStrings(a.cluster, b.cluster) ||
    KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
    compareStrings(a.namespace, b.namespace) ||
    compareStrings(a.name, b.name)
  );
}

/**
 * Every difference between what each cluster must hold and what it holds, sorted by cluster, kind and key. Compared
 * through the writer's own projections, so fields the API server defaults never count. A cluster only in `actual`
 * must hold nothing of ours; one only in `expected` holds nothing at all.
 */
export function diffState(expected: ExpectedState, actual: GroundTruth): Difference[] {
  const names = [...new Set([...expected.clusters.map((c) => c.name), ...actual.clusters.map((c) => c.name)])];
  return names
    .flatMap((name) =>
      diffCluster(
        name,
        expected.clusters.find((c) => c.name === name)?.resolution ?? NOTHING,
        actual.clusters.find((c) => c.name === name),
      ),
    )
    .sort(compareDifferences);
}

// ---- comparing snapshots

/** Per cluster name, per `ns/name`, the ServiceImport's spec.ips: count changed ClusterSetIPs between two snapshots. */
export function ipsOf(actual: GroundTruth): ReadonlyMap<string, ReadonlyMap<ServiceKey, readonly string[]>> {
  return new Map(
    actual.clusters.map((c) => [
      c.name,
      new Map(c.serviceImports.map((si): [ServiceKey, readonly string[]] => [keyOf(si.metadata), si.spec?.ips ?? []])),
    ]),
  );
}

/** An import that vanished from a cluster although an export of it is valid at its origin and its namespace exists. */
export interface LostExport {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
  /** The clusters (by id) where the export is valid in `after`. */
  readonly origins: readonly string[];
}

/**
 * The imports held in `before` and gone in `after` from a cluster where the namespace still exists, while some member
 * cluster still has a valid export of the service in `after`: exports the ClusterSet lost.
 */
export function lostExports(before: GroundTruth, after: GroundTruth): LostExport[] {
  const origins = new Map<ServiceKey, string[]>();
  for (const c of after.clusters) {
    const clusterId = clusterIdOf(c);
    if (clusterId === undefined) continue;
    for (const e of exportRecordsFromObjects(clusterId, localObjectsOf(c)).exports) {
      if (e.valid.status !== 'True') continue;
      const key = serviceKey(e.namespace, e.name);
      origins.set(key, [...(origins.get(key) ?? []), clusterId].sort(compareStrings));
    }
  }
  const out: LostExport[] = [];
  for (const b of before.clusters) {
    const a = after.clusters.find((c) => c.name === b.name);
    if (a === undefined) continue;
    const namespaces = new Set(liveNamespaces(a));
    const held = new Set(a.serviceImports.map((si) => keyOf(si.metadata)));
    for (const si of b.serviceImports) {
      const key = keyOf(si.metadata);
      const from = origins.get(key);
      const { namespace, name } = splitServiceKey(key);
      if (from !== undefined && !held.has(key) && namespaces.has(namespace))
        out.push({ cluster: b.name, namespace, name, origins: from });
    }
  }
  return out.sort(
    (x, y) =>
      compareStrings(x.cluster, y.cluster) ||
      compareStrings(serviceKey(x.namespace, x.name), serviceKey(y.namespace, y.name)),
  );
}

// ---- a converged ClusterSet, for tests

export interface ConvergedOptions {
  /** The ClusterSetIPs of one derived Service; default: a deterministic address per cluster, key and family. */
  readonly allocate?: (cluster: string, key: ServiceKey, ipFamilies: readonly string[]) => readonly string[];
  /** `lastTransitionTime` of every condition written; default the epoch. */
  readonly now?: string;
}

function defaultAllocator(): NonNullable<ConvergedOptions['allocate']> {
  const counters = new Map<string, number>();
  return (cluster, _key, families) => {
    const n = (counters.get(cluster) ?? 0) + 1;
    counters.set(cluster, n);
    const c = counters.size;
    return families.map((f) => (f === 'IPv6' ? `fd00:${c}::${n.toString(16)}` : `10.${100 + c}.${n >> 8}.${n & 255}`));
  };
}

/**
 * The truth as it reads once every node wrote exactly `expected`: our objects replaced by the expected ones (owned by
 * their ServiceImport, ClusterSetIPs allocated), export conditions set, everything else untouched. Lets tests inject
 * one fault at a time into a ClusterSet that is otherwise right.
 */
export function converged(truth: GroundTruth, expected: ExpectedState, options: ConvergedOptions = {}): GroundTruth {
  const allocate = options.allocate ?? defaultAllocator();
  const now = options.now ?? '1970-01-01T00:00:00Z';
  return {
    clusters: truth.clusters.map((c): ClusterTruth => {
      const r = expected.clusters.find((e) => e.name === c.name)?.resolution ?? NOTHING;
      const serviceImports: ServiceImport[] = [];
      const derived: k8s.V1Service[] = [];
      for (const si of r.serviceImports) {
        const key = serviceKey(si.metadata.namespace, si.metadata.name);
        const ips = si.spec.type === 'ClusterSetIP' ? allocate(c.name, key, si.spec.ipFamilies) : [];
        if (si.spec.type === 'ClusterSetIP') {
          const svc = derivedService(si);
          derived.push({ ...svc, spec: { ...svc.spec, clusterIP: ips[0], clusterIPs: [...ips] } });
        }
        const body = serviceImportBody(si, ips);
        const written: ServiceImport = {
          ...body,
          metadata: { ...body.metadata, uid: `uid:${c.name}:${key}` },
          status: { clusters: si.status.clusters.map((x) => ({ cluster: x.cluster })) },
        };
        serviceImports.push(written);
      }
      const slices = r.endpointSlices.map((s) => sliceBody(s));
      const conditions = new Map<ServiceKey, readonly ConditionData[]>(
        r.exportConditions.map((e) => [serviceKey(e.namespace, e.name), e.conditions]),
      );
      return {
        ...c,
        services: [...c.services.filter((s) => !isDerivedService(s)), ...derived],
        endpointSlices: [...c.endpointSlices.filter((s) => !isImportedSlice(s)), ...slices],
        serviceImports,
        serviceExports: c.serviceExports.map((se) => {
          const want = conditions.get(keyOf(se.metadata));
          if (want === undefined) return se;
          const others = (se.status?.conditions ?? []).filter((x) => !OUR_CONDITIONS.has(x.type));
          return {
            ...se,
            status: { ...se.status, conditions: [...withTransitionTimes(want, se.status?.conditions, now), ...others] },
          };
        }),
      };
    }),
  };
}
