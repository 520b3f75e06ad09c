import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  canonicalAddress,
  ClusterIpPlanner,
  formatAddress,
  pickAddress,
  rangesOf,
  serviceIpIndex,
  serviceRange,
  type ServiceCidrObject,
} from './cluster-ip.js';
import { isClusterIpRefusal, WriteError } from './import-writer.js';

const v4 = (ip: string) => {
  const [a, b, c, d] = ip.split('.').map(BigInt);
  return (a! << 24n) | (b! << 16n) | (c! << 8n) | d!;
};

describe('serviceRange: the band the API server gives out dynamically (KEP-3070)', () => {
  it('leaves the lower band (size/16, between 16 and 256) and the network and broadcast addresses out', () => {
    // /16: 65,536 addresses, band offset capped at 256.
    expect(serviceRange('10.96.0.0/16')).toEqual({
      cidr: '10.96.0.0/16',
      family: 'IPv4',
      first: v4('10.96.1.1'),
      count: 65_536n - 2n - 256n,
    });
    // /24: 256 / 16 = 16 → the minimum 16.
    expect(serviceRange('10.0.0.0/24')).toMatchObject({ first: v4('10.0.0.17'), count: 254n - 16n });
    // /20: 4,096 / 16 = 256.
    expect(serviceRange('10.0.0.0/20')).toMatchObject({ first: v4('10.0.1.1'), count: 4_094n - 256n });
    // /28: 16 addresses, 14 usable: an offset of 16 would leave none, so the whole range is dynamic.
    expect(serviceRange('10.0.0.0/28')).toMatchObject({ first: v4('10.0.0.1'), count: 14n });
    // Under 16 addresses: no static band at all.
    expect(serviceRange('10.0.0.0/29')).toMatchObject({ first: v4('10.0.0.1'), count: 6n });
  });

  it('reads IPv6 (no broadcast address) and refuses what is not a CIDR', () => {
    const r = serviceRange('fd00:10:96::/112')!;
    expect(r.family).toBe('IPv6');
    expect(formatAddress('IPv6', r.first)).toBe('fd00:10:96::101');
    expect(r.count).toBe(65_536n - 1n - 256n);
    expect(serviceRange('10.0.0.1')).toBeUndefined();
    expect(serviceRange('nonsense/12')).toBeUndefined();
    expect(serviceRange('10.0.0.0/32')).toBeUndefined();
  });
});

describe('pickAddress', () => {
  const range = serviceRange('10.96.0.0/16')!;

  it('is a function of the range and the key, inside the dynamic band', () => {
    const a = pickAddress(range, 'web/web', () => false)!;
    expect(pickAddress(range, 'web/web', () => false)).toBe(a);
    expect(pickAddress(range, 'web/other', () => false)).not.toBe(a);
    const n = v4(a);
    expect(n >= range.first && n < range.first + range.count).toBe(true);
  });

  it('takes the next free address after taken ones, wrapping round the band, and gives up when all are taken', () => {
    const small = serviceRange('10.0.0.0/29')!; // 10.0.0.1 … 10.0.0.6
    const first = pickAddress(small, 'k', () => false)!;
    const taken = new Set([first]);
    const second = pickAddress(small, 'k', (ip) => taken.has(ip))!;
    expect(second).not.toBe(first);
    const order = (ip: string) => Number((v4(ip) - small.first - (v4(first) - small.first) + 6n) % 6n);
    expect(order(second)).toBe(1);
    const all = new Set(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect(pickAddress(small, 'k', (ip) => all.has(ip))).toBeUndefined();
  });
});

describe('rangesOf: the ServiceCIDRs picked from', () => {
  const cidr = (name: string, cidrs: string[], extra: Partial<ServiceCidrObject> = {}): ServiceCidrObject => ({
    metadata: { name },
    spec: { cidrs },
    ...extra,
  });

  it('prefers the default `kubernetes`, one range per family, and skips ranges being deleted or not Ready', () => {
    const ranges = rangesOf([
      cidr('a-extra', ['10.200.0.0/16', 'fd00:99::/112']),
      cidr('kubernetes', ['10.96.0.0/16']),
      cidr('b-gone', ['fd00:1::/112'], { metadata: { name: 'b-gone', deletionTimestamp: '2026-12-01T00:00:00Z' } }),
      cidr('c-notready', ['fd00:2::/112'], { status: { conditions: [{ type: 'Ready', status: 'False' }] } }),
    ]);
    expect(ranges.get('IPv4')?.cidr).toBe('10.96.0.0/16');
    expect(ranges.get('IPv6')?.cidr).toBe('fd00:99::/112');
    expect(rangesOf([]).size).toBe(0);
  });
});

describe('ClusterIpPlanner', () => {
  it('gives one address per family in order, never one in flight, and nothing for a family it has no range of', () => {
    const p = new ClusterIpPlanner();
    expect(p.pick('web/web', ['IPv4'], () => false)).toBeUndefined();
    p.setRanges(rangesOf([{ metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16', 'fd00:10::/112'] } }]));
    const dual = p.pick('web/web', ['IPv6', 'IPv4'], () => false)!;
    expect(dual.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'))).toEqual(['IPv6', 'IPv4']);
    // The same key again while the first create is in flight: other addresses.
    const again = p.pick('web/web', ['IPv6', 'IPv4'], () => false)!;
    expect(again[0]).not.toBe(dual[0]);
    expect(again[1]).not.toBe(dual[1]);
    p.release(dual);
    p.release(again);
    expect(p.pick('web/web', ['IPv6', 'IPv4'], () => false)).toEqual(dual);
    p.setRanges(rangesOf([{ metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16'] } }]));
    expect(p.pick('web/web', ['IPv4', 'IPv6'], () => false)).toBeUndefined();
  });

  it('writes addresses as the API server does, so that cached ones compare', () => {
    expect(canonicalAddress('fd00:0010:0000::0001')).toBe('fd00:10::1');
    expect(canonicalAddress('10.96.0.10')).toBe('10.96.0.10');
    expect(canonicalAddress('None')).toBeUndefined();
    expect(canonicalAddress('10.0.0.0/8')).toBeUndefined();
    // The Services-cache index: the primary cluster IP, canonical; nothing for a headless Service.
    expect(serviceIpIndex({ spec: { clusterIP: 'fd00:0010::0001' } })).toBe('fd00:10::1');
    expect(serviceIpIndex({ spec: { clusterIP: 'None' } })).toBeUndefined();
    expect(serviceIpIndex({})).toBeUndefined();
  });
});

describe('isClusterIpRefusal', () => {
  const failure = (resource: string, code: number, message: string) =>
    new WriteError(
      resource,
      'create',
      'lb/x',
      new k8s.ApiException(code, 'refused', JSON.stringify({ kind: 'Status', reason: 'Invalid', message }), {}),
    );

  it('is a 422 on a Service naming spec.clusterIPs, nothing else', () => {
    const taken =
      'Service "derived-x" is invalid: spec.clusterIPs: Invalid value: ["10.96.1.5"]: failed to allocate IP 10.96.1.5: provided IP is already allocated';
    expect(isClusterIpRefusal(failure('services', 422, taken))).toBe(true);
    expect(isClusterIpRefusal(failure('services', 422, 'spec.ports[0].port: Invalid value: 0'))).toBe(false);
    expect(isClusterIpRefusal(failure('services', 403, taken))).toBe(false);
    expect(isClusterIpRefusal(failure('endpointslices', 422, taken))).toBe(false);
  });
});
