// The Kubernetes adapter alone, on two real control planes: each cluster's local exports go into one shared
// ClusterSetState (no network: this test plays the gossip layer), and each adapter writes its resolution.
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSetState, derivedServiceName, HlcClock, planOwnRecords, resolve } from '../../src/core/index.js';
import { apiClient } from '../../src/kube/api-client.js';
import { pickAddress, serviceRange } from '../../src/kube/cluster-ip.js';
import { createKubeAdapter, LeaderElector, type KubeAdapter } from '../../src/kube/index.js';
import { down, kubeConfigFor, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { SA_NAME, SYSTEM_NAMESPACE } from '../harness/node-identity.js';
import { FaultProxy } from '../harness/fault-proxy.js';
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
  nodeKubeConfig,
  readyAddresses,
  SA_USER,
  sleep,
  unexportService,
} from './kube-helpers.js';

/** Plays the gossip layer and the composition root for the adapters of this process. */
class Driver {
  readonly state = new ClusterSetState();
  readonly clock = new HlcClock();
  readonly adapters: KubeAdapter[] = [];
  #timer: NodeJS.Timeout | undefined;

  add(kube: KubeAdapter): void {
    this.adapters.push(kube);
    kube.on('local:change', () => this.schedule());
    kube.on('identity', () => this.schedule());
  }

  schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.sync();
    }, 50);
  }

  sync(): void {
    for (const kube of this.adapters) {
      const id = kube.identity();
      const local = kube.localExports();
      if (!id.ok || local === undefined) continue;
      const own = id.identity.clusterId;
      this.state.merge(
        planOwnRecords(own, this.state.recordsOf(own), local.desired, () => this.clock.tick(Date.now())),
      );
    }
    for (const kube of this.adapters) {
      const id = kube.identity();
      const local = kube.localExports();
      if (!id.ok || local === undefined) continue;
      kube.apply(
        resolve(this.state, {
          localCluster: id.identity.clusterId,
          namespaces: kube.namespaces(),
          localExports: local.exports,
        }),
      );
    }
  }
}

describe('Kubernetes adapter on two real control planes', () => {
  let dir: string;
  let harness: Harness;
  const driver = new Driver();
  const kubes = new Map<string, KubeAdapter>();
  const a = (c: string) => admin(harness, c);
  const clusters = ['cluster-1', 'cluster-2'] as const;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-kube-'));
    harness = await up({ dir, clusters: 2, onProgress: () => {} });
    for (const c of clusters) {
      const kubeConfig = await nodeKubeConfig(harness, c, join(dir, `${c}-node.kubeconfig`));
      const kube = createKubeAdapter({
        kubeConfig,
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }).child({ cluster: c }),
        metricsRegistry: new Registry(),
      });
      kubes.set(c, kube);
      driver.add(kube);
      await kube.start();
      await ensureNamespace(a(c).core, 'web');
    }
    driver.sync();
  });

  afterAll(async () => {
    for (const k of kubes.values()) await k.stop();
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('reuses its API connections (client-node alone opens one per request)', async () => {
    const kc = kubeConfigFor(harness, 'cluster-1');
    const server = new URL(kc.getCurrentCluster()!.server);
    let connects = 0;
    const onConnect = (message: unknown) => {
      const { connectParams } = message as { connectParams: { hostname: string; port: string } };
      if (connectParams.port === server.port) connects++;
    };
    diagnostics.subscribe('undici:client:connected', onConnect);
    try {
      const count = async (core: k8s.CoreV1Api) => {
        connects = 0;
        for (let i = 0; i < 10; i++) await core.listNamespace();
        return connects;
      };
      // The control: what makeApiClient does (this test would fail if it pooled too, or if nothing were counted).
      // The adapters of this file talk to the same API server meanwhile (a watch restarting opens a connection), so
      // a connect or two of theirs may be counted too: 10 requests against at most 3 connections still tells.
      expect(await count(kc.makeApiClient(k8s.CoreV1Api))).toBeGreaterThanOrEqual(10);
      expect(await count(apiClient(kc, k8s.CoreV1Api))).toBeLessThanOrEqual(3);
    } finally {
      diagnostics.unsubscribe('undici:client:connected', onConnect);
    }
  });

  it('is ready with the identity from the ClusterProperties', async () => {
    for (const c of clusters) {
      const kube = kubes.get(c)!;
      await eventually(`${c} ready`, async () => (kube.readiness().ready ? true : undefined), 20_000);
      expect(kube.readiness()).toEqual({ ready: true, reason: 'ok (leader)' });
      expect(kube.identity()).toEqual({ ok: true, identity: { clusterId: c, clusterSetName: 'local-clusterset' } });
    }
  });

  it('exports web/web from cluster-1: ServiceImport with a ClusterSetIP and slices in both clusters', async () => {
    const one = a('cluster-1');
    await deployWeb(one, 'web', 'web', 2);
    await exportService(one, 'web', 'web');
    const pods = await eventually('2 pod IPs in cluster-1', async () => {
      const list = await one.core.listNamespacedPod({ namespace: 'web', labelSelector: 'app=web' });
      const ips = list.items.map((p) => p.status?.podIP).filter((ip): ip is string => ip !== undefined && ip !== '');
      return ips.length === 2 ? ips.sort() : undefined;
    });
    for (const c of clusters) {
      const api = a(c);
      const si = await eventually(`ServiceImport web/web with an ip in ${c}`, async () => {
        const got = await getImport(api, 'web', 'web');
        // The status (its source clusters) is a write of its own, just after the ServiceImport's.
        return got?.spec.ips?.length === 1 && got.status?.clusters !== undefined ? got : undefined;
      });
      expect(si.spec.type).toBe('ClusterSetIP');
      expect(si.spec.ports).toEqual([{ name: 'http', protocol: 'TCP', port: 80 }]);
      expect(si.spec.ipFamilies).toEqual(['IPv4']);
      expect(si.status?.clusters).toEqual([{ cluster: 'cluster-1' }]);
      const derived = await api.core.readNamespacedService({
        namespace: 'web',
        name: derivedServiceName('web', 'web'),
      });
      expect(derived.spec?.clusterIPs).toEqual(si.spec.ips);
      expect(derived.spec?.selector).toBeUndefined();
      // Written beside its ServiceImport (created with the ip the node picked): owned by nothing.
      expect(derived.metadata?.ownerReferences).toBeUndefined();
      // The node picked the ip, in the dynamic band of the cluster's service range (never its static lower band).
      const range = serviceRange((await api.networking.readServiceCIDR({ name: 'kubernetes' })).spec!.cidrs![0]!)!;
      expect(si.spec.ips?.[0]).toBe(pickAddress(range, 'web/web', () => false));
      const slices = await eventually(`imported slices with both pods in ${c}`, async () => {
        const s = await importedSlices(api, 'web', 'web');
        return readyAddresses(s).join() === pods.join() ? s : undefined;
      });
      for (const s of slices) {
        expect(s.metadata?.labels).toMatchObject({
          'multicluster.kubernetes.io/source-cluster': 'cluster-1',
          'kubernetes.io/service-name': derivedServiceName('web', 'web'),
          'endpointslice.kubernetes.io/managed-by': 'mcs-gossip.x-k8s.io',
        });
        // Owned by nothing: written beside the ServiceImport and the derived Service, before either has a uid.
        expect(s.metadata?.ownerReferences).toBeUndefined();
      }
    }
    const se = await eventually('conditions on the ServiceExport', async () => {
      const got = await getExport(one, 'web', 'web');
      return condition(got, 'Conflict') !== undefined ? got : undefined;
    });
    expect(condition(se, 'Valid')).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(condition(se, 'Ready')).toMatchObject({ status: 'True', reason: 'Exported' });
    expect(condition(se, 'Conflict')).toMatchObject({ status: 'False', reason: 'NoConflicts' });
    // A healthy export makes no Events (they are for problems and recoveries): none on the ServiceExport.
    const events = await one.core.listNamespacedEvent({ namespace: 'web', fieldSelector: 'involvedObject.name=web' });
    expect(events.items.filter((e) => e.involvedObject.kind === 'ServiceExport')).toEqual([]);
  });

  it('follows a scaled Deployment in both clusters', async () => {
    const one = a('cluster-1');
    await one.apps.patchNamespacedDeploymentScale(
      { namespace: 'web', name: 'web', body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    for (const c of clusters) {
      await eventually(`3 imported endpoints in ${c}`, async () => {
        const s = await importedSlices(a(c), 'web', 'web');
        return readyAddresses(s).length === 3 ? true : undefined;
      });
    }
  });

  it('writes nothing while nothing changes', async () => {
    await sleep(1500); // let the last events settle
    const since = Date.now();
    await sleep(8000);
    for (const c of harness.clusters) {
      const writes = await auditWrites(c.auditLog, SA_USER, since);
      expect(writes, `writes by the node in ${c.name}`).toEqual([]);
    }
  });

  it('merges a conflicting export from cluster-2: union of ports, Conflict on both', async () => {
    const two = a('cluster-2');
    await two.core.createNamespacedService({
      namespace: 'web',
      body: { metadata: { name: 'web' }, spec: { ports: [{ name: 'admin', port: 9090, protocol: 'TCP' }] } },
    });
    await exportService(two, 'web', 'web');
    for (const c of clusters) {
      await eventually(`union of ports in ${c}`, async () => {
        const si = await getImport(a(c), 'web', 'web');
        const ports = (si?.spec.ports ?? []).map((p) => `${p.name}:${p.port}`).sort();
        return ports.join() === 'admin:9090,http:80' && si?.status?.clusters?.length === 2 ? true : undefined;
      });
      const se = await eventually(`Conflict=True on the export of ${c}`, async () => {
        const got = await getExport(a(c), 'web', 'web');
        return condition(got, 'Conflict')?.status === 'True' ? got : undefined;
      });
      expect(condition(se, 'Conflict')?.reason).toBe('PortConflict');
      expect(condition(se, 'Conflict')?.message).toContain('"cluster-1"');
    }
    const seEvents = async () =>
      (
        await a('cluster-1').core.listNamespacedEvent({ namespace: 'web', fieldSelector: 'involvedObject.name=web' })
      ).items.filter((e) => e.involvedObject.kind === 'ServiceExport');
    // The conflict is a problem: a Warning Event; its end is a recovery: a Normal one.
    await eventually('a Warning Event for the conflict', async () =>
      (await seEvents()).some((e) => e.reason === 'Conflict' && e.type === 'Warning') ? true : undefined,
    );
    await unexportService(two, 'web', 'web');
    await eventually('Conflict cleared on cluster-1', async () => {
      const got = await getExport(a('cluster-1'), 'web', 'web');
      return condition(got, 'Conflict')?.status === 'False' ? true : undefined;
    });
    await eventually('a Normal Event for the recovery', async () =>
      (await seEvents()).some((e) => e.reason === 'ConflictFalse' && e.type === 'Normal') ? true : undefined,
    );
  });

  it('creates the import when the namespace appears later', async () => {
    const one = a('cluster-1');
    await ensureNamespace(one.core, 'late');
    await deployWeb(one, 'late', 'api', 1);
    await exportService(one, 'late', 'api');
    await eventually('import late/api in cluster-1', async () =>
      (await getImport(one, 'late', 'api')) ? true : undefined,
    );
    await sleep(1000);
    expect(await getImport(a('cluster-2'), 'late', 'api')).toBeUndefined();
    await ensureNamespace(a('cluster-2').core, 'late');
    await eventually('import late/api in cluster-2', async () =>
      (await getImport(a('cluster-2'), 'late', 'api'))?.spec.ips?.length === 1 ? true : undefined,
    );
  });

  it('does not export an ExternalName Service: Valid=False, no import', async () => {
    const one = a('cluster-1');
    await one.core.createNamespacedService({
      namespace: 'web',
      body: { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'example.com' } },
    });
    await exportService(one, 'web', 'ext');
    const se = await eventually('Valid=False on web/ext', async () => {
      const got = await getExport(one, 'web', 'ext');
      return condition(got, 'Valid')?.status === 'False' ? got : undefined;
    });
    expect(condition(se, 'Valid')?.reason).toBe('InvalidServiceType');
    expect(condition(se, 'Conflict')).toBeUndefined();
    for (const c of clusters) expect(await getImport(a(c), 'web', 'ext')).toBeUndefined();
  });

  it('carries only the exported labels and annotations to the import, and follows their changes', async () => {
    const one = a('cluster-1');
    await one.core.createNamespacedService({
      namespace: 'web',
      body: {
        metadata: { name: 'lbl', labels: { own: 'label' }, annotations: { own: 'annotation' } },
        spec: { ports: [{ name: 'http', port: 80 }] },
      },
    });
    await one.custom.createNamespacedCustomObject({
      group: 'multicluster.x-k8s.io',
      version: 'v1beta1',
      plural: 'serviceexports',
      namespace: 'web',
      body: {
        apiVersion: 'multicluster.x-k8s.io/v1beta1',
        kind: 'ServiceExport',
        metadata: { name: 'lbl', labels: { se: 'own' } },
        spec: { exportedLabels: { tier: 'web', team: 'a' }, exportedAnnotations: { note: 'x' } },
      },
    });
    type Meta = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } };
    for (const c of clusters) {
      const si = (await eventually(`import web/lbl in ${c}`, () => getImport(a(c), 'web', 'lbl'))) as unknown as Meta;
      expect(si.metadata.labels).toEqual({ tier: 'web', team: 'a' });
      expect(si.metadata.annotations).toEqual({ note: 'x' });
    }
    await one.custom.patchNamespacedCustomObject(
      {
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        plural: 'serviceexports',
        namespace: 'web',
        name: 'lbl',
        body: { spec: { exportedLabels: { tier: 'web', team: null } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    for (const c of clusters) {
      await eventually(`label team removed in ${c}`, async () => {
        const si = (await getImport(a(c), 'web', 'lbl')) as unknown as Meta | undefined;
        return JSON.stringify(si?.metadata.labels) === JSON.stringify({ tier: 'web' }) ? true : undefined;
      });
    }
    await unexportService(one, 'web', 'lbl');
  });

  it('imports a headless Service as Headless: no ips, no derived Service, slices', async () => {
    const one = a('cluster-1');
    await one.core.createNamespacedService({
      namespace: 'web',
      body: {
        metadata: { name: 'db' },
        spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'pg', port: 5432, targetPort: 8080 }] },
      },
    });
    await exportService(one, 'web', 'db');
    for (const c of clusters) {
      const si = await eventually(`headless import in ${c}`, async () => {
        const got = await getImport(a(c), 'web', 'db');
        const slices = await importedSlices(a(c), 'web', 'db');
        return got !== undefined && readyAddresses(slices).length === 3 ? got : undefined;
      });
      expect(si.spec.type).toBe('Headless');
      expect(si.spec.ips ?? []).toEqual([]);
      expect(si.spec.ipFamilies).toEqual(['IPv4']);
      const derived = await a(c)
        .core.readNamespacedService({ namespace: 'web', name: derivedServiceName('web', 'db') })
        .catch(() => undefined);
      expect(derived).toBeUndefined();
    }
    await unexportService(one, 'web', 'db');
  });

  // The chart's Role grants the node its own Lease only (named as the release, SA_NAME here): both tests use it,
  // each from a clean start.
  const freshLease = () =>
    kubeConfigFor(harness, 'cluster-1')
      .makeApiClient(k8s.CoordinationV1Api)
      .deleteNamespacedLease({ namespace: SYSTEM_NAMESPACE, name: SA_NAME })
      .catch(() => undefined);

  it('elects one leader with a Lease; a standby takes over when it stops', async () => {
    await freshLease();
    const kc = await nodeKubeConfig(harness, 'cluster-1', join(dir, 'lease.kubeconfig'));
    const leaders = new Map<string, boolean>();
    const elector = (identity: string) =>
      new LeaderElector({
        kubeConfig: kc,
        namespace: 'mcs-gossip-system',
        name: SA_NAME,
        identity,
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 500,
        logger: pino({ level: 'silent' }),
        onChange: (leader) => leaders.set(identity, leader),
      });
    const first = elector('replica-a');
    first.start();
    await eventually('replica-a leads', async () => (first.isLeader() ? true : undefined), 10_000);
    const second = elector('replica-b');
    second.start();
    await sleep(2000);
    expect([first.isLeader(), second.isLeader()]).toEqual([true, false]);
    await first.stop(); // releases the lease
    await eventually('replica-b leads', async () => (second.isLeader() ? true : undefined), 10_000);
    expect(first.isLeader()).toBe(false);
    await second.stop();
  });

  it('never has two leaders when the leader’s API calls hang: it steps down at its renew deadline', async () => {
    await freshLease();
    const kc = await nodeKubeConfig(harness, 'cluster-1', join(dir, 'lease-hang.kubeconfig'));
    const server = new URL(kc.getCurrentCluster()?.server ?? '');
    const proxy = await FaultProxy.start(server.hostname, Number(server.port));
    const hungKc = new k8s.KubeConfig();
    hungKc.loadFromString(kc.exportConfig());
    const cluster = hungKc.getCurrentCluster()!;
    hungKc.clusters = hungKc.clusters.map((c) =>
      c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${proxy.port}` } : c,
    );
    const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 400 };
    const changes: { identity: string; leader: boolean; at: number }[] = [];
    const elector = (identity: string, kubeConfig: k8s.KubeConfig) =>
      new LeaderElector({
        kubeConfig,
        namespace: 'mcs-gossip-system',
        name: SA_NAME,
        identity,
        ...timings,
        logger: pino({ level: 'silent' }),
        onChange: (leader) => changes.push({ identity, leader, at: performance.now() }),
      });
    const behindProxy = elector('replica-hung', hungKc);
    const direct = elector('replica-direct', kc);
    let overlap = 0;
    const sampler = setInterval(() => {
      if (behindProxy.isLeader() && direct.isLeader()) overlap++;
    }, 10);
    try {
      behindProxy.start();
      await eventually('replica-hung leads', async () => (behindProxy.isLeader() ? true : undefined), 10_000);
      direct.start();
      await sleep(1500);
      expect(direct.isLeader()).toBe(false);
      proxy.hang(); // the leader's renewals now never return
      const hungAt = performance.now();
      await eventually('replica-direct takes over', async () => (direct.isLeader() ? true : undefined), 15_000);
      const stepDown = changes.find((c) => c.identity === 'replica-hung' && !c.leader);
      const takeOver = changes.find((c) => c.identity === 'replica-direct' && c.leader);
      expect(stepDown, 'the hung leader stepped down').toBeDefined();
      // Stepped down by its deadline (measured from its last renewal, before the hang) although every call hung…
      expect(stepDown!.at - hungAt).toBeLessThanOrEqual(timings.renewDeadlineMs + 300);
      // …and the other took over only after the lease expired, with a margin of lease duration − renew deadline.
      expect(takeOver!.at - stepDown!.at).toBeGreaterThanOrEqual(
        timings.leaseDurationMs - timings.renewDeadlineMs - 200,
      );
      expect(overlap, 'samples with two leaders').toBe(0);
      proxy.resume();
      await sleep(1500);
      expect([behindProxy.isLeader(), direct.isLeader()]).toEqual([false, true]);
    } finally {
      clearInterval(sampler);
      proxy.resume();
      await Promise.all([behindProxy.stop(), direct.stop()]);
      await proxy.stop();
    }
  });

  it('removes the import everywhere when the last export goes', async () => {
    await unexportService(a('cluster-1'), 'web', 'web');
    for (const c of clusters) {
      await eventually(`web/web gone in ${c}`, async () => {
        const si = await getImport(a(c), 'web', 'web');
        const slices = await importedSlices(a(c), 'web', 'web');
        const svc = await a(c)
          .core.readNamespacedService({ namespace: 'web', name: derivedServiceName('web', 'web') })
          .catch(() => undefined);
        return si === undefined && slices.length === 0 && svc === undefined ? true : undefined;
      });
    }
  });

  it('without a cluster id: not ready, writes nothing; recovers when the ClusterProperty is back', async () => {
    const two = a('cluster-2');
    const kube = kubes.get('cluster-2')!;
    await two.custom.deleteClusterCustomObject({ ...ABOUT, name: 'cluster.clusterset.k8s.io' });
    await eventually('cluster-2 not ready', async () => (kube.readiness().ready ? undefined : true));
    expect(kube.readiness().reason).toMatch(/^ClusterIdMissing: /);
    const since = Date.now();
    await exportService(a('cluster-1'), 'web', 'web'); // web/web again: cluster-2 must not import it yet
    await eventually('import back in cluster-1', async () =>
      (await getImport(a('cluster-1'), 'web', 'web'))?.spec.ips?.length === 1 ? true : undefined,
    );
    await sleep(1500);
    const c2 = harness.clusters.find((c) => c.name === 'cluster-2')!;
    expect(await auditWrites(c2.auditLog, SA_USER, since)).toEqual([]);
    expect(await getImport(two, 'web', 'web')).toBeUndefined();

    await two.custom.createClusterCustomObject({
      ...ABOUT,
      body: {
        apiVersion: 'about.k8s.io/v1beta1',
        kind: 'ClusterProperty',
        metadata: { name: 'cluster.clusterset.k8s.io' },
        spec: { value: 'cluster-2' },
      },
    });
    await eventually('cluster-2 ready again', async () => (kube.readiness().ready ? true : undefined));
    await eventually('import in cluster-2 again', async () =>
      (await getImport(two, 'web', 'web'))?.spec.ips?.length === 1 ? true : undefined,
    );
  });
});
