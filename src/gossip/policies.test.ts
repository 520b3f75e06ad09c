import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { BindingRegistry } from './bindings.js';
import { GossipConfigError } from './errors.js';
import { parseBootstrapEntry } from './gossip-node.js';
import { PeerRateLimiter } from './rate-limit.js';
import { backoffMs } from './redial.js';

describe('redial backoff', () => {
  it('doubles from the base, is capped, and jitters within [0.5, 1)', () => {
    const policy = { baseMs: 500, maxMs: 30_000 };
    expect(backoffMs(policy, 0, () => 0.999)).toBeLessThanOrEqual(500);
    expect(backoffMs(policy, 3, () => 0.999)).toBeLessThanOrEqual(4000);
    expect(backoffMs(policy, 3, () => 0)).toBe(2000);
    expect(backoffMs(policy, 100, () => 0.999)).toBeLessThanOrEqual(30_000);
    expect(backoffMs(policy, 100, () => 0)).toBe(15_000);
  });
});

describe('per-peer rate limit', () => {
  it('allows a burst, then the sustained rate', () => {
    let now = 0;
    const limiter = new PeerRateLimiter(60, 3, () => now);
    expect([1, 2, 3, 4].map(() => limiter.tryTake('a'))).toEqual([true, true, true, false]);
    expect(limiter.tryTake('b')).toBe(true);
    now += 1000;
    expect(limiter.tryTake('a')).toBe(true);
    expect(limiter.tryTake('a')).toBe(false);
  });
});

describe('cluster id bindings', () => {
  it('bind on first use, refuse a second key, and let a pin win', async () => {
    const k1 = await generateKeyPair('Ed25519');
    const k2 = await generateKeyPair('Ed25519');
    const registry = new BindingRegistry(new Map([['pinned', peerIdFromPrivateKey(k2)]]));
    expect(registry.check('east', k1.publicKey.raw).ok).toBe(true);
    expect(registry.check('east', k1.publicKey.raw).ok).toBe(true);
    const refused = registry.check('east', k2.publicKey.raw);
    expect(refused.ok).toBe(false);
    expect(refused.ok === false && refused.boundTo).toBe(peerIdFromPrivateKey(k1).toString());
    expect(registry.check('pinned', k1.publicKey.raw).ok).toBe(false);
    expect(registry.check('pinned', k2.publicKey.raw).ok).toBe(true);
  });
});

describe('bootstrap entries', () => {
  it('need /p2p/<id>, and may pin a cluster id', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
    const plain = parseBootstrapEntry(`/ip4/10.0.0.1/tcp/7946/p2p/${id}`);
    expect(plain.peerId.toString()).toBe(id);
    expect(plain.clusterId).toBeUndefined();
    const pinned = parseBootstrapEntry(`west=/dns4/west.example.com/tcp/7946/p2p/${id}`);
    expect(pinned.clusterId).toBe('west');
    expect(parseBootstrapEntry({ addr: `/ip4/10.0.0.1/tcp/1/p2p/${id}`, clusterId: 'x' }).clusterId).toBe('x');
    expect(() => parseBootstrapEntry('/ip4/10.0.0.1/tcp/7946')).toThrow(GossipConfigError);
    expect(() => parseBootstrapEntry('not an address')).toThrow(GossipConfigError);
    expect(() => parseBootstrapEntry('/ip4/10.0.0.1/tcp/7946/p2p/notapeerid')).toThrow(GossipConfigError);
  });
});
