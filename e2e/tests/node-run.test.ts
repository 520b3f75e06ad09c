// Real `mcs-gossip run` processes, one per cluster of a three-cluster local ClusterSet, gossiping over 127.0.0.1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedServiceName } from '../../src/core/index.js';
import { down, startComponent, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { nodeHttp, nodeOf, nodeReady } from './node-helpers.js';
import {
  ABOUT,
  admin,
  auditWrites,
  condition,
  deployWeb,
  ensureNamespace,
  eventually,
  exportService,
  getExport,
  getImport,
  importedSlices,
  SA_USER,
  sleep,
} from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2', 'cluster-3'] as const;
const TTL = '5s';
/** How long "nothing changes" is watched for zero API writes (the acceptance asks for 60 s). */
const IDLE_MS = 60_000;

describe('mcs-gossip run on a three-cluster ClusterSet', () => {
  let dir: string;
  let harness: Harness;
  const a = (c: string) => admin(harness, c);
  const node = (c: string) => nodeOf(harness, c);
  const http = (c: string, path: string) => nodeHttp(harness, c, path);
  const ready = (c: string) => nodeReady(harness, c);
  const stop = (c: string) => stopComponent(harness, c, 'mcs-gossip');
  const start = async (c: string) => {
    await startComponent(harness, c, 'mcs-gossip');
    await ready(c);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-node-'));
    harness = await up({
      dir,
      clusters: CLUSTERS.length,
      nodes: true,
      extraArgs: {
        'mcs-gossip': [`--endpoint-ttl=${TTL}`, '--heartbeat-interval=1s', '--sync-interval=5s', '--log-level=info'],
      },
      onProgress: () => {},
    });
    for (const c of CLUSTERS) {
      await ensureNamespace(a(c).core, 'web');
      await ready(c);
    }
  });

  afterAll(async () => {
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('publishes each node’s PeerId and addresses in a ClusterProperty', async () => {
    for (const c of CLUSTERS) {
      const prop = (await a(c).custom.getClusterCustomObject({ ...ABOUT, name: 'peer.mcs-gossip.x-k8s.io' })) as {
        spec: { value: string };
      };
      expect(prop.spec.value).toBe(`${c}=${node(c).listen}/p2p/${node(c).peerId}`);
      const metrics = await http(c, '/metrics');
      expect(metrics.body).toContain('mcs_gossip_identity_ready 1');
    }
  });

  it('imports an export of cluster-1 in all three clusters', async () => {
    const one = a('cluster-1');
    await deployWeb(one, 'web', 'web', 2);
    const t0 = Date.now();
    await exportService(one, 'web', 'web');
    for (const c of CLUSTERS) {
      await eventually(`import with 2 endpoints in ${c}`, async () => {
        const si = await getImport(a(c), 'web', 'web');
        const slices = await importedSlices(a(c), 'web', 'web');
        const n = slices.flatMap((s) => s.endpoints ?? []).length;
        return si?.spec.ips?.length === 1 && n === 2 ? true : undefined;
      });
    }
    console.log(`export → import with endpoints in 3 clusters: ${Date.now() - t0} ms`);
    const se = await eventually('Ready=True on cluster-1', async () => {
      const got = await getExport(one, 'web', 'web');
      return condition(got, 'Ready')?.status === 'True' && condition(got, 'Conflict') ? got : undefined;
    });
    expect(condition(se, 'Conflict')?.status).toBe('False');
  });

  it('withdraws the endpoints of a stopped node after the TTL and restores them when it returns', async () => {
    const two = a('cluster-2');
    await deployWeb(two, 'web', 'web', 1);
    await exportService(two, 'web', 'web');
    const sources = async (c: string) =>
      [
        ...new Set(
          (await importedSlices(a(c), 'web', 'web')).map(
            (s) => s.metadata?.labels?.['multicluster.kubernetes.io/source-cluster'],
          ),
        ),
      ]
        .sort()
        .join();
    for (const c of CLUSTERS) {
      await eventually(`slices of both sources in ${c}`, async () =>
        (await sources(c)) === 'cluster-1,cluster-2' ? true : undefined,
      );
    }
    const stoppedAt = Date.now();
    await stop('cluster-2');
    for (const c of ['cluster-1', 'cluster-3']) {
      await eventually(
        `cluster-2 withdrawn in ${c}`,
        async () => ((await sources(c)) === 'cluster-1' ? true : undefined),
        30_000,
      );
    }
    const withdrawnAfter = Date.now() - stoppedAt;
    console.log(`endpoints of a stopped node withdrawn after ${withdrawnAfter} ms (TTL ${TTL})`);
    expect(withdrawnAfter).toBeGreaterThanOrEqual(4000);
    // The import stays: cluster-2 still exports, it is only unheard.
    expect((await getImport(a('cluster-1'), 'web', 'web'))?.status?.clusters?.length).toBe(2);
    await start('cluster-2');
    for (const c of ['cluster-1', 'cluster-3']) {
      await eventually(
        `cluster-2 restored in ${c}`,
        async () => ((await sources(c)) === 'cluster-1,cluster-2' ? true : undefined),
        30_000,
      );
    }
  });

  it('after a restart: no duplicate or orphan objects, and no writes while nothing changes', async () => {
    await stop('cluster-3');
    await start('cluster-3');
    await sleep(8000); // warm-up over and every reconcile settled
    const since = Date.now();
    await sleep(IDLE_MS);
    for (const c of harness.clusters) {
      const writes = await auditWrites(c.auditLog, SA_USER, since);
      expect(writes, `writes by the node in ${c.name}`).toEqual([]);
      const api = a(c.name);
      const imports = (await api.custom.listNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        plural: 'serviceimports',
        namespace: 'web',
      })) as { items: unknown[] };
      expect(imports.items.length).toBe(1);
      const derived = await api.core.listNamespacedService({
        namespace: 'web',
        labelSelector: 'app.kubernetes.io/managed-by',
      });
      expect(derived.items.map((s) => s.metadata?.name)).toEqual([derivedServiceName('web', 'web')]);
      const slices = await importedSlices(api, 'web', 'web');
      expect(new Set(slices.map((s) => s.metadata?.name)).size).toBe(slices.length);
      const sources = slices.map((s) => s.metadata?.labels?.['multicluster.kubernetes.io/source-cluster']).sort();
      expect(sources).toEqual(['cluster-1', 'cluster-2']);
    }
  });

  it('is not ready without a cluster id, with the reason, and recovers', async () => {
    const three = a('cluster-3');
    await three.custom.deleteClusterCustomObject({ ...ABOUT, name: 'cluster.clusterset.k8s.io' });
    const r = await eventually('cluster-3 not ready', async () => {
      const got = await http('cluster-3', '/readyz');
      return got.code === 503 ? got : undefined;
    });
    expect(r.body).toContain('ClusterIdMissing');
    await three.custom.createClusterCustomObject({
      ...ABOUT,
      body: {
        apiVersion: 'about.k8s.io/v1beta1',
        kind: 'ClusterProperty',
        metadata: { name: 'cluster.clusterset.k8s.io' },
        spec: { value: 'cluster-3' },
      },
    });
    await ready('cluster-3');
    await eventually('import still in cluster-3', async () =>
      (await getImport(three, 'web', 'web')) ? true : undefined,
    );
  });

  it('measures export → import latency over 20 exports, and API writes per export', async () => {
    const one = a('cluster-1');
    const since = Date.now();
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const name = `lat-${i}`;
      await one.core.createNamespacedService({
        namespace: 'web',
        body: {
          metadata: { name },
          spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
        },
      });
      await eventually(`endpoints of ${name} in cluster-1`, async () => {
        const s = await one.discovery.listNamespacedEndpointSlice({
          namespace: 'web',
          labelSelector: `kubernetes.io/service-name=${name}`,
        });
        return s.items.some((x) => (x.endpoints ?? []).length === 2) ? true : undefined;
      });
      const t0 = Date.now();
      await exportService(one, 'web', name);
      await Promise.all(
        CLUSTERS.map((c) =>
          eventually(`${name} imported with endpoints in ${c}`, async () => {
            const si = await getImport(a(c), 'web', name);
            const slices = await importedSlices(a(c), 'web', name);
            return si?.spec.ips?.length === 1 && slices.flatMap((x) => x.endpoints ?? []).length === 2
              ? true
              : undefined;
          }),
        ),
      );
      latencies.push(Date.now() - t0);
    }
    await sleep(2000);
    let writes = 0;
    const byResource = new Map<string, number>();
    for (const c of harness.clusters) {
      for (const w of await auditWrites(c.auditLog, SA_USER, since)) {
        writes++;
        const k = `${w.resource}${w.subresource ? '/' + w.subresource : ''} ${w.verb}`;
        byResource.set(k, (byResource.get(k) ?? 0) + 1);
      }
    }
    const sorted = [...latencies].sort((x, y) => x - y);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
    console.log(
      `export → import in all 3 clusters (ServiceImport with ip + slices), 20 exports: p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${sorted.at(-1)} ms (polling every 200 ms)`,
    );
    console.log(
      `API writes by the nodes: ${writes} for 20 exports in 3 clusters = ${(writes / 20).toFixed(1)} per export`,
    );
    console.log(Object.fromEntries([...byResource].sort()));
    expect(latencies.length).toBe(20);
  });

  it('treats a change of cluster id as leave + join', async () => {
    const two = a('cluster-2');
    await two.custom.patchClusterCustomObject(
      { ...ABOUT, name: 'cluster.clusterset.k8s.io', body: { spec: { value: 'cluster-2b' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    for (const c of CLUSTERS) {
      await eventually(
        `web/web imported from cluster-1 and cluster-2b in ${c}`,
        async () => {
          const si = await getImport(a(c), 'web', 'web');
          const clusters = (si?.status?.clusters ?? []).map((x) => x.cluster).join();
          const sources = [
            ...new Set(
              (await importedSlices(a(c), 'web', 'web')).map(
                (x) => x.metadata?.labels?.['multicluster.kubernetes.io/source-cluster'],
              ),
            ),
          ]
            .sort()
            .join();
          return clusters === 'cluster-1,cluster-2b' && sources === 'cluster-1,cluster-2b' ? true : undefined;
        },
        30_000,
      );
    }
    const peer = (await two.custom.getClusterCustomObject({ ...ABOUT, name: 'peer.mcs-gossip.x-k8s.io' })) as {
      spec: { value: string };
    };
    expect(peer.spec.value).toMatch(/^cluster-2b=/);
  });

  it('removes the import everywhere when both exports go', async () => {
    for (const c of ['cluster-1', 'cluster-2']) {
      await a(c).custom.deleteNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        plural: 'serviceexports',
        namespace: 'web',
        name: 'web',
      });
    }
    for (const c of CLUSTERS) {
      await eventually(`import gone in ${c}`, async () => {
        const si = await getImport(a(c), 'web', 'web');
        const slices = await importedSlices(a(c), 'web', 'web');
        return si === undefined && slices.length === 0 ? true : undefined;
      });
    }
  });
});
