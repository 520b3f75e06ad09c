/**
 * The pure core of mcs-gossip: versioned ClusterSet state, merge, anti-entropy digests and MCS conflict resolution.
 *
 * Nothing here performs I/O, reads a clock or draws randomness: time is an argument, so every cluster computes the
 * same answer from the same data, and tests drive it with property tests and simulations.
 *
 * @example
 * ```ts
 * import { ClusterSetState, HlcClock, localExports, planOwnRecords, resolve } from './core/index.js';
 *
 * const state = new ClusterSetState();
 * const clock = new HlcClock(state.digest().find((d) => d.origin === 'cluster-a')?.maxVersion);
 * const local = localExports({ namespaces, services, serviceExports, endpointSlices });
 * const publish = planOwnRecords('cluster-a', state.recordsOf('cluster-a'), local.desired, () => clock.tick(Date.now()));
 * state.merge(publish); // and gossip `publish` to peers, who merge it too
 * const { withdrawn } = state.liveness(Date.now(), DEFAULT_ENDPOINT_TTL_MS, { self: 'cluster-a', startedAtMs });
 * const { serviceImports, endpointSlices, exportConditions } = resolve(state, {
 *   localCluster: 'cluster-a',
 *   namespaces: ['default'],
 *   withdrawnOrigins: withdrawn,
 *   localExports: local.exports,
 * });
 * ```
 */

export type { ClusterId, ServiceKey } from './ids.js';
export { compareStrings, isClusterId, serviceKey, splitServiceKey } from './ids.js';

export type { Hlc } from './hlc.js';
export { compareHlc, formatHlc, HlcClock, isValidHlc, maxHlc, ZERO_HLC } from './hlc.js';

export type {
  AddressType,
  Endpoint,
  EndpointConditions,
  EndpointGroup,
  EndpointPort,
  ExportedService,
  ExportRecord,
  ServiceImportType,
  ServicePort,
  SessionAffinityConfig,
} from './export-record.js';
export type { OriginHeartbeat } from './heartbeat.js';

export type { BucketDigest, BucketSummary, OriginDigest } from './digest.js';
export { DIGEST_BUCKETS, digestOf } from './digest.js';
export type { HeartbeatState, Liveness, LivenessOptions, MergeResult } from './cluster-set-state.js';
export { ClusterSetState } from './cluster-set-state.js';
export type { Delta, RemoteSummary } from './sync.js';
export { deltaFor } from './sync.js';

export type {
  Condition,
  EndpointSliceObject,
  ImportedEndpointSliceObject,
  LocalObjects,
  NamespaceObject,
  ObjectMeta,
  ServiceExportObject,
  ServiceImportObject,
  ServiceObject,
  ServicePortObject,
} from './kube-objects.js';
export type { LocalExport, LocalExports, LocalRecords } from './local-exports.js';
export { exportRecordsFromObjects, localExportOf, localExports, sliceOwnerKey, timestampMs } from './local-exports.js';
export { planOwnRecords, planOwnRecordsFor } from './own-records.js';

export type { ConditionData, ConflictReason } from './conditions.js';
export {
  CONDITION_CONFLICT,
  CONDITION_READY,
  CONDITION_VALID,
  CONFLICT_REASONS,
  sameConditions,
  withTransitionTimes,
} from './conditions.js';
export type {
  ExportConditions,
  KeyOutcome,
  NamespaceMissing,
  Resolution,
  ResolveKeysOptions,
  ResolveOptions,
  ServiceResolution,
  UnimportableRecord,
} from './resolve.js';
export { resolve, resolveKeys, resolveService } from './resolve.js';
export { mergePorts, samePorts, sortPorts } from './port-merge.js';
export { derivedServiceName, derivedServiceNameOfKey } from './derived-name.js';
export type { ImportProblem, ImportProblemReason } from './importability.js';
export {
  dns1123LabelError,
  dns1123SubdomainError,
  importProblem,
  isIPv4,
  canonicalIPv6Of,
  isIPv6,
  labelValueError,
  MAX_ANNOTATIONS_BYTES,
  MAX_EXPORTED_MAP_ENTRIES,
  MAX_IMPORT_PORTS,
  MAX_SERVICE_JSON_BYTES,
  qualifiedNameError,
} from './importability.js';
export type { ClusterInput } from './input-validation.js';
export { InvalidInputError, parseClusterSetInput } from './input-validation.js';
export {
  DEFAULT_ENDPOINT_TTL_MS,
  LABEL_KUBE_SERVICE_NAME,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  LABEL_SOURCE_CLUSTER,
  MANAGED_BY,
  MAX_ENDPOINTS_PER_SLICE,
  MCS_API_VERSION,
} from './constants.js';
