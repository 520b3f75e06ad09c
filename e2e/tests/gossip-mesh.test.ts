// Ten real libp2p nodes on 127.0.0.1 in one process: convergence, late join, restart with the same key, removals,
// and a partition of 3 of 10 repaired by anti-entropy that transfers only the changed records.
import { afterEach, describe, expect, it } from 'vitest';
import { serviceKey } from '../../src/core/index.js';
import { generatePsk, syntheticService } from '../../src/gossip/index.js';
import { addrOf, converged, fingerprint, Partition, startMesh, startNode, stopAll, waitFor } from './gossip-helpers.js';
import type { TestNode } from './gossip-helpers.js';

let running: TestNode[] = [];
afterEach(async () => {
  await stopAll(running);
  running = [];
});

const liveKeys = (n: TestNode, origin: string): string[] =>
  n.node.state
    .recordsOf(origin)
    .filter((r) => !r.removed)
    .map((r) => serviceKey(r.namespace, r.name))
    .sort();

describe('gossip mesh', () => {
  it('10 nodes converge after random updates; a removed export never returns; a late node gets everything', async () => {
    const nodes = await startMesh(10);
    running = [...nodes];
    let seed = 0;
    // Random upserts and removals from every node, in a few bursts.
    for (let round = 0; round < 4; round++) {
      for (const n of nodes) {
        for (let k = 0; k < 3; k++) {
          const name = `svc-${Math.floor(Math.random() * 6)}`;
          if (Math.random() < 0.25) n.cluster.remove('default', name);
          else n.cluster.upsert('default', name, syntheticService(++seed, 3));
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // A removal that must stick.
    nodes[3]!.cluster.upsert('default', 'doomed', syntheticService(seed + 1, 2));
    await waitFor(() => nodes.every((n) => liveKeys(n, 'cluster-3').includes('default/doomed')), 15_000, 'doomed');
    nodes[3]!.cluster.remove('default', 'doomed');
    await waitFor(() => converged(nodes), 20_000, 'convergence');
    for (const n of nodes) {
      for (const m of nodes) expect(liveKeys(n, m.node.clusterId)).toEqual([...m.cluster.exports.keys()].sort());
      expect(liveKeys(n, 'cluster-3')).not.toContain('default/doomed');
    }
    // Still gone after more anti-entropy rounds.
    await new Promise((r) => setTimeout(r, 3500));
    for (const n of nodes) expect(liveKeys(n, 'cluster-3')).not.toContain('default/doomed');

    const late = await startNode('late', [addrOf(nodes[5]!)], { psk: nodes[0]!.init.psk! });
    running.push(late);
    await waitFor(
      () => fingerprint(late) === fingerprint(nodes[0]!) || (late.node.state.size === 0 && false),
      15_000,
      'late node',
    ).catch(() => undefined);
    await waitFor(() => nodes.every((n) => n.node.state.size <= late.node.state.size), 15_000, 'late node catches up');
    const withoutLate = (n: TestNode): string =>
      fingerprint(n)
        .split(',')
        .filter((x) => !x.startsWith('late:'))
        .join(',');
    expect(withoutLate(late)).toBe(withoutLate(nodes[0]!));
  });

  it('a node restarted with the same key learns its old records and its new ones supersede them', async () => {
    const nodes = await startMesh(4);
    running = [...nodes];
    const victim = nodes[2]!;
    victim.cluster.upsert('default', 'a', syntheticService(1, 2));
    victim.cluster.upsert('default', 'b', syntheticService(2, 2));
    await waitFor(() => nodes.every((n) => liveKeys(n, 'cluster-2').length === 2), 15_000, 'initial records');
    const oldVersion = nodes[0]!.node.state.record('cluster-2', 'default/a')!.version;
    await victim.node.stop();
    running = running.filter((n) => n !== victim);

    const reborn = await startNode('cluster-2', [addrOf(nodes[0]!)], { psk: victim.init.psk! }, victim.init.privateKey);
    running.push(reborn);
    // It learns its own previous records back from its peers.
    await waitFor(() => liveKeys(reborn, 'cluster-2').length === 2, 15_000, 'own records learned back');
    expect(reborn.node.clock.last.wallMs).toBeGreaterThanOrEqual(oldVersion.wallMs);
    // Now it exports only `a`, with new content: `b` gets a tombstone, `a` a newer version.
    reborn.cluster.upsert('default', 'a', syntheticService(99, 1));
    await waitFor(
      () =>
        nodes
          .filter((n) => n !== victim)
          .every((n) => {
            const a = n.node.state.record('cluster-2', 'default/a');
            const b = n.node.state.record('cluster-2', 'default/b');
            return a?.service?.endpointGroups[0]?.endpoints.length === 1 && b?.removed === true;
          }),
      15_000,
      'new records supersede',
    );
    const newVersion = nodes[0]!.node.state.record('cluster-2', 'default/a')!.version;
    expect(newVersion.wallMs * 1e6 + newVersion.logical).toBeGreaterThan(oldVersion.wallMs * 1e6 + oldVersion.logical);
  });

  it('a restarted node settles an origin only through a completed sync with a peer that settled it', async () => {
    const nodes = await startMesh(3);
    running = [...nodes];
    for (const n of nodes) n.cluster.upsert('default', `svc-${n.init.clusterId}`, syntheticService(1, 1));
    const origins = nodes.map((n) => n.init.clusterId);
    await waitFor(
      () => converged(nodes) && nodes.every((n) => origins.every((o) => n.node.isSettled(o))),
      20_000,
      'every node settled every origin',
    );
    const victim = nodes[2]!;
    await victim.node.stop();
    running = running.filter((n) => n !== victim);
    // Restarted alone (no bootstrap): it holds nothing of the others, and must not take that for "they export nothing".
    const reborn = await startNode('cluster-2', [], { psk: victim.init.psk! }, victim.init.privateKey);
    running.push(reborn);
    await new Promise((r) => setTimeout(r, 1500));
    expect(reborn.node.isSettled('cluster-0')).toBe(false);
    expect(reborn.node.isSettled('cluster-2')).toBe(false); // not before it published from its own caches
    reborn.cluster.upsert('default', 'svc-cluster-2', syntheticService(1, 1));
    expect(reborn.node.isSettled('cluster-2')).toBe(true);
    expect(reborn.node.status().settled).toEqual(['cluster-2']);
    await reborn.node.libp2p.dial(nodes[1]!.node.libp2p.getMultiaddrs()[0]!);
    await waitFor(
      () => ['cluster-0', 'cluster-1'].every((o) => reborn.node.isSettled(o)),
      15_000,
      'settled through cluster-1',
    );
    expect(liveKeys(reborn, 'cluster-0')).toEqual(['default/svc-cluster-0']);
    expect(liveKeys(reborn, 'cluster-1')).toEqual(['default/svc-cluster-1']);
  });

  it('a node whose first sync fails syncs again within seconds, not at the next periodic sync', async () => {
    const psk = generatePsk();
    // No periodic sync during the test, and no learned peer dialled: b's only peer is a.
    const overrides = { syncIntervalMs: 600_000, targetPeers: 1 };
    const a = await startNode('a', [], { psk, overrides });
    const c = await startNode('c', [addrOf(a)], { psk, overrides });
    running.push(a, c);
    a.cluster.upsert('default', 'web', syntheticService(1, 2));
    await waitFor(() => liveKeys(c, 'a').length === 1, 10_000, 'a published to c');
    // The topic's message cache forgets a's delta after a few gossipsub heartbeats: b can learn a's records only
    // through a sync with a.
    await new Promise((r) => setTimeout(r, 5000));
    const b = await startNode('b', [], { psk, overrides });
    running.push(b);
    const ingestFrame = b.node.ingestFrame.bind(b.node);
    let faults = 0;
    b.node.ingestFrame = (envelopes, from) => {
      if (faults++ === 0) return Promise.reject(new Error('injected: the first sync frame fails'));
      return ingestFrame(envelopes, from);
    };
    // a completed a sync moments ago, so b's connection starts none from a's side (which would make b pull back).
    await a.node.syncWith(c.node.peerId);
    await b.node.libp2p.dial(a.node.libp2p.getMultiaddrs()[0]!);
    await waitFor(() => liveKeys(b, 'a').length === 1, 10_000, 'b synced after its failed first sync');
    const client = (await b.node.metrics.syncSessions.get()).values.filter((v) => v.labels.role === 'client');
    expect(client.find((v) => v.labels.result === 'error')?.value).toBe(1);
    expect(client.find((v) => v.labels.result === 'ok')?.value).toBeGreaterThanOrEqual(1);
  });

  it('heals a partition of 3 of 10 nodes, transferring only the changed records', async () => {
    const partition = new Partition();
    const nodes = await startMesh(10, { partition });
    running = [...nodes];
    // 20 services of 8 endpoints per node: 200 records of full state.
    for (const [i, n] of nodes.entries()) {
      const desired = new Map();
      for (let s = 0; s < 20; s++) desired.set(`default/svc-${s}`, syntheticService(i * 100 + s, 8));
      n.cluster.replaceAll(desired);
    }
    await waitFor(() => converged(nodes) && nodes[0]!.node.state.size === 200, 30_000, 'initial convergence');
    const fullStateBytes = nodes[0]!.node.state
      .origins()
      .flatMap((o) => nodes[0]!.node.state.recordsOf(o))
      .reduce((sum, r) => sum + (r.proof?.length ?? 0), 0);

    const minority = nodes.slice(7);
    const majority = nodes.slice(0, 7);
    await partition.cut(minority, majority);
    await waitFor(
      () => minority.every((m) => majority.every((x) => m.node.libp2p.getConnections(x.node.peerId).length === 0)),
      5000,
      'partition',
    );
    // 1 % of the records change: one on each side of the cut.
    majority[1]!.cluster.upsert('default', 'svc-3', syntheticService(7001, 8));
    minority[1]!.cluster.upsert('default', 'svc-4', syntheticService(7002, 8));
    await waitFor(() => converged(majority) && converged(minority), 30_000, 'both sides converge on their own');
    expect(converged(nodes)).toBe(false);
    // Outlast gossipsub's message cache (IHAVE gossip covers ~3 heartbeats), so only anti-entropy can repair.
    await new Promise((r) => setTimeout(r, 6000));

    const before = nodes.map((n) => ({ ...n.node.metrics }));
    const envBytes = (): number => nodes.reduce((s, n) => s + n.node.metrics.syncRecordBytesIn, 0);
    const frameBytes = (): number => nodes.reduce((s, n) => s + n.node.metrics.syncBytesIn, 0);
    const env0 = envBytes();
    const frame0 = frameBytes();
    expect(converged(nodes)).toBe(false);
    partition.heal();
    await waitFor(() => converged(nodes), 30_000, 'convergence after heal');
    const repairEnvelopeBytes = envBytes() - env0;
    const repairFrameBytes = frameBytes() - frame0;
    const changedRecordBytes = [
      nodes[0]!.node.state.record('cluster-1', 'default/svc-3')!,
      nodes[0]!.node.state.record('cluster-8', 'default/svc-4')!,
    ].reduce((s, r) => s + r.proof!.length, 0);
    expect(before.length).toBe(10);
    // Every node received at most a few copies of the two changed records, never the full state.
    expect(repairEnvelopeBytes).toBeLessThan(nodes.length * fullStateBytes * 0.05);
    expect(repairEnvelopeBytes).toBeLessThan(nodes.length * changedRecordBytes * 3);
    expect(repairFrameBytes).toBeLessThan(nodes.length * fullStateBytes * 0.1);
    console.log(
      `partition repair: ${repairEnvelopeBytes} record bytes, ${repairFrameBytes} frame bytes; ` +
        `full state ${fullStateBytes} bytes per node; changed records ${changedRecordBytes} bytes`,
    );
  });

  it('a node with another ClusterSet key never connects', async () => {
    const a = await startNode('a', [], { psk: generatePsk() });
    running.push(a);
    const b = await startNode('b', [addrOf(a)], { psk: generatePsk() });
    running.push(b);
    await expect(
      b.node.libp2p.dial(a.node.libp2p.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(3000) }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.node.libp2p.getPeers()).toHaveLength(0);
    expect(b.node.libp2p.getPeers()).toHaveLength(0);
  });
});
