import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { pino } from 'pino';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './errors.js';
import { compactEntry, expandEntry, LivenessExchange, packEntries, unpackEntries } from './liveness.js';
import type { Beat, LivenessHost, LivenessSummary } from './liveness.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { GossipMetrics } from './metrics.js';
import { LivenessEntry as LivenessEntryCodec, LivenessFrame } from './wire.js';
import type { LivenessEntry } from './wire.js';

const entry = (origin: string, wallMs: number, ageMs = 0, extra: Partial<LivenessEntry> = {}): LivenessEntry => ({
  origin,
  incarnation: 1n,
  wallMs: BigInt(wallMs),
  logical: 0,
  ageMs,
  softwareVersion: '',
  recordCount: 3,
  maxWallMs: 500n,
  maxLogical: 0,
  addrs: [],
  sameSummary: false,
  wallMsDelta: 0n,
  originRef: 0,
  ...extra,
});

/** How a property test moves an origin's beat on: a wall-clock step, maybe a new incarnation or record summary. */
interface BeatStep {
  readonly step: number;
  readonly logical: number;
  readonly newIncarnation: boolean;
  readonly newSummary: boolean;
  readonly ageMs: number;
}

/** The origin's next beat after the last one in `last` (updated), as `s` says. */
function nextBeat(last: Map<string, LivenessEntry>, origin: string, s: BeatStep): LivenessEntry {
  const p = last.get(origin);
  const wall = Math.max(0, Number(p?.wallMs ?? 1_800_000_000_000n) + s.step);
  const e = entry(origin, wall, s.ageMs, {
    logical: s.logical,
    incarnation: s.newIncarnation || p === undefined ? BigInt(wall) : p.incarnation,
    recordCount: s.newSummary || p === undefined ? s.ageMs % 7 : p.recordCount,
    maxWallMs: s.newSummary || p === undefined ? BigInt(wall - 10) : p.maxWallMs,
  });
  last.set(origin, e);
  return e;
}

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

describe('liveness entries on a stream (repeat only what changed)', () => {
  const stepArb = fc.record({
    origin: fc.constantFrom('a', 'b', 'east-1'),
    step: fc.integer({ min: -5_000, max: 20_000 }),
    logical: fc.nat(3),
    newIncarnation: fc.boolean(),
    newSummary: fc.boolean(),
    ageMs: fc.nat(5_000),
  });

  it('a receiver rebuilds exactly what the sender meant, whatever changes between beats', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
        const sent = new Map<string, LivenessSummary>();
        const carried = new Map<string, LivenessSummary>();
        const last = new Map<string, LivenessEntry>();
        for (const s of steps) {
          const e = nextBeat(last, s.origin, s);
          // Through the codec, as on the wire.
          const wire = LivenessEntryCodec.decode(LivenessEntryCodec.encode(compactEntry(e, sent)));
          expect(expandEntry(wire, carried)).toEqual(e);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('cuts a steady beat to its origin id and a few bytes', () => {
    const sent = new Map<string, LivenessSummary>();
    const first = entry('cluster-east-1', 1_800_000_000_000, 120, {
      incarnation: 1_799_999_000_000n,
      maxWallMs: 1_799_999_500_000n,
    });
    const next = { ...first, wallMs: first.wallMs + 10_000n, ageMs: 80 };
    const originBytes = 2 + first.origin.length;
    const full = LivenessEntryCodec.encode(compactEntry(first, sent)).length - originBytes;
    const repeat = LivenessEntryCodec.encode(compactEntry(next, sent)).length - originBytes;
    expect(full).toBeGreaterThanOrEqual(25);
    expect(repeat).toBeLessThanOrEqual(8);
  });

  it('refuses a repeat of something the stream never carried, and a repeat that also carries a summary', () => {
    const carried = new Map<string, LivenessSummary>();
    const repeat = entry('a', 0, 0, {
      sameSummary: true,
      wallMsDelta: 10n,
      incarnation: 0n,
      recordCount: 0,
      maxWallMs: 0n,
    });
    expect(() => expandEntry(repeat, carried)).toThrow(InvalidMessageError);
    expect(() => expandEntry(repeat, carried)).toThrow(/repeats a summary never sent/);
    expandEntry(entry('a', 1000), carried);
    expect(expandEntry(repeat, carried).wallMs).toBe(1010n);
    expect(() => expandEntry({ ...repeat, recordCount: 3 }, carried)).toThrow(/both repeats and carries/);
    expect(() => expandEntry(entry('a', 2000, 0, { wallMsDelta: 5n }), carried)).toThrow(/without a summary/);
    // Nothing is kept for an entry with a bad origin, and only the summary fields are kept at all.
    expect(() => expandEntry(entry('x'.repeat(300), 1000), carried)).toThrow(/bad origin/);
    expandEntry(entry('b', 1000, 0, { addrs: ['/ip4/127.0.0.1/tcp/1'] }), carried);
    expect([...carried.keys()]).toEqual(['a', 'b']);
    expect(Object.keys(carried.get('b')!).sort()).toEqual([
      'incarnation',
      'maxLogical',
      'maxWallMs',
      'recordCount',
      'wallMs',
    ]);
  });
});

describe('packed liveness frames (liveness/1.1.0: origins by place, repeats as varints)', () => {
  const stepArb = fc.record({
    origins: fc.uniqueArray(fc.constantFrom('a', 'b', 'east-1', 'c-99', 'zz'), { minLength: 1, maxLength: 5 }),
    step: fc.integer({ min: -5_000, max: 20_000 }),
    logical: fc.nat(300),
    newIncarnation: fc.boolean(),
    newSummary: fc.boolean(),
    ageMs: fc.nat(200_000),
  });

  it('a receiver rebuilds exactly the frames the sender meant, through the codec', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (frames) => {
        const sent = new Map<string, LivenessSummary>();
        const refs = new Map<string, number>();
        const carried = new Map<string, LivenessSummary>();
        const byRef: string[] = [];
        const last = new Map<string, LivenessEntry>();
        for (const f of frames) {
          const entries = f.origins.map((origin) => nextBeat(last, origin, f));
          const wire = LivenessFrame.decode(LivenessFrame.encode({ version: 1, ...packEntries(entries, sent, refs) }));
          const got = unpackEntries(wire, carried, byRef);
          const byOrigin = (xs: readonly LivenessEntry[]): LivenessEntry[] =>
            [...xs].sort((x, y) => x.origin.localeCompare(y.origin));
          expect(byOrigin(got)).toEqual(byOrigin(entries));
        }
        expect(byRef).toEqual([...refs.keys()]);
      }),
      { numRuns: 300 },
    );
  });

  it('a repeat that carries addresses or a version keeps them (by place, not packed)', () => {
    const sent = new Map<string, LivenessSummary>();
    const refs = new Map<string, number>();
    const carried = new Map<string, LivenessSummary>();
    const byRef: string[] = [];
    const roundTrip = (entries: LivenessEntry[]): LivenessEntry[] =>
      unpackEntries(
        LivenessFrame.decode(LivenessFrame.encode({ version: 1, ...packEntries(entries, sent, refs) })),
        carried,
        byRef,
      );
    roundTrip([entry('a', 1000)]);
    const later = entry('a', 11_000, 0, { addrs: ['/ip4/10.0.0.1/tcp/4001'], softwareVersion: '0.2.0' });
    const packed = packEntries([later], new Map(sent), new Map(refs));
    expect(packed.repeats.length).toBe(0);
    expect(packed.entries[0]).toMatchObject({ origin: '', originRef: 1, sameSummary: true });
    expect(roundTrip([later])).toEqual([later]);
  });

  it('cuts a steady beat of 250 origins to about 6 bytes each, under half the unpacked frame', () => {
    const origins = Array.from({ length: 250 }, (_, i) => `cluster-${i}`);
    const beat = (wall: number): LivenessEntry[] =>
      origins.map((o) => entry(o, wall, 1_234, { incarnation: 1_799_999_000_000n, maxWallMs: 1_799_999_500_000n }));
    const packedSent = new Map<string, LivenessSummary>();
    const refs = new Map<string, number>();
    const plainSent = new Map<string, LivenessSummary>();
    packEntries(beat(1_800_000_000_000), packedSent, refs);
    beat(1_800_000_000_000).forEach((e) => compactEntry(e, plainSent));
    const packed = LivenessFrame.encode({ version: 1, ...packEntries(beat(1_800_000_010_000), packedSent, refs) });
    const plain = LivenessFrame.encode({
      version: 1,
      entries: beat(1_800_000_010_000).map((e) => compactEntry(e, plainSent)),
    });
    expect(packed.length / 250).toBeLessThanOrEqual(7);
    expect(packed.length * 2).toBeLessThan(plain.length);
  });

  it('refuses a place never carried, an entry with both a name and a place, and a cut varint', () => {
    const carried = new Map<string, LivenessSummary>();
    const byRef: string[] = [];
    const frame = (f: Partial<LivenessFrame>): LivenessFrame => ({
      version: 1,
      entries: [],
      repeats: new Uint8Array(),
      ...f,
    });
    expect(() => unpackEntries(frame({ repeats: Uint8Array.from([1, 0, 10, 0]) }), carried, byRef)).toThrow(
      /place 1, never carried/,
    );
    expect(unpackEntries(frame({ entries: [entry('a', 1000)] }), carried, byRef)).toHaveLength(1);
    expect(byRef).toEqual(['a']);
    expect(unpackEntries(frame({ repeats: Uint8Array.from([1, 5, 10, 0]) }), carried, byRef)[0]).toMatchObject({
      origin: 'a',
      wallMs: 1010n,
      ageMs: 5,
      recordCount: 3,
    });
    expect(() => unpackEntries(frame({ entries: [entry('a', 2000, 0, { originRef: 1 })] }), carried, byRef)).toThrow(
      /both an origin and its place/,
    );
    expect(() => unpackEntries(frame({ entries: [entry('', 2000, 0, { originRef: 2 })] }), carried, byRef)).toThrow(
      /place 2/,
    );
    expect(() => unpackEntries(frame({ repeats: Uint8Array.from([1, 0x80]) }), carried, byRef)).toThrow(
      /inside a varint/,
    );
    expect(() =>
      unpackEntries(frame({ repeats: Uint8Array.from([1, 0, ...Array(9).fill(0xff), 1, 0]) }), carried, byRef),
    ).toThrow(/out of range/);
    // Zero-payload continuation bytes: a varint may not run past 8 bytes (147 of them would overflow to NaN).
    expect(() =>
      unpackEntries(frame({ repeats: Uint8Array.from([1, ...Array(147).fill(0x80), 0, 0, 0]) }), carried, byRef),
    ).toThrow(/longer than 8 bytes/);
    expect(() =>
      packEntries([entry('a', 1000), entry('a', 2000)], new Map<string, LivenessSummary>(), new Map()),
    ).toThrow(/twice/);
    // A full entry by place carries a new summary for the origin named first.
    const changed = unpackEntries(
      frame({ entries: [entry('', 3000, 0, { originRef: 1, recordCount: 9 })] }),
      carried,
      byRef,
    );
    expect(changed[0]).toMatchObject({ origin: 'a', recordCount: 9, wallMs: 3000n });
  });
});
