import { describe, expect, it } from 'vitest';
import { formatPeerProperty, parseBootstrapProperty, validateIdentity } from './identity.js';

describe('validateIdentity', () => {
  it('accepts DNS labels', () => {
    expect(validateIdentity('cluster-1', 'prod')).toEqual({
      ok: true,
      identity: { clusterId: 'cluster-1', clusterSetName: 'prod' },
    });
    expect(validateIdentity('a'.repeat(63), 'x').ok).toBe(true);
  });

  it('names what is missing or invalid', () => {
    expect(validateIdentity(undefined, 'prod')).toMatchObject({ ok: false, reason: 'ClusterIdMissing' });
    expect(validateIdentity('', 'prod')).toMatchObject({ ok: false, reason: 'ClusterIdMissing' });
    expect(validateIdentity('a'.repeat(64), 'prod')).toMatchObject({ ok: false, reason: 'ClusterIdInvalid' });
    expect(validateIdentity('Cluster_1', 'prod')).toMatchObject({ ok: false, reason: 'ClusterIdInvalid' });
    expect(validateIdentity('-x', 'prod')).toMatchObject({ ok: false, reason: 'ClusterIdInvalid' });
    expect(validateIdentity('c1', undefined)).toMatchObject({ ok: false, reason: 'ClusterSetMissing' });
    expect(validateIdentity('c1', 'a.b')).toMatchObject({ ok: false, reason: 'ClusterSetInvalid' });
  });
});

describe('bootstrap and peer properties', () => {
  it('splits on commas, spaces and newlines', () => {
    expect(
      parseBootstrapProperty(' /ip4/1.2.3.4/tcp/1/p2p/A, /ip4/5.6.7.8/tcp/2/p2p/B\nc=/dns4/x/tcp/3/p2p/C '),
    ).toEqual(['/ip4/1.2.3.4/tcp/1/p2p/A', '/ip4/5.6.7.8/tcp/2/p2p/B', 'c=/dns4/x/tcp/3/p2p/C']);
    expect(parseBootstrapProperty(undefined)).toEqual([]);
    expect(parseBootstrapProperty('  ')).toEqual([]);
  });

  it('formats pasteable, pinned bootstrap entries', () => {
    expect(formatPeerProperty('c1', 'P', ['/ip4/10.0.0.1/tcp/7946', '/ip4/10.0.0.2/tcp/7946/p2p/P'])).toBe(
      'c1=/ip4/10.0.0.1/tcp/7946/p2p/P,c1=/ip4/10.0.0.2/tcp/7946/p2p/P',
    );
    expect(parseBootstrapProperty(formatPeerProperty('c1', 'P', ['/ip4/1.1.1.1/tcp/1']))).toEqual([
      'c1=/ip4/1.1.1.1/tcp/1/p2p/P',
    ]);
  });
});
