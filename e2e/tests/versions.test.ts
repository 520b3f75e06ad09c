// Version skew (docs/upgrades.md). Part 1, real libp2p nodes in this process: a peer two minors apart is refused
// with a log line, a metric and a status row, and let back in once it runs a compatible version. Part 2, real control
// planes: the previous released build (built from git history, e2e/harness/previous-release.ts) runs beside the
// current one in one ClusterSet: records, heartbeats and sync interoperate both ways, nobody withdraws anybody after
// the TTL, and the cluster then upgrades in place.
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentityKey, generatePsk, syntheticService } from '../../src/gossip/index.js';
import type { NodeStatus } from '../../src/node/index.js';
import { down, kubeConfigFor, startComponent, stopComponent, up, type ClusterSetState } from '../harness/clusterset.js';
import { ensurePreviousRelease, type BuiltRelease } from '../harness/previous-release.js';
import { eventually } from '../harness/wait.js';
import { addrOf, startNode, stopAll, waitFor, type TestNode } from './gossip-helpers.js';
import { nodeHttp, nodeOf, nodeReady } from './node-helpers.js';

describe('incompatible peers', () => {
  const nodes: TestNode[] = [];
  afterAll(() => stopAll(nodes));

  it('refuses a peer two minors apart with a log line, a metric and a status row, and takes it back once upgraded', async () => {
    const psk = generatePsk();
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const a = await startNode('cluster-a', [], { psk, overrides: { softwareVersion: '0.2.0', logger } });
    nodes.push(a);
    const keyB = await generateIdentityKey();
    let b = await startNode('cluster-b', [addrOf(a)], { psk, overrides: { softwareVersion: '0.4.0' } }, keyB);
    nodes.push(b);
    b.cluster.upsert('default', 'web', syntheticService(1, 2));

    await waitFor(() => a.node.status().incompatiblePeers.length === 1, 15_000, 'a refuses b');
    const row = a.node.status().incompatiblePeers[0]!;
    expect(row).toMatchObject({
      peerId: b.node.peerId.toString(),
      version: '0.4.0',
      wire: 1,
      reason: 'SoftwareVersion',
    });
    expect(row.message).toContain('at most one minor apart');
    expect(b.node.status().incompatiblePeers.map((p) => p.version)).toEqual(['0.2.0']);
    const metrics = await a.node.metrics.registry.metrics();
    expect(metrics).toContain('mcs_gossip_incompatible_peers{reason="SoftwareVersion"} 1');
    // gossipsub's own metrics are on the same registry.
    expect(metrics).toMatch(/^gossipsub_/m);
    expect(lines.join('')).toContain(
      `refusing peer ${b.node.peerId.toString()}: it runs version 0.4.0, this node 0.2.0`,
    );
    // Nothing of b gets in while it is refused (redials keep trying: each is hung up on after identify).
    await new Promise((r) => setTimeout(r, 3000));
    expect(a.node.state.recordsOf('cluster-b')).toHaveLength(0);
    expect(lines.filter((l) => l.includes('refusing peer')).length).toBe(1);

    // b is "upgraded" to 0.3.0 (same key): a lets it in, learns its records and its version.
    await b.node.stop();
    nodes.pop();
    b = await startNode('cluster-b', [addrOf(a)], { psk, overrides: { softwareVersion: '0.3.0' } }, keyB);
    nodes.push(b);
    b.cluster.upsert('default', 'web', syntheticService(1, 2));
    await waitFor(() => a.node.state.recordsOf('cluster-b').length === 1, 20_000, 'a takes b in');
    await waitFor(() => a.node.status().incompatiblePeers.length === 0, 5_000, 'the status row goes');
    await waitFor(
      () => a.node.status().origins.find((o) => o.origin === 'cluster-b')?.version === '0.3.0',
      10_000,
      'a knows b runs 0.3.0',
    );
    await waitFor(
      () => b.node.status().origins.find((o) => o.origin === 'cluster-a')?.version === '0.2.0',
      10_000,
      'b knows a runs 0.2.0',
    );
    expect(await a.node.metrics.registry.metrics()).not.toContain(
      'mcs_gossip_incompatible_peers{reason="SoftwareVersion"} 1',
    );
    expect(lines.join('')).not.toContain('"level":"error"');
  });
});

describe('the previous release beside this one', () => {
  let harness: ClusterSetState;
  let release: BuiltRelease;
  let dir: string;
  const NS = 'skew';
  const kcs: Record<string, k8s.KubeConfig> = {};

  beforeAll(async () => {
    release = await ensurePreviousRelease();
    dir = await mkdtemp(join(tmpdir(), 'mcs-versions-'));
    harness = await up({
      dir,
      clusters: 3,
      nodes: true,
      extraArgs: { 'mcs-gossip': ['--endpoint-ttl=4s', '--heartbeat-interval=1s'] },
      onProgress: () => {},
    });
    for (const c of ['cluster-1', 'cluster-2', 'cluster-3']) kcs[c] = kubeConfigFor(harness, c);
    // cluster-3 runs the previous release: same flags, same identity, its own program.
    await stopComponent(harness, 'cluster-3', 'mcs-gossip');
    const argv = nodeOf(harness, 'cluster-3').argv;
    const runAt = argv.indexOf('run');
    await startComponent(harness, 'cluster-3', 'mcs-gossip', 60_000, {
      argv: [process.execPath, release.main, ...argv.slice(runAt)],
    });
    for (const c of Object.keys(kcs)) {
      await kcs[c]!.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    }
  }, 600_000);

  afterAll(async () => {
    if (harness !== undefined) await down(dir);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const status = async (cluster: string) =>
    JSON.parse((await nodeHttp(harness, cluster, '/status')).body) as NodeStatus;

  async function exportService(cluster: string, name: string, ip: string): Promise<void> {
    const kc = kcs[cluster]!;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedService({
      namespace: NS,
      body: { metadata: { name }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    });
    await kc.makeApiClient(k8s.DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: NS,
      body: {
        metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: [ip], conditions: { ready: true } }],
      },
    });
    await kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: 'multicluster.x-k8s.io',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'serviceexports',
      body: { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name } },
    });
  }

  /** The source clusters of the ServiceImport `name` in `cluster`, sorted ([] while it does not exist). */
  async function importedFrom(cluster: string, name: string): Promise<string[]> {
    try {
      const si = (await kcs[cluster]!.makeApiClient(k8s.CustomObjectsApi).getNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'serviceimports',
        name,
      })) as { status?: { clusters?: { cluster: string }[] } };
      return (si.status?.clusters ?? []).map((c) => c.cluster).sort();
    } catch {
      return [];
    }
  }

  async function allImport(name: string, from: string[]): Promise<void> {
    await eventually(
      `every cluster imports ${name} from ${from.join(', ')}`,
      async () => {
        for (const c of Object.keys(kcs)) {
          if ((await importedFrom(c, name)).join() !== from.join()) return undefined;
        }
        return true;
      },
      30_000,
    );
  }

  it('interoperates: records both ways, liveness, versions in status', async () => {
    await Promise.all(['cluster-1', 'cluster-2', 'cluster-3'].map((c) => nodeReady(harness, c)));
    const old = (await nodeHttp(harness, 'cluster-3', '/status')).body;
    // cluster-3 runs the previous release's program: its /status has no version fields yet.
    expect((JSON.parse(old) as { version?: string }).version).toBeUndefined();
    await exportService('cluster-1', 'web', '10.201.0.1');
    await exportService('cluster-3', 'web', '10.203.0.1');
    await exportService('cluster-3', 'db', '10.203.0.2');
    await allImport('web', ['cluster-1', 'cluster-3']);
    await allImport('db', ['cluster-3']);
    const s1 = await status('cluster-1');
    expect(s1.version).toBe('0.2.0');
    const origins = new Map(s1.gossip?.origins.map((o) => [o.origin, o]));
    expect(origins.get('cluster-2')).toMatchObject({ alive: true, version: '0.2.0' });
    // The previous release announces no version: shown as unknown, and accepted as N−1.
    expect(origins.get('cluster-3')?.alive).toBe(true);
    expect(origins.get('cluster-3')?.version).toBeUndefined();
    expect(s1.incompatiblePeers).toEqual([]);
    // The old node sees every cluster alive (read again: right after its restart it may not have heard one yet).
    await eventually(
      'the old node sees every cluster alive',
      async () => {
        const s3 = JSON.parse((await nodeHttp(harness, 'cluster-3', '/status')).body) as {
          gossip?: { origins: { origin: string; alive: boolean }[] };
        };
        const alive = (s3.gossip?.origins ?? []).filter((o) => o.alive).map((o) => o.origin);
        return alive.sort().join() === 'cluster-1,cluster-2,cluster-3' ? true : undefined;
      },
      30_000,
    );
  });

  it('syncs a node that missed a change of the old one, and nobody is withdrawn after the TTL', async () => {
    await stopComponent(harness, 'cluster-2', 'mcs-gossip');
    await exportService('cluster-3', 'cache', '10.203.0.3');
    await eventually(
      'cluster-1 imports cache',
      async () => ((await importedFrom('cluster-1', 'cache')).length > 0 ? true : undefined),
      30_000,
    );
    await startComponent(harness, 'cluster-2', 'mcs-gossip');
    await allImport('cache', ['cluster-3']);
    // Three TTLs (4 s each) of mixed versions: every import keeps every source cluster.
    await new Promise((r) => setTimeout(r, 12_000));
    for (const c of Object.keys(kcs)) {
      expect(await importedFrom(c, 'web')).toEqual(['cluster-1', 'cluster-3']);
      expect(await importedFrom(c, 'db')).toEqual(['cluster-3']);
    }
    for (const c of ['cluster-1', 'cluster-2']) {
      const s = await status(c);
      expect(s.withdrawnOrigins).toEqual([]);
      expect(s.gossip?.origins.every((o) => o.alive)).toBe(true);
    }
  });

  it('upgrades the old cluster in place: same identity, imports kept, its version now announced', async () => {
    await stopComponent(harness, 'cluster-3', 'mcs-gossip');
    const argv = nodeOf(harness, 'cluster-3').argv;
    const runAt = argv.indexOf('run');
    const current = nodeOf(harness, 'cluster-1').argv;
    await startComponent(harness, 'cluster-3', 'mcs-gossip', 60_000, {
      argv: [...current.slice(0, current.indexOf('run')), ...argv.slice(runAt)],
    });
    await nodeReady(harness, 'cluster-3');
    await eventually(
      'cluster-1 sees cluster-3 at 0.2.0',
      async () =>
        (await status('cluster-1')).gossip?.origins.find((o) => o.origin === 'cluster-3')?.version === '0.2.0'
          ? true
          : undefined,
      30_000,
    );
    await allImport('web', ['cluster-1', 'cluster-3']);
    await allImport('cache', ['cluster-3']);
    expect((await status('cluster-3')).version).toBe('0.2.0');
  });
});
