import { createRequire } from 'node:module';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import fc from 'fast-check';
import { createLibp2p } from 'libp2p';
import type { Libp2p } from 'libp2p';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePsk, pskKeyBytes } from './keys.js';
import { pnetProtector, XSalsa20Stream } from './pnet.js';

// The reference: the XSalsa20 implementation @libp2p/pnet uses (go-libp2p's private networks use the same cipher).
const pnetRequire = createRequire(createRequire(import.meta.url).resolve('@libp2p/pnet'));
const reference = pnetRequire('xsalsa20') as (
  nonce: Uint8Array,
  key: Uint8Array,
) => { update(input: Uint8Array): Uint8Array; finalize(): void };

describe('XSalsa20Stream', () => {
  it('equals the reference keystream for any chunking of the stream', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 10_000 })), { maxLength: 12 }),
        (key, nonce, sizes) => {
          const total = sizes.reduce((a, b) => a + b, 0);
          const data = Uint8Array.from({ length: total }, (_, i) => (i * 31) & 255);
          const ref = reference(nonce, key);
          const expected = ref.update(data);
          ref.finalize();
          const ours = new XSalsa20Stream(key, nonce);
          const parts: Uint8Array[] = [];
          let at = 0;
          for (const n of sizes) {
            parts.push(ours.update(data.subarray(at, at + n)));
            at += n;
          }
          expect(Buffer.compare(Buffer.concat(parts), expected)).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('takes a 4 MiB read in one call (the read that killed @libp2p/pnet) and leaves the input alone', () => {
    const key = new Uint8Array(32).fill(2);
    const nonce = new Uint8Array(24).fill(1);
    const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => i & 255);
    const copy = Uint8Array.from(data);
    const out = new XSalsa20Stream(key, nonce).update(data);
    expect(Buffer.compare(data, copy)).toBe(0);
    expect(Buffer.compare(new XSalsa20Stream(key, nonce).update(out), data)).toBe(0);
  });

  it('refuses keys and nonces of the wrong size, naming them', () => {
    expect(() => new XSalsa20Stream(new Uint8Array(31), new Uint8Array(24))).toThrow(/key must be 32 bytes/);
    expect(() => new XSalsa20Stream(new Uint8Array(32), new Uint8Array(8))).toThrow(/nonce must be 24 bytes/);
    expect(() => pnetProtector({ key: new Uint8Array(16) })).toThrow(/ClusterSet key must be 32 bytes, got 16/);
  });
});

describe('pnet protector on real connections', () => {
  const nodes: Libp2p<{ ping: Ping }>[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  const start = async (protector: 'ours' | 'libp2p', psk: Uint8Array): Promise<Libp2p<{ ping: Ping }>> => {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionProtector: protector === 'ours' ? pnetProtector({ key: pskKeyBytes(psk) }) : preSharedKey({ psk }),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { ping: ping() },
    });
    nodes.push(node);
    return node;
  };

  it('speaks the @libp2p/pnet wire protocol in both directions', async () => {
    const psk = generatePsk();
    const ours = await start('ours', psk);
    const theirs = await start('libp2p', psk);
    expect(await theirs.services.ping.ping(ours.getMultiaddrs()[0]!)).toBeGreaterThanOrEqual(0);
    const ours2 = await start('ours', psk);
    const theirs2 = await start('libp2p', psk);
    expect(await ours2.services.ping.ping(theirs2.getMultiaddrs()[0]!)).toBeGreaterThanOrEqual(0);
  });

  it('a peer with another ClusterSet key gets no connection', async () => {
    const ours = await start('ours', generatePsk());
    const other = await start('ours', generatePsk());
    await expect(other.dial(ours.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(ours.getConnections()).toHaveLength(0);
  });
});
