import type { ClusterSetState } from './cluster-set-state.js';
import { CONDITION_CONFLICT, CONDITION_READY, CONDITION_VALID } from './conditions.js';
import type { ConditionData, ConflictReason } from './conditions.js';
import { MANAGED_BY, MAX_ENDPOINTS_PER_SLICE, MCS_API_VERSION } from './constants.js';
import { derivedServiceNameOfKey } from './derived-name.js';
import type { ExportedService, ExportRecord } from './export-record.js';
import { compareStrings, serviceKey } from './ids.js';
import { importProblem, recordKeyProblem, type ImportProblem } from './importability.js';
import type { ClusterId, ServiceKey } from './ids.js';
import type { ImportedEndpointSliceObject, ServiceImportObject } from './kube-objects.js';
import type { LocalExport } from './local-exports.js';
import { mergePorts, samePorts, sortPorts } from './port-merge.js';
import { stableJson } from './stable-json.js';

/** What one cluster needs to resolve the ClusterSet state into its own objects. */
export interface ResolveOptions {
  /** The cluster resolving. */
  readonly localCluster: ClusterId;
  /** Namespaces that exist in this cluster: imports appear only there (namespace sameness; never create one). */
  readonly namespaces: Iterable<string>;
  /** Origins whose endpoints are withdrawn (unheard past the endpoint TTL, see `ClusterSetState.liveness`). */
  readonly withdrawnOrigins?: Iterable<ClusterId>;
  /**
   * This cluster's ServiceExports with their validity (from `localExports`), so invalid ones get conditions too.
   * Default: one valid export per live record this cluster holds for itself.
   */
  readonly localExports?: readonly LocalExport[];
}

/** The conditions one local ServiceExport should carry, in the order Valid, Ready, Conflict. */
export interface ExportConditions {
  readonly namespace: string;
  readonly name: string;
  readonly conditions: readonly ConditionData[];
}

/** A record left out of resolution because importers could not write it (see importability.ts). */
export interface UnimportableRecord {
  readonly origin: ClusterId;
  readonly namespace: string;
  readonly name: string;
  readonly problem: ImportProblem;
}

/** Everything one cluster should hold, sorted by namespace/name (slices also by source cluster). */
export interface Resolution {
  readonly serviceImports: readonly ServiceImportObject[];
  readonly endpointSlices: readonly ImportedEndpointSliceObject[];
  readonly exportConditions: readonly ExportConditions[];
  /** Live records no import is made of, by namespace/name and origin: reported, never written. */
  readonly unimportable: readonly UnimportableRecord[];
  /** Exported services not imported because their namespace does not exist in this cluster (sorted by key). */
  readonly namespaceMissing: readonly NamespaceMissing[];
}

/** An exported service this cluster does not import: its namespace does not exist here (MCS: namespace sameness). */
export interface NamespaceMissing {
  readonly namespace: string;
  readonly name: string;
  /** The clusters exporting it, in precedence order. */
  readonly exporters: readonly ClusterId[];
}

/** The cluster-independent outcome for one service key. */
export interface ServiceResolution {
  readonly namespace: string;
  readonly name: string;
  /** Exporting clusters in precedence order: oldest ServiceExport first, ties by cluster id. */
  readonly exporters: readonly ClusterId[];
  readonly serviceImport: ServiceImportObject;
  /** Imported slices of every exporter that is not withdrawn, by source cluster. */
  readonly endpointSlices: readonly ImportedEndpointSliceObject[];
  /** The `Conflict` condition every constituent ServiceExport carries, in every cluster. */
  readonly conflict: ConditionData;
}

/** One key's resolution and the live records of it that resolution skipped (not importable), by source cluster. */
interface KeyResolution {
  readonly result: ServiceResolution | undefined;
  readonly unimportable: readonly UnimportableRecord[];
}

/** A live record: the record itself, so resolution allocates nothing per exporter. */
type Exporter = ExportRecord & { readonly service: ExportedService };

function sameMap(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sameAffinityConfig(
  a: ExportedService['sessionAffinityConfig'],
  b: ExportedService['sessionAffinityConfig'],
): boolean {
  return a === b || stableJson(a) === stableJson(b);
}

/** Longest quoted value in a Conflict message: annotations may be 256 KiB, a condition message at most 32 KiB. */
const MAX_QUOTED = 256;

function quote(value: unknown): string {
  if (value === undefined) return '<unset>';
  const text = stableJson(value);
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}… (${text.length} characters)` : text;
}

/** The fields that must agree across exporters, with how to compare, name and quote them (MCS-SPEC.md §3). */
interface FieldRule {
  readonly reason: ConflictReason;
  readonly field: string;
  readonly same: (a: ExportedService, b: ExportedService) => boolean;
  readonly value: (s: ExportedService) => unknown;
}

const FIELD_RULES: readonly FieldRule[] = [
  { reason: 'TypeConflict', field: 'type', same: (a, b) => a.type === b.type, value: (s) => s.type },
  {
    reason: 'SessionAffinityConflict',
    field: 'sessionAffinity',
    same: (a, b) => a.sessionAffinity === b.sessionAffinity,
    value: (s) => s.sessionAffinity,
  },
  {
    reason: 'SessionAffinityConfigConflict',
    field: 'sessionAffinityConfig',
    same: (a, b) => sameAffinityConfig(a.sessionAffinityConfig, b.sessionAffinityConfig),
    value: (s) => s.sessionAffinityConfig,
  },
  {
    reason: 'AnnotationsConflict',
    field: 'annotations',
    same: (a, b) => sameMap(a.exportedAnnotations, b.exportedAnnotations),
    value: (s) => s.exportedAnnotations,
  },
  {
    reason: 'LabelsConflict',
    field: 'labels',
    same: (a, b) => sameMap(a.exportedLabels, b.exportedLabels),
    value: (s) => s.exportedLabels,
  },
  {
    reason: 'InternalTrafficPolicyConflict',
    field: 'internalTrafficPolicy',
    same: (a, b) => a.internalTrafficPolicy === b.internalTrafficPolicy,
    value: (s) => s.internalTrafficPolicy,
  },
  {
    reason: 'TrafficDistributionConflict',
    field: 'trafficDistribution',
    same: (a, b) => a.trafficDistribution === b.trafficDistribution,
    value: (s) => s.trafficDistribution,
  },
  {
    reason: 'IPFamilyConflict',
    field: 'ipFamilies',
    same: (a, b) => sameList(a.ipFamilies, b.ipFamilies),
    value: (s) => s.ipFamilies,
  },
];

/** Oldest ServiceExport first; equal timestamps (second precision is common) by cluster id. */
function byPrecedence(a: Exporter, b: Exporter): number {
  return a.service.exportCreatedMs - b.service.exportCreatedMs || compareStrings(a.origin, b.origin);
}

const SOLE_EXPORTER: ConditionData = {
  type: CONDITION_CONFLICT,
  status: 'False',
  reason: 'NoConflicts',
  message: '1/1 clusters agree.',
};

/** The Conflict condition: one reason per disagreeing field, joined by ","; one sentence per field. */
function conflictCondition(exporters: readonly Exporter[], portsDisagree: number): ConditionData {
  const winner = exporters[0]!;
  const n = exporters.length;
  if (n === 1) return SOLE_EXPORTER;
  const reasons: string[] = [];
  const messages: string[] = [];
  const disagreeing = (same: (a: ExportedService, b: ExportedService) => boolean): number =>
    exporters.reduce((count, e) => (same(e.service, winner.service) ? count : count + 1), 0);
  const ports = portsDisagree;
  if (ports > 0) {
    reasons.push('PortConflict');
    messages.push(
      `Conflicting ports. Using the union of ports, with precedence to the oldest service export in "${winner.origin}". ${ports}/${n} clusters disagree.`,
    );
  }
  for (const rule of FIELD_RULES) {
    const count = disagreeing(rule.same);
    if (count === 0) continue;
    reasons.push(rule.reason);
    messages.push(
      `Conflicting ${rule.field}. Using ${quote(rule.value(winner.service))} from oldest service export in "${winner.origin}". ${count}/${n} clusters disagree.`,
    );
  }
  if (reasons.length === 0) {
    return { type: CONDITION_CONFLICT, status: 'False', reason: 'NoConflicts', message: `${n}/${n} clusters agree.` };
  }
  return { type: CONDITION_CONFLICT, status: 'True', reason: reasons.join(','), message: messages.join(' ') };
}

function importedSlices(
  namespace: string,
  name: string,
  derived: string,
  bySource: readonly Exporter[],
  withdrawn: ReadonlySet<ClusterId>,
): ImportedEndpointSliceObject[] {
  const out: ImportedEndpointSliceObject[] = [];
  for (const { origin, service } of bySource) {
    if (withdrawn.has(origin)) continue;
    // String-literal keys (the values of the LABEL_* constants) let V8 clone a boilerplate: 50,000 of these per pass.
    const labels: Record<string, string> = {
      'endpointslice.kubernetes.io/managed-by': MANAGED_BY,
      'kubernetes.io/service-name': derived,
      'multicluster.kubernetes.io/service-name': name,
      'multicluster.kubernetes.io/source-cluster': origin,
    };
    // Names are `<derived name>-<source cluster>-<n>`: unique (the cluster id cannot end in "-<digits>" ambiguity,
    // since n is the last segment), readable, and the same in every cluster.
    let n = 0;
    for (const group of service.endpointGroups) {
      const total = group.endpoints.length;
      for (let start = 0; start < total; start += MAX_ENDPOINTS_PER_SLICE) {
        const endpoints =
          total <= MAX_ENDPOINTS_PER_SLICE
            ? group.endpoints
            : group.endpoints.slice(start, start + MAX_ENDPOINTS_PER_SLICE);
        out.push({
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: derived + '-' + origin + '-' + n++, namespace, labels },
          addressType: group.addressType,
          endpoints,
          ports: group.ports,
        });
      }
    }
  }
  return out;
}

const NONE: readonly UnimportableRecord[] = Object.freeze([]);

/**
 * Live importable exporters of one key, in source order (cluster id, as `recordsFor` returns them) and in precedence
 * order, and the live records left out because they are not importable.
 */
function liveExporters(records: readonly ExportRecord[]): {
  bySource: Exporter[];
  byPrecedence: Exporter[];
  unimportable: readonly UnimportableRecord[];
} {
  const bySource: Exporter[] = [];
  let unimportable = NONE;
  for (const r of records) {
    if (r.removed || r.service === undefined) continue;
    const problem = importProblem(r.service) ?? recordKeyProblem(r.origin, r.namespace, r.name);
    if (problem === undefined) bySource.push(r as Exporter);
    else {
      if (unimportable === NONE) unimportable = [];
      (unimportable as UnimportableRecord[]).push({ origin: r.origin, namespace: r.namespace, name: r.name, problem });
    }
  }
  if (bySource.length < 2) return { bySource, byPrecedence: bySource, unimportable };
  // Insertion sort: a handful of exporters per key.
  const sorted: Exporter[] = [];
  for (const e of bySource) {
    let i = sorted.length;
    sorted.push(e);
    while (i > 0 && byPrecedence(sorted[i - 1]!, e) > 0) {
      sorted[i] = sorted[i - 1]!;
      i--;
    }
    sorted[i] = e;
  }
  return { bySource, byPrecedence: sorted, unimportable };
}

/**
 * Resolves one service key: the ServiceImport, the imported slices and the Conflict condition, identical in every
 * cluster except for the withdrawn origins (a local observation). `undefined` when nobody exports the key.
 */
export function resolveService(
  state: ClusterSetState,
  key: ServiceKey,
  withdrawn: ReadonlySet<ClusterId> = new Set(),
): ServiceResolution | undefined {
  return resolveKey(state, key, withdrawn).result;
}

function resolveKey(state: ClusterSetState, key: ServiceKey, withdrawn: ReadonlySet<ClusterId>): KeyResolution {
  const { bySource, byPrecedence: exporters, unimportable } = liveExporters(state.recordsFor(key));
  if (exporters.length === 0) return { result: undefined, unimportable };
  const { namespace, name } = exporters[0]!;
  const winner = exporters[0]!.service;
  let portsDisagree = 0;
  for (const e of exporters)
    if (e.service.ports !== winner.ports && !samePorts(e.service.ports, winner.ports)) portsDisagree++;
  // Exported records are immutable, so the winner's maps and lists are shared, not copied.
  const metadata: {
    name: string;
    namespace: string;
    labels?: Readonly<Record<string, string>>;
    annotations?: Readonly<Record<string, string>>;
  } = { name, namespace };
  if (Object.keys(winner.exportedLabels).length > 0) metadata.labels = winner.exportedLabels;
  if (Object.keys(winner.exportedAnnotations).length > 0) metadata.annotations = winner.exportedAnnotations;
  const spec: { -readonly [K in keyof ServiceImportObject['spec']]: ServiceImportObject['spec'][K] } = {
    type: winner.type,
    ports: portsDisagree === 0 ? sortPorts(winner.ports) : mergePorts(exporters.map((e) => e.service.ports)),
    ips: [],
    sessionAffinity: winner.sessionAffinity,
    ipFamilies: winner.ipFamilies,
  };
  if (winner.sessionAffinityConfig !== undefined) spec.sessionAffinityConfig = winner.sessionAffinityConfig;
  if (winner.internalTrafficPolicy !== undefined) spec.internalTrafficPolicy = winner.internalTrafficPolicy;
  if (winner.trafficDistribution !== undefined) spec.trafficDistribution = winner.trafficDistribution;
  const result: ServiceResolution = {
    namespace,
    name,
    exporters: exporters.map((e) => e.origin),
    serviceImport: {
      apiVersion: MCS_API_VERSION,
      kind: 'ServiceImport',
      metadata,
      spec,
      status: {
        clusters: bySource.map((e) => clusterRef(e.origin)),
        conditions: [importReadyCondition(bySource, withdrawn)],
      },
    },
    endpointSlices: importedSlices(namespace, name, derivedServiceNameOfKey(key), bySource, withdrawn),
    conflict: conflictCondition(exporters, portsDisagree),
  };
  return { result, unimportable };
}

/**
 * The `Ready` condition of a ServiceImport, as far as the ClusterSet state tells: True `Ready` while at least one
 * exporter's endpoints are not withdrawn, False `Pending` when every exporter is unheard past the endpoint TTL. What
 * only the importing cluster knows (a write its API server refused) is the writer's to add.
 */
function importReadyCondition(bySource: readonly Exporter[], withdrawn: ReadonlySet<ClusterId>): ConditionData {
  const live: ClusterId[] = [];
  for (const e of bySource) if (!withdrawn.has(e.origin)) live.push(e.origin);
  if (live.length > 0) {
    return {
      type: CONDITION_READY,
      status: 'True',
      reason: 'Ready',
      message: `Imported from ${live.length} cluster(s): ${live.join(', ')}.`,
    };
  }
  return {
    type: CONDITION_READY,
    status: 'False',
    reason: 'Pending',
    message: `No endpoints: every exporting cluster is unheard past the endpoint TTL (${bySource.map((e) => e.origin).join(', ')}).`,
  };
}

/** `{ cluster }` entries of `status.clusters`, shared (they are immutable): one per cluster id, not per import. */
const clusterRefs = new Map<ClusterId, { readonly cluster: ClusterId }>();
function clusterRef(cluster: ClusterId): { readonly cluster: ClusterId } {
  let ref = clusterRefs.get(cluster);
  if (ref === undefined) {
    ref = Object.freeze({ cluster });
    if (clusterRefs.size > 10_000) clusterRefs.clear();
    clusterRefs.set(cluster, ref);
  }
  return ref;
}

const IMPLICIT_VALID: ConditionData = {
  type: CONDITION_VALID,
  status: 'True',
  reason: 'Valid',
  message: 'The service can be exported.',
};

/**
 * Per state, the last resolution of every key with the key's revision and the withdrawn set it was computed for.
 * Resolution is a pure function of those, so a hit is exactly what recomputing would give; a pass over a state where
 * few keys changed costs little more than walking the keys. Dropped with the state (WeakMap).
 */
const memo = new WeakMap<
  ClusterSetState,
  Map<ServiceKey, { revision: number; withdrawnSig: string; entry: KeyResolution }>
>();

/**
 * `Ready`: True `Exported` once this cluster's record is in the state (push model), Unknown `Pending` before. An
 * invalid export is False: `Pending` while it waits for its Service (it exports as soon as one appears), `Failed`
 * when the Service can never be exported (ExternalName).
 */
function readyCondition(valid: ConditionData, published: boolean): ConditionData {
  if (valid.status !== 'True') {
    const reason = valid.reason === 'NoService' ? 'Pending' : 'Failed';
    return {
      type: CONDITION_READY,
      status: 'False',
      reason,
      message: `The ServiceExport is not valid: ${valid.reason}.`,
    };
  }
  return published
    ? {
        type: CONDITION_READY,
        status: 'True',
        reason: 'Exported',
        message: 'The service is exported to the ClusterSet.',
      }
    : { type: CONDITION_READY, status: 'Unknown', reason: 'Pending', message: 'The export is not published yet.' };
}

/**
 * What `options.localCluster` should hold: a ServiceImport (with imported slices) for every exported service whose
 * namespace exists locally, and the conditions of each local ServiceExport. Depends on the state and the options
 * alone, never on the order records arrived in, so every cluster computes the same imports and conditions.
 */
export function resolve(state: ClusterSetState, options: ResolveOptions): Resolution {
  const namespaces = new Set(options.namespaces);
  const withdrawn = new Set(options.withdrawnOrigins ?? []);
  const withdrawnSig = [...withdrawn].sort(compareStrings).join(',');
  const cache = memoOf(state);
  const serviceImports: ServiceImportObject[] = [];
  const endpointSlices: ImportedEndpointSliceObject[] = [];
  const unimportable: UnimportableRecord[] = [];
  const namespaceMissing: NamespaceMissing[] = [];
  for (const key of state.keys()) {
    const entry = cachedKey(state, cache, key, withdrawn, withdrawnSig);
    for (const u of entry.unimportable) unimportable.push(u);
    const r = entry.result;
    if (r === undefined) continue;
    if (!namespaces.has(r.namespace)) {
      namespaceMissing.push({ namespace: r.namespace, name: r.name, exporters: r.exporters });
      continue;
    }
    serviceImports.push(r.serviceImport);
    for (const s of r.endpointSlices) endpointSlices.push(s);
  }
  let keyed: { e: LocalExport; key: ServiceKey }[];
  if (options.localExports !== undefined) {
    keyed = options.localExports.map((e) => ({ e, key: serviceKey(e.namespace, e.name) }));
    keyed.sort((a, b) => compareStrings(a.key, b.key));
  } else {
    // One valid export per live record this cluster holds for itself; keys() is already sorted.
    keyed = [];
    for (const key of state.keys()) {
      const rec = state.record(options.localCluster, key);
      if (rec !== undefined && !rec.removed) {
        keyed.push({ e: { namespace: rec.namespace, name: rec.name, valid: IMPLICIT_VALID }, key });
      }
    }
  }
  const exportConditions = keyed.map(({ e, key }): ExportConditions => ({
    namespace: e.namespace,
    name: e.name,
    // Every key of the state was just resolved into the cache; a published export's key is one of them.
    conditions: exportConditionsOf(state, options.localCluster, key, e, (k) => cache.get(k)?.entry.result),
  }));
  return { serviceImports, endpointSlices, exportConditions, unimportable, namespaceMissing };
}

function memoOf(
  state: ClusterSetState,
): Map<ServiceKey, { revision: number; withdrawnSig: string; entry: KeyResolution }> {
  let cache = memo.get(state);
  if (cache === undefined) {
    cache = new Map();
    memo.set(state, cache);
  }
  return cache;
}

function cachedKey(
  state: ClusterSetState,
  cache: Map<ServiceKey, { revision: number; withdrawnSig: string; entry: KeyResolution }>,
  key: ServiceKey,
  withdrawn: ReadonlySet<ClusterId>,
  withdrawnSig: string,
): KeyResolution {
  const revision = state.revisionOf(key);
  const hit = cache.get(key);
  if (hit !== undefined && hit.revision === revision && hit.withdrawnSig === withdrawnSig) return hit.entry;
  const entry = resolveKey(state, key, withdrawn);
  cache.set(key, { revision, withdrawnSig, entry });
  return entry;
}

/** The conditions of the local ServiceExport `e` of `key`: Valid, Ready and (when published and valid) Conflict. */
function exportConditionsOf(
  state: ClusterSetState,
  localCluster: ClusterId,
  key: ServiceKey,
  e: LocalExport,
  resultOf: (key: ServiceKey) => ServiceResolution | undefined,
): ConditionData[] {
  const mine = state.record(localCluster, key);
  const published = mine !== undefined && !mine.removed;
  const conditions: ConditionData[] = [e.valid, readyCondition(e.valid, published)];
  const r = published ? resultOf(key) : undefined;
  if (e.valid.status === 'True' && r !== undefined) conditions.push(r.conflict);
  return conditions;
}

/** What one service key should look like in the resolving cluster, and what resolution noted about it. */
export interface KeyOutcome {
  /** Absent: no ServiceImport here (nobody exports the key, or its namespace does not exist here). */
  readonly serviceImport?: ServiceImportObject;
  /** The imported slices, by source cluster (empty without a ServiceImport). */
  readonly endpointSlices: readonly ImportedEndpointSliceObject[];
  /** The conditions of this cluster's ServiceExport of the key, when there is one. */
  readonly exportConditions?: readonly ConditionData[];
  /** Live records of the key skipped as not importable, by source cluster. */
  readonly unimportable: readonly UnimportableRecord[];
  /** Set when the key is exported but its namespace does not exist here. */
  readonly namespaceMissing?: NamespaceMissing;
}

/** What {@link resolveKeys} needs: {@link ResolveOptions} with the namespaces as a set and local exports by key. */
export interface ResolveKeysOptions {
  readonly localCluster: ClusterId;
  readonly namespaces: ReadonlySet<string>;
  readonly withdrawnOrigins?: Iterable<ClusterId>;
  /**
   * This cluster's ServiceExports by key, with their validity. Default: one valid export per live record this
   * cluster holds for itself (as {@link resolve}).
   */
  readonly localExports?: ReadonlyMap<ServiceKey, LocalExport>;
}

/**
 * Resolves some keys only — those an event touched: work proportional to them, not to the state. For every key it
 * gives what {@link resolve} gives for that key (the same objects when the state of the key did not change), so a
 * node may resolve the whole state once and then only the keys that change. Keys nobody exports and nobody exports
 * locally get an empty outcome (their objects should go).
 */
export function resolveKeys(
  state: ClusterSetState,
  keys: Iterable<ServiceKey>,
  options: ResolveKeysOptions,
): Map<ServiceKey, KeyOutcome> {
  const withdrawn = new Set(options.withdrawnOrigins ?? []);
  const withdrawnSig = [...withdrawn].sort(compareStrings).join(',');
  const cache = memoOf(state);
  const out = new Map<ServiceKey, KeyOutcome>();
  for (const key of keys) {
    if (out.has(key)) continue;
    const entry = cachedKey(state, cache, key, withdrawn, withdrawnSig);
    const r = entry.result;
    let local: LocalExport | undefined;
    if (options.localExports !== undefined) local = options.localExports.get(key);
    else {
      const rec = state.record(options.localCluster, key);
      if (rec !== undefined && !rec.removed)
        local = { namespace: rec.namespace, name: rec.name, valid: IMPLICIT_VALID };
    }
    const exportConditions =
      local === undefined ? undefined : exportConditionsOf(state, options.localCluster, key, local, () => r);
    const outcome: {
      serviceImport?: ServiceImportObject;
      endpointSlices: readonly ImportedEndpointSliceObject[];
      exportConditions?: readonly ConditionData[];
      unimportable: readonly UnimportableRecord[];
      namespaceMissing?: NamespaceMissing;
    } = { endpointSlices: NONE_SLICES, unimportable: entry.unimportable };
    if (exportConditions !== undefined) outcome.exportConditions = exportConditions;
    if (r !== undefined) {
      if (options.namespaces.has(r.namespace)) {
        outcome.serviceImport = r.serviceImport;
        outcome.endpointSlices = r.endpointSlices;
      } else outcome.namespaceMissing = { namespace: r.namespace, name: r.name, exporters: r.exporters };
    }
    out.set(key, outcome);
  }
  return out;
}

const NONE_SLICES: readonly ImportedEndpointSliceObject[] = Object.freeze([]);
