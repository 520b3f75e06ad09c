// Two replicas of one cluster's node (`mcs-gossip run --leader-elect`, one PeerId, one origin) on a real ClusterSet:
// when the leader's API server connection hangs, it steps down at its renew deadline and the standby takes over after
// the lease expires — never two active replicas at once — and the imports everywhere stay as they are.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { FaultProxy } from '../harness/fault-proxy.js';
import { freePorts } from '../harness/ports.js';
import { isAlive, startDetached, stopProcess, type StartedProcess } from '../harness/process.js';
import { repoRoot } from '../harness/paths.js';
import {
  admin,
  deployWeb,
  ensureNamespace,
  eventually,
  exportService,
  getImport,
  importedSlices,
  sleep,
} from './kube-helpers.js';

interface Replica {
  readonly name: string;
  readonly proc: StartedProcess;
  readonly status: string;
}

describe('leader failover of two replicas under a hung API', () => {
  let dir: string;
  let harness: Harness;
  let proxy: FaultProxy | undefined;
  const replicas: Replica[] = [];
  const a = (c: string) => admin(harness, c);
  const leaderOf = async (r: Replica): Promise<boolean | undefined> => {
    try {
      const res = await fetch(r.status, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { leader: boolean }).leader;
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-failover-'));
    harness = await up({
      dir,
      clusters: 2,
      nodes: true,
      extraArgs: { 'mcs-gossip': ['--endpoint-ttl=6s', '--heartbeat-interval=1s', '--sync-interval=5s'] },
      onProgress: () => {},
    });
    for (const c of ['cluster-1', 'cluster-2']) await ensureNamespace(a(c).core, 'fo');
  });

  afterAll(async () => {
    proxy?.resume();
    for (const r of replicas) await stopProcess(r.proc).catch(() => undefined);
    await proxy?.stop();
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('the hung leader steps down before the standby takes over, and the imports stay', async () => {
    const node = harness.clusters[0]!.components.find((p) => p.name === 'mcs-gossip')!;
    await stopComponent(harness, 'cluster-1', 'mcs-gossip');
    // The node's own kubeconfig, and a copy whose server is a proxy that can be made to hang.
    const kubeconfigArg = node.argv.find((x) => x.startsWith('--kubeconfig='))!;
    const kubeconfig = kubeconfigArg.slice('--kubeconfig='.length);
    const kc = new k8s.KubeConfig();
    kc.loadFromString(await readFile(kubeconfig, 'utf8'));
    const server = new URL(kc.getCurrentCluster()!.server);
    proxy = await FaultProxy.start(server.hostname, Number(server.port));
    const hungKubeconfig = join(dir, 'hung.kubeconfig');
    kc.clusters = kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy!.port}` }));
    await writeFile(hungKubeconfig, kc.exportConfig());
    const host = '127.0.0.2';
    const [gossipB, metricsA, metricsB] = (await freePorts(3, host)) as [number, number, number];
    const base = node.argv.filter((x) => !x.startsWith('--kubeconfig=') && !x.startsWith('--metrics-addr='));
    const start = (name: string, config: string, metrics: number, listen?: number) => {
      const args = [
        ...base
          .slice(1)
          .map((x) => (listen !== undefined && x.startsWith('--listen=') ? `--listen=/ip4/${host}/tcp/${listen}` : x)),
        `--kubeconfig=${config}`,
        `--metrics-addr=${host}:${metrics}`,
        '--leader-elect',
        '--lease-namespace=mcs-gossip-system',
        `--lease-identity=${name}`,
        '--lease-duration=6s',
        '--lease-renew-deadline=4s',
        '--lease-retry-period=1s',
      ];
      const proc = startDetached(base[0]!, args, join(dir, `${name}.log`), repoRoot);
      const r = { name, proc, status: `http://${host}:${metrics}/status` };
      replicas.push(r);
      return r;
    };
    const first = start('replica-a', hungKubeconfig, metricsA);
    await eventually('replica-a leads', async () => ((await leaderOf(first)) === true ? true : undefined), 60_000);
    const second = start('replica-b', kubeconfig, metricsB, gossipB);
    await eventually('replica-b is a standby', async () => ((await leaderOf(second)) === false ? true : undefined));

    await deployWeb(a('cluster-1'), 'fo', 'web', 2);
    await exportService(a('cluster-1'), 'fo', 'web');
    const imported = async () => {
      const si = await getImport(a('cluster-2'), 'fo', 'web');
      const n = (await importedSlices(a('cluster-2'), 'fo', 'web')).flatMap((s) => s.endpoints ?? []).length;
      return si?.spec.ips?.length === 1 && n === 2 ? si : undefined;
    };
    const before = await eventually('fo/web imported in cluster-2', imported);

    // Sample both replicas' own word on leadership every 100 ms while the leader's API hangs.
    let both = 0;
    let stepDownAt: number | undefined;
    let takeOverAt: number | undefined;
    let sampling = true;
    const seen: string[] = [];
    const sampler = (async () => {
      while (sampling) {
        const [x, y] = await Promise.all([leaderOf(first), leaderOf(second)]);
        if (x === true && y === true) both++;
        if (x === false && stepDownAt === undefined) stepDownAt = Date.now();
        if (y === true && takeOverAt === undefined) takeOverAt = Date.now();
        seen.push(`${x ?? '?'}/${y ?? '?'}`);
        await sleep(100);
      }
    })();
    proxy.hang();
    const hungAt = Date.now();
    await eventually(
      'replica-b takes over',
      async () => ((await leaderOf(second)) === true ? true : undefined),
      30_000,
    );
    await sleep(3000);
    sampling = false;
    await sampler;
    console.log(
      `API hung → leader stepped down after ${(stepDownAt ?? NaN) - hungAt} ms, standby led after ${(takeOverAt ?? NaN) - hungAt} ms (renew deadline 4 s, lease 6 s); ${seen.length} samples, ${both} with two leaders`,
    );
    expect(both, `samples with two leaders (${seen.join(' ')})`).toBe(0);
    expect(takeOverAt! - stepDownAt!).toBeGreaterThan(1000);
    expect(await leaderOf(first)).toBe(false);
    expect(isAlive(first.proc)).toBe(true);
    // The new leader carries the origin on: the import in cluster-2 keeps its ClusterSetIP and endpoints.
    const after = await eventually('fo/web still imported in cluster-2', imported, 30_000);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.spec.ips).toEqual(before.spec.ips);
    // The leader's API comes back: it stays a standby (the lease is held).
    proxy.resume();
    await sleep(4000);
    expect([await leaderOf(first), await leaderOf(second)]).toEqual([false, true]);
  });
});
