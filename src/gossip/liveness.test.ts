import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LivenessExchange } from './liveness.js';
import type { Beat, LivenessHost } from './liveness.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { GossipMetrics } from './metrics.js';
import type { LivenessEntry } from './wire.js';

const entry = (origin: string, wallMs: number, ageMs = 0, extra: Partial<LivenessEntry> = {}): LivenessEntry => ({
  origin,
  incarnation: 1n,
  wallMs: BigInt(wallMs),
  logical: 0,
  ageMs,
  recordCount: 3,
  maxWallMs: 500n,
  maxLogical: 0,
  addrs: [],
  ...extra,
});

async function exchange(bound: readonly string[]): Promise<{
  ex: LivenessExchange;
  beats: Beat[];
  peer: PeerId;
  setNow: (ms: number) => void;
}> {
  let now = 100_000;
  const beats: Beat[] = [];
  const host: LivenessHost = {
    // ingest never touches the network; flush is not called here
    node: undefined as unknown as GossipLibp2p,
    topic: 't',
    self: 'me',
    now: () => now,
    ttlMs: 30_000,
    flushDelayMs: 60_000,
    isMember: () => true,
    isBound: (o) => bound.includes(o),
    onBeat: (b) => beats.push(b),
    metrics: new GossipMetrics(),
    log: pino({ level: 'silent' }),
  };
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
  const ex = new LivenessExchange(host);
  return { ex, beats, peer, setNow: (ms) => (now = ms) };
}

describe('LivenessExchange.ingest', () => {
  it('applies fresher beats of bound origins once, dating them by their age', async () => {
    const { ex, beats, peer } = await exchange(['a', 'b']);
    try {
      expect(ex.ingest([entry('a', 1000, 2500), entry('b', 1000)], peer)).toBe(2);
      expect(beats.map((b) => [b.origin, b.beatAtMs])).toEqual([
        ['a', 97_500],
        ['b', 100_000],
      ]);
      expect(beats[0]).toMatchObject({ incarnation: 1, recordCount: 3, maxVersion: { wallMs: 500, logical: 0 } });
      // the same or an older beat again: nothing
      expect(ex.ingest([entry('a', 1000), entry('b', 900)], peer)).toBe(0);
      expect(ex.ingest([entry('a', 1001)], peer)).toBe(1);
      expect(ex.beatOf('a')?.version).toEqual({ wallMs: 1001, logical: 0 });
    } finally {
      ex.stop();
    }
  });

  it('refuses beats stamped more than a minute ahead of its clock (they would shadow every real beat)', async () => {
    const { ex, beats, peer } = await exchange(['a']);
    try {
      expect(ex.ingest([entry('a', 100_000 + 61_000)], peer)).toBe(0);
      expect(ex.beatOf('a')).toBeUndefined();
      expect(ex.ingest([entry('a', 100_000 + 59_000)], peer)).toBe(1);
      expect(beats).toHaveLength(1);
    } finally {
      ex.stop();
    }
  });

  it('ignores entries about unbound cluster ids and about itself', async () => {
    const { ex, beats, peer } = await exchange(['a', 'me']);
    try {
      expect(ex.ingest([entry('never-bound', 1000), entry('me', 5000)], peer)).toBe(0);
      expect(beats).toEqual([]);
      expect(ex.beatOf('never-bound')).toBeUndefined();
    } finally {
      ex.stop();
    }
  });

  it('rejects a frame with one malformed entry before applying any of it, naming the entry', async () => {
    const { ex, beats, peer } = await exchange(['a', 'b']);
    try {
      expect(() => ex.ingest([entry('a', 1000), entry('', 1000)], peer)).toThrow(/bad origin ""/);
      expect(() => ex.ingest([entry('a', 1000), entry('b', 1000, 0, { wallMs: 2n ** 60n })], peer)).toThrow(
        /liveness entry of "b": number out of range/,
      );
      expect(() => ex.ingest([entry('a', 1000), entry('b', 1000, 0, { logical: -1 })], peer)).toThrow(
        /liveness entry of "b": bad version/,
      );
      expect(() =>
        ex.ingest([entry('b', 1000, 0, { addrs: Array.from({ length: 17 }, () => '/ip4/1.2.3.4/tcp/1') })], peer),
      ).toThrow(/liveness entry of "b": too many or too long addresses/);
      expect(beats).toEqual([]);
      expect(ex.beatOf('a')).toBeUndefined();
      // addresses ride along with the beat
      expect(ex.ingest([entry('a', 1000, 0, { addrs: ['/ip4/10.0.0.1/tcp/7946'] })], peer)).toBe(1);
      expect(beats[0]?.addrs).toEqual(['/ip4/10.0.0.1/tcp/7946']);
    } finally {
      ex.stop();
    }
  });
});
