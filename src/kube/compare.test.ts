import { describe, expect, it } from 'vitest';
import { canonical, derivedServiceProjection, importProjection, sameDesired, sliceProjection } from './compare.js';
import type { DesiredService } from './desired.js';

describe('projections ignore what the API server sets', () => {
  it('canonical sorts keys and drops undefined', () => {
    expect(canonical({ b: 1, a: undefined, c: { y: 2, x: 1 } })).toBe('{"b":1,"c":{"x":1,"y":2}}');
  });

  it('imported slices: endpoint port defaults and server metadata do not count', () => {
    const desired = {
      apiVersion: 'discovery.k8s.io/v1' as const,
      kind: 'EndpointSlice' as const,
      metadata: { name: 's', namespace: 'n', labels: { a: 'b' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
      ports: [{ port: 8080 }],
    };
    const actual = {
      metadata: { name: 's', namespace: 'n', labels: { a: 'b' }, uid: 'u', resourceVersion: '7' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: '', protocol: 'TCP', port: 8080 }],
    };
    expect(sliceProjection(actual)).toBe(sliceProjection(desired));
    expect(sliceProjection({ ...actual, endpoints: [] })).not.toBe(sliceProjection(desired));
  });

  it('ServiceImports: a changed exported label counts', () => {
    const spec = {
      type: 'ClusterSetIP',
      ports: [{ protocol: 'TCP', port: 80 }],
      ips: [],
      sessionAffinity: 'None',
      ipFamilies: ['IPv4'],
    };
    const a = importProjection({ metadata: { labels: { x: '1' } }, spec });
    expect(importProjection({ metadata: { labels: { x: '1' }, uid: 'u' }, spec })).toBe(a);
    expect(importProjection({ metadata: { labels: { x: '2' } }, spec })).not.toBe(a);
    expect(importProjection({ metadata: {}, spec })).not.toBe(a);
  });

  it('derived Services: clusterIP, targetPort and the ClientIP timeout default do not count', () => {
    const want = {
      metadata: { labels: { l: 'v' } },
      spec: {
        type: 'ClusterIP',
        ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
        ipFamilies: ['IPv4'],
        sessionAffinity: 'ClientIP',
      },
    };
    const got = {
      metadata: { labels: { l: 'v' }, uid: 'u' },
      spec: {
        type: 'ClusterIP',
        clusterIP: '10.0.0.9',
        clusterIPs: ['10.0.0.9'],
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 80 }],
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'SingleStack',
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      },
    };
    expect(derivedServiceProjection(got)).toBe(derivedServiceProjection(want));
  });
});

describe('sameDesired', () => {
  const slice = (name: string, address: string) => ({
    apiVersion: 'discovery.k8s.io/v1' as const,
    kind: 'EndpointSlice' as const,
    metadata: { name, namespace: 'n', labels: { a: 'b' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ port: 8080 }],
  });
  const desired = (...slices: ReturnType<typeof slice>[]) =>
    ({ endpointSlices: slices, exportConditions: [] }) as unknown as DesiredService;

  it('is by reference first, by content for equal copies, and tells real differences', () => {
    const d = desired(slice('s-0', '10.0.0.1'));
    expect(sameDesired(d, d)).toBe(true);
    expect(sameDesired(undefined, undefined)).toBe(true);
    expect(sameDesired(d, undefined)).toBe(false);
    expect(sameDesired(d, desired(slice('s-0', '10.0.0.1')))).toBe(true);
    expect(sameDesired(d, desired(slice('s-0', '10.0.0.2')))).toBe(false);
    expect(sameDesired(d, desired(slice('s-1', '10.0.0.1')))).toBe(false);
    expect(sameDesired(d, desired(slice('s-0', '10.0.0.1'), slice('s-1', '10.0.0.1')))).toBe(false);
    expect(
      sameDesired(d, { ...d, exportConditions: [{ type: 'Valid', status: 'True', reason: 'Valid', message: '' }] }),
    ).toBe(false);
  });
});
