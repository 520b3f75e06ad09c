import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterSetState } from './cluster-set-state.js';
import { derivedServiceName } from './derived-name.js';
import type { ExportRecord } from './export-record.js';
import { serviceKey } from './ids.js';
import type { LocalExport } from './local-exports.js';
import { resolve, resolveKeys, type KeyOutcome, type Resolution } from './resolve.js';
import {
  conditionsOf,
  endpointSlice,
  exported,
  historiesArb,
  issue,
  namespace,
  ORIGINS,
  resolveClusterSet,
  service,
  serviceExport,
} from './test-support/fixtures.js';

const T1 = '2026-01-01T00:00:00Z';
const T2 = '2026-01-02T00:00:00Z';
const T3 = '2026-01-03T00:00:00Z';
const NS = 'conformance';

/** The conformance setup: the namespace in every cluster, the hello Service exported from the first. */
function hello(spec: Parameters<typeof service>[2] = {}, exportSpec: Parameters<typeof serviceExport>[3] = {}) {
  return [namespace(NS), service(NS, 'hello', spec), serviceExport(NS, 'hello', T1, exportSpec)];
}

function importOf(r: ReturnType<typeof resolveClusterSet>[string], name = 'hello') {
  return r.serviceImports.find((i) => i.metadata.namespace === NS && i.metadata.name === name);
}

describe('resolve: the ServiceImport specs of the MCS conformance suite', () => {
  it('a ServiceImport exists only as long as at least one cluster exports', () => {
    const both = resolveClusterSet({
      a: hello(),
      b: [namespace(NS), service(NS, 'hello'), serviceExport(NS, 'hello', T2)],
    });
    expect(importOf(both['a']!)?.status.clusters).toEqual([{ cluster: 'a' }, { cluster: 'b' }]);
    const onlyB = resolveClusterSet({ a: [namespace(NS), service(NS, 'hello')], b: hello() });
    expect(importOf(onlyB['a']!)).toBeDefined();
    expect(importOf(onlyB['a']!)?.status.clusters).toEqual([{ cluster: 'b' }]);
    const none = resolveClusterSet({
      a: [namespace(NS), service(NS, 'hello')],
      b: [namespace(NS), service(NS, 'hello')],
    });
    expect(importOf(none['a']!)).toBeUndefined();
    expect(importOf(none['b']!)).toBeUndefined();
  });

  it('only exported labels and annotations reach the ServiceImport', () => {
    const svc = service(NS, 'hello');
    const labelled = { ...svc, metadata: { ...svc.metadata, labels: { own: 'x' }, annotations: { own: 'y' } } };
    const r = resolveClusterSet({
      a: [
        namespace(NS),
        labelled,
        serviceExport(NS, 'hello', T1, {
          exportedLabels: { 'dummy-label': 'true' },
          exportedAnnotations: { 'dummy-annotation': 'true' },
        }),
      ],
    });
    const si = importOf(r['a']!)!;
    expect(si.metadata.labels).toEqual({ 'dummy-label': 'true' });
    expect(si.metadata.annotations).toEqual({ 'dummy-annotation': 'true' });
  });

  it('conflicting exported labels and annotations: the oldest export wins, Conflict on each ServiceExport', () => {
    const r = resolveClusterSet({
      a: hello({}, { exportedLabels: { 'dummy-label': 'true' }, exportedAnnotations: { 'dummy-annotation': 'true' } }),
      b: [
        namespace(NS),
        service(NS, 'hello'),
        serviceExport(NS, 'hello', T2, {
          exportedLabels: { 'dummy-label2': 'true' },
          exportedAnnotations: { 'dummy-annotation2': 'true' },
        }),
      ],
    });
    for (const c of ['a', 'b']) {
      expect(importOf(r[c]!)?.metadata.labels).toEqual({ 'dummy-label': 'true' });
      expect(importOf(r[c]!)?.metadata.annotations).toEqual({ 'dummy-annotation': 'true' });
      const conflict = conditionsOf(r[c]!, NS, 'hello')['Conflict'];
      expect(conflict?.status).toBe('True');
      expect(conflict?.reason).toBe('AnnotationsConflict,LabelsConflict');
    }
  });

  it('a ClusterIP Service becomes a ClusterSetIP ServiceImport in every cluster; unexporting removes it', () => {
    const r = resolveClusterSet({ a: hello(), b: [namespace(NS)] });
    for (const c of ['a', 'b']) expect(importOf(r[c]!)?.spec.type).toBe('ClusterSetIP');
    expect(conditionsOf(r['a']!, NS, 'hello')['Valid']).toMatchObject({ status: 'True', reason: 'Valid' });
    const unexported = resolveClusterSet({ a: [namespace(NS), service(NS, 'hello')], b: [namespace(NS)] });
    for (const c of ['a', 'b']) expect(importOf(unexported[c]!)).toBeUndefined();
  });

  it('sessionAffinity and sessionAffinityConfig equal the exported Service', () => {
    const config = { clientIP: { timeoutSeconds: 10800 } };
    const r = resolveClusterSet({ a: hello({ sessionAffinity: 'ClientIP', sessionAffinityConfig: config }) });
    expect(importOf(r['a']!)?.spec.sessionAffinity).toBe('ClientIP');
    expect(importOf(r['a']!)?.spec.sessionAffinityConfig).toEqual(config);
    const none = resolveClusterSet({ a: hello() });
    expect(importOf(none['a']!)?.spec.sessionAffinity).toBe('None');
    expect(importOf(none['a']!)?.spec.sessionAffinityConfig).toBeUndefined();
  });

  it('a ClusterSetIP import carries the ipFamilies for the runtime to allocate ips (left empty offline)', () => {
    const si = importOf(resolveClusterSet({ a: hello() })['a']!)!;
    expect(si.spec.ipFamilies).toEqual(['IPv4']);
    expect(si.spec.ips).toEqual([]);
  });

  it('ports equal the exported Service’s, sorted by name, appProtocol included', () => {
    const ports = [
      { name: 'tcp', protocol: 'TCP', port: 42, appProtocol: 'kubernetes.io/h2c' },
      { name: 'http', protocol: 'TCP', port: 80 },
      { name: 'udp', protocol: 'UDP', port: 53, appProtocol: 'dns' },
    ];
    const si = importOf(resolveClusterSet({ a: hello({ ports }) })['a']!)!;
    expect(si.spec.ports).toEqual([ports[1], ports[0], ports[2]]);
  });

  it('two clusters, an extra SCTP port in the second: the union of ports and Conflict on both exports', () => {
    const http = { name: 'http', protocol: 'TCP', port: 80 };
    const stcp = { name: 'stcp', protocol: 'SCTP', port: 142 };
    const r = resolveClusterSet({
      a: hello({ ports: [http] }),
      b: [namespace(NS), service(NS, 'hello', { ports: [http, stcp] }), serviceExport(NS, 'hello', T2)],
    });
    for (const c of ['a', 'b']) {
      expect(importOf(r[c]!)?.spec.ports).toEqual([http, stcp]);
      expect(conditionsOf(r[c]!, NS, 'hello')['Conflict']).toMatchObject({ status: 'True', reason: 'PortConflict' });
    }
  });

  it('two clusters, the same port name with another number: the first cluster’s ports and Conflict on both', () => {
    const r = resolveClusterSet({
      a: hello({ ports: [{ name: 'http', protocol: 'TCP', port: 80 }] }),
      b: [
        namespace(NS),
        service(NS, 'hello', { ports: [{ name: 'http', protocol: 'TCP', port: 81 }] }),
        serviceExport(NS, 'hello', T2),
      ],
    });
    for (const c of ['a', 'b']) {
      expect(importOf(r[c]!)?.spec.ports).toEqual([{ name: 'http', protocol: 'TCP', port: 80 }]);
      expect(conditionsOf(r[c]!, NS, 'hello')['Conflict']).toMatchObject({ status: 'True', reason: 'PortConflict' });
    }
  });

  it('a headless Service becomes a Headless ServiceImport in every cluster; unexporting removes it', () => {
    const r = resolveClusterSet({ a: hello({ clusterIP: 'None' }), b: [namespace(NS)] });
    for (const c of ['a', 'b']) expect(importOf(r[c]!)?.spec.type).toBe('Headless');
    const unexported = resolveClusterSet({ a: [namespace(NS), service(NS, 'hello', { clusterIP: 'None' })] });
    expect(importOf(unexported['a']!)).toBeUndefined();
  });

  it('a Headless ServiceImport has no ips, but has ipFamilies', () => {
    const si = importOf(resolveClusterSet({ a: hello({ clusterIP: 'None' }) })['a']!)!;
    expect(si.spec.ips).toEqual([]);
    expect(si.spec.ipFamilies).toEqual(['IPv4']);
  });

  it('an ExternalName Service: Valid=False and no ServiceImport', () => {
    const r = resolveClusterSet({ a: hello({ type: 'ExternalName', externalName: 'example.com' }) });
    expect(conditionsOf(r['a']!, NS, 'hello')['Valid']).toMatchObject({
      status: 'False',
      reason: 'InvalidServiceType',
    });
    expect(importOf(r['a']!)).toBeUndefined();
  });

  it('ClusterIP in the first cluster, headless in the second: ClusterSetIP and Conflict on both', () => {
    const r = resolveClusterSet({
      a: hello(),
      b: [namespace(NS), service(NS, 'hello', { clusterIP: 'None' }), serviceExport(NS, 'hello', T2)],
    });
    for (const c of ['a', 'b']) {
      expect(importOf(r[c]!)?.spec.type).toBe('ClusterSetIP');
      const conflict = conditionsOf(r[c]!, NS, 'hello')['Conflict'];
      expect(conflict).toMatchObject({ status: 'True', reason: 'TypeConflict' });
      expect(conflict?.message).toBe(
        'Conflicting type. Using "ClusterSetIP" from oldest service export in "a". 1/2 clusters disagree.',
      );
    }
  });

  it('internalTrafficPolicy equals the exported Service', () => {
    const r = resolveClusterSet({ a: hello({ internalTrafficPolicy: 'Local' }) });
    expect(importOf(r['a']!)?.spec.internalTrafficPolicy).toBe('Local');
  });

  it('trafficDistribution equals the exported Service', () => {
    const r = resolveClusterSet({ a: hello({ trafficDistribution: 'PreferClose' }) });
    expect(importOf(r['a']!)?.spec.trafficDistribution).toBe('PreferClose');
    expect(importOf(resolveClusterSet({ a: hello() })['a']!)?.spec.trafficDistribution).toBeUndefined();
  });
});

describe('resolve: validity, namespaces, conflicts', () => {
  it('NoService: a ServiceExport without its Service is Valid=False and exports nothing', () => {
    const r = resolveClusterSet({ a: [namespace(NS), serviceExport(NS, 'ghost', T1)] });
    const c = conditionsOf(r['a']!, NS, 'ghost');
    expect(c['Valid']).toMatchObject({ status: 'False', reason: 'NoService' });
    expect(c['Ready']).toMatchObject({ status: 'False', reason: 'Pending' });
    expect(c['Conflict']).toBeUndefined();
    expect(r['a']!.serviceImports).toEqual([]);
  });

  it('InvalidServiceType for ExternalName; NodePort and LoadBalancer export as ClusterSetIP', () => {
    const r = resolveClusterSet({
      a: [
        namespace(NS),
        service(NS, 'ext', { type: 'ExternalName', externalName: 'example.com', clusterIP: undefined }),
        serviceExport(NS, 'ext', T1),
        service(NS, 'np', { type: 'NodePort' }),
        serviceExport(NS, 'np', T1),
        service(NS, 'lb', { type: 'LoadBalancer' }),
        serviceExport(NS, 'lb', T1),
      ],
    });
    expect(conditionsOf(r['a']!, NS, 'ext')['Valid']?.reason).toBe('InvalidServiceType');
    expect(conditionsOf(r['a']!, NS, 'ext')['Ready']).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(importOf(r['a']!, 'np')?.spec.type).toBe('ClusterSetIP');
    expect(importOf(r['a']!, 'lb')?.spec.type).toBe('ClusterSetIP');
    expect(conditionsOf(r['a']!, NS, 'np')['Ready']).toMatchObject({ status: 'True', reason: 'Exported' });
    expect(conditionsOf(r['a']!, NS, 'np')['Conflict']).toMatchObject({ status: 'False', reason: 'NoConflicts' });
  });

  it('no ServiceImport (nor slices) in a cluster where the namespace does not exist', () => {
    const r = resolveClusterSet({
      a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.0.0.1'])],
      b: [namespace('other')],
      c: [namespace(NS)],
    });
    expect(r['b']!.serviceImports).toEqual([]);
    expect(r['b']!.endpointSlices).toEqual([]);
    // Not silently: the resolution names what it skipped, and who exports it.
    expect(r['b']!.namespaceMissing).toEqual([{ namespace: NS, name: 'hello', exporters: ['a'] }]);
    expect(importOf(r['c']!)).toBeDefined();
    expect(r['c']!.endpointSlices).toHaveLength(1);
    expect(r['c']!.namespaceMissing).toEqual([]);
  });

  it('three-way port conflict: merged by name, then by protocol+port, precedence to the oldest', () => {
    const r = resolveClusterSet({
      // Newest: re-uses the name "http" for 8080 (dropped) and TCP/443 under a new name (dropped), adds "metrics".
      c: [
        namespace(NS),
        service(NS, 'hello', {
          ports: [
            { name: 'http', protocol: 'TCP', port: 8080 },
            { name: 'tls', protocol: 'TCP', port: 443 },
            { name: 'metrics', protocol: 'TCP', port: 9090 },
          ],
        }),
        serviceExport(NS, 'hello', T3),
      ],
      a: hello({ ports: [{ name: 'http', protocol: 'TCP', port: 80 }] }),
      b: [
        namespace(NS),
        service(NS, 'hello', {
          ports: [
            { name: 'http', protocol: 'TCP', port: 80 },
            { name: 'https', protocol: 'TCP', port: 443 },
          ],
        }),
        serviceExport(NS, 'hello', T2),
      ],
    });
    for (const c of ['a', 'b', 'c']) {
      expect(importOf(r[c]!)?.spec.ports).toEqual([
        { name: 'http', protocol: 'TCP', port: 80 },
        { name: 'https', protocol: 'TCP', port: 443 },
        { name: 'metrics', protocol: 'TCP', port: 9090 },
      ]);
      const conflict = conditionsOf(r[c]!, NS, 'hello')['Conflict'];
      expect(conflict).toMatchObject({ status: 'True', reason: 'PortConflict' });
      expect(conflict?.message).toContain('"a". 2/3 clusters disagree.');
    }
  });

  it('ties on creationTimestamp are broken by cluster id', () => {
    const r = resolveClusterSet({
      z: [namespace(NS), service(NS, 'hello', { sessionAffinity: 'ClientIP' }), serviceExport(NS, 'hello', T1)],
      m: hello(),
    });
    expect(importOf(r['z']!)?.spec.sessionAffinity).toBe('None');
    expect(conditionsOf(r['z']!, NS, 'hello')['Conflict']?.message).toBe(
      'Conflicting sessionAffinity. Using "None" from oldest service export in "m". 1/2 clusters disagree.',
    );
  });

  it('dual-stack: ipFamilies in order, one imported slice per family; a single-stack exporter conflicts', () => {
    const dual = { ipFamilies: ['IPv6', 'IPv4'], clusterIPs: ['fd00::10', '10.96.0.10'] };
    const r = resolveClusterSet({
      a: [
        ...hello(dual),
        endpointSlice(NS, 'hello', 'hello-v4', 'IPv4', ['10.0.0.1']),
        endpointSlice(NS, 'hello', 'hello-v6', 'IPv6', ['fd00::1']),
      ],
      b: [namespace(NS), service(NS, 'hello'), serviceExport(NS, 'hello', T2)],
    });
    expect(importOf(r['b']!)?.spec.ipFamilies).toEqual(['IPv6', 'IPv4']);
    expect(r['b']!.endpointSlices.map((s) => s.addressType).sort()).toEqual(['IPv4', 'IPv6']);
    expect(conditionsOf(r['b']!, NS, 'hello')['Conflict']).toMatchObject({
      status: 'True',
      reason: 'IPFamilyConflict',
    });
    expect(conditionsOf(r['b']!, NS, 'hello')['Conflict']?.message).toBe(
      'Conflicting ipFamilies. Using ["IPv6","IPv4"] from oldest service export in "a". 1/2 clusters disagree.',
    );
  });

  it('reports several conflicts in one condition, reasons joined by ","', () => {
    const r = resolveClusterSet({
      a: hello(),
      b: [
        namespace(NS),
        service(NS, 'hello', { clusterIP: 'None', internalTrafficPolicy: 'Local', ports: [] }),
        serviceExport(NS, 'hello', T2),
      ],
    });
    expect(conditionsOf(r['a']!, NS, 'hello')['Conflict']?.reason).toBe(
      'PortConflict,TypeConflict,InternalTrafficPolicyConflict',
    );
  });
});

describe('resolve: imported EndpointSlices', () => {
  it('one source cluster per slice, labelled per MCS-SPEC.md, in every cluster including the exporter', () => {
    const r = resolveClusterSet({
      a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.0.0.2', '10.0.0.1'])],
      b: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.1.0.1'])],
    });
    for (const c of ['a', 'b']) {
      const slices = r[c]!.endpointSlices;
      expect(slices.map((s) => s.metadata.labels['multicluster.kubernetes.io/source-cluster'])).toEqual(['a', 'b']);
      for (const s of slices) {
        expect(s.metadata.labels).toMatchObject({
          'multicluster.kubernetes.io/service-name': 'hello',
          'endpointslice.kubernetes.io/managed-by': 'mcs-gossip.x-k8s.io',
          'kubernetes.io/service-name': derivedServiceName(NS, 'hello'),
        });
        expect(s.metadata.name.startsWith(derivedServiceName(NS, 'hello') + '-')).toBe(true);
      }
      expect(slices[0]!.endpoints.map((e) => e.addresses[0])).toEqual(['10.0.0.1', '10.0.0.2']);
    }
    // Same names in every cluster: deterministic.
    expect(r['a']!.endpointSlices.map((s) => s.metadata.name)).toEqual(
      r['b']!.endpointSlices.map((s) => s.metadata.name),
    );
  });

  it('derived names follow the reference: derived- + 10 chars of base32hex(sha256("<ns>/<name>"))', () => {
    expect(derivedServiceName('default', 'hello')).toMatch(/^derived-[0-9a-v]{10}$/);
    expect(derivedServiceName('default', 'hello')).toBe(derivedServiceName('default', 'hello'));
    expect(derivedServiceName('default', 'hello')).not.toBe(derivedServiceName('default', 'hellp'));
  });

  it('withdraws the slices of a withdrawn origin, keeping its import and status', () => {
    const objects = {
      a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.0.0.1'])],
      b: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.1.0.1'])],
    };
    const r = resolveClusterSet(objects, ['b']);
    expect(r['a']!.endpointSlices.map((s) => s.metadata.labels['multicluster.kubernetes.io/source-cluster'])).toEqual([
      'a',
    ]);
    expect(importOf(r['a']!)?.status.clusters).toEqual([{ cluster: 'a' }, { cluster: 'b' }]);
  });

  it('a ServiceImport is Ready=True Ready while an exporter is heard, naming the clusters it imports from', () => {
    const objects = {
      a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.0.0.1'])],
      b: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.1.0.1'])],
    };
    expect(importOf(resolveClusterSet(objects)['a']!)?.status.conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'Imported from 2 cluster(s): a, b.' },
    ]);
    // A withdrawn origin is left out of the message, not of status.clusters.
    const oneWithdrawn = importOf(resolveClusterSet(objects, ['b'])['a']!);
    expect(oneWithdrawn?.status.conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'Imported from 1 cluster(s): a.' },
    ]);
    expect(oneWithdrawn?.status.clusters).toEqual([{ cluster: 'a' }, { cluster: 'b' }]);
  });

  it('a ServiceImport is Ready=False Pending when every exporter is withdrawn, and the same in every cluster', () => {
    const objects = {
      a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', ['10.0.0.1'])],
      b: [namespace(NS)],
    };
    const r = resolveClusterSet(objects, ['a']);
    const ready = importOf(r['b']!)?.status.conditions;
    expect(ready).toHaveLength(1);
    expect(ready![0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'Pending' });
    expect(ready![0]!.message).toContain('(a)');
    expect(ready![0]!.message).not.toContain('\n');
    expect(importOf(r['a']!)?.status.conditions).toEqual(ready);
    expect(r['b']!.endpointSlices).toEqual([]);
  });

  it('splits more than 100 endpoints into several slices', () => {
    const addresses = Array.from({ length: 250 }, (_, i) => `10.0.${Math.floor(i / 200)}.${i % 200}`);
    const r = resolveClusterSet({ a: [...hello(), endpointSlice(NS, 'hello', 'hello-1', 'IPv4', addresses)] });
    expect(r['a']!.endpointSlices.map((s) => s.endpoints.length)).toEqual([100, 100, 50]);
    expect(new Set(r['a']!.endpointSlices.map((s) => s.metadata.name)).size).toBe(3);
  });
});

describe('resolve: determinism', () => {
  it('is independent of the order records arrive in (and of duplicates)', () => {
    fc.assert(
      fc.property(
        historiesArb(6).chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          const twice = [...all, ...all];
          return fc.tuple(
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            fc.shuffledSubarray(twice, { minLength: twice.length, maxLength: twice.length }),
          );
        }),
        fc.subarray(['ns1', 'ns2']),
        ([one, two], namespaces) => {
          const s1 = new ClusterSetState();
          const s2 = new ClusterSetState();
          s1.merge(one);
          for (const r of two) s2.merge([r as ExportRecord]);
          for (const localCluster of ORIGINS) {
            const options = { localCluster, namespaces, withdrawnOrigins: ['cluster-c'] };
            expect(resolve(s1, options)).toEqual(resolve(s2, options));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('reuses nothing stale: resolving after every batch ends where resolving once from scratch does', () => {
    fc.assert(
      fc.property(
        historiesArb(8).chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          return fc.tuple(
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            fc.array(fc.nat(4), { minLength: 1, maxLength: 8 }),
            fc.array(fc.subarray([...ORIGINS]), { minLength: 1, maxLength: 8 }),
          );
        }),
        ([records, cuts, withdrawnSets]) => {
          const incremental = new ClusterSetState();
          let at = 0;
          cuts.forEach((cut, i) => {
            incremental.merge(records.slice(at, at + cut));
            at += cut;
            resolve(incremental, {
              localCluster: 'cluster-a',
              namespaces: ['ns1', 'ns2'],
              withdrawnOrigins: withdrawnSets[i % withdrawnSets.length],
            });
          });
          incremental.merge(records.slice(at));
          const fresh = new ClusterSetState();
          fresh.merge(records);
          const options = { localCluster: 'cluster-b', namespaces: ['ns1', 'ns2'], withdrawnOrigins: withdrawnSets[0] };
          expect(resolve(incremental, options)).toEqual(resolve(fresh, options));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('Ready is True exactly when an exporter is not withdrawn, whatever withdrawn sets were resolved before', () => {
    fc.assert(
      fc.property(
        historiesArb(8).map((h) => ORIGINS.flatMap((o) => issue(o, h[o] ?? []))),
        fc.array(fc.subarray([...ORIGINS]), { minLength: 1, maxLength: 6 }),
        (records, withdrawnSets) => {
          const state = new ClusterSetState();
          state.merge(records);
          for (const withdrawnOrigins of withdrawnSets) {
            const options = { localCluster: 'cluster-a', namespaces: ['ns1', 'ns2'], withdrawnOrigins };
            const r = resolve(state, options);
            const fresh = new ClusterSetState();
            fresh.merge(records);
            expect(r).toEqual(resolve(fresh, options));
            const withdrawn = new Set<string>(withdrawnOrigins);
            for (const si of r.serviceImports) {
              const live = si.status.clusters.map((c) => c.cluster).filter((c) => !withdrawn.has(c));
              expect(si.status.conditions).toHaveLength(1);
              const ready = si.status.conditions[0]!;
              expect(ready.type).toBe('Ready');
              if (live.length > 0) {
                expect(ready).toEqual({
                  type: 'Ready',
                  status: 'True',
                  reason: 'Ready',
                  message: `Imported from ${live.length} cluster(s): ${live.join(', ')}.`,
                });
              } else {
                expect(ready).toMatchObject({ status: 'False', reason: 'Pending' });
              }
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('per-key resolution equals whole resolution, key by key, whatever was resolved before', () => {
    /** The whole resolution regrouped by key, as resolveKeys gives it. */
    const byKey = (r: Resolution, keys: Iterable<string>) => {
      const out = new Map<string, KeyOutcome>();
      for (const key of keys) {
        const [namespace, name] = key.split('/') as [string, string];
        const si = r.serviceImports.find((x) => x.metadata.namespace === namespace && x.metadata.name === name);
        const slices = r.endpointSlices.filter(
          (x) =>
            x.metadata.namespace === namespace && x.metadata.labels['multicluster.kubernetes.io/service-name'] === name,
        );
        const conditions = r.exportConditions.find((c) => c.namespace === namespace && c.name === name)?.conditions;
        const missing = r.namespaceMissing.find((m) => m.namespace === namespace && m.name === name);
        const o: Record<string, unknown> = {
          endpointSlices: slices,
          unimportable: r.unimportable.filter((u) => u.namespace === namespace && u.name === name),
        };
        if (si !== undefined) o['serviceImport'] = si;
        if (conditions !== undefined) o['exportConditions'] = conditions;
        if (missing !== undefined) o['namespaceMissing'] = missing;
        out.set(key, o as unknown as KeyOutcome);
      }
      return out;
    };
    fc.assert(
      fc.property(
        historiesArb(8).chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          return fc.tuple(
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }),
            fc.array(fc.subarray([...ORIGINS]), { minLength: 1, maxLength: 6 }),
            fc.subarray(['ns1', 'ns2']),
            fc.boolean(),
          );
        }),
        ([records, cuts, withdrawnSets, namespaces, explicit]) => {
          const state = new ClusterSetState();
          let at = 0;
          cuts.forEach((cut, i) => {
            // Between batches, resolve some keys only (as a node does), with other withdrawn sets.
            const merged = state.merge(records.slice(at, at + cut));
            at += cut;
            const touched = merged.applied.map((r) => serviceKey(r.namespace, r.name));
            resolveKeys(state, touched, {
              localCluster: 'cluster-a',
              namespaces: new Set(namespaces),
              withdrawnOrigins: withdrawnSets[i % withdrawnSets.length],
            });
          });
          state.merge(records.slice(at));
          const localCluster = 'cluster-a';
          let localExports: LocalExport[] | undefined;
          if (explicit) {
            localExports = state
              .recordsOf(localCluster)
              .filter((r) => !r.removed)
              .map((r) => ({
                namespace: r.namespace,
                name: r.name,
                valid: { type: 'Valid', status: 'True', reason: 'Valid', message: 'ok' },
                ...(r.service === undefined ? {} : { service: r.service }),
              }));
            localExports.push({
              namespace: 'ns1',
              name: 'no-service',
              valid: { type: 'Valid', status: 'False', reason: 'NoService', message: 'none' },
            });
          }
          const options = {
            localCluster,
            namespaces,
            withdrawnOrigins: withdrawnSets[0],
            ...(localExports === undefined ? {} : { localExports }),
          };
          // From a fresh state of the same records (merging is order-independent): its memo shares nothing with the
          // per-key passes above, so a stale memo entry or a missed revision shows as a difference.
          const fresh = new ClusterSetState();
          fresh.merge(records);
          const whole = resolve(fresh, options);
          const keys = new Set([
            ...state.keys(),
            ...(localExports ?? []).map((e) => serviceKey(e.namespace, e.name)),
            'ns2/never-exported',
          ]);
          const perKey = resolveKeys(state, keys, {
            localCluster,
            namespaces: new Set(namespaces),
            withdrawnOrigins: withdrawnSets[0],
            ...(localExports === undefined
              ? {}
              : { localExports: new Map(localExports.map((e) => [serviceKey(e.namespace, e.name), e])) }),
          });
          expect(perKey).toEqual(byKey(whole, keys));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('every cluster computes the same import and the same Conflict condition', () => {
    const s = new ClusterSetState();
    s.merge(issue('cluster-a', [{ key: 0, service: exported({ exportCreatedMs: 5 }) }]));
    s.merge(issue('cluster-b', [{ key: 0, service: exported({ type: 'Headless' }) }]));
    const [a, b] = ['cluster-a', 'cluster-b'].map((c) => resolve(s, { localCluster: c, namespaces: ['ns1'] }));
    expect(a!.serviceImports).toEqual(b!.serviceImports);
    expect(a!.exportConditions[0]!.conditions[2]).toEqual(b!.exportConditions[0]!.conditions[2]);
    expect(a!.serviceImports[0]!.spec.type).toBe('Headless');
  });
});
