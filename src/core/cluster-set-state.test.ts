import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterSetState } from './cluster-set-state.js';
import { digestOf } from './digest.js';
import type { ExportRecord } from './export-record.js';
import { deltaFor } from './sync.js';
import { compareHlc } from './hlc.js';
import { exported, historiesArb, issue, opArb, ORIGINS } from './test-support/fixtures.js';

const RUNS = { numRuns: 1000 };

/** One anti-entropy exchange, as the gossip layer runs it: digests, then bucket digests for what still differs. */
function pull(into: ClusterSetState, from: ClusterSetState, nowMs = 0): void {
  const first = deltaFor(from, { digests: into.digest() });
  into.merge(first.records);
  for (const hb of first.heartbeats) into.observeHeartbeat(hb, nowMs);
  if (first.compareBuckets.length > 0) {
    const second = deltaFor(from, {
      digests: into.digest(),
      buckets: first.compareBuckets.map((o) => into.bucketDigest(o)),
    });
    into.merge(second.records);
  }
}

function snapshot(s: ClusterSetState): unknown {
  return { digest: s.digest(), records: s.origins().map((o) => s.recordsOf(o)) };
}

function stateOf(records: Iterable<ExportRecord>): ClusterSetState {
  const s = new ClusterSetState();
  s.merge(records);
  return s;
}

/** All records of all origins' histories, plus, per node, a lossy, duplicating, reordering delivery of them. */
const scenarioArb = historiesArb().chain((histories) => {
  const all = ORIGINS.flatMap((o) => issue(o, histories[o] ?? []));
  const copies = fc.array(fc.nat(2), { minLength: all.length, maxLength: all.length });
  return fc.tuple(fc.constant(all), fc.tuple(...ORIGINS.map(() => copies))).chain(([records, perNode]) => {
    const inboxes = ORIGINS.map((origin, n) => {
      // A node always holds its own records (it issued them); others arrive 0, 1 or 2 times.
      const inbox = records.flatMap((r, i) =>
        r.origin === origin ? [r] : Array<ExportRecord>(perNode[n]![i]!).fill(r),
      );
      return fc.shuffledSubarray(inbox, { minLength: inbox.length, maxLength: inbox.length });
    });
    return fc.tuple(fc.constant(records), fc.tuple(...inboxes));
  });
});

describe('ClusterSetState', () => {
  it('converges: any delivery order, duplicates and loss, healed by delta exchange, gives the state of all updates', () => {
    fc.assert(
      fc.property(scenarioArb, ([records, inboxes]) => {
        const reference = stateOf(records);
        const nodes = inboxes.map((inbox) => stateOf(inbox));
        // A full round of pairwise anti-entropy over a connected graph.
        for (const a of nodes) for (const b of nodes) if (a !== b) pull(b, a);
        for (const n of nodes) expect(snapshot(n)).toEqual(snapshot(reference));
      }),
      RUNS,
    );
  });

  it('converges without anti-entropy when the same set arrives in any order with duplicates', () => {
    fc.assert(
      fc.property(
        historiesArb().chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          const doubled = [...all, ...all];
          return fc.tuple(
            fc.shuffledSubarray(doubled, { minLength: doubled.length, maxLength: doubled.length }),
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
          );
        }),
        ([one, two]) => {
          expect(snapshot(stateOf(one))).toEqual(snapshot(stateOf(two)));
        },
      ),
      RUNS,
    );
  });

  it('never resurrects: once a tombstone is held, older live copies (a partitioned peer) cannot bring the record back', () => {
    fc.assert(
      fc.property(
        historiesArb().chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          return fc.tuple(
            fc.constant(all),
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            fc.subarray(all),
          );
        }),
        ([all, shuffled, partitioned]) => {
          const node = stateOf(shuffled);
          const peer = stateOf(partitioned);
          pull(node, peer);
          pull(peer, node);
          // The last record an origin issued for a key decides, whatever the node saw and when.
          const last = new Map<string, ExportRecord>();
          for (const r of all) last.set(`${r.origin}/${r.namespace}/${r.name}`, r);
          for (const r of last.values()) {
            for (const s of [node, peer]) {
              const held = s.record(r.origin, `${r.namespace}/${r.name}`);
              expect(held?.removed).toBe(r.removed);
              expect(held?.version).toEqual(r.version);
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('is authentic: a merge of one origin never changes another origin’s records, and hands records back unaltered', () => {
    fc.assert(
      fc.property(historiesArb(), historiesArb(), fc.constantFrom(...ORIGINS), (before, incoming, writer) => {
        const s = stateOf(ORIGINS.flatMap((o) => issue(o, before[o] ?? [])));
        const others = ORIGINS.filter((o) => o !== writer).map((o) => [o, s.recordsOf(o)] as const);
        // The writer's batch may even carry versions far in the future or the past: it still only touches its own.
        const batch = issue(writer, incoming[writer] ?? [], 500);
        const { applied } = s.merge(batch);
        for (const [o, records] of others) expect(s.recordsOf(o)).toEqual(records);
        for (const r of applied) {
          expect(r.origin).toBe(writer);
          expect(batch).toContain(r); // the very object: never rewritten, proof included
        }
        for (const r of s.recordsOf(writer)) expect(r.proof).toBeInstanceOf(Uint8Array);
      }),
      RUNS,
    );
  });

  it('keeps digests equal to a recomputation from scratch (incremental hashes are exact)', () => {
    fc.assert(
      fc.property(
        historiesArb().chain((h) => {
          const all = ORIGINS.flatMap((o) => issue(o, h[o] ?? []));
          return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
        }),
        (records) => {
          const incremental = new ClusterSetState();
          for (const r of records) incremental.merge([r]);
          const fresh = stateOf(ORIGINS.flatMap((o) => incremental.recordsOf(o)));
          expect(incremental.digest()).toEqual(fresh.digest());
          const held = ORIGINS.flatMap((o) => incremental.recordsOf(o));
          expect(digestOf(held)).toEqual(incremental.digest());
          for (const o of ORIGINS) expect(incremental.bucketDigest(o)).toEqual(fresh.bucketDigest(o));
        },
      ),
      RUNS,
    );
  });

  it('picks the same record for equal versions with different content, whatever the order', () => {
    const version = { wallMs: 5, logical: 0 };
    const x: ExportRecord = { origin: 'a', namespace: 'n', name: 's', version, removed: false, service: exported() };
    const y: ExportRecord = { ...x, service: exported({ sessionAffinity: 'ClientIP' }) };
    expect(stateOf([x, y]).record('a', 'n/s')).toBe(stateOf([y, x]).record('a', 'n/s'));
    expect(stateOf([x, y]).digest()).toEqual(stateOf([y, x]).digest());
  });

  it('rejects malformed records without touching state', () => {
    const s = new ClusterSetState();
    const good: ExportRecord = {
      origin: 'a',
      namespace: 'n',
      name: 's',
      version: { wallMs: 1, logical: 0 },
      removed: false,
      service: exported(),
    };
    const result = s.merge([
      { ...good, version: { wallMs: -1, logical: 0 } },
      { ...good, version: { wallMs: 1.5, logical: 0 } },
      { ...good, removed: true },
      { ...good, service: undefined },
      { ...good, origin: '' },
      { ...good, origin: 'Cluster_A' },
      { ...good, namespace: 'a/b' },
    ]);
    expect(result).toEqual({ applied: [], stale: 0, invalid: 7 });
    expect(s.size).toBe(0);
    expect(s.merge([good, good])).toEqual({ applied: [good], stale: 1, invalid: 0 });
  });

  it('sends only differing buckets when a middle update was lost', () => {
    const records = issue(
      'cluster-a',
      Array.from({ length: 3 }, (_, key) => ({ key, service: exported() })),
    );
    const full = stateOf(records);
    const lossy = stateOf([records[0]!, records[2]!]); // the middle one never arrived; maxVersion is the same
    const first = deltaFor(full, { digests: lossy.digest() });
    expect(first.records).toEqual([]);
    expect(first.compareBuckets).toEqual(['cluster-a']);
    const second = deltaFor(full, { digests: lossy.digest(), buckets: [lossy.bucketDigest('cluster-a')] });
    expect(second.records).toContain(records[1]);
    lossy.merge(second.records);
    expect(lossy.digest()).toEqual(full.digest());
  });

  describe('liveness', () => {
    const hb = (wallMs: number) => ({ origin: 'b', incarnation: 1, version: { wallMs, logical: 0 } });

    it('withdraws an origin unheard past the TTL and restores it when a newer heartbeat arrives', () => {
      const s = new ClusterSetState();
      expect(s.observeHeartbeat(hb(10), 1_000)).toBe(true);
      expect(s.liveness(20_000, 30_000).withdrawn).toEqual([]);
      expect(s.liveness(31_001, 30_000).withdrawn).toEqual(['b']);
      // An old heartbeat relayed late (anti-entropy from a peer) proves nothing.
      expect(s.observeHeartbeat(hb(10), 31_001)).toBe(false);
      expect(s.liveness(31_002, 30_000).withdrawn).toEqual(['b']);
      expect(s.observeHeartbeat(hb(11), 40_000)).toBe(true);
      expect(s.liveness(40_001, 30_000)).toEqual({ alive: ['b'], withdrawn: [] });
    });

    it('gives origins learned before their first heartbeat one TTL from start, and never withdraws itself', () => {
      const s = stateOf(issue('a', [{ key: 0, service: exported() }]));
      s.merge(issue('b', [{ key: 0, service: exported() }]));
      expect(s.liveness(10_000, 30_000, { startedAtMs: 0 }).withdrawn).toEqual([]);
      expect(s.liveness(40_000, 30_000, { startedAtMs: 0, self: 'a' })).toEqual({ alive: ['a'], withdrawn: ['b'] });
    });

    it('relays heartbeats through anti-entropy only when newer', () => {
      const a = new ClusterSetState();
      const b = new ClusterSetState();
      a.observeHeartbeat(hb(10), 0);
      expect(deltaFor(a, { digests: b.digest() }).heartbeats).toEqual([hb(10)]);
      b.observeHeartbeat(hb(10), 5);
      expect(deltaFor(a, { digests: b.digest() }).heartbeats).toEqual([]);
    });
  });

  it('never changes a records list it handed out', () => {
    const s = stateOf(issue('cluster-b', [{ key: 0, service: exported() }]));
    const before = s.recordsFor('ns1/web');
    const copy = [...before];
    s.merge(issue('cluster-a', [{ key: 0, service: exported() }]));
    s.merge(issue('cluster-b', [{ key: 0, service: exported({ sessionAffinity: 'ClientIP' }) }], 5_000));
    expect(before).toEqual(copy);
    expect(s.recordsFor('ns1/web').map((r) => r.origin)).toEqual(['cluster-a', 'cluster-b']);
  });

  it('forgets an origin that left for good', () => {
    const s = stateOf([
      ...issue('a', [{ key: 0, service: exported() }]),
      ...issue('b', [{ key: 0, service: exported() }]),
    ]);
    s.forgetOrigin('a');
    expect(s.origins()).toEqual(['b']);
    expect(s.recordsFor('ns1/web').map((r) => r.origin)).toEqual(['b']);
  });

  it('journals the keys every change touched, however it changed, for one consumer', () => {
    const s = new ClusterSetState();
    expect(s.takeChangedKeys()).toEqual([]);
    s.merge(
      issue('a', [
        { key: 0, service: exported() },
        { key: 1, service: exported() },
      ]),
    );
    s.merge(issue('b', [{ key: 1, service: exported() }]));
    expect(s.takeChangedKeys().sort()).toEqual([...new Set(s.keys())].sort());
    expect(s.takeChangedKeys()).toEqual([]);
    // A stale record changes nothing, so it is not journalled.
    s.merge(issue('b', [{ key: 1, service: exported() }]));
    expect(s.takeChangedKeys()).toEqual([]);
    // Forgetting an origin drops its records: their keys are journalled (also one that goes from the state).
    const aKeys = s.recordsOf('a').map((r) => `${r.namespace}/${r.name}`);
    s.forgetOrigin('a');
    expect(s.takeChangedKeys().sort()).toEqual(aKeys.sort());
    // A raised floor drops records below it.
    const bKeys = s.recordsOf('b').map((r) => `${r.namespace}/${r.name}`);
    s.raiseFloor('b', { wallMs: 10_000_000, logical: 0 });
    expect(s.takeChangedKeys().sort()).toEqual(bKeys.sort());
    expect(s.keys()).toEqual([]);
  });
});

describe('ClusterSetState at size', () => {
  it('syncs and merges 500,000 records of one origin (no argument spreading)', () => {
    const svc = exported();
    const records: ExportRecord[] = [];
    for (let i = 0; i < 500_000; i++) {
      records.push({
        origin: 'cluster-a',
        namespace: `ns-${i % 1000}`,
        name: `svc-${i}`,
        version: { wallMs: 1_000 + i, logical: 0 },
        removed: false,
        service: svc,
      });
    }
    const full = stateOf(records);
    const fresh = new ClusterSetState();
    const delta = deltaFor(full, { digests: fresh.digest() });
    expect(delta.records.length).toBe(500_000);
    expect(fresh.merge(delta.records).applied.length).toBe(500_000);
    expect(fresh.digest()).toEqual(full.digest());
    // A peer behind by one record gets only what it lacks, whatever the size.
    const behind = stateOf(records.slice(0, -1));
    expect(deltaFor(full, { digests: behind.digest() }).records.length).toBe(1);
  });
});

describe('heartbeats relayed by anti-entropy', () => {
  const hb = (wallMs: number) => ({ origin: 'cluster-a', incarnation: 1, version: { wallMs, logical: 0 } });
  it('count as heard when the relay heard them (backdated), never later, and only for the version held', () => {
    const s = new ClusterSetState();
    s.observeHeartbeat(hb(1_000), 100_000);
    expect(s.backdateHeartbeat('cluster-a', { wallMs: 999, logical: 0 }, 10_000)).toBe(false); // another version
    expect(s.backdateHeartbeat('cluster-a', { wallMs: 1_000, logical: 0 }, 200_000)).toBe(false); // later: ignored
    expect(s.backdateHeartbeat('cluster-b', { wallMs: 1_000, logical: 0 }, 10_000)).toBe(false); // unknown origin
    expect(s.backdateHeartbeat('cluster-a', { wallMs: 1_000, logical: 0 }, 10_000)).toBe(true);
    expect(s.heartbeatOf('cluster-a')?.heardAtMs).toBe(10_000);
    expect(s.liveness(100_000, 30_000).withdrawn).toEqual(['cluster-a']);
    // A newer heartbeat is heard now again.
    s.observeHeartbeat(hb(2_000), 100_000);
    expect(s.liveness(100_000, 30_000).alive).toEqual(['cluster-a']);
  });
});

describe('floors: collected tombstones and forgotten origins never come back', () => {
  /** What the origin itself finally holds per key: the last record it issued. */
  const finalOf = (records: readonly ExportRecord[]) => {
    const out = new Map<string, ExportRecord>();
    for (const r of records) out.set(`${r.namespace}/${r.name}`, r);
    return out;
  };
  const liveSet = (s: ClusterSetState, origin: string) =>
    s
      .recordsOf(origin)
      .filter((r) => !r.removed)
      .map((r) => `${r.namespace}/${r.name}=${JSON.stringify(r.service)}`)
      .sort();

  it('an origin that collects its tombstones below a floor (after re-issuing its live records above it) loses nothing and resurrects nothing, whatever the order of delivery', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 16 }),
        fc.nat(20),
        fc.array(fc.nat(), { maxLength: 80 }),
        (ops, cut, order) => {
          const history = issue('cluster-a', ops);
          // The origin picks a floor somewhere in its history, re-issues every live record below it above everything,
          // and signs the floor into a heartbeat issued after those.
          const floor = history[Math.min(cut, history.length)]?.version ?? { wallMs: 10_000, logical: 0 };
          const final = finalOf(history);
          let t = 100_000;
          const reissued = [...final.values()]
            .filter((r) => !r.removed && compareHlc(r.version, floor) < 0)
            .map((r) => ({ ...r, version: { wallMs: ++t, logical: 0 } }));
          const hb = { origin: 'cluster-a', incarnation: 1, version: { wallMs: ++t, logical: 0 }, floor };
          // Every record ever issued (a stale peer may still hold any of them), in any order, some twice.
          const all: (ExportRecord | 'hb')[] = [...history, ...reissued, 'hb'];
          const deliveries = [...all, ...order.map((i) => all[i % all.length]!)];
          const shuffled = deliveries
            .map((d, i) => ({ d, k: order[i % Math.max(1, order.length)] ?? i }))
            .sort((x, y) => x.k - y.k)
            .map((x) => x.d);
          const node = new ClusterSetState();
          for (const d of shuffled) {
            if (d === 'hb') node.observeHeartbeat(hb, 0);
            else node.merge([d]);
          }
          // The origin after collection: its final records at or above the floor, plus the re-issued ones.
          const origin = new ClusterSetState();
          origin.merge([...final.values(), ...reissued]);
          origin.observeHeartbeat(hb, 0);
          expect(liveSet(node, 'cluster-a')).toEqual(liveSet(origin, 'cluster-a'));
          // Nothing below the floor is held, and no key removed at the origin is live.
          for (const r of node.recordsOf('cluster-a')) {
            expect(compareHlc(r.version, floor)).toBeGreaterThanOrEqual(0);
            if (!r.removed) expect(final.get(`${r.namespace}/${r.name}`)?.removed).toBe(false);
          }
          expect(node.digestOf('cluster-a')?.hash).toBe(origin.digestOf('cluster-a')?.hash);
        },
      ),
      RUNS,
    );
  });

  it('a forgotten origin is not brought back by a peer that still holds its records, but is when it issues anew', () => {
    const old = issue('a', [
      { key: 0, service: exported() },
      { key: 1, service: exported() },
    ]);
    const s = stateOf([...old, ...issue('b', [{ key: 0, service: exported() }])]);
    s.observeHeartbeat({ origin: 'a', incarnation: 1, version: { wallMs: 2_000, logical: 0 } }, 0);
    expect(s.forgetOrigin('a').length).toBe(2);
    expect(s.origins()).toEqual(['b']);
    expect(s.merge(old).applied).toEqual([]);
    expect(s.observeHeartbeat({ origin: 'a', incarnation: 1, version: { wallMs: 2_000, logical: 0 } }, 0)).toBe(false);
    expect(s.recordsOf('a')).toEqual([]);
    expect(s.digest().map((d) => d.origin)).toEqual(['b']);
    // It comes back: a newer record is taken, and the origin is listed again.
    const back = issue('a', [{ key: 2, service: exported() }], 50_000);
    expect(s.merge(back).applied.length).toBe(1);
    expect(s.origins()).toEqual(['a', 'b']);
  });

  it('a heartbeat whose floor is above its own version, or malformed, is refused', () => {
    const s = new ClusterSetState();
    const bad = { origin: 'a', incarnation: 1, version: { wallMs: 10, logical: 0 }, floor: { wallMs: 11, logical: 0 } };
    expect(s.observeHeartbeat(bad, 0)).toBe(false);
    expect(s.floorOf('a')).toEqual({ wallMs: 0, logical: 0 });
  });
});

describe('heartbeats heard unsigned first', () => {
  it('keep the signed statement of the same beat when it arrives later (a leave is not lost)', () => {
    const s = new ClusterSetState();
    const version = { wallMs: 5_000, logical: 0 };
    expect(s.observeHeartbeat({ origin: 'a', incarnation: 1, version }, 100)).toBe(true);
    const signed = { origin: 'a', incarnation: 1, version, floor: version, left: true, proof: new Uint8Array([1]) };
    expect(s.observeHeartbeat(signed, 200)).toBe(false); // not newer…
    expect(s.heartbeatOf('a')?.heartbeat.left).toBe(true); // …but kept
    expect(s.heartbeatOf('a')?.heardAtMs).toBe(100);
    expect(s.floorOf('a')).toEqual(version);
  });
});

describe('a forgotten origin that comes back', () => {
  it('is taken again with its unchanged records once heard with a newer heartbeat', () => {
    const old = issue('a', [{ key: 0, service: exported() }]);
    const s = stateOf(old);
    s.observeHeartbeat({ origin: 'a', incarnation: 1, version: { wallMs: 2_000, logical: 0 } }, 0);
    s.forgetOrigin('a');
    expect(s.isForgotten('a')).toBe(true);
    expect(s.merge(old).applied).toEqual([]); // a stale relay: refused
    expect(s.observeHeartbeat({ origin: 'a', incarnation: 2, version: { wallMs: 9_000, logical: 0 } }, 10)).toBe(true);
    expect(s.isForgotten('a')).toBe(false);
    expect(s.merge(old).applied.length).toBe(1); // its unchanged export, as anti-entropy brings it
  });
});
