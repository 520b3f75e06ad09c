/** The objects we write, built from the core's resolution: pure functions of their inputs. */
import type * as k8s from '@kubernetes/client-node';
import {
  derivedServiceName,
  LABEL_SERVICE_NAME,
  serviceKey,
  type ConditionData,
  type ImportedEndpointSliceObject,
  type Resolution,
  type ServiceImportObject,
  type ServiceKey,
} from '../core/index.js';
import { LABEL_OWNED_BY, MCS_GROUP, MCS_VERSION, OWNED_BY } from './constants.js';
import type { ServiceImport } from './objects.js';

/** What one service key should look like in this cluster. */
export interface DesiredService {
  /** Absent: no ServiceImport (and so no derived Service or imported slices) here. */
  readonly serviceImport?: ServiceImportObject;
  readonly endpointSlices: readonly ImportedEndpointSliceObject[];
  /** Conditions of the local ServiceExport of this key, when there is one. */
  readonly exportConditions?: readonly ConditionData[];
}

/** The resolution by service key. */
export function indexResolution(r: Resolution): Map<ServiceKey, DesiredService> {
  const out = new Map<
    ServiceKey,
    {
      serviceImport?: ServiceImportObject;
      endpointSlices: ImportedEndpointSliceObject[];
      exportConditions?: readonly ConditionData[];
    }
  >();
  const entry = (key: ServiceKey) => {
    let e = out.get(key);
    if (e === undefined) {
      e = { endpointSlices: [] };
      out.set(key, e);
    }
    return e;
  };
  for (const si of r.serviceImports) entry(serviceKey(si.metadata.namespace, si.metadata.name)).serviceImport = si;
  for (const s of r.endpointSlices) {
    const name = s.metadata.labels[LABEL_SERVICE_NAME] ?? '';
    entry(serviceKey(s.metadata.namespace, name)).endpointSlices.push(s);
  }
  for (const c of r.exportConditions) entry(serviceKey(c.namespace, c.name)).exportConditions = c.conditions;
  return out;
}

/** The ServiceImport to write: the core's, with `spec.ips` = the derived Service's cluster IPs (empty until known). */
export function serviceImportBody(desired: ServiceImportObject, ips: readonly string[]): ServiceImport {
  const metadata: k8s.V1ObjectMeta = { name: desired.metadata.name, namespace: desired.metadata.namespace };
  if (desired.metadata.labels !== undefined) metadata.labels = { ...desired.metadata.labels };
  if (desired.metadata.annotations !== undefined) metadata.annotations = { ...desired.metadata.annotations };
  const spec = structuredClone(desired.spec) as NonNullable<ServiceImport['spec']>;
  spec.ips = desired.spec.type === 'ClusterSetIP' ? [...ips] : [];
  return { apiVersion: `${MCS_GROUP}/${MCS_VERSION}`, kind: 'ServiceImport', metadata, spec };
}

/**
 * The derived Service that allocates the ClusterSetIP of a ClusterSetIP import: type ClusterIP, no selector (the
 * endpoint controller leaves it alone; our imported slices point at it), the import's ports and ip families.
 */
export function derivedService(desired: ServiceImportObject): k8s.V1Service {
  const { namespace, name } = desired.metadata;
  const spec: k8s.V1ServiceSpec = {
    type: 'ClusterIP',
    ports: desired.spec.ports.map((p) => {
      const port: k8s.V1ServicePort = { protocol: p.protocol, port: p.port };
      if (p.name !== undefined) port.name = p.name;
      if (p.appProtocol !== undefined) port.appProtocol = p.appProtocol;
      return port;
    }),
    ipFamilies: [...desired.spec.ipFamilies],
    ipFamilyPolicy: desired.spec.ipFamilies.length > 1 ? 'RequireDualStack' : 'SingleStack',
    sessionAffinity: desired.spec.sessionAffinity,
  };
  if (desired.spec.sessionAffinity === 'ClientIP' && desired.spec.sessionAffinityConfig !== undefined) {
    spec.sessionAffinityConfig = structuredClone(desired.spec.sessionAffinityConfig) as k8s.V1SessionAffinityConfig;
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: derivedServiceName(namespace, name),
      namespace,
      labels: { [LABEL_OWNED_BY]: OWNED_BY, [LABEL_SERVICE_NAME]: name },
    },
    spec,
  };
}

/**
 * An imported slice to write. Owned by nothing: it is created beside its ServiceImport and derived Service, before
 * either has a uid (docs/operations.md "Writes, and why each"); the node deletes it with its import.
 */
export function sliceBody(desired: ImportedEndpointSliceObject): k8s.V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { ...desired.metadata, labels: { ...desired.metadata.labels } },
    addressType: desired.addressType,
    endpoints: structuredClone(desired.endpoints) as k8s.V1Endpoint[],
    ports: structuredClone(desired.ports) as k8s.DiscoveryV1EndpointPort[],
  };
}
