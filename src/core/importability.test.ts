import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterSetState } from './cluster-set-state.js';
import type { Endpoint, EndpointGroup, ExportedService, ExportRecord, ServicePort } from './export-record.js';
import {
  canonicalIPv6Of,
  importProblem,
  isIPv4,
  isIPv6,
  labelValueError,
  MAX_ANNOTATIONS_BYTES,
  qualifiedNameError,
} from './importability.js';
import { mergePorts } from './port-merge.js';
import { resolve, resolveService } from './resolve.js';
import {
  conditionsOf,
  exported,
  namespace,
  resolveClusterSet,
  service,
  serviceExport,
} from './test-support/fixtures.js';

const NS = 'lb';
const T1 = '2026-01-01T00:00:00Z';
const T2 = '2026-01-02T00:00:00Z';

function ports(n: number): ServicePort[] {
  return Array.from({ length: n }, (_, i) => ({ name: `p${i}`, protocol: 'TCP', port: 1000 + i }));
}

function group(addresses: readonly string[], extra: Partial<Endpoint> = {}, g: Partial<EndpointGroup> = {}) {
  return {
    addressType: 'IPv4' as const,
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true }, ...extra })),
    ...g,
  };
}

describe('Kubernetes name rules', () => {
  it('qualified names: an optional DNS subdomain prefix and a name part of at most 63', () => {
    for (const ok of ['a', 'A.b-c_d', 'example.com/MyName', 'kubernetes.io/h2c', 'x'.repeat(63), '1'])
      expect(qualifiedNameError(ok), ok).toBeUndefined();
    for (const bad of ['a b', '', '-a', 'a-', 'x'.repeat(64), 'Example.com/a', '/a', 'a/', 'a/b/c', 'bad key!'])
      expect(qualifiedNameError(bad), bad).toBeDefined();
  });

  it('label values: empty, or a name part of at most 63', () => {
    for (const ok of ['', 'x', 'a.b_c-D', 'v'.repeat(63)]) expect(labelValueError(ok), ok).toBeUndefined();
    for (const bad of ['a b', '-x', 'v'.repeat(64), 'a/b']) expect(labelValueError(bad), bad).toBeDefined();
  });

  it('IP addresses as the strict validation reads them', () => {
    expect(isIPv4('10.1.2.3')).toBe(true);
    expect(isIPv4('010.1.2.3')).toBe(false);
    expect(isIPv4('256.1.1.1')).toBe(false);
    expect(isIPv6('2001:db8::1')).toBe(true);
    expect(isIPv6('::ffff:10.0.0.1')).toBe(true);
    expect(isIPv6('2001:db8::1::2')).toBe(false);
    expect(isIPv6('1:2:3:4:5:6:7:8:9')).toBe(false);
    expect(canonicalIPv6Of('2001:0DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIPv6Of('2001:db8:0:1:0:0:0:1')).toBe('2001:db8:0:1::1');
    expect(canonicalIPv6Of('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canonicalIPv6Of('1:0:0:2:0:0:3:4')).toBe('1::2:0:0:3:4');
    expect(canonicalIPv6Of('1:2:3:4:5:6:0:8')).toBe('1:2:3:4:5:6:0:8');
    expect(canonicalIPv6Of('::')).toBe('::');
  });

  it('canonical IPv6 text is a fixed point and parses back to itself', () => {
    const group16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(fc.array(fc.oneof(group16, fc.constant(0)), { minLength: 8, maxLength: 8 }), (g) => {
        const text = g.map((x) => x.toString(16)).join(':');
        const canonical = canonicalIPv6Of(text);
        expect(canonical).toBeDefined();
        expect(canonicalIPv6Of(canonical!)).toBe(canonical);
      }),
    );
  });
});

describe('importProblem', () => {
  it('a plain export is importable', () => {
    expect(importProblem(exported())).toBeUndefined();
    expect(importProblem(exported({ ports: ports(100), endpointGroups: [group(['10.0.0.1'])] }))).toBeUndefined();
  });

  it('names the exported label or annotation the ServiceImport could not carry', () => {
    const label = importProblem(exported({ exportedLabels: { 'a b': 'x' } }));
    expect(label?.reason).toBe('InvalidExportedLabels');
    expect(label?.message).toContain('spec.exportedLabels["a b"]');
    expect(importProblem(exported({ exportedLabels: { ok: 'not ok' } }))?.reason).toBe('InvalidExportedLabels');
    const note = importProblem(exported({ exportedAnnotations: { 'bad key!': 'z' } }));
    expect(note?.reason).toBe('InvalidExportedAnnotations');
    expect(note?.message).toContain('spec.exportedAnnotations["bad key!"]');
    // Annotation keys are checked in lower case; values are free, but their total size is bounded.
    expect(importProblem(exported({ exportedAnnotations: { 'Example.COM/Note': 'any value at all' } }))).toBe(
      undefined,
    );
    const big = 'x'.repeat(MAX_ANNOTATIONS_BYTES / 2);
    expect(importProblem(exported({ exportedAnnotations: { a: big, b: big } }))?.message).toContain('262144 bytes');
  });

  it('refuses more ports than a ServiceImport holds, and port lists a Service could not have', () => {
    const many = importProblem(exported({ ports: ports(120) }));
    expect(many?.reason).toBe('UnimportableService');
    expect(many?.field).toBe('spec.ports');
    expect(many?.message).toContain('120 ports');
    const unnamed = [
      { protocol: 'TCP', port: 80 },
      { protocol: 'TCP', port: 81 },
    ];
    expect(importProblem(exported({ ports: unnamed }))?.field).toBe('spec.ports[0].name');
    expect(importProblem(exported({ ports: [] }))?.message).toContain('needs at least one port');
    expect(importProblem(exported({ type: 'Headless', ports: [] }))).toBeUndefined();
    expect(importProblem(exported({ ports: [{ name: 'Http', protocol: 'TCP', port: 80 }] }))?.field).toBe(
      'spec.ports[0].name',
    );
    expect(importProblem(exported({ ports: [{ name: 'h', protocol: 'TCP', port: 80, appProtocol: '' }] }))?.field).toBe(
      'spec.ports[0].appProtocol',
    );
  });

  it('refuses endpoints an EndpointSlice could not hold', () => {
    const e = (addresses: string[], extra: Partial<Endpoint> = {}, g: Partial<EndpointGroup> = {}) =>
      importProblem(exported({ endpointGroups: [group(addresses, extra, g)] }));
    expect(e(['10.0.0.1', '10.0.0.2'])).toBeUndefined();
    expect(e(['010.0.0.1'])?.message).toContain('dotted decimal');
    expect(e(['127.0.0.1'])?.message).toContain('loopback');
    expect(e(['169.254.1.1'])?.message).toContain('link-local');
    expect(e(['10.0.0.1'], { hostname: 'Pod_1' })?.field).toContain('hostname');
    expect(e(['2001:db8::1'], {}, { addressType: 'IPv6' })).toBeUndefined();
    expect(e(['2001:DB8::1'], {}, { addressType: 'IPv6' })?.message).toContain('canonical form ("2001:db8::1")');
    expect(e(['fe80::1'], {}, { addressType: 'IPv6' })?.message).toContain('link-local');
    expect(e(['ff12::1'], {}, { addressType: 'IPv6' })?.message).toContain('multicast');
    expect(e(['224.0.0.9'])?.message).toContain('multicast');
    expect(e(['0.0.0.0'])?.message).toContain('unspecified');
    expect(e(['web.example.com'], {}, { addressType: 'FQDN' })).toBeUndefined();
    expect(e(['web'], {}, { addressType: 'FQDN' })?.message).toContain('two segments');
    const twoUnnamed = { ports: [{ port: 80 }, { port: 81 }] };
    expect(e(['10.0.0.1'], {}, twoUnnamed)?.message).toContain('appears twice');
    expect(e(['::ffff:10.0.0.1'], {}, { addressType: 'IPv6' })?.message).toContain('IPv4-mapped');
  });

  it('refuses a record too large to travel', () => {
    const addresses = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const p = importProblem(
      exported({ endpointGroups: [group(addresses.map((a) => a.replace(/^10\.0\./, '10.9.')))] }),
    );
    expect(p?.reason).toBe('UnimportableEndpoints');
    expect(p?.message).toContain('10000 endpoints');
  });
});

describe('importability at the origin and on receipt', () => {
  it('an unimportable export is Valid=False naming the field, and is not published', () => {
    const r = resolveClusterSet({
      a: [namespace(NS), service(NS, 'pz'), serviceExport(NS, 'pz', T1, { exportedLabels: { 'a b': 'x' } })],
      b: [namespace(NS)],
    });
    const c = conditionsOf(r['a']!, NS, 'pz');
    expect(c['Valid']?.status).toBe('False');
    expect(c['Valid']?.reason).toBe('InvalidExportedLabels');
    expect(c['Valid']?.message).toContain('ServiceExport "lb/pz" spec.exportedLabels["a b"]');
    expect(c['Ready']).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(r['a']!.serviceImports).toEqual([]);
    expect(r['b']!.serviceImports).toEqual([]);
  });

  it('one cluster’s bad export never takes the service from the others', () => {
    const r = resolveClusterSet({
      a: [namespace(NS), service(NS, 'pz'), serviceExport(NS, 'pz', T1, { exportedLabels: { 'a b': 'x' } })],
      b: [namespace(NS), service(NS, 'pz'), serviceExport(NS, 'pz', T2, { exportedLabels: { tier: 'web' } })],
    });
    for (const c of ['a', 'b']) {
      const si = r[c]!.serviceImports.find((i) => i.metadata.name === 'pz');
      expect(si?.status.clusters).toEqual([{ cluster: 'b' }]);
      expect(si?.metadata.labels).toEqual({ tier: 'web' });
    }
    expect(conditionsOf(r['a']!, NS, 'pz')['Valid']?.status).toBe('False');
    expect(conditionsOf(r['b']!, NS, 'pz')['Conflict']?.status).toBe('False');
  });

  it('a peer’s unimportable record is skipped and reported; resolution picks among importable records', () => {
    const state = new ClusterSetState();
    const rec = (origin: string, service: ExportedService): ExportRecord => ({
      origin,
      namespace: NS,
      name: 'pz',
      version: { wallMs: 1, logical: 0 },
      removed: false,
      service,
    });
    // The oldest export, from a peer of another version, carries a label no API server takes.
    state.merge([
      rec('a', exported({ exportCreatedMs: 1, exportedLabels: { 'a b': 'x' } })),
      rec('b', exported({ exportCreatedMs: 2, exportedLabels: { tier: 'web' } })),
    ]);
    const r = resolve(state, { localCluster: 'c', namespaces: [NS] });
    expect(r.serviceImports).toHaveLength(1);
    expect(r.serviceImports[0]!.metadata.labels).toEqual({ tier: 'web' });
    expect(r.serviceImports[0]!.status.clusters).toEqual([{ cluster: 'b' }]);
    expect(r.unimportable).toEqual([
      expect.objectContaining({ origin: 'a', namespace: NS, name: 'pz', problem: expect.objectContaining({}) }),
    ]);
    expect(resolveService(state, `${NS}/pz`)?.exporters).toEqual(['b']);
    // A record whose name could not be a Service's (not a DNS-1035 label) is skipped too.
    const odd = new ClusterSetState();
    odd.merge([{ ...rec('a', exported()), name: 'Pz_X' }]);
    expect(resolve(odd, { localCluster: 'c', namespaces: [NS] }).unimportable[0]?.problem.field).toBe('metadata.name');
    // Only unimportable records: no import at all, still reported.
    const alone = new ClusterSetState();
    alone.merge([rec('a', exported({ ports: ports(101) }))]);
    const r2 = resolve(alone, { localCluster: 'c', namespaces: [NS] });
    expect(r2.serviceImports).toEqual([]);
    expect(r2.unimportable.map((u) => u.problem.field)).toEqual(['spec.ports']);
  });
});

describe('an export with more endpoints than one record carries', () => {
  it('is exported with the endpoints that fit, ready ones first, and says so in Valid', () => {
    const n = 10_000;
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice' as const,
      metadata: { name: 'big-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'big' } },
      addressType: 'IPv4',
      endpoints: Array.from({ length: n }, (_, i) => ({
        addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
        conditions: { ready: i % 10 !== 0, serving: true, terminating: false },
        nodeName: `node-${i % 50}`,
      })),
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    };
    const r = resolveClusterSet({
      a: [namespace(NS), service(NS, 'big'), serviceExport(NS, 'big', T1), slice as never],
      b: [namespace(NS)],
    });
    const valid = conditionsOf(r['a']!, NS, 'big')['Valid'];
    expect(valid?.status).toBe('True');
    expect(valid?.message).toMatch(/exported with \d+ of its 10000 endpoints \(ready ones first\)/);
    const endpoints = r['b']!.endpointSlices.flatMap((s) => s.endpoints);
    expect(endpoints.length).toBeGreaterThan(1000);
    expect(endpoints.length).toBeLessThan(n);
    // Only ready endpoints were kept while ready ones were left.
    expect(endpoints.every((e) => e.conditions.ready !== false)).toBe(true);
  });
});

describe('mergePorts keeps the union a valid Service port list', () => {
  it('an unnamed port joins only an empty union, and the union stops at 100 ports', () => {
    expect(mergePorts([[{ protocol: 'TCP', port: 80 }], [{ name: 'b', protocol: 'TCP', port: 81 }]])).toEqual([
      { protocol: 'TCP', port: 80 },
    ]);
    expect(mergePorts([[{ name: 'a', protocol: 'TCP', port: 80 }], [{ protocol: 'TCP', port: 81 }]])).toEqual([
      { name: 'a', protocol: 'TCP', port: 80 },
    ]);
    expect(
      mergePorts([ports(60), ports(100).map((p) => ({ ...p, name: `q${p.port}`, port: p.port + 1000 }))]),
    ).toHaveLength(100);
  });

  it('the union of importable exporters’ ports is importable, and holds all of the oldest exporter’s ports', () => {
    const portArb = fc.record(
      {
        name: fc.constantFrom('a', 'b', 'c', 'http', 'dns'),
        protocol: fc.constantFrom('TCP', 'UDP'),
        port: fc.integer({ min: 1, max: 6 }),
      },
      { requiredKeys: ['protocol', 'port'] },
    );
    const listArb = fc
      .array(portArb, { maxLength: 5 })
      .filter((ps) => importProblem(exported({ ports: ps })) === undefined);
    fc.assert(
      fc.property(fc.array(listArb, { minLength: 1, maxLength: 4 }), (lists) => {
        const union = mergePorts(lists);
        expect(importProblem(exported({ ports: union }))).toBeUndefined();
        for (const p of lists[0]!) expect(union).toContainEqual(p);
      }),
    );
  });
});
