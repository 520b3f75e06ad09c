import type { ConditionData } from './conditions.js';
import { CONDITION_VALID } from './conditions.js';
import { LABEL_KUBE_SERVICE_NAME, LABEL_SERVICE_NAME } from './constants.js';
import type {
  AddressType,
  Endpoint,
  EndpointConditions,
  EndpointGroup,
  EndpointPort,
  ExportedService,
  ExportRecord,
  ServicePort,
} from './export-record.js';
import type { Hlc } from './hlc.js';
import { compareStrings, serviceKey } from './ids.js';
import type { ClusterId, ServiceKey } from './ids.js';
import { fitToRecord, importProblem, MAX_SERVICE_JSON_BYTES, type ImportProblem } from './importability.js';
import type { EndpointSliceObject, LocalObjects, ServiceExportObject, ServiceObject } from './kube-objects.js';

/** One local ServiceExport and what this cluster decided about it before any peer is involved. */
export interface LocalExport {
  readonly namespace: string;
  readonly name: string;
  /**
   * The `Valid` condition: True `Valid`, or False `NoService` / `InvalidServiceType`, or False with an
   * {@link ImportProblem} reason when importers could not write what it exports.
   */
  readonly valid: ConditionData;
  /** What is exported, when valid. */
  readonly service?: ExportedService;
}

/** The local side of a cluster: its ServiceExports with their validity, and the content of the valid ones by key. */
export interface LocalExports {
  /** Every ServiceExport not being deleted, sorted by namespace/name. */
  readonly exports: readonly LocalExport[];
  /** The content of every valid export: what this origin should publish. */
  readonly desired: ReadonlyMap<ServiceKey, ExportedService>;
}

/** Milliseconds since the epoch of a Kubernetes timestamp; a missing or unreadable one sorts as oldest (0). */
export function timestampMs(t: string | Date | undefined): number {
  if (t === undefined) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : 0;
}

function copyDefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

function servicePorts(svc: ServiceObject): ServicePort[] {
  return (svc.spec?.ports ?? []).map((p) =>
    copyDefined<ServicePort>({ name: p.name, protocol: p.protocol ?? 'TCP', port: p.port, appProtocol: p.appProtocol }),
  );
}

function ipFamiliesOf(svc: ServiceObject): string[] {
  const given = svc.spec?.ipFamilies;
  if (given !== undefined && given.length > 0) return [...given];
  // The API server always sets ipFamilies; offline input may omit them: infer from clusterIPs, else IPv4.
  const ips = (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : [])).filter(
    (ip) => ip !== 'None' && ip !== '',
  );
  return ips.length > 0 ? ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')) : ['IPv4'];
}

function endpointPortKey(p: EndpointPort): string {
  return `${p.name ?? ''}\u0000${p.protocol ?? ''}\u0000${p.port ?? ''}\u0000${p.appProtocol ?? '\u0001'}`;
}

/** How good an endpoint's conditions are: when two slices list one address, the readier copy wins. */
function rank(c: EndpointConditions): number {
  return (c.ready !== false ? 4 : 0) + (c.serving !== false ? 2 : 0) + (c.terminating === true ? 0 : 1);
}

/**
 * Normalises a Service's EndpointSlices into endpoint groups: one per (address type, port list), endpoints sorted by
 * address and deduplicated, so the same pods give the same record whatever the slicing of the endpoint controller.
 */
function endpointGroups(slices: readonly EndpointSliceObject[]): EndpointGroup[] {
  const groups = new Map<
    string,
    { addressType: AddressType; ports: EndpointPort[]; byAddress: Map<string, Endpoint> }
  >();
  for (const slice of slices) {
    const addressType = slice.addressType as AddressType;
    const ports = (slice.ports ?? [])
      .map((p) =>
        copyDefined<EndpointPort>({ name: p.name, protocol: p.protocol, port: p.port, appProtocol: p.appProtocol }),
      )
      .sort((a, b) => compareStrings(endpointPortKey(a), endpointPortKey(b)));
    const key = `${addressType}\u0002${ports.map(endpointPortKey).join('\u0002')}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { addressType, ports, byAddress: new Map() };
      groups.set(key, g);
    }
    for (const e of slice.endpoints ?? []) {
      const c = e.conditions ?? {};
      const endpoint = copyDefined<Endpoint>({
        addresses: [...e.addresses],
        conditions: copyDefined<EndpointConditions>({ ready: c.ready, serving: c.serving, terminating: c.terminating }),
        hostname: e.hostname,
        zone: e.zone,
        nodeName: e.nodeName,
      });
      const addressKey = e.addresses.join(',');
      const held = g.byAddress.get(addressKey);
      if (held === undefined || rank(endpoint.conditions) > rank(held.conditions))
        g.byAddress.set(addressKey, endpoint);
    }
  }
  return [...groups.entries()]
    .filter(([, g]) => g.byAddress.size > 0)
    .sort((a, b) => compareStrings(a[0], b[0]))
    .map(([, g]) => ({
      addressType: g.addressType,
      ports: g.ports,
      endpoints: [...g.byAddress.entries()].sort((a, b) => compareStrings(a[0], b[0])).map(([, e]) => e),
    }));
}

function exportedService(
  svc: ServiceObject,
  se: ServiceExportObject,
  slices: readonly EndpointSliceObject[],
): ExportedService {
  const spec = svc.spec ?? {};
  const affinityConfig = spec.sessionAffinityConfig;
  return copyDefined<ExportedService>({
    exportCreatedMs: timestampMs(se.metadata.creationTimestamp),
    type: spec.clusterIP === 'None' ? 'Headless' : 'ClusterSetIP',
    ports: servicePorts(svc),
    sessionAffinity: spec.sessionAffinity ?? 'None',
    sessionAffinityConfig:
      affinityConfig === undefined
        ? undefined
        : copyDefined({
            clientIP:
              affinityConfig.clientIP === undefined
                ? undefined
                : copyDefined({ timeoutSeconds: affinityConfig.clientIP.timeoutSeconds }),
          }),
    internalTrafficPolicy: spec.internalTrafficPolicy,
    trafficDistribution: spec.trafficDistribution,
    ipFamilies: ipFamiliesOf(svc),
    exportedLabels: { ...(se.spec?.exportedLabels ?? {}) },
    exportedAnnotations: { ...(se.spec?.exportedAnnotations ?? {}) },
    endpointGroups: endpointGroups(slices),
  });
}

function validCondition(status: 'True' | 'False', reason: string, message: string): ConditionData {
  return { type: CONDITION_VALID, status, reason, message };
}

/** The objects a problem's field belongs to, as the message names them. */
function objectOf(key: ServiceKey, p: ImportProblem): string {
  if (p.reason === 'UnimportableService') return `Service "${key}"`;
  if (p.reason === 'UnimportableEndpoints') return `the EndpointSlices of Service "${key}":`;
  return `ServiceExport "${key}"`;
}

/** `Valid=False`: an export whose content importers could not write is not published at all. */
function unimportable(key: ServiceKey, p: ImportProblem): ConditionData {
  return validCondition(
    'False',
    p.reason,
    `${objectOf(key, p)} ${p.message}; it cannot be imported, so it is not exported`,
  );
}

/**
 * What this cluster exports, from its own objects alone: each ServiceExport (not being deleted) is valid when a
 * Service of the same namespace/name exists, is not ExternalName, and what it exports passes the importers' API
 * validation ({@link importProblem}). NodePort and LoadBalancer export as ClusterSetIP,
 * `clusterIP: None` as Headless. Endpoints come from the Service's own slices (label `kubernetes.io/service-name`),
 * never from imported ones.
 */
export function localExports(objects: LocalObjects): LocalExports {
  const services = new Map<ServiceKey, ServiceObject>();
  for (const s of objects.services) services.set(serviceKey(s.metadata.namespace ?? '', s.metadata.name ?? ''), s);
  const slicesByService = new Map<ServiceKey, EndpointSliceObject[]>();
  for (const slice of objects.endpointSlices) {
    const key = sliceOwnerKey(slice);
    if (key === undefined) continue;
    const list = slicesByService.get(key);
    if (list === undefined) slicesByService.set(key, [slice]);
    else list.push(slice);
  }
  const exports: LocalExport[] = [];
  const desired = new Map<ServiceKey, ExportedService>();
  const sorted = objects.serviceExports
    .filter((se) => se.metadata.deletionTimestamp === undefined)
    .map((se) => ({ se, key: serviceKey(se.metadata.namespace ?? '', se.metadata.name ?? '') }))
    .sort((a, b) => compareStrings(a.key, b.key));
  for (const { se, key } of sorted) {
    const e = localExportOf(key, se, services.get(key), slicesByService.get(key) ?? []);
    if (e === undefined) continue;
    exports.push(e);
    if (e.service !== undefined) desired.set(key, e.service);
  }
  return { exports, desired };
}

/**
 * The service key a local EndpointSlice gives endpoints to (label `kubernetes.io/service-name`); undefined for a
 * slice of no Service and for our imported slices.
 */
export function sliceOwnerKey(slice: EndpointSliceObject): ServiceKey | undefined {
  const labels = slice.metadata.labels ?? {};
  const owner = labels[LABEL_KUBE_SERVICE_NAME];
  if (owner === undefined || labels[LABEL_SERVICE_NAME] !== undefined) return undefined;
  return serviceKey(slice.metadata.namespace ?? '', owner);
}

/**
 * One export of {@link localExports}, from the objects of its key alone: the ServiceExport (undefined, or being
 * deleted: nothing is exported), the Service of the same namespace/name and the slices that name it (see
 * {@link sliceOwnerKey}). `localExports(objects)` is this function applied to every key of `objects`, so a node can
 * recompute the one key an event touched.
 */
export function localExportOf(
  key: ServiceKey,
  se: ServiceExportObject | undefined,
  svc: ServiceObject | undefined,
  slices: readonly EndpointSliceObject[],
): LocalExport | undefined {
  if (se === undefined || se.metadata.deletionTimestamp !== undefined) return undefined;
  const namespace = se.metadata.namespace ?? '';
  const name = se.metadata.name ?? '';
  if (svc === undefined) {
    return { namespace, name, valid: validCondition('False', 'NoService', `Service "${key}" not found`) };
  }
  if (svc.spec?.type === 'ExternalName') {
    const message = `Service "${key}" is of type ExternalName, which cannot be exported`;
    return { namespace, name, valid: validCondition('False', 'InvalidServiceType', message) };
  }
  let service = exportedService(svc, se, slices);
  // Too many endpoints for one record: export those that fit (ready ones first) rather than withdraw the service.
  const fitted = fitToRecord(service);
  if (fitted !== undefined) service = fitted.service;
  const problem = importProblem(service);
  if (problem !== undefined) return { namespace, name, valid: unimportable(key, problem) };
  const exported =
    fitted === undefined
      ? `Service "${key}" is exported`
      : `Service "${key}" is exported with ${fitted.kept} of its ${fitted.total} endpoints (ready ones first): one export carries at most ${MAX_SERVICE_JSON_BYTES / 1024} KiB`;
  return { namespace, name, valid: validCondition('True', 'Valid', exported), service };
}

/** The records of a whole cluster at one version: the offline path (`resolve` CLI, simulations). */
export interface LocalRecords extends LocalExports {
  readonly records: readonly ExportRecord[];
}

/**
 * The local cluster's export records and per-export validity, every record stamped with `version` (offline use;
 * a running node publishes only what changed, see {@link planOwnRecords}).
 */
export function exportRecordsFromObjects(
  clusterId: ClusterId,
  objects: LocalObjects,
  version: Hlc = { wallMs: 0, logical: 1 },
): LocalRecords {
  const local = localExports(objects);
  const records: ExportRecord[] = [];
  for (const e of local.exports) {
    if (e.service !== undefined) {
      records.push({
        origin: clusterId,
        namespace: e.namespace,
        name: e.name,
        version,
        removed: false,
        service: e.service,
      });
    }
  }
  return { ...local, records };
}
