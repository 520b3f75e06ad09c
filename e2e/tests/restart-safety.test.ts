// The node's safety contract under restarts (docs/reliability.md), on a three-cluster ClusterSet with real nodes:
// a restarted node changes no import before the origins it names are settled, and publishes nothing from a cache
// that has not listed. Each test reproduces a failure that deleted imports before the contract existed.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedServiceName } from '../../src/core/index.js';
import { down, startComponent, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { programArgv } from '../harness/program.js';
import { isAlive } from '../harness/process.js';
import { nodeHttp, nodeOf, nodeReady } from './node-helpers.js';
import { diffState, expectedState, readGroundTruth } from '../chaos/oracle.js';
import {
  admin,
  deployWeb,
  ensureNamespace,
  eventually,
  exportService,
  getImport,
  importedSlices,
  SA_NAME,
  sleep,
} from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2', 'cluster-3'] as const;
const run = promisify(execFile);

describe('restart safety on a three-cluster ClusterSet', () => {
  let dir: string;
  let harness: Harness;
  const a = (c: string) => admin(harness, c);
  const node = (c: string) => nodeOf(harness, c);
  const http = (c: string, path: string) => nodeHttp(harness, c, path);
  const ready = (c: string) => nodeReady(harness, c);
  /** Restarts a node and waits until it serves (`/healthz`; it may well not be ready). */
  const restart = async (c: string) => {
    await stopComponent(harness, c, 'mcs-gossip');
    await startComponent(harness, c, 'mcs-gossip', 60_000, {
      healthUrl: new URL('/healthz', node(c).health).toString(),
    });
  };
  /** What a user sees of an import: the ServiceImport's uid and ips, the derived Service's uid and IP. */
  const importView = async (c: string, ns: string) => {
    const si = await getImport(a(c), ns, 'web');
    const derived = await a(c)
      .core.readNamespacedService({ namespace: ns, name: derivedServiceName(ns, 'web') })
      .catch(() => undefined);
    return {
      import: si?.metadata.uid,
      ips: si?.spec.ips ?? [],
      derived: derived?.metadata?.uid,
      clusterIp: derived?.spec?.clusterIP,
    };
  };
  const importedFrom = async (c: string, ns: string, source: string) => {
    const si = await getImport(a(c), ns, 'web');
    const slices = await importedSlices(a(c), ns, 'web');
    const fromSource = slices.filter(
      (s) => s.metadata?.labels?.['multicluster.kubernetes.io/source-cluster'] === source,
    );
    return (si?.spec.ips?.length ?? 0) === 1 &&
      (si?.status?.clusters ?? []).some((x) => x.cluster === source) &&
      fromSource.flatMap((s) => s.endpoints ?? []).length > 0
      ? true
      : undefined;
  };

  /** The oracle: every cluster holds exactly what the core computes from every cluster's objects. */
  const settled = () =>
    eventually(
      'no differences from the oracle',
      async () => {
        const truth = await readGroundTruth(harness.clusters.map((c) => ({ name: c.name, kubeconfig: c.kubeconfig })));
        const differences = diffState(expectedState(truth), truth);
        return differences.length === 0 ? true : undefined;
      },
      45_000,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-restart-'));
    harness = await up({
      dir,
      clusters: CLUSTERS.length,
      nodes: true,
      extraArgs: {
        'mcs-gossip': ['--endpoint-ttl=5s', '--heartbeat-interval=1s', '--sync-interval=5s', '--log-level=info'],
      },
      onProgress: () => {},
    });
    for (const c of CLUSTERS) {
      for (const ns of ['ri', 'pl']) await ensureNamespace(a(c).core, ns);
      await ready(c);
    }
  });

  afterAll(async () => {
    for (const c of CLUSTERS) {
      const n = harness?.clusters.find((x) => x.name === c)?.components.find((p) => p.name === 'mcs-gossip');
      if (n !== undefined && isAlive(n)) process.kill(n.pid, 'SIGCONT');
    }
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('a node restarted while no peer is reachable keeps its imports and ClusterSetIPs', async () => {
    await deployWeb(a('cluster-1'), 'ri', 'web', 2);
    await exportService(a('cluster-1'), 'ri', 'web');
    await eventually('ri/web imported in cluster-3', () => importedFrom('cluster-3', 'ri', 'cluster-1'));
    const before = await importView('cluster-3', 'ri');
    expect(before.ips).toEqual([before.clusterIp]);

    const frozen = ['cluster-1', 'cluster-2'].map((c) => node(c).pid);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP'); // their nodes are unreachable, not gone
    try {
      await restart('cluster-3');
      // Before the safety contract the import was deleted about 10 s after the node served.
      for (let i = 0; i < 5; i++) {
        await sleep(5000);
        expect(await importView('cluster-3', 'ri'), `after ${(i + 1) * 5} s`).toEqual(before);
      }
      const r = await http('cluster-3', '/readyz');
      expect(r.body).toContain('holding');
      expect(r.body).toContain('cluster-1');
      expect((await http('cluster-3', '/metrics')).body).toMatch(/^mcs_gossip_held_keys [1-9]/m);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
    }
    await eventually('cluster-3 settles and still imports ri/web', () => importedFrom('cluster-3', 'ri', 'cluster-1'));
    await ready('cluster-3');
    expect(await importView('cluster-3', 'ri')).toEqual(before);
    await settled();
  });

  it('a node restarted while ServiceExports cannot be listed withdraws nothing from the ClusterSet', async () => {
    await deployWeb(a('cluster-1'), 'pl', 'web', 1);
    await exportService(a('cluster-1'), 'pl', 'web');
    await eventually('pl/web imported in cluster-2', () => importedFrom('cluster-2', 'pl', 'cluster-1'));
    const before = await importView('cluster-2', 'pl');

    // A botched upgrade: the node's ClusterRole briefly lacks serviceexports.
    const rbac = a('cluster-1').rbac;
    const role = await rbac.readClusterRole({ name: SA_NAME });
    const without: k8s.V1ClusterRole = {
      ...role,
      rules: (role.rules ?? [])
        .map((r) => ({ ...r, resources: (r.resources ?? []).filter((x) => x !== 'serviceexports') }))
        .filter((r) => r.resources.length > 0),
    };
    expect(JSON.stringify(without.rules)).not.toContain('"serviceexports"');
    await rbac.replaceClusterRole({ name: SA_NAME, body: without });
    try {
      await restart('cluster-1');
      const r = await eventually('cluster-1 not ready, naming serviceexports', async () => {
        const got = await http('cluster-1', '/readyz');
        return got.code === 503 && got.body.includes('serviceexports') ? got : undefined;
      });
      expect(r.body).toMatch(/forbidden|403/i);
      // Before the contract the node tombstoned every export it could not see: gone from cluster-2 within 30 s.
      for (let i = 0; i < 6; i++) {
        await sleep(5000);
        expect(await importView('cluster-2', 'pl'), `after ${(i + 1) * 5} s`).toEqual(before);
      }
    } finally {
      const current = await rbac.readClusterRole({ name: SA_NAME });
      await rbac.replaceClusterRole({
        name: SA_NAME,
        body: { ...role, metadata: { ...role.metadata, resourceVersion: current.metadata?.resourceVersion } },
      });
    }
    await ready('cluster-1');
    await sleep(5000);
    expect(await importView('cluster-2', 'pl')).toEqual(before);
    expect(await importedFrom('cluster-2', 'pl', 'cluster-1')).toBe(true);
    await settled();
  });

  it('`mcs-gossip leave` withdraws the cluster’s exports everywhere; re-created membership brings them back', async () => {
    for (const c of CLUSTERS) await ensureNamespace(a(c).core, 'lv');
    await deployWeb(a('cluster-2'), 'lv', 'web', 1);
    await exportService(a('cluster-2'), 'lv', 'web');
    for (const c of ['cluster-1', 'cluster-3'])
      await eventually(`lv/web imported in ${c}`, () => importedFrom(c, 'lv', 'cluster-2'));
    const two = harness.clusters.find((c) => c.name === 'cluster-2')!;
    const [node, ...program] = programArgv() as [string, ...string[]];
    const { stdout } = await run(node, [...program, 'leave', `--kubeconfig=${two.kubeconfig}`, '--wait=30s']);
    expect(stdout).toContain('cluster-2 left ClusterSet');
    for (const c of ['cluster-1', 'cluster-3']) {
      await eventually(`lv/web gone from ${c}`, async () => ((await getImport(a(c), 'lv', 'web')) ? undefined : true));
      const status = JSON.parse((await http(c, '/status')).body) as {
        gossip?: { origins: { origin: string; left?: boolean }[] };
      };
      expect(status.gossip?.origins.find((o) => o.origin === 'cluster-2')?.left).toBe(true);
      // The others' exports are untouched.
      expect(await importedFrom(c, 'pl', 'cluster-1')).toBe(true);
    }
    // Out of the ClusterSet, cluster-2 imports nothing any more (its own exports' imports included).
    await eventually('no imports left in cluster-2', async () => {
      const list = (await a('cluster-2').custom.listClusterCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        plural: 'serviceimports',
      })) as { items: unknown[] };
      return list.items.length === 0 ? true : undefined;
    });
    // Leaving twice: one line, exit 1.
    const again = await run(node, [...program, 'leave', `--kubeconfig=${two.kubeconfig}`]).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect((again as { code: number }).code).toBe(1);
    expect((again as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
    // Back in the ClusterSet: the export returns (newer than the leave).
    await a('cluster-2').custom.createClusterCustomObject({
      group: 'about.k8s.io',
      version: 'v1beta1',
      plural: 'clusterproperties',
      body: {
        apiVersion: 'about.k8s.io/v1beta1',
        kind: 'ClusterProperty',
        metadata: { name: 'clusterset.k8s.io' },
        spec: { value: harness.clusterSetName },
      },
    });
    for (const c of ['cluster-1', 'cluster-3'])
      await eventually(`lv/web back in ${c}`, () => importedFrom(c, 'lv', 'cluster-2'), 45_000);
    await ready('cluster-2');
    await settled();
  });

  it('nodes whose clocks are 5 s ahead and 5 s behind converge, and withdraw or resurrect nothing', async () => {
    // libfaketime (Debian `faketime`, installed by .ci/run): the whole node process sees a wall clock that is off;
    // monotonic time (timers) is left alone, as on a machine whose NTP is off.
    const skewed = (offset: string) => ({
      LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
      FAKETIME: offset,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    const restartWith = async (c: string, env: Record<string, string>) => {
      await stopComponent(harness, c, 'mcs-gossip');
      await startComponent(harness, c, 'mcs-gossip', 60_000, { env });
    };
    await restartWith('cluster-2', skewed('+5s'));
    await restartWith('cluster-3', skewed('-5s'));
    try {
      // A restart itself may outlast the 5 s TTL (its peers then withdraw it until its first beat): sampling starts
      // once every node hears every other again, so it counts only what the skewed clocks cause.
      await eventually('every node hears every other after the restarts', async () => {
        for (const c of CLUSTERS) {
          const st = JSON.parse((await http(c, '/status')).body) as { withdrawnOrigins: string[] };
          if (st.withdrawnOrigins.length > 0) return undefined;
        }
        return true;
      });
      let withdrawn = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const c of CLUSTERS) {
            const st = JSON.parse((await http(c, '/status')).body) as { withdrawnOrigins: string[] };
            withdrawn += st.withdrawnOrigins.length;
          }
          await sleep(1000);
        }
      })();
      for (const c of CLUSTERS) await ensureNamespace(a(c).core, 'sk');
      // Exported by the skewed clusters, changed and removed by the one behind: its removal must stick.
      await deployWeb(a('cluster-2'), 'sk', 'web', 1);
      await deployWeb(a('cluster-3'), 'sk', 'web', 2);
      await exportService(a('cluster-2'), 'sk', 'web');
      await exportService(a('cluster-3'), 'sk', 'web');
      for (const c of CLUSTERS) {
        await eventually(`sk/web from both in ${c}`, async () => {
          const si = await getImport(a(c), 'sk', 'web');
          return (si?.status?.clusters ?? []).length === 2 ? true : undefined;
        });
      }
      await settled();
      await a('cluster-3').custom.deleteNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        plural: 'serviceexports',
        namespace: 'sk',
        name: 'web',
      });
      for (const c of CLUSTERS) {
        await eventually(`sk/web only from cluster-2 in ${c}`, async () => {
          const si = await getImport(a(c), 'sk', 'web');
          return (si?.status?.clusters ?? []).map((x) => x.cluster).join() === 'cluster-2' ? true : undefined;
        });
      }
      await sleep(10_000); // several syncs: the removal does not come back
      for (const c of CLUSTERS) {
        const si = await getImport(a(c), 'sk', 'web');
        expect((si?.status?.clusters ?? []).map((x) => x.cluster)).toEqual(['cluster-2']);
      }
      await settled();
      sampling = false;
      await sampler;
      expect(withdrawn, 'origins withdrawn while every node was up').toBe(0);
    } finally {
      for (const c of ['cluster-2', 'cluster-3']) {
        await stopComponent(harness, c, 'mcs-gossip');
        await startComponent(harness, c, 'mcs-gossip');
      }
    }
  });
});
