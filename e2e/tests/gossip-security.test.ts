// Hostile input against real nodes: forged, tampered, replayed, oversized and random messages, duplicate cluster ids.
// Everything must be rejected before it touches state, the sender scored down or its stream aborted, and no node
// may crash.
import { randomBytes } from 'node:crypto';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Message } from '@libp2p/gossipsub';
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGossipLibp2p, generateIdentityKey, SYNC_PROTOCOL, syntheticService } from '../../src/gossip/index.js';
import type { GossipLibp2p } from '../../src/gossip/index.js';
import { EnvelopeSigner, signRecord, signRecords } from '../../src/gossip/envelope.js';
import { LIVENESS_PROTOCOL } from '../../src/gossip/constants.js';
import { SyncFrame, TopicMessage } from '../../src/gossip/wire.js';
import { addrOf, converged, fingerprint, startMesh, startNode, stopAll, waitFor } from './gossip-helpers.js';
import type { TestNode } from './gossip-helpers.js';

async function counter<T extends string>(c: Counter<T>, labels: Partial<Record<T, string>>): Promise<number> {
  const { values } = await c.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

let nodes: TestNode[] = [];
let rogue: GossipLibp2p;
let rogueSigner: EnvelopeSigner;
/** What the rogue answers on the sync protocol (set per test). */
let rogueAnswer: Uint8Array[] = [];
/** Whether the rogue sends its answer as one RECORDS frame (verified in worker threads) or one frame per envelope. */
let rogueOneFrame = false;

async function publishFromRogue(envelopes: Uint8Array[]): Promise<void> {
  await rogue.services.pubsub.publish(
    nodes[0]!.node.topic,
    TopicMessage.encode({ version: 1, envelopes: envelopes as Uint8Array<ArrayBuffer>[] }),
  );
}

/** Makes node 0 pull from the rogue, which answers with `envelopes`. */
async function pullFromRogue(envelopes: Uint8Array[]): Promise<void> {
  rogueAnswer = envelopes;
  await nodes[0]!.node.syncWith(rogue.peerId);
}

const snapshot = (): string[] => nodes.map(fingerprint);

beforeAll(async () => {
  nodes = await startMesh(3);
  for (const [i, n] of nodes.entries()) n.cluster.upsert('default', 'web', syntheticService(i, 2));
  await waitFor(() => converged(nodes) && nodes[0]!.node.state.size === 3, 15_000, 'mesh');
  const key = await generateIdentityKey();
  rogueSigner = new EnvelopeSigner(key);
  rogue = await createGossipLibp2p({
    privateKey: key,
    psk: nodes[0]!.init.psk,
    topic: nodes[0]!.node.topic,
    listen: ['/ip4/127.0.0.1/tcp/0'],
  });
  await rogue.handle(SYNC_PROTOCOL, async (stream: Stream) => {
    const lp = lpStream(stream);
    await lp.read();
    for (const batch of rogueOneFrame ? [rogueAnswer] : rogueAnswer.map((e) => [e])) {
      await lp.write(
        SyncFrame.encode({
          type: SyncFrame.Type.RECORDS,
          version: 1,
          digests: [],
          envelopes: batch as Uint8Array<ArrayBuffer>[],
          buckets: [],
          pullMe: false,
        }),
      );
    }
    await lp.write(
      SyncFrame.encode({
        type: SyncFrame.Type.DONE,
        version: 1,
        digests: [],
        envelopes: [],
        buckets: [],
        pullMe: false,
      }),
    );
    await stream.close();
  });
  await rogue.start();
  rogue.services.pubsub.subscribe(nodes[0]!.node.topic);
  await rogue.dial(nodes[0]!.node.libp2p.getMultiaddrs()[0]!);
  await waitFor(() => rogue.services.pubsub.getSubscribers(nodes[0]!.node.topic).length > 0, 10_000, 'rogue joins');
});

afterAll(async () => {
  await rogue?.stop();
  await stopAll(nodes);
});

describe('gossip under hostile input', () => {
  it('refuses a record of a bound cluster id signed by another key, on the topic and by sync', async () => {
    const before = snapshot();
    const conflicts0 = await counter(nodes[0]!.node.metrics.bindingConflicts, { cluster_id: 'cluster-1' });
    const forged = signRecord(rogueSigner, {
      origin: 'cluster-1',
      namespace: 'default',
      name: 'web',
      version: { wallMs: Date.now() + 3_600_000, logical: 0 },
      removed: true,
    }).proof!;
    await publishFromRogue([forged]);
    await pullFromRogue([forged]);
    expect(await counter(nodes[0]!.node.metrics.bindingConflicts, { cluster_id: 'cluster-1' })).toBeGreaterThanOrEqual(
      conflicts0 + 2,
    );
    expect(snapshot()).toEqual(before);
  });

  it('rejects a tampered envelope and an envelope the publisher did not sign', async () => {
    const before = snapshot();
    const genuine = nodes[1]!.node.state.record('cluster-1', 'default/web')!.proof!;
    const tampered = new Uint8Array(genuine);
    tampered[10] = tampered[10]! ^ 0xff;
    const bad0 = await counter(nodes[0]!.node.metrics.envelopes, { result: 'bad_signature' });
    const invalid0 = await counter(nodes[0]!.node.metrics.envelopes, { result: 'invalid' });
    await pullFromRogue([tampered]);
    // A genuine envelope of cluster-1 published by the rogue: not the publisher's own statement.
    await publishFromRogue([genuine]);
    await new Promise((r) => setTimeout(r, 300));
    const bad = (await counter(nodes[0]!.node.metrics.envelopes, { result: 'bad_signature' })) - bad0;
    const invalid = (await counter(nodes[0]!.node.metrics.envelopes, { result: 'invalid' })) - invalid0;
    expect(bad + invalid).toBeGreaterThanOrEqual(2);
    expect(snapshot()).toEqual(before);
  });

  it.each(['one by one', 'in Merkle trees'])(
    'rejects a whole sync frame of 200 records signed %s (verified in worker threads) when one is altered',
    async (mode) => {
      const before = snapshot();
      const bad0 = await counter(nodes[0]!.node.metrics.envelopes, { result: 'bad_signature' });
      const unsigned = Array.from({ length: 200 }, (_, i) => ({
        origin: 'rogue-origin',
        namespace: 'default',
        name: `svc-${i}`,
        version: { wallMs: Date.now(), logical: i },
        removed: false,
        service: syntheticService(1000 + i, 2),
      }));
      const signed =
        mode === 'one by one' ? unsigned.map((r) => signRecord(rogueSigner, r)) : signRecords(rogueSigner, unsigned);
      const records = signed.map((r) => r.proof!);
      // Flip one byte inside the signed payload of record 150: it decodes, but its signature (or its tree's root)
      // no longer verifies. Its 63 tree mates verify: only the frame as a whole is refused.
      const tampered = new Uint8Array(records[150]!);
      tampered[20] = tampered[20]! ^ 0x01;
      records[150] = tampered;
      rogueOneFrame = true;
      try {
        await pullFromRogue(records);
      } finally {
        rogueOneFrame = false;
      }
      expect((await counter(nodes[0]!.node.metrics.envelopes, { result: 'bad_signature' })) - bad0).toBe(1);
      expect(nodes[0]!.node.state.recordsOf('rogue-origin')).toHaveLength(0);
      expect(snapshot()).toEqual(before);
    },
  );

  it('ignores a replayed older version and counts it as a replay', async () => {
    const victim = nodes[1]!;
    const held = nodes[0]!.node.state.record('cluster-1', 'default/web')!;
    const old = signRecord(new EnvelopeSigner(victim.init.privateKey), {
      origin: 'cluster-1',
      namespace: 'default',
      name: 'web',
      version: { wallMs: held.version.wallMs - 3_600_000, logical: 0 },
      removed: true,
    }).proof!;
    const before = snapshot();
    const replays0 = await counter(nodes[0]!.node.metrics.replays, {});
    await pullFromRogue([old, held.proof!]);
    expect(await counter(nodes[0]!.node.metrics.replays, {})).toBeGreaterThan(replays0);
    expect(snapshot()).toEqual(before);
    expect(nodes[0]!.node.state.record('cluster-1', 'default/web')!.removed).toBe(false);
  });

  it('refuses a replayed topic message whole: nothing of it is merged', async () => {
    const victim = nodes[1]!;
    const signer = new EnvelopeSigner(victim.init.privateKey);
    const held = nodes[0]!.node.state.record('cluster-1', 'default/web')!;
    const replayed = signRecord(signer, {
      origin: 'cluster-1',
      namespace: 'default',
      name: 'web',
      version: { wallMs: held.version.wallMs - 3_600_000, logical: 0 },
      removed: true,
    }).proof!;
    // A fresh statement riding along with the replay (same publisher, validly signed).
    const rider = signRecord(signer, {
      origin: 'cluster-1',
      namespace: 'default',
      name: 'rider',
      version: { wallMs: held.version.wallMs + 1, logical: 0 },
      removed: true,
    }).proof!;
    const before = snapshot();
    const result = nodes[0]!.node.ingest([replayed, rider], victim.node.peerId.publicKey!.raw);
    expect(result.reject).toBe('replayed message');
    expect(nodes[0]!.node.state.record('cluster-1', 'default/rider')).toBeUndefined();
    expect(snapshot()).toEqual(before);
  });

  it('refuses a second PeerId claiming a bound cluster id, unless pinned by the operator', async () => {
    const before = snapshot();
    const c0 = await counter(nodes[0]!.node.metrics.bindingConflicts, { cluster_id: 'cluster-1' });
    const impostor = await startNode('cluster-1', [addrOf(nodes[0]!)], { psk: nodes[0]!.init.psk! });
    try {
      impostor.cluster.upsert('default', 'evil', syntheticService(666, 1));
      await waitFor(() => impostor.node.libp2p.getPeers().length > 0, 10_000, 'impostor connects');
      await new Promise((r) => setTimeout(r, 2500));
      expect(await counter(nodes[0]!.node.metrics.bindingConflicts, { cluster_id: 'cluster-1' })).toBeGreaterThan(c0);
      for (const n of nodes) expect(n.node.state.record('cluster-1', 'default/evil')).toBeUndefined();
      expect(snapshot()).toEqual(before);
    } finally {
      await impostor.node.stop();
    }
    // A pin wins over first use: a node pinned to the impostor's PeerId refuses the real cluster-1.
    const pinnedKey = await generateIdentityKey();
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
    const pinned = await startNode(
      'observer',
      [addrOf(nodes[0]!), `cluster-1=/ip4/127.0.0.1/tcp/1/p2p/${peerIdFromPrivateKey(pinnedKey).toString()}`],
      { psk: nodes[0]!.init.psk! },
    );
    try {
      await waitFor(() => pinned.node.state.size >= 2, 10_000, 'observer syncs');
      expect(pinned.node.state.record('cluster-1', 'default/web')).toBeUndefined();
      expect(await counter(pinned.node.metrics.bindingConflicts, { cluster_id: 'cluster-1' })).toBeGreaterThan(0);
    } finally {
      await pinned.node.stop();
    }
  });

  it('survives a 10 MiB message on the topic and a 10 MiB sync frame', async () => {
    const before = snapshot();
    const huge = randomBytes(10 * 1024 * 1024);
    await rogue.services.pubsub.publish(nodes[0]!.node.topic, huge).catch(() => undefined);
    const errors0 = await counter(nodes[0]!.node.metrics.syncSessions, { role: 'server', result: 'error' });
    const stream = await rogue.dialProtocol(nodes[0]!.node.peerId, SYNC_PROTOCOL);
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 * 1024 });
    await lp.write(huge).catch(() => undefined);
    await waitFor(() => stream.status !== 'open', 10_000, 'stream aborted').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(await counter(nodes[0]!.node.metrics.syncSessions, { role: 'server', result: 'error' })).toBeGreaterThan(
      errors0,
    );
    expect(snapshot()).toEqual(before);
  });

  it('under a flood of junk messages and streams that never write, heartbeats keep flowing and nothing changes', async () => {
    const before = snapshot();
    const node = nodes[0]!.node;
    let maxAgeMs = 0;
    let flooding = true;
    const sampler = (async () => {
      while (flooding) {
        const age = node.status().origins.find((o) => o.origin === 'cluster-2')?.heartbeatAgeMs ?? Infinity;
        maxAgeMs = Math.max(maxAgeMs, age);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const silent: Stream[] = [];
    const deadline = Date.now() + 6000;
    let published = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 50; i++) {
        await rogue.services.pubsub.publish(node.topic, randomBytes(100 + (i % 400))).catch(() => undefined);
        published++;
      }
      for (const protocol of [SYNC_PROTOCOL, LIVENESS_PROTOCOL]) {
        // Opened, never written: each must time out or be refused without holding anything up.
        const s = await rogue
          .dialProtocol(node.peerId, protocol, { signal: AbortSignal.timeout(1000) })
          .catch(() => undefined);
        if (s !== undefined) silent.push(s);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    flooding = false;
    await sampler;
    for (const s of silent) s.abort(new Error('test over'));
    expect(published).toBeGreaterThan(1000);
    // One beat a second (FAST); relayed hop by hop, a beat is at most a few periods old.
    expect(maxAgeMs).toBeLessThan(4000);
    expect(snapshot()).toEqual(before);
  });

  it('a message that fails inside the node (our bug, not the sender’s) is ignored, not rejected: the relay is not scored down', async () => {
    const node = nodes[0]!.node;
    const validator = node.libp2p.services.pubsub.topicValidators.get(node.topic)!;
    const errors0 = await counter(node.metrics.ingestErrors, {});
    const ingest = node.ingest.bind(node);
    node.ingest = () => {
      throw new TypeError('a bug in ingest');
    };
    try {
      const msg: Message = {
        type: 'signed',
        from: rogue.peerId,
        topic: node.topic,
        data: TopicMessage.encode({ version: 1, envelopes: [randomBytes(64)] }),
        sequenceNumber: 1n,
        signature: randomBytes(64),
        key: rogue.peerId.publicKey!,
      };
      expect(await validator(rogue.peerId, msg)).toBe(TopicValidatorResult.Ignore);
      expect(await counter(node.metrics.ingestErrors, {})).toBe(errors0 + 1);
    } finally {
      node.ingest = ingest;
    }
  });

  it('rejects 10,000 random byte strings (validator, envelopes, sync frames) without a crash or a state change', async () => {
    const before = snapshot();
    const node = nodes[0]!.node;
    const validator = node.libp2p.services.pubsub.topicValidators.get(node.topic)!;
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const data = randomBytes(1 + Math.floor(Math.random() * 512));
      const msg: Message = {
        type: 'signed',
        from: rogue.peerId,
        topic: node.topic,
        data,
        sequenceNumber: BigInt(i),
        signature: randomBytes(64),
        key: rogue.peerId.publicKey!,
      };
      if ((await validator(rogue.peerId, msg)) === TopicValidatorResult.Accept) accepted++;
      if (node.ingest([data], undefined).reject === undefined) accepted++;
    }
    expect(accepted).toBe(0);
    // Over the wire: random topic messages and random sync frames (the rate limiter refuses most streams).
    for (let i = 0; i < 50; i++)
      await rogue.services.pubsub.publish(node.topic, randomBytes(200)).catch(() => undefined);
    for (let i = 0; i < 30; i++) {
      try {
        const s = await rogue.dialProtocol(node.peerId, SYNC_PROTOCOL, { signal: AbortSignal.timeout(2000) });
        await lpStream(s)
          .write(randomBytes(100 + i))
          .catch(() => undefined);
      } catch {
        // refused streams are expected
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(await counter(node.metrics.syncRateLimited, {})).toBeGreaterThan(0);
    expect(snapshot()).toEqual(before);
    // And the mesh still works.
    nodes[2]!.cluster.upsert('default', 'after', syntheticService(4242, 1));
    await waitFor(
      () => nodes.every((n) => n.node.state.record('cluster-2', 'default/after') !== undefined),
      10_000,
      'mesh alive',
    );
  });
});
