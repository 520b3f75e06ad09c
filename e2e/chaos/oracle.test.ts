// The oracle on hand-built ground truths: what it expects, and that its diff reports exactly the injected faults.
import type * as k8s from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derivedServiceName, LABEL_SERVICE_NAME, LABEL_SOURCE_CLUSTER } from '../../src/core/index.js';
import type { ClusterProperty, ServiceExport, ServiceImport } from '../../src/kube/objects.js';
import {
  converged,
  derivedServicesOf,
  diffState,
  expectedState,
  importedSlicesOf,
  ipsOf,
  lostExports,
  type ClusterTruth,
  type Difference,
  type ExpectedCluster,
  type GroundTruth,
} from './oracle.js';

// ---- builders: objects as the API server returns them (defaults filled in, server fields set)

const T1 = new Date('2024-01-01T00:00:00Z');
const T2 = new Date('2024-01-01T00:01:00Z');
const T3 = new Date('2024-01-01T00:02:00Z');

function properties(id: string): ClusterProperty[] {
  return [
    { metadata: { name: 'cluster.clusterset.k8s.io' }, spec: { value: id } },
    { metadata: { name: 'clusterset.k8s.io' }, spec: { value: 'local-clusterset' } },
  ];
}

function namespace(name: string, deleting = false): k8s.V1Namespace {
  return { metadata: { name, uid: `ns-${name}`, ...(deleting ? { deletionTimestamp: T3 } : {}) } };
}

type Port = { name: string; protocol: string; port: number };
const HTTP: Port = { name: 'http', protocol: 'TCP', port: 80 };
const SCTP: Port = { name: 'sctp', protocol: 'SCTP', port: 142 };

function service(ns: string, name: string, spec: k8s.V1ServiceSpec = {}): k8s.V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, uid: `svc-${ns}-${name}`, resourceVersion: '10', creationTimestamp: T1 },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
      ports: [{ ...HTTP, targetPort: 8080 }],
      selector: { app: name },
      ...spec,
    },
  };
}

function serviceExport(ns: string, name: string, created: Date): ServiceExport {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1beta1',
    kind: 'ServiceExport',
    metadata: { name, namespace: ns, uid: `se-${ns}-${name}`, creationTimestamp: created, generation: 1 },
  };
}

function localSlice(ns: string, svc: string, addresses: readonly string[]): k8s.V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${svc}-abcde`,
      namespace: ns,
      labels: {
        'kubernetes.io/service-name': svc,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: addresses.map((a, i) => ({
      addresses: [a],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `kwok-node-${i}`,
      targetRef: { kind: 'Pod', name: `${svc}-${i}`, namespace: ns },
    })),
  };
}

interface ClusterInput {
  readonly name: string;
  readonly clusterProperties?: readonly ClusterProperty[];
  readonly namespaces: readonly k8s.V1Namespace[];
  readonly services?: readonly k8s.V1Service[];
  readonly serviceExports?: readonly ServiceExport[];
  readonly endpointSlices?: readonly k8s.V1EndpointSlice[];
}

function cluster(c: ClusterInput): ClusterTruth {
  return {
    name: c.name,
    clusterProperties: c.clusterProperties ?? properties(c.name),
    namespaces: c.namespaces,
    services: c.services ?? [],
    serviceExports: c.serviceExports ?? [],
    endpointSlices: c.endpointSlices ?? [],
    serviceImports: [],
  };
}

/**
 * Three clusters: demo/web exported by cluster-1 (older) and cluster-2 (adds an SCTP port: a port conflict), a headless
 * demo/db from cluster-1, an ExternalName demo/ext in cluster-3, and other/api from cluster-1 where cluster-2 has no
 * namespace `other`.
 */
function scenario(): GroundTruth {
  return {
    clusters: [
      cluster({
        name: 'cluster-1',
        namespaces: [namespace('default'), namespace('demo'), namespace('other')],
        services: [
          service('demo', 'web'),
          service('demo', 'db', { clusterIP: 'None', clusterIPs: ['None'] }),
          service('other', 'api'),
          service('default', 'kubernetes', { ports: [{ name: 'https', protocol: 'TCP', port: 443 }] }),
        ],
        serviceExports: [
          serviceExport('demo', 'web', T1),
          serviceExport('demo', 'db', T1),
          serviceExport('other', 'api', T2),
        ],
        endpointSlices: [
          localSlice('demo', 'web', ['10.201.0.1', '10.201.0.2']),
          localSlice('demo', 'db', ['10.201.0.3']),
          localSlice('other', 'api', ['10.201.0.4']),
        ],
      }),
      cluster({
        name: 'cluster-2',
        namespaces: [namespace('default'), namespace('demo')],
        services: [
          service('demo', 'web', {
            ports: [
              { ...HTTP, targetPort: 8080 },
              { ...SCTP, targetPort: 142 },
            ],
          }),
        ],
        serviceExports: [serviceExport('demo', 'web', T2)],
        endpointSlices: [localSlice('demo', 'web', ['10.202.0.1'])],
      }),
      cluster({
        name: 'cluster-3',
        namespaces: [namespace('default'), namespace('demo'), namespace('other')],
        services: [
          service('demo', 'ext', {
            type: 'ExternalName',
            externalName: 'example.com',
            clusterIP: undefined,
            clusterIPs: undefined,
          }),
        ],
        serviceExports: [serviceExport('demo', 'ext', T1)],
      }),
    ],
  };
}

function of(truth: GroundTruth, name: string): ClusterTruth {
  const c = truth.clusters.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no cluster ${name}`);
  return c;
}

function expectedOf(e: { readonly clusters: readonly ExpectedCluster[] }, name: string): ExpectedCluster {
  const c = e.clusters.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no cluster ${name}`);
  return c;
}

/** `truth` with one cluster changed by `edit`. */
function edit(truth: GroundTruth, name: string, change: (c: ClusterTruth) => ClusterTruth): GroundTruth {
  return { clusters: truth.clusters.map((c) => (c.name === name ? change(c) : c)) };
}

function importsOf(e: ExpectedCluster): string[] {
  return e.resolution.serviceImports.map((si) => `${si.metadata.namespace}/${si.metadata.name}:${si.spec.type}`);
}

function conditions(e: ExpectedCluster, ns: string, name: string): string[] {
  const c = e.resolution.exportConditions.find((x) => x.namespace === ns && x.name === name);
  return (c?.conditions ?? []).map((x) => `${x.type}=${x.status}/${x.reason}`);
}

function brief(d: readonly Difference[]): string[] {
  return d.map((x) => `${x.cluster} ${x.kind} ${x.namespace}/${x.name} ${x.what}`);
}

// ---- expectedState

describe('expectedState', () => {
  const truth = scenario();
  const expected = expectedState(truth);

  it('imports every exported service in every cluster where its namespace exists, never an ExternalName one', () => {
    expect(importsOf(expectedOf(expected, 'cluster-1'))).toEqual([
      'demo/db:Headless',
      'demo/web:ClusterSetIP',
      'other/api:ClusterSetIP',
    ]);
    expect(importsOf(expectedOf(expected, 'cluster-2'))).toEqual(['demo/db:Headless', 'demo/web:ClusterSetIP']);
    expect(importsOf(expectedOf(expected, 'cluster-3'))).toEqual([
      'demo/db:Headless',
      'demo/web:ClusterSetIP',
      'other/api:ClusterSetIP',
    ]);
    for (const c of expected.clusters) expect(c.clusterId).toBe(c.name);
  });

  it('merges conflicting ports, lists both exporters and flags the conflict on both exports', () => {
    for (const c of expected.clusters) {
      const web = c.resolution.serviceImports.find((si) => si.metadata.name === 'web')!;
      expect(web.spec.ports).toEqual([HTTP, SCTP]);
      expect(web.spec.ips).toEqual([]);
      expect(web.status.clusters).toEqual([{ cluster: 'cluster-1' }, { cluster: 'cluster-2' }]);
    }
    const want = ['Valid=True/Valid', 'Ready=True/Exported', 'Conflict=True/PortConflict'];
    expect(conditions(expectedOf(expected, 'cluster-1'), 'demo', 'web')).toEqual(want);
    expect(conditions(expectedOf(expected, 'cluster-2'), 'demo', 'web')).toEqual(want);
    expect(conditions(expectedOf(expected, 'cluster-1'), 'demo', 'db')).toEqual([
      'Valid=True/Valid',
      'Ready=True/Exported',
      'Conflict=False/NoConflicts',
    ]);
    expect(conditions(expectedOf(expected, 'cluster-3'), 'demo', 'ext')).toEqual([
      'Valid=False/InvalidServiceType',
      'Ready=False/Failed',
    ]);
  });

  it('imports one slice per source cluster, from the exporters own slices only', () => {
    const slices = expectedOf(expected, 'cluster-2').resolution.endpointSlices.map(
      (s) =>
        `${s.metadata.labels[LABEL_SERVICE_NAME]}<-${s.metadata.labels[LABEL_SOURCE_CLUSTER]}:${s.endpoints.length}`,
    );
    expect(slices).toEqual(['db<-cluster-1:1', 'web<-cluster-1:2', 'web<-cluster-2:1']);
  });

  it('drops the slices of withdrawn origins, keeping the import, its clusters and the conditions', () => {
    const withdrawn = expectedState(truth, { withdrawn: new Map([['cluster-3', ['cluster-2']]]) });
    const c3 = expectedOf(withdrawn, 'cluster-3');
    const sources = c3.resolution.endpointSlices.map((s) => s.metadata.labels[LABEL_SOURCE_CLUSTER]);
    expect(sources).toEqual(['cluster-1', 'cluster-1', 'cluster-1']);
    // The imports stay, status.clusters included; only their Ready message leaves the withdrawn origin out.
    const withoutConditions = (r: ReturnType<typeof expectedOf>) =>
      r.resolution.serviceImports.map((si) => ({ ...si, status: { clusters: si.status.clusters } }));
    expect(withoutConditions(c3)).toEqual(withoutConditions(expectedOf(expected, 'cluster-3')));
    expect(c3.resolution.serviceImports.find((si) => si.metadata.name === 'web')?.status.conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'Imported from 1 cluster(s): cluster-1.' },
    ]);
    expect(expectedOf(withdrawn, 'cluster-1')).toEqual(expectedOf(expected, 'cluster-1'));
  });

  it('ignores what the nodes wrote: our slices and derived Services never feed back into exports', () => {
    const written = converged(truth, expected);
    expect(derivedServicesOf(of(written, 'cluster-2'))).toHaveLength(1);
    expect(importedSlicesOf(of(written, 'cluster-2'))).toHaveLength(3);
    expect(expectedState(written)).toEqual(expected);
  });

  it('expects no import in a namespace being deleted, and nothing of a cluster without a valid identity', () => {
    const deleting = edit(truth, 'cluster-3', (c) => ({
      ...c,
      namespaces: [namespace('demo'), namespace('other', true)],
    }));
    expect(importsOf(expectedOf(expectedState(deleting), 'cluster-3'))).toEqual([
      'demo/db:Headless',
      'demo/web:ClusterSetIP',
    ]);
    const noSet = edit(truth, 'cluster-2', (c) => ({ ...c, clusterProperties: properties('cluster-2').slice(0, 1) }));
    const e = expectedState(noSet);
    expect(expectedOf(e, 'cluster-2').clusterId).toBeUndefined();
    expect(expectedOf(e, 'cluster-2').resolution.serviceImports).toEqual([]);
    const web = expectedOf(e, 'cluster-1').resolution.serviceImports.find((si) => si.metadata.name === 'web')!;
    expect(web.status.clusters).toEqual([{ cluster: 'cluster-1' }]);
  });
});

// ---- diffState

describe('diffState', () => {
  const truth = scenario();
  const expected = expectedState(truth);
  const good = converged(truth, expected);

  it('reports nothing when every cluster holds what it must', () => {
    expect(diffState(expected, good)).toEqual([]);
  });

  it('reports everything missing where no node wrote anything', () => {
    const d = diffState(expected, truth);
    expect(d.every((x) => x.what === 'missing')).toBe(true);
    const count = (kind: Difference['kind']) => d.filter((x) => x.kind === kind).length;
    expect(count('ServiceImport')).toBe(3 + 2 + 3);
    expect(count('DerivedService')).toBe(2 + 1 + 2);
    expect(count('EndpointSlice')).toBe(4 + 3 + 4);
    expect(count('ExportConditions')).toBe(3 + 1 + 1);
  });

  it('reports a missing imported slice, and only that', () => {
    const slice = importedSlicesOf(of(good, 'cluster-2'))[0]!;
    const actual = edit(good, 'cluster-2', (c) => ({
      ...c,
      endpointSlices: c.endpointSlices.filter((s) => s !== slice),
    }));
    const d = diffState(expected, actual);
    expect(brief(d)).toEqual([`cluster-2 EndpointSlice demo/${slice.metadata!.name} missing`]);
  });

  it('reports an orphan import, and only that', () => {
    const ghost: ServiceImport = {
      metadata: { name: 'ghost', namespace: 'demo', uid: 'u-ghost' },
      spec: { type: 'Headless', ports: [HTTP], ips: [], sessionAffinity: 'None', ipFamilies: ['IPv4'] },
    };
    const actual = edit(good, 'cluster-3', (c) => ({ ...c, serviceImports: [...c.serviceImports, ghost] }));
    expect(brief(diffState(expected, actual))).toEqual(['cluster-3 ServiceImport demo/ghost orphan']);
  });

  const changeImport = (change: (si: ServiceImport) => ServiceImport) =>
    edit(good, 'cluster-3', (c) => ({
      ...c,
      serviceImports: c.serviceImports.map((si) => (si.metadata.name === 'web' ? change(si) : si)),
    }));

  it('reports a wrong port as a different import, naming the field', () => {
    const actual = changeImport((si) => ({ ...si, spec: { ...si.spec, ports: [{ ...HTTP, port: 81 }, SCTP] } }));
    const d = diffState(expected, actual);
    expect(brief(d)).toEqual(['cluster-3 ServiceImport demo/web different']);
    expect(d[0]!.detail).toMatch(/^spec\.ports: want .*"port":80.*got .*"port":81/);
  });

  it('reports spec.ips that are not the derived Service clusterIPs', () => {
    const actual = changeImport((si) => ({ ...si, spec: { ...si.spec, ips: ['10.103.9.9'] } }));
    const d = diffState(expected, actual);
    expect(brief(d)).toEqual(['cluster-3 ServiceImport demo/web different']);
    expect(d[0]!.detail).toContain('spec.ips');
    expect(d[0]!.detail).toContain('10.103.9.9');
  });

  it('reports wrong status.clusters, a wrong condition and an orphan derived Service, never an owner', () => {
    let actual = changeImport((si) => ({ ...si, status: { clusters: [{ cluster: 'cluster-1' }] } }));
    actual = edit(actual, 'cluster-1', (c) => ({
      ...c,
      serviceExports: c.serviceExports.map((se) =>
        se.metadata.name !== 'web'
          ? se
          : {
              ...se,
              status: {
                conditions: (se.status?.conditions ?? []).map((x) =>
                  x.type === 'Conflict' ? { ...x, status: 'False' as const, reason: 'NoConflicts' } : x,
                ),
              },
            },
      ),
    }));
    actual = edit(actual, 'cluster-2', (c) => ({
      ...c,
      endpointSlices: c.endpointSlices.map((s) =>
        s.metadata?.labels?.[LABEL_SERVICE_NAME] === 'db'
          ? {
              ...s,
              // An earlier version's owner: slices are owned by nothing now, and an owner is no difference.
              metadata: {
                ...s.metadata,
                ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'x', uid: 'uid-x', controller: true }],
              },
            }
          : s,
      ),
      services: [
        ...c.services,
        {
          metadata: {
            name: derivedServiceName('demo', 'gone'),
            namespace: 'demo',
            labels: { 'app.kubernetes.io/managed-by': 'mcs-gossip.x-k8s.io', [LABEL_SERVICE_NAME]: 'gone' },
          },
          spec: { type: 'ClusterIP', ports: [HTTP] },
        },
      ],
    }));
    const d = diffState(expected, actual);
    expect(brief(d)).toEqual([
      'cluster-1 ExportConditions demo/web different',
      `cluster-2 DerivedService demo/${derivedServiceName('demo', 'gone')} orphan`,
      'cluster-3 ServiceImport demo/web different',
    ]);
    expect(d[0]!.detail).toContain('got Conflict=False/NoConflicts');
    expect(d[2]!.detail).toMatch(/^status\.clusters/);
  });

  it('does not count what the API server defaults or sets', () => {
    const actual: GroundTruth = {
      clusters: good.clusters.map((c) => ({
        ...c,
        serviceImports: c.serviceImports.map((si) => ({
          ...si,
          metadata: { ...si.metadata, resourceVersion: '42', generation: 3, creationTimestamp: T3 },
          status: { ...si.status, conditions: [] },
        })),
        endpointSlices: c.endpointSlices.map((s) => ({
          ...s,
          metadata: { ...s.metadata, resourceVersion: '7', generation: 1 },
          ports: (s.ports ?? []).map((p) => ({ name: '', protocol: 'TCP', ...p })),
        })),
        services: c.services.map((s) => ({
          ...s,
          metadata: { ...s.metadata, resourceVersion: '9' },
          spec: {
            ...s.spec,
            internalTrafficPolicy: 'Cluster',
            ports: (s.spec?.ports ?? []).map((p) => ({ targetPort: p.port, ...p })),
          },
        })),
        serviceExports: c.serviceExports.map((se) => ({
          ...se,
          status: {
            conditions: (se.status?.conditions ?? []).map((x) => ({
              ...x,
              message: 'reworded',
              lastTransitionTime: '2030-01-01T00:00:00Z',
              observedGeneration: 1,
            })),
          },
        })),
      })),
    };
    expect(diffState(expected, actual)).toEqual([]);
  });
});

// ---- comparing snapshots

describe('ipsOf and lostExports', () => {
  const truth = scenario();
  const good = converged(truth, expectedState(truth));

  it('lists each import ClusterSetIPs per cluster: headless imports have none', () => {
    const ips = ipsOf(good);
    expect(ips.get('cluster-2')?.get('demo/web')).toHaveLength(1);
    expect(ips.get('cluster-2')?.get('demo/db')).toEqual([]);
    expect(ips.get('cluster-2')?.has('other/api')).toBe(false);
    expect(ips.get('cluster-1')?.get('demo/web')).not.toEqual(ips.get('cluster-2')?.get('demo/web'));
  });

  it('finds an import that vanished while its export is valid, not one whose export went away', () => {
    const dropImport = edit(good, 'cluster-3', (c) => ({
      ...c,
      serviceImports: c.serviceImports.filter((si) => si.metadata.name !== 'api'),
    }));
    expect(lostExports(good, dropImport)).toEqual([
      { cluster: 'cluster-3', namespace: 'other', name: 'api', origins: ['cluster-1'] },
    ]);
    const unexported = edit(dropImport, 'cluster-1', (c) => ({
      ...c,
      serviceExports: c.serviceExports.filter((se) => se.metadata.name !== 'api'),
    }));
    expect(lostExports(good, unexported)).toEqual([]);
    expect(lostExports(good, good)).toEqual([]);
  });
});

// ---- properties over generated ClusterSets

const NAMESPACES = ['ns1', 'ns2'] as const;
const NAMES = ['web', 'db'] as const;
const VARIANTS = ['none', 'http', 'http+sctp', 'http81', 'headless', 'nodeport', 'externalname'] as const;
const CREATED = [T1, T2, T3] as const;

interface ServiceSpec {
  readonly ns: number;
  readonly name: number;
  readonly variant: (typeof VARIANTS)[number];
  readonly exported: boolean;
  readonly created: number;
  readonly endpoints: number;
}

const serviceSpecArb: fc.Arbitrary<ServiceSpec> = fc.record({
  ns: fc.nat(NAMESPACES.length - 1),
  name: fc.nat(NAMES.length - 1),
  variant: fc.constantFrom(...VARIANTS),
  // Mostly exported, so most generated ClusterSets import something and conflicts are common.
  exported: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
  created: fc.nat(CREATED.length - 1),
  endpoints: fc.nat(3),
});

const clusterArb = fc.record({
  namespaces: fc.subarray([...NAMESPACES], { minLength: 1 }),
  services: fc.array(serviceSpecArb, { minLength: 1, maxLength: 4 }),
});

function specFor(variant: ServiceSpec['variant']): k8s.V1ServiceSpec | undefined {
  switch (variant) {
    case 'none':
      return undefined;
    case 'http':
      return {};
    case 'http+sctp':
      return {
        ports: [
          { ...HTTP, targetPort: 8080 },
          { ...SCTP, targetPort: 142 },
        ],
      };
    case 'http81':
      return { ports: [{ ...HTTP, port: 81, targetPort: 8080 }] };
    case 'headless':
      return { clusterIP: 'None', clusterIPs: ['None'] };
    case 'nodeport':
      return { type: 'NodePort', ports: [{ ...HTTP, targetPort: 8080, nodePort: 30080 }] };
    case 'externalname':
      return { type: 'ExternalName', externalName: 'example.com', clusterIP: undefined, clusterIPs: undefined };
  }
}

/** A generated ClusterSet: objects only in namespaces that exist, at most one Service and export per key. */
const truthArb: fc.Arbitrary<GroundTruth> = fc.array(clusterArb, { minLength: 2, maxLength: 3 }).map((clusters) => ({
  clusters: clusters.map((g, i) => {
    const seen = new Set<string>();
    const specs = g.services.filter((s) => {
      const key = `${NAMESPACES[s.ns]}/${NAMES[s.name]}`;
      if (!g.namespaces.includes(NAMESPACES[s.ns]!) || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const services: k8s.V1Service[] = [];
    const serviceExports: ServiceExport[] = [];
    const endpointSlices: k8s.V1EndpointSlice[] = [];
    for (const s of specs) {
      const ns = NAMESPACES[s.ns]!;
      const name = NAMES[s.name]!;
      const spec = specFor(s.variant);
      if (spec !== undefined) services.push(service(ns, name, spec));
      if (s.exported) serviceExports.push(serviceExport(ns, name, CREATED[s.created]!));
      if (spec !== undefined && s.endpoints > 0)
        endpointSlices.push(
          localSlice(
            ns,
            name,
            Array.from({ length: s.endpoints }, (_, j) => `10.20${i + 1}.0.${j + 1}`),
          ),
        );
    }
    return cluster({
      name: `cluster-${i + 1}`,
      namespaces: g.namespaces.map((n) => namespace(n)),
      services,
      serviceExports,
      endpointSlices,
    });
  }),
}));

/** Every object of ours in a converged truth, each with the truth that lacks it and the difference that must show. */
function removals(t: GroundTruth): { readonly without: GroundTruth; readonly want: string }[] {
  const out: { without: GroundTruth; want: string }[] = [];
  for (const c of t.clusters) {
    for (const si of c.serviceImports)
      out.push({
        without: edit(t, c.name, (x) => ({ ...x, serviceImports: x.serviceImports.filter((y) => y !== si) })),
        want: `${c.name} ServiceImport ${si.metadata.namespace}/${si.metadata.name} missing`,
      });
    for (const s of derivedServicesOf(c))
      out.push({
        without: edit(t, c.name, (x) => ({ ...x, services: x.services.filter((y) => y !== s) })),
        want: `${c.name} DerivedService ${s.metadata?.namespace}/${s.metadata?.name} missing`,
      });
    for (const s of importedSlicesOf(c))
      out.push({
        without: edit(t, c.name, (x) => ({ ...x, endpointSlices: x.endpointSlices.filter((y) => y !== s) })),
        want: `${c.name} EndpointSlice ${s.metadata?.namespace}/${s.metadata?.name} missing`,
      });
    for (const se of c.serviceExports)
      out.push({
        without: edit(t, c.name, (x) => ({
          ...x,
          serviceExports: x.serviceExports.map((y) => (y === se ? { ...y, status: { conditions: [] } } : y)),
        })),
        want: `${c.name} ExportConditions ${se.metadata.namespace}/${se.metadata.name} missing`,
      });
  }
  return out;
}

describe('properties', () => {
  it('a converged ClusterSet has no differences, and recomputing from it changes nothing', () => {
    fc.assert(
      fc.property(truthArb, (t) => {
        const expected = expectedState(t);
        const written = converged(t, expected);
        expect(diffState(expected, written)).toEqual([]);
        expect(expectedState(written)).toEqual(expected);
      }),
    );
  });

  it('the order clusters are read in changes no expectation', () => {
    fc.assert(
      fc.property(truthArb, (t) => {
        const forward = expectedState(t).clusters;
        const backward = expectedState({ clusters: [...t.clusters].reverse() }).clusters;
        expect([...backward].reverse()).toEqual(forward);
      }),
    );
  });

  it('removing any one object of ours is reported as exactly that object missing', () => {
    fc.assert(
      fc.property(
        truthArb.chain((t) => {
          const expected = expectedState(t);
          const all = removals(converged(t, expected));
          return all.length === 0 ? fc.constant(undefined) : fc.constantFrom(...all.map((r) => ({ expected, ...r })));
        }),
        (picked) => {
          if (picked === undefined) return;
          expect(brief(diffState(picked.expected, picked.without))).toEqual([picked.want]);
        },
      ),
    );
  });
});
