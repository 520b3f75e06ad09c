// The lifecycle of an origin on real libp2p nodes over 127.0.0.1: an explicit leave withdraws it everywhere, an origin
// unheard past the horizon is forgotten, and collected tombstones never come back from a stale peer.
import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentityKey, generatePsk, syntheticService } from '../../src/gossip/index.js';
import { addrOf, Partition, startNode, stopAll, waitFor } from './gossip-helpers.js';
import type { TestNode } from './gossip-helpers.js';

const live = (n: TestNode, origin: string): string[] =>
  n.node.state
    .recordsOf(origin)
    .filter((r) => !r.removed)
    .map((r) => `${r.namespace}/${r.name}`)
    .sort();

describe('origin lifecycle', () => {
  const nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes.splice(0));
  });

  it('a cluster that leaves is withdrawn everywhere, and neither a stale peer nor a late node brings it back', async () => {
    const psk = generatePsk();
    const a = await startNode('a', [], { psk });
    const b = await startNode('b', [addrOf(a)], { psk });
    const c = await startNode('c', [addrOf(a), addrOf(b)], { psk });
    nodes.push(a, b, c);
    c.cluster.upsert('default', 'web', syntheticService(1, 2));
    c.cluster.upsert('default', 'db', syntheticService(2, 1));
    a.cluster.upsert('default', 'web', syntheticService(3, 1));
    await waitFor(() => [a, b].every((n) => live(n, 'c').length === 2), 15_000, 'c everywhere');
    const before = c.node.state.recordsOf('c');

    await c.node.leave();
    await waitFor(() => [a, b].every((n) => n.node.state.recordsOf('c').length === 0), 15_000, 'c withdrawn');
    for (const n of [a, b]) {
      expect(n.node.status().origins.find((o) => o.origin === 'c')?.left).toBe(true);
      expect(live(n, 'a')).toEqual(['default/web']); // the others' exports stay
    }
    // A stale peer relaying c's old records (validly signed) changes nothing.
    const result = await a.node.ingestFrame(
      before.map((r) => r.proof!),
      b.node.peerId,
    );
    expect(result.reject).toBeUndefined();
    expect(a.node.state.recordsOf('c')).toEqual([]);
    await c.node.stop();
    nodes.splice(nodes.indexOf(c), 1);
    // A node that joins later learns the leave, not the records.
    const late = await startNode('late', [addrOf(b)], { psk });
    nodes.push(late);
    await waitFor(() => late.node.isSettled('c') || late.node.isSettled('b'), 15_000, 'late synced');
    await waitFor(() => live(late, 'a').length === 1, 15_000, 'late has a');
    expect(late.node.state.recordsOf('c')).toEqual([]);
  });

  it('a cluster that rotates its identity key is followed by every peer without a restart', async () => {
    const psk = generatePsk();
    const a = await startNode('a', [], { psk });
    const b = await startNode('b', [addrOf(a)], { psk });
    const c = await startNode('c', [addrOf(a), addrOf(b)], { psk });
    nodes.push(a, b, c);
    c.cluster.upsert('default', 'web', syntheticService(1, 2));
    c.cluster.upsert('default', 'old', syntheticService(2, 1));
    await waitFor(() => [a, b].every((n) => live(n, 'c').length === 2), 15_000, 'c everywhere');
    const oldProofs = c.node.state.recordsOf('c').map((r) => r.proof!);
    const oldKey = c.init.privateKey;
    await c.node.stop();
    nodes.splice(nodes.indexOf(c), 1);
    // The same cluster id with a new key, the old one configured as previous; it now exports only `web`.
    const newKey = await generateIdentityKey();
    const rotated = await startNode('c', [addrOf(a)], { psk, overrides: { previousKey: oldKey } }, newKey);
    nodes.push(rotated);
    await waitFor(() => live(rotated, 'c').length === 2, 15_000, 'own old records learned back');
    rotated.cluster.upsert('default', 'web', syntheticService(3, 1));
    rotated.cluster.remove('default', 'old');
    const newId = rotated.node.peerId.toString();
    await waitFor(
      () =>
        [a, b].every(
          (n) =>
            n.node.status().origins.find((o) => o.origin === 'c')?.peerId === newId &&
            live(n, 'c').join() === 'default/web' &&
            n.node.state.record('c', 'default/web')?.service?.endpointGroups[0]?.endpoints.length === 1,
        ),
      20_000,
      'peers follow the rotation and take the new key’s records',
    );
    // Every record of c is now signed by the new key, so anti-entropy relays all of them.
    await waitFor(
      () => rotated.node.state.recordsOf('c').every((r) => !oldProofs.some((p) => Buffer.compare(p, r.proof!) === 0)),
      10_000,
      'records re-issued under the new key',
    );
    // A stale relay's old-key copies are skipped quietly; the old key itself can no longer publish for c.
    const result = await a.node.ingestFrame(oldProofs, b.node.peerId);
    expect(result.reject).toBeUndefined();
    expect(live(a, 'c')).toEqual(['default/web']);
    for (const n of [a, b]) {
      const conflicts = (await n.node.metrics.bindingConflicts.get()).values.find((v) => v.labels.cluster_id === 'c');
      expect(conflicts?.value ?? 0, `binding conflicts at ${n.init.clusterId}`).toBe(0);
    }
    // A node that joins later binds the new key through a peer.
    const late = await startNode('late', [addrOf(b)], { psk });
    nodes.push(late);
    await waitFor(() => live(late, 'c').join() === 'default/web', 15_000, 'late node has c under the new key');
    expect(late.node.status().origins.find((o) => o.origin === 'c')?.peerId).toBe(newId);
  });

  it('forgets a cluster unheard past the horizon, and a peer that still holds its records cannot bring them back', async () => {
    const psk = generatePsk();
    const overrides = { endpointTtlMs: 1000, originHorizonMs: 3000, heartbeatIntervalMs: 250 };
    const a = await startNode('a', [], { psk, overrides });
    // b keeps everything: its horizon is far away.
    const b = await startNode('b', [addrOf(a)], { psk, overrides: { ...overrides, originHorizonMs: 3_600_000 } });
    const c = await startNode('c', [addrOf(a), addrOf(b)], { psk, overrides });
    nodes.push(a, b, c);
    c.cluster.upsert('default', 'web', syntheticService(1, 2));
    await waitFor(() => [a, b].every((n) => live(n, 'c').length === 1), 15_000, 'c everywhere');
    await c.node.stop();
    nodes.splice(nodes.indexOf(c), 1);
    await waitFor(() => !a.node.state.origins().includes('c'), 10_000, 'a forgets c');
    expect(a.node.state.recordsOf('c')).toEqual([]);
    expect(live(b, 'c')).toEqual(['default/web']);
    // b syncs its copy to a: refused (below the floor a keeps for c).
    await a.node.syncWith(b.node.peerId);
    await b.node.syncWith(a.node.peerId);
    expect(a.node.state.recordsOf('c')).toEqual([]);
    const forgotten = (await a.node.metrics.forgottenOrigins.get()).values[0]?.value ?? 0;
    expect(forgotten).toBeGreaterThanOrEqual(1);
  });

  it('collects tombstones past the horizon without losing a live export, and a stale peer cannot resurrect one', async () => {
    const psk = generatePsk();
    const partition = new Partition();
    const overrides = { tombstoneHorizonMs: 4000, heartbeatIntervalMs: 250, syncIntervalMs: 1000 };
    const a = await startNode('a', [], { psk, partition, overrides });
    const b = await startNode('b', [addrOf(a)], { psk, partition, overrides });
    const stale = await startNode('stale', [addrOf(a)], { psk, partition, overrides });
    nodes.push(a, b, stale);
    a.cluster.upsert('default', 'gone', syntheticService(1, 1));
    a.cluster.upsert('default', 'kept', syntheticService(2, 1));
    await waitFor(() => [b, stale].every((n) => live(n, 'a').length === 2), 15_000, 'a everywhere');
    // The stale peer is cut off before the removal and stays so past the horizon.
    await partition.cut([stale], [a, b]);
    a.cluster.remove('default', 'gone');
    await waitFor(() => b.node.state.record('a', 'default/gone')?.removed === true, 10_000, 'tombstone at b');
    const keptBefore = a.node.state.record('a', 'default/kept')!.version;
    await waitFor(
      () =>
        a.node.state.record('a', 'default/gone') === undefined &&
        b.node.state.record('a', 'default/gone') === undefined,
      20_000,
      'tombstone collected at a and b',
    );
    // The live export was re-issued above the floor, never lost.
    expect(live(a, 'a')).toEqual(['default/kept']);
    expect(live(b, 'a')).toEqual(['default/kept']);
    expect(a.node.state.record('a', 'default/kept')!.version.wallMs).toBeGreaterThan(keptBefore.wallMs);
    expect(live(stale, 'a')).toEqual(['default/gone', 'default/kept']);
    // Healed: the stale peer's copy of the removed export reaches nobody, and the stale peer drops it too.
    partition.heal();
    await stale.node.libp2p.dial(a.node.libp2p.getMultiaddrs()[0]!);
    await waitFor(() => live(stale, 'a').join() === 'default/kept', 15_000, 'stale peer drops the removed export');
    await a.node.syncWith(stale.node.peerId);
    await b.node.syncWith(stale.node.peerId);
    for (const n of [a, b, stale]) expect(n.node.state.record('a', 'default/gone')).toBeUndefined();
  });
});
