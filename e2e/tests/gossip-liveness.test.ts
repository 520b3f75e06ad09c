// Liveness on real libp2p over 127.0.0.1: beats relay hop by hop, so a cluster heard only through others stays alive;
// a stopped cluster is withdrawn after the TTL; a peer that is no member cannot keep anyone alive.
import { lpStream } from '@libp2p/utils';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePsk, syntheticService } from '../../src/gossip/index.js';
import { createGossipLibp2p } from '../../src/gossip/libp2p-node.js';
import { generateIdentityKey } from '../../src/gossip/keys.js';
import { LIVENESS_PROTOCOL, topicFor, WIRE_VERSION } from '../../src/gossip/constants.js';
import { LivenessFrame } from '../../src/gossip/wire.js';
import { addrOf, Partition, startNode, stopAll, waitFor } from './gossip-helpers.js';
import type { TestNode } from './gossip-helpers.js';

const TTL = 3000;
const overrides = { endpointTtlMs: TTL, heartbeatIntervalMs: 500 };

const originOf = (n: TestNode, origin: string) => n.node.status().origins.find((o) => o.origin === origin);

describe('gossip liveness', () => {
  const nodes: TestNode[] = [];
  const extra: { stop(): void | Promise<void> }[] = [];
  afterEach(async () => {
    await stopAll(nodes.splice(0));
    await Promise.all(extra.splice(0).map((n) => n.stop()));
  });

  it('a fresh node does not take a long-dead cluster’s last heartbeat, relayed by sync, for one heard now', async () => {
    const psk = generatePsk();
    const b = await startNode('b', [], { psk, overrides });
    nodes.push(b);
    const a = await startNode('a', [addrOf(b)], { psk, overrides });
    nodes.push(a);
    a.cluster.upsert('default', 'web', syntheticService(1, 1));
    b.cluster.upsert('default', 'db', syntheticService(2, 1));
    await waitFor(() => originOf(b, 'a')?.alive === true && b.node.isSettled('a'), 10_000, 'a alive and settled at b');
    await a.node.stop();
    nodes.splice(nodes.indexOf(a), 1);
    await waitFor(() => originOf(b, 'a')?.alive === false, TTL + 5000, 'a withdrawn at b');
    await new Promise((r) => setTimeout(r, 1000));
    const fresh = await startNode('fresh', [addrOf(b)], { psk, overrides });
    nodes.push(fresh);
    await waitFor(() => fresh.node.isSettled('a') && fresh.node.isSettled('b'), 10_000, 'fresh settled through b');
    // b heard a's last heartbeat more than a TTL ago: so did the fresh node, although the heartbeat reached it now.
    expect(fresh.node.state.heartbeatOf('a')).toBeDefined();
    expect(originOf(fresh, 'a')?.alive).toBe(false);
    expect(originOf(fresh, 'a')!.heartbeatAgeMs!).toBeGreaterThan(TTL);
    expect(originOf(fresh, 'b')?.alive).toBe(true);
  });

  it('a cluster heard only through another stays alive, and is withdrawn after the TTL once it stops', async () => {
    const psk = generatePsk();
    const partition = new Partition();
    const b = await startNode('b', [], { psk, partition, overrides });
    nodes.push(b);
    // a and c never connect to each other: everything between them goes through b
    const a = await startNode('a', [addrOf(b)], { psk, partition, overrides });
    nodes.push(a);
    const c = await startNode('c', [addrOf(b)], { psk, partition, overrides });
    nodes.push(c);
    await partition.cut([a], [c]);
    await waitFor(
      () => originOf(c, 'a')?.alive === true && originOf(c, 'a')?.incarnation !== undefined,
      10_000,
      'a at c',
    );
    expect(c.node.libp2p.getConnections(a.node.peerId)).toHaveLength(0);

    // Over three TTLs, a stays alive at c and its beat keeps getting fresher, with no direct connection.
    const versions = new Set<number>();
    for (let i = 0; i < 18; i++) {
      const o = originOf(c, 'a')!;
      expect(o.alive).toBe(true);
      expect(o.heartbeatAgeMs!).toBeLessThan(TTL);
      versions.add(c.node.state.heartbeatOf('a')!.heartbeat.version.wallMs);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(versions.size).toBeGreaterThan(10);
    expect(c.node.libp2p.getConnections(a.node.peerId)).toHaveLength(0);
    // Liveness came as relayed frames, not as one signed topic message per beat.
    const relayed = await c.node.metrics.envelopes.get();
    const count = (result: string): number =>
      relayed.values.find((v) => v.labels.kind === 'heartbeat' && v.labels.result === result)?.value ?? 0;
    expect(count('relayed')).toBeGreaterThan(10);
    expect(count('accepted')).toBeLessThan(count('relayed'));

    const stoppedAt = Date.now();
    await a.node.stop();
    nodes.splice(nodes.indexOf(a), 1);
    await waitFor(() => originOf(c, 'a')?.alive === false, TTL + 5000, 'a withdrawn at c');
    const after = Date.now() - stoppedAt;
    // Not before the TTL minus one beat period (the last beat may be up to one period old when a stops), less a
    // little for the relay: the beat reaches c through b, some time after b heard it.
    expect(after).toBeGreaterThanOrEqual(TTL - 600 - 100);
    expect(originOf(b, 'a')?.alive).toBe(false);
  });

  it('a peer with the ClusterSet key but no cluster id cannot keep a stopped cluster alive', async () => {
    const psk = generatePsk();
    const b = await startNode('b', [], { psk, overrides });
    nodes.push(b);
    const a = await startNode('a', [addrOf(b)], { psk, overrides });
    nodes.push(a);
    await waitFor(() => originOf(b, 'a')?.alive === true, 10_000, 'a at b');
    const intruder = await createGossipLibp2p({
      privateKey: await generateIdentityKey(),
      psk,
      topic: topicFor('test'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
    await intruder.start();
    extra.push(intruder);
    await a.node.stop();
    nodes.splice(nodes.indexOf(a), 1);
    const held = b.node.state.heartbeatOf('a')!.heartbeat;
    // Claim, again and again, that a beat just now.
    const deadline = Date.now() + TTL + 2000;
    while (Date.now() < deadline) {
      const stream = await intruder.dialProtocol(b.node.libp2p.getMultiaddrs()[0]!, LIVENESS_PROTOCOL);
      const frame = LivenessFrame.encode({
        version: WIRE_VERSION,
        entries: [
          {
            origin: 'a',
            incarnation: BigInt(held.incarnation),
            wallMs: BigInt(Date.now()),
            logical: 0,
            ageMs: 0,
            softwareVersion: '',
            recordCount: 0,
            maxWallMs: 0n,
            maxLogical: 0,
            addrs: [],
            sameSummary: false,
            wallMsDelta: 0n,
            originRef: 0,
          },
        ],
      });
      // b refuses the frame (aborts the stream); whether the write notices in time does not matter
      await lpStream(stream)
        .write(frame)
        .then(() => stream.close())
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 250));
    }
    await waitFor(() => originOf(b, 'a')?.alive === false, 3000, 'a withdrawn at b');
    expect(b.node.state.heartbeatOf('a')!.heartbeat.version.wallMs).toBeLessThanOrEqual(Date.now() - TTL);
    const frames = await b.node.metrics.livenessFrames.get();
    expect(frames.values.find((v) => v.labels.direction === 'invalid')?.value ?? 0).toBeGreaterThan(0);
  });
});
