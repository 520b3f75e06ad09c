import { describe, expect, it } from 'vitest';
import { UsageError } from '../usage-error.js';
import { parseDuration, parseRunFlags } from './run.js';

const required = ['--identity-key=/k', '--clusterset-key=/p'];
// Two well-formed PeerIds (Ed25519 public keys as identity multihashes).
const X = '12D3KooWKiZbTkYeJHVVTWuhb74ci3GMhmBCNK5i64Prnj6MscKZ';
const Y = '12D3KooWGK3FwA9r1qg5X5PD95DmHkkZJ77jW5RjVYDgj6xbcYV8';

describe('mcs-gossip run flags', () => {
  it('parses durations', () => {
    expect(parseDuration('x', '500ms')).toBe(500);
    expect(parseDuration('x', '10s')).toBe(10_000);
    expect(parseDuration('x', '1.5m')).toBe(90_000);
    expect(parseDuration('x', '250')).toBe(250);
    expect(() => parseDuration('x', '10 parsecs')).toThrow(UsageError);
    expect(() => parseDuration('x', '0s')).toThrow(UsageError);
  });

  it('requires both key files', () => {
    expect(() => parseRunFlags([], {})).toThrow(/--identity-key/);
    expect(() => parseRunFlags(['--identity-key=/k'], {})).toThrow(/--clusterset-key/);
  });

  it('takes repeatable flags, comma lists and defaults', () => {
    const o = parseRunFlags(
      [
        ...required,
        '--listen=/ip4/127.0.0.1/tcp/1',
        '--listen=/ip4/127.0.0.1/tcp/2',
        `--bootstrap=a=/ip4/1.1.1.1/tcp/1/p2p/${X},/ip4/2.2.2.2/tcp/2/p2p/${Y}`,
      ],
      {},
    );
    expect(o.listen).toEqual(['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2']);
    expect(o.bootstrap).toEqual([`a=/ip4/1.1.1.1/tcp/1/p2p/${X}`, `/ip4/2.2.2.2/tcp/2/p2p/${Y}`]);
    expect(o).toMatchObject({ metricsHost: '0.0.0.0', metricsPort: 9464, logLevel: 'info', leaderElect: false });
    expect(o.endpointTtlMs).toBeUndefined();
  });

  it('reads the environment; a flag wins', () => {
    const env = {
      MCS_GOSSIP_IDENTITY_KEY: '/env/k',
      MCS_GOSSIP_CLUSTERSET_KEY: '/env/p',
      MCS_GOSSIP_ENDPOINT_TTL: '45s',
      MCS_GOSSIP_BOOTSTRAP: `/ip4/1.1.1.1/tcp/1/p2p/${X} /ip4/2.2.2.2/tcp/2/p2p/${Y}`,
      MCS_GOSSIP_LEADER_ELECT: 'true',
      POD_NAMESPACE: 'mcs',
      POD_NAME: 'pod-0',
      MCS_GOSSIP_METRICS_ADDR: '127.0.0.1:8080',
    };
    const o = parseRunFlags(['--endpoint-ttl=5s'], env);
    expect(o).toMatchObject({
      identityKey: '/env/k',
      clustersetKey: '/env/p',
      endpointTtlMs: 5000,
      leaderElect: true,
      leaseNamespace: 'mcs',
      leaseIdentity: 'pod-0',
      metricsHost: '127.0.0.1',
      metricsPort: 8080,
    });
    expect(o.bootstrap).toHaveLength(2);
  });

  it('rejects bad values with a usage error', () => {
    expect(() => parseRunFlags([...required, '--metrics-addr=nope'], {})).toThrow(UsageError);
    expect(() => parseRunFlags([...required, '--log-level=loud'], {})).toThrow(UsageError);
    expect(() => parseRunFlags([...required, '--unknown'], {})).toThrow(UsageError);
    expect(() => parseRunFlags([...required, '--bootstrap=/ip4/1.1.1.1/tcp/1'], {})).toThrow(/--bootstrap: .*p2p/);
    expect(() => parseRunFlags([...required, '--announce-from-service=gossip'], {})).toThrow(/NAMESPACE\/NAME/);
    expect(() => parseRunFlags([...required, '--node-ip=10.0.0'], {})).toThrow(/--node-ip/);
  });

  it('takes the gossip Service to announce and the node IP', () => {
    const o = parseRunFlags([...required, '--announce-from-service=mcs/gossip'], { MCS_GOSSIP_NODE_IP: '10.0.0.7' });
    expect(o.announceFromService).toEqual({ namespace: 'mcs', name: 'gossip' });
    expect(o.nodeIp).toBe('10.0.0.7');
  });
});
