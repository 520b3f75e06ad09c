// Sync sessions begun with a summary (/mcs-gossip/sync/1.1.0): a settled node's periodic session costs a hash when
// the peer holds the same records, falls back to digests when it does not, and a node before the summary protocol is
// still synced with in full. Real libp2p nodes on 127.0.0.1 in this process.
import type { PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ClusterSetState } from '../../src/core/index.js';
import { exported, issue, ORIGINS } from '../../src/core/test-support/fixtures.js';
import {
  createGossipLibp2p,
  generateIdentityKey,
  generatePsk,
  SYNC_PROTOCOL,
  syntheticService,
} from '../../src/gossip/index.js';
import type { GossipLibp2p } from '../../src/gossip/index.js';
import { SYNC_PROTOCOL_SUMMARY } from '../../src/gossip/constants.js';
import { InvalidMessageError } from '../../src/gossip/errors.js';
import { GossipMetrics } from '../../src/gossip/metrics.js';
import { digestSummary, runSyncClient, serveSync } from '../../src/gossip/sync.js';
import type { SyncHost } from '../../src/gossip/sync.js';
import { SyncFrame } from '../../src/gossip/wire.js';
import { converged, FAST, startMesh, stopAll, waitFor } from './gossip-helpers.js';
import type { TestNode } from './gossip-helpers.js';

const counter = async (metrics: GossipMetrics, result: string): Promise<number> =>
  (await metrics.syncSummaries.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

describe('sync sessions begun with a summary', () => {
  let nodes: TestNode[] = [];
  afterAll(async () => stopAll(nodes));

  it('a settled node with the same records as its peer syncs in a few dozen bytes, an unsettled one with digests', async () => {
    // No periodic sessions (sync on connect and on gaps only): the counters below see only the sessions asked for.
    nodes = await startMesh(3, { overrides: { syncIntervalMs: 3_600_000 } });
    for (const [i, n] of nodes.entries()) n.cluster.upsert(`ns-${i}`, 'svc', syntheticService(i, 3));
    await waitFor(() => converged(nodes) && nodes[0]!.node.state.recordsOf('cluster-2').length === 1, 20_000, 'mesh');
    const [a, b, c] = [nodes[0]!, nodes[1]!, nodes[2]!];
    await waitFor(() => ['cluster-1', 'cluster-2'].every((o) => a.node.isSettled(o)), 20_000, 'a settled');
    await new Promise((r) => setTimeout(r, 2 * FAST.heartbeatIntervalMs!));
    const same = await counter(a.node.metrics, 'same');
    const out = a.node.metrics.syncBytesOut;
    const inn = a.node.metrics.syncBytesIn;
    await a.node.syncWith(b.node.peerId);
    expect(await counter(a.node.metrics, 'same')).toBe(same + 1);
    // HELLO (a 32-byte hash) and DONE (empty): no digest of any of the three origins.
    expect(a.node.metrics.syncBytesOut - out).toBeLessThan(60);
    expect(a.node.metrics.syncBytesIn - inn).toBeLessThan(20);

    // cluster-2 stops: once its heartbeat is older than 1.5 periods at a, a's sessions carry digests again.
    await c.node.stop();
    nodes.splice(2, 1);
    await new Promise((r) => setTimeout(r, 2 * FAST.heartbeatIntervalMs!));
    const before = a.node.metrics.syncBytesOut;
    const differ = await counter(a.node.metrics, 'differ');
    await a.node.syncWith(b.node.peerId);
    // Not begun with a summary at all: neither outcome counted.
    expect(await counter(a.node.metrics, 'same')).toBe(same + 1);
    expect(await counter(a.node.metrics, 'differ')).toBe(differ);
    expect(a.node.metrics.syncBytesOut - before).toBeGreaterThan(90);
  }, 60_000);
});

/** Two bare libp2p nodes, with sync hosts of their own states (records with stand-in proofs). */
describe('the summary protocol between sync hosts', () => {
  const psk = generatePsk();
  const started: GossipLibp2p[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((n) => n.stop()));
  });

  const peerNode = async (): Promise<GossipLibp2p> => {
    const n = await createGossipLibp2p({
      privateKey: await generateIdentityKey(),
      psk,
      topic: 't',
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
    await n.start();
    started.push(n);
    return n;
  };

  const hostOf = (state: ClusterSetState, summaryWillDo: boolean, pulled: PeerId[] = []): SyncHost => ({
    state,
    // The stand-in proofs are not envelopes: counted, not applied.
    ingest: async (envelopes) => ({ recordBytes: envelopes.length }),
    bindingProof: () => undefined,
    rotationProofs: () => [],
    pullFrom: (p) => void pulled.push(p),
    settledOrigins: () => new Set(state.origins()),
    summaryWillDo: () => summaryWillDo,
    now: () => Date.now(),
    heartbeatIntervalMs: 10_000,
    metrics: new GossipMetrics(),
    log: pino({ level: 'silent' }),
  });

  /** Records of three origins; `extra` more updates of cluster-a's first key (the server then holds newer ones). */
  const stateWith = (extra = 0): ClusterSetState => {
    const s = new ClusterSetState();
    for (const origin of ORIGINS) {
      const ops = [0, 1, 2, ...Array.from({ length: origin === 'cluster-a' ? extra : 0 }, () => 0)];
      s.merge(
        issue(
          origin,
          ops.map((key) => ({ key, service: exported() })),
        ),
      );
    }
    return s;
  };

  const serve = (node: GossipLibp2p, host: SyncHost, protocols: string[], errors: unknown[] = []): Promise<void> =>
    node.handle(protocols, (stream: Stream, connection) => {
      serveSync(host, stream, connection.remotePeer, { signal: AbortSignal.timeout(5000), frameTimeoutMs: 2000 }).catch(
        (err: unknown) => {
          errors.push(err);
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });

  const sync = async (client: GossipLibp2p, host: SyncHost, server: GossipLibp2p) => {
    await client.dial(server.getMultiaddrs()[0]!);
    return runSyncClient(host, client, server.peerId, { signal: AbortSignal.timeout(5000), frameTimeoutMs: 2000 });
  };

  it('a server with other records asks for digests, and the session goes on from them', async () => {
    const [client, server] = [await peerNode(), await peerNode()];
    const pulled: PeerId[] = [];
    const clientHost = hostOf(stateWith(), true);
    const serverHost = hostOf(stateWith(1), true, pulled);
    expect(digestSummary(clientHost.state.digest())).not.toEqual(digestSummary(serverHost.state.digest()));
    await serve(server, serverHost, [SYNC_PROTOCOL_SUMMARY, SYNC_PROTOCOL]);
    const settled = await sync(client, clientHost, server);
    expect(await counter(clientHost.metrics, 'differ')).toBe(1);
    expect(await counter(clientHost.metrics, 'same')).toBe(0);
    // The session ran in full: the server sent the record the client lacks and ended with its settled digests.
    expect(settled.map((d) => d.digest.origin)).toEqual([...ORIGINS]);
    expect(clientHost.metrics.syncEnvelopesIn).toBeGreaterThan(0);
    expect(pulled).toEqual([]);
  });

  it('the same records end the session at once; digests in any order give the same summary', async () => {
    const [client, server] = [await peerNode(), await peerNode()];
    const clientHost = hostOf(stateWith(), true);
    await serve(server, hostOf(stateWith(), true), [SYNC_PROTOCOL_SUMMARY, SYNC_PROTOCOL]);
    expect(await sync(client, clientHost, server)).toEqual([]);
    expect(await counter(clientHost.metrics, 'same')).toBe(1);
    const digests = clientHost.state.digest();
    expect(digestSummary([...digests].reverse())).toEqual(digestSummary(digests));
  });

  it('a node that speaks only sync/1.0.0 gets digests, and refuses a summary sent to it anyway', async () => {
    const [client, server] = [await peerNode(), await peerNode()];
    const clientHost = hostOf(stateWith(), true);
    const errors: unknown[] = [];
    await serve(server, hostOf(stateWith(1), true), [SYNC_PROTOCOL], errors);
    const settled = await sync(client, clientHost, server);
    expect(settled.map((d) => d.digest.origin)).toEqual([...ORIGINS]);
    expect(await counter(clientHost.metrics, 'same')).toBe(0);
    expect(await counter(clientHost.metrics, 'differ')).toBe(0);
    expect(errors).toEqual([]);

    const stream = await client.dialProtocol(server.peerId, SYNC_PROTOCOL);
    await lpStream(stream).write(
      SyncFrame.encode({ type: SyncFrame.Type.HELLO, version: 1, summary: new Uint8Array(32).fill(7) }),
    );
    await waitFor(() => errors.length > 0, 5000, 'the refusal');
    expect(errors[0]).toBeInstanceOf(InvalidMessageError);
    expect(String(errors[0])).toMatch(/HELLO with a summary on \/mcs-gossip\/sync\/1\.0\.0/);
  });

  it('a client that has not settled everything sends digests even on the summary protocol', async () => {
    const [client, server] = [await peerNode(), await peerNode()];
    const clientHost = hostOf(stateWith(), false);
    await serve(server, hostOf(stateWith(), true), [SYNC_PROTOCOL_SUMMARY, SYNC_PROTOCOL]);
    const settled = await sync(client, clientHost, server);
    expect(settled.map((d) => d.digest.origin)).toEqual([...ORIGINS]);
    expect(await counter(clientHost.metrics, 'same')).toBe(0);
    // A HELLO of three digests (~36 bytes each), not one 32-byte hash (~38 bytes with its frame).
    expect(clientHost.metrics.syncBytesOut).toBeGreaterThan(90);
  });
});
