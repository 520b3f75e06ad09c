// Builders and fast-check arbitraries shared by the core's tests (not part of the core's face).
import fc from 'fast-check';
import type { EndpointGroup, ExportedService, ExportRecord, ServicePort } from '../export-record.js';
import { ClusterSetState } from '../cluster-set-state.js';
import type { ConditionData } from '../conditions.js';
import { HlcClock } from '../hlc.js';
import { exportRecordsFromObjects } from '../local-exports.js';
import { resolve } from '../resolve.js';
import type { Resolution } from '../resolve.js';
import type { ClusterId } from '../ids.js';
import type {
  EndpointSliceObject,
  NamespaceObject,
  ServiceExportObject,
  ServiceObject,
  ServicePortObject,
} from '../kube-objects.js';

export function namespace(name: string): NamespaceObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export function service(
  ns: string,
  name: string,
  spec: Partial<NonNullable<ServiceObject['spec']>> = {},
): ServiceObject {
  const ports: ServicePortObject[] = [{ name: 'http', protocol: 'TCP', port: 80 }];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      ipFamilies: ['IPv4'],
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
      ports,
      ...spec,
    },
  };
}

export function serviceExport(
  ns: string,
  name: string,
  created: string,
  spec: ServiceExportObject['spec'] = {},
): ServiceExportObject {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1beta1',
    kind: 'ServiceExport',
    metadata: { name, namespace: ns, creationTimestamp: created },
    spec,
  };
}

export function endpointSlice(
  ns: string,
  svc: string,
  sliceName: string,
  addressType: string,
  addresses: readonly string[],
  ports: EndpointSliceObject['ports'] = [{ name: 'http', protocol: 'TCP', port: 8080 }],
): EndpointSliceObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: sliceName, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    addressType,
    ports,
    endpoints: addresses.map((a) => ({
      addresses: [a],
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

/** A plain exported service: ClusterSetIP, one TCP port, IPv4. Override what a test is about. */
export function exported(overrides: Partial<ExportedService> = {}): ExportedService {
  return {
    exportCreatedMs: 0,
    type: 'ClusterSetIP',
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
    exportedLabels: {},
    exportedAnnotations: {},
    endpointGroups: [],
    ...overrides,
  };
}

// ---- fast-check arbitraries: small domains, so that collisions (same key, conflicts) are frequent. ----

export const ORIGINS: readonly ClusterId[] = ['cluster-a', 'cluster-b', 'cluster-c'];
export const KEYS = [
  ['ns1', 'web'],
  ['ns1', 'db'],
  ['ns2', 'web'],
] as const;

const portLists: readonly (readonly ServicePort[])[] = [
  [{ name: 'http', protocol: 'TCP', port: 80 }],
  [
    { name: 'http', protocol: 'TCP', port: 80 },
    { name: 'sctp', protocol: 'SCTP', port: 142 },
  ],
  [{ name: 'http', protocol: 'TCP', port: 81 }],
  [{ name: 'web', protocol: 'TCP', port: 80, appProtocol: 'http' }],
];

const groups: readonly (readonly EndpointGroup[])[] = [
  [],
  [
    {
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
    },
  ],
  [
    {
      addressType: 'IPv6',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [
        { addresses: ['fd00::1'], conditions: { ready: true }, zone: 'z1' },
        { addresses: ['fd00::2'], conditions: { ready: false, terminating: true } },
      ],
    },
  ],
];

export const exportedServiceArb: fc.Arbitrary<ExportedService> = fc.record({
  exportCreatedMs: fc.constantFrom(0, 1000, 2000),
  type: fc.constantFrom('ClusterSetIP' as const, 'Headless' as const),
  ports: fc.constantFrom(...portLists),
  sessionAffinity: fc.constantFrom('None', 'ClientIP'),
  internalTrafficPolicy: fc.constantFrom('Cluster', 'Local'),
  ipFamilies: fc.constantFrom(['IPv4'], ['IPv6'], ['IPv4', 'IPv6']),
  exportedLabels: fc.constantFrom<Record<string, string>>({}, { tier: 'web' }, { tier: 'db' }),
  exportedAnnotations: fc.constantFrom<Record<string, string>>({}, { note: 'x' }),
  endpointGroups: fc.constantFrom(...groups),
});

/** One operation of an origin on one key: set it to a service, or remove it. */
export interface Op {
  readonly key: number;
  readonly service: ExportedService | undefined;
}

export const opArb: fc.Arbitrary<Op> = fc.record({
  key: fc.nat(KEYS.length - 1),
  service: fc.option(exportedServiceArb, { nil: undefined, freq: 4 }),
});

/** The records an honest origin issues for a sequence of operations: versions from its own HLC, proof = a tag. */
export function issue(origin: ClusterId, ops: readonly Op[], startMs = 1_000): ExportRecord[] {
  const clock = new HlcClock();
  return ops.map((op, i) => {
    const [namespace, name] = KEYS[op.key]!;
    // Wall time advances irregularly and sometimes stalls, exercising the logical counter.
    const version = clock.tick(startMs + Math.floor(i / 2));
    const proof = new TextEncoder().encode(`${origin}/${namespace}/${name}@${version.wallMs}.${version.logical}`);
    return op.service === undefined
      ? { origin, namespace, name, version, removed: true, proof }
      : { origin, namespace, name, version, removed: false, service: op.service, proof };
  });
}

/** Histories of every origin: at most `maxOps` operations each. */
export function historiesArb(maxOps = 12): fc.Arbitrary<Record<ClusterId, Op[]>> {
  return fc.record(Object.fromEntries(ORIGINS.map((o) => [o, fc.array(opArb, { maxLength: maxOps })])));
}

/** Resolves a whole ClusterSet given as each cluster's objects, the way every node would. */
export function resolveClusterSet(
  clusters: Record<ClusterId, readonly (NamespaceObject | ServiceObject | ServiceExportObject | EndpointSliceObject)[]>,
  withdrawnOrigins: readonly ClusterId[] = [],
): Record<ClusterId, Resolution> {
  const state = new ClusterSetState();
  const locals = Object.entries(clusters).map(([id, objects]) => {
    const by = <K extends string>(kind: K) => objects.filter((o) => o.kind === kind);
    const local = exportRecordsFromObjects(id, {
      namespaces: by('Namespace') as NamespaceObject[],
      services: by('Service') as ServiceObject[],
      serviceExports: by('ServiceExport') as ServiceExportObject[],
      endpointSlices: by('EndpointSlice') as EndpointSliceObject[],
    });
    state.merge(local.records);
    const namespaces = objects.map((o) => (o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace));
    return { id, local, namespaces: namespaces.filter((n): n is string => n !== undefined) };
  });
  return Object.fromEntries(
    locals.map(({ id, local, namespaces }) => [
      id,
      resolve(state, { localCluster: id, namespaces, localExports: local.exports, withdrawnOrigins }),
    ]),
  );
}

/** The conditions of one local ServiceExport, by type. */
export function conditionsOf(r: Resolution, ns: string, name: string): Record<string, ConditionData> {
  const e = r.exportConditions.find((c) => c.namespace === ns && c.name === name);
  return Object.fromEntries((e?.conditions ?? []).map((c) => [c.type, c]));
}
