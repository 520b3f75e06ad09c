import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { announceOf } from './mcs-node.js';

function svc(type: string, status: k8s.V1ServiceStatus = {}, nodePort?: number): k8s.V1Service {
  return {
    spec: { type, ports: [{ name: 'gossip', port: 7946, ...(nodePort === undefined ? {} : { nodePort }) }] },
    status,
  };
}

describe('announceOf: what a node announces from its own gossip Service', () => {
  it('a LoadBalancer: every ingress IP or hostname at the Service port', () => {
    const lb = svc('LoadBalancer', { loadBalancer: { ingress: [{ ip: '203.0.113.7' }, { hostname: 'a.example' }] } });
    expect(announceOf(lb, undefined).addrs).toEqual(['/dns/a.example/tcp/7946', '/ip4/203.0.113.7/tcp/7946']);
    expect(
      announceOf(svc('LoadBalancer', { loadBalancer: { ingress: [{ ip: '2001:db8::7' }] } }), undefined).addrs,
    ).toEqual(['/ip6/2001:db8::7/tcp/7946']);
  });

  it('a LoadBalancer without ingress yet, a NodePort, a ClusterIP', () => {
    expect(announceOf(svc('LoadBalancer'), undefined)).toEqual({
      addrs: [],
      problem: 'the gossip LoadBalancer has no ingress address yet',
    });
    expect(announceOf(svc('LoadBalancer', {}, 30946), '10.0.0.5').addrs).toEqual(['/ip4/10.0.0.5/tcp/30946']);
    expect(announceOf(svc('NodePort', {}, 30946), '10.0.0.5').addrs).toEqual(['/ip4/10.0.0.5/tcp/30946']);
    expect(announceOf(svc('NodePort', {}, 30946), undefined).problem).toContain('--node-ip');
    expect(announceOf(svc('ClusterIP'), '10.0.0.5').problem).toContain('set --announce');
  });
});
