// Bad Kubernetes input on a two-cluster ClusterSet with real nodes: exports the API accepts but importers could not
// write get Valid=False with the field, never block the other clusters' exports of the service, and writes an API
// server refuses are reported and not retried at full speed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, startComponent, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { nodeHttp, nodeOf, nodeReady } from './node-helpers.js';
import {
  ABOUT,
  admin,
  condition,
  deployWeb,
  ensureNamespace,
  eventually,
  getExport,
  getImport,
  importedSlices,
  MCS,
  sleep,
} from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2'] as const;
const NS = 'lb';

describe('bad Kubernetes input', () => {
  let dir: string;
  let harness: Harness;
  const a = (c: string) => admin(harness, c);

  const exportWith = (c: string, name: string, spec: Record<string, unknown>) =>
    a(c).custom.createNamespacedCustomObject({
      ...MCS,
      plural: 'serviceexports',
      namespace: NS,
      body: { apiVersion: `${MCS.group}/${MCS.version}`, kind: 'ServiceExport', metadata: { name }, spec },
    });

  const validOf = (c: string, name: string) =>
    eventually(`Valid on ${c} ${NS}/${name}`, async () => condition(await getExport(a(c), NS, name), 'Valid'));

  const events = async (c: string, kind: string, name: string) =>
    (
      await a(c).core.listNamespacedEvent({
        namespace: NS,
        fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
      })
    ).items;

  const metric = async (c: string, name: string): Promise<number> => {
    const text = (await nodeHttp(harness, c, '/metrics')).body;
    return text
      .split('\n')
      .filter((l) => l.startsWith(name) && !l.startsWith('#'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-bad-input-'));
    harness = await up({
      dir,
      clusters: CLUSTERS.length,
      nodes: true,
      extraArgs: { 'mcs-gossip': ['--endpoint-ttl=5s', '--heartbeat-interval=1s', '--sync-interval=5s'] },
      onProgress: () => {},
    });
    for (const c of CLUSTERS) {
      await ensureNamespace(a(c).core, NS);
      await nodeReady(harness, c);
    }
  });

  afterAll(async () => {
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('an export with a label no ServiceImport can carry is Valid=False naming exportedLabels and the key', async () => {
    await deployWeb(a('cluster-1'), NS, 'pz', 1);
    await exportWith('cluster-1', 'pz', { exportedLabels: { 'a b': 'x' } });
    const valid = await validOf('cluster-1', 'pz');
    expect(valid.status).toBe('False');
    expect(valid.reason).toBe('InvalidExportedLabels');
    expect(valid.message).toContain('spec.exportedLabels["a b"]');
    const se = await getExport(a('cluster-1'), NS, 'pz');
    expect(condition(se, 'Ready')).toMatchObject({ status: 'False', reason: 'Failed' });
    await eventually('a Warning Event on the ServiceExport', async () =>
      (await events('cluster-1', 'ServiceExport', 'pz')).some((e) => e.reason === 'ValidFalse' && e.type === 'Warning')
        ? true
        : undefined,
    );
    await sleep(2000);
    for (const c of CLUSTERS) expect(await getImport(a(c), NS, 'pz')).toBeUndefined();

    const annotated = 'note';
    await deployWeb(a('cluster-1'), NS, annotated, 1);
    await exportWith('cluster-1', annotated, { exportedAnnotations: { 'bad key!': 'z' } });
    const v2 = await validOf('cluster-1', annotated);
    expect(v2).toMatchObject({ status: 'False', reason: 'InvalidExportedAnnotations' });
    expect(v2.message).toContain('spec.exportedAnnotations["bad key!"]');
  });

  it('a clean export of the same service in cluster-2 is imported in both clusters; cluster-1’s stays invalid', async () => {
    await deployWeb(a('cluster-2'), NS, 'pz', 2);
    await exportWith('cluster-2', 'pz', { exportedLabels: { tier: 'web' } });
    for (const c of CLUSTERS) {
      await eventually(`import of ${NS}/pz from cluster-2 in ${c}`, async () => {
        const si = (await getImport(a(c), NS, 'pz')) as
          (Awaited<ReturnType<typeof getImport>> & { metadata: { labels?: Record<string, string> } }) | undefined;
        const slices = await importedSlices(a(c), NS, 'pz');
        const n = slices.flatMap((s) => s.endpoints ?? []).length;
        return si?.spec.ips?.length === 1 &&
          si.status?.clusters?.map((x) => x.cluster).join() === 'cluster-2' &&
          si.metadata.labels?.['tier'] === 'web' &&
          n === 2
          ? true
          : undefined;
      });
    }
    expect((await validOf('cluster-1', 'pz')).status).toBe('False');
    const mine = await getExport(a('cluster-2'), NS, 'pz');
    expect(condition(mine, 'Valid')?.status).toBe('True');
    expect(condition(mine, 'Conflict')?.status).toBe('False');
  });

  it('a Service of 120 ports is refused with a condition naming spec.ports', async () => {
    const ports: k8s.V1ServicePort[] = Array.from({ length: 120 }, (_, i) => ({
      name: `p${i}`,
      port: 10_000 + i,
      targetPort: 10_000 + i,
    }));
    await deployWeb(a('cluster-1'), NS, 'wide', 1, ports);
    await exportWith('cluster-1', 'wide', {});
    const valid = await validOf('cluster-1', 'wide');
    expect(valid).toMatchObject({ status: 'False', reason: 'UnimportableService' });
    expect(valid.message).toContain('Service "lb/wide" spec.ports: 120 ports');
    await sleep(2000);
    for (const c of CLUSTERS) expect(await getImport(a(c), NS, 'wide')).toBeUndefined();
  });

  it('a bad entry of the bootstrap ClusterProperty is skipped with an error naming it, never fatal', async () => {
    const two = a('cluster-2');
    const one = nodeOf(harness, 'cluster-1');
    const good = `cluster-1=${one.listen}/p2p/${one.peerId}`;
    await two.custom.createClusterCustomObject({
      ...ABOUT,
      body: {
        apiVersion: `${ABOUT.group}/${ABOUT.version}`,
        kind: 'ClusterProperty',
        metadata: { name: 'bootstrap.mcs-gossip.x-k8s.io' },
        spec: { value: `nonsense,${good},/ip4/10.1.2.3/tcp/7946` },
      },
    });
    const ready = await eventually('the skipped entries in /readyz', async () => {
      const r = await nodeHttp(harness, 'cluster-2', '/readyz');
      return r.code === 200 && r.body.includes('skipping 2 bad bootstrap entries') ? r.body : undefined;
    });
    expect(ready).toContain('"nonsense"');
    expect(ready).toContain('"/ip4/10.1.2.3/tcp/7946"');
    expect(await metric('cluster-2', 'mcs_gossip_bootstrap_entries_invalid')).toBe(2);
    // Still a member: a new export of cluster-1 reaches cluster-2.
    await deployWeb(a('cluster-1'), NS, 'after-bootstrap', 1);
    await exportWith('cluster-1', 'after-bootstrap', {});
    await eventually('the import in cluster-2', async () =>
      (await getImport(two, NS, 'after-bootstrap'))?.spec.ips?.length === 1 ? true : undefined,
    );
    await two.custom.deleteClusterCustomObject({ ...ABOUT, name: 'bootstrap.mcs-gossip.x-k8s.io' });
    await eventually('no bootstrap entries skipped', async () =>
      (await metric('cluster-2', 'mcs_gossip_bootstrap_entries_invalid')) === 0 ? true : undefined,
    );
  });

  it('announces what its own gossip Service gives: the LoadBalancer ingress, followed as it changes', async () => {
    const two = a('cluster-2');
    const node = nodeOf(harness, 'cluster-2');
    const port = Number(node.listen?.split('/')[4]);
    await ensureNamespace(two.core, 'mcs-gossip-system');
    await two.core.createNamespacedService({
      namespace: 'mcs-gossip-system',
      body: {
        metadata: { name: 'gossip' },
        spec: { type: 'LoadBalancer', ports: [{ name: 'gossip', port, targetPort: port }] },
      },
    });
    const peerValue = async () =>
      (
        (await two.custom.getClusterCustomObject({ ...ABOUT, name: 'peer.mcs-gossip.x-k8s.io' })) as {
          spec: { value: string };
        }
      ).spec.value;
    const setIngress = (ingress: k8s.V1LoadBalancerIngress[]) =>
      two.core.patchNamespacedServiceStatus(
        { namespace: 'mcs-gossip-system', name: 'gossip', body: { status: { loadBalancer: { ingress } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    await stopComponent(harness, 'cluster-2', 'mcs-gossip');
    try {
      await startComponent(harness, 'cluster-2', 'mcs-gossip', 60_000, {
        env: { MCS_GOSSIP_ANNOUNCE_FROM_SERVICE: 'mcs-gossip-system/gossip' },
      });
      // No ingress yet: the listen address, and /readyz says why.
      await eventually('readyz says the LoadBalancer has no ingress yet', async () =>
        (await nodeHttp(harness, 'cluster-2', '/readyz')).body.includes('no ingress address yet') ? true : undefined,
      );
      await setIngress([{ ip: '192.0.2.10' }]);
      await eventually('the peer property announces the ingress IP', async () =>
        (await peerValue()) === `cluster-2=/ip4/192.0.2.10/tcp/${port}/p2p/${node.peerId}` ? true : undefined,
      );
      await setIngress([{ hostname: 'gossip.cluster-2.example' }]);
      await eventually('the peer property follows the new ingress hostname', async () =>
        (await peerValue()) === `cluster-2=/dns/gossip.cluster-2.example/tcp/${port}/p2p/${node.peerId}`
          ? true
          : undefined,
      );
    } finally {
      await stopComponent(harness, 'cluster-2', 'mcs-gossip');
      await startComponent(harness, 'cluster-2', 'mcs-gossip');
      await nodeReady(harness, 'cluster-2');
    }
  });

  it('writes the API server refuses are reported, never block the export’s conditions, and are not retried at full speed', async () => {
    // cluster-2's API server refuses every imported slice of lb/held (a real admission policy, as a stricter
    // cluster or an operator's policy would): the import side of the key fails, its export side must not.
    const two = a('cluster-2');
    await two.admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: 'refuse-held-slices' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: ['discovery.k8s.io'],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['endpointslices'],
              },
            ],
          },
          validations: [
            {
              expression:
                "!has(object.metadata.labels) || !('multicluster.kubernetes.io/service-name' in object.metadata.labels) || object.metadata.labels['multicluster.kubernetes.io/service-name'] != 'held'",
              message: 'imported slices of lb/held are not allowed here',
            },
          ],
        },
      },
    });
    await two.admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: 'refuse-held-slices' },
        spec: { policyName: 'refuse-held-slices', validationActions: ['Deny'] },
      },
    });
    // A policy takes effect (and goes) a moment after it is created (deleted): probe with a dry-run slice.
    const policyInEffect = async (): Promise<boolean> => {
      try {
        await two.discovery.createNamespacedEndpointSlice({
          namespace: NS,
          dryRun: 'All',
          body: {
            metadata: { name: 'probe', labels: { 'multicluster.kubernetes.io/service-name': 'held' } },
            addressType: 'IPv4',
            endpoints: [],
          },
        });
        return false;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 422) return true;
        throw err;
      }
    };
    await eventually('the admission policy in effect', async () => ((await policyInEffect()) ? true : undefined));
    try {
      await deployWeb(a('cluster-1'), NS, 'held', 1);
      await deployWeb(two, NS, 'held', 1);
      await exportWith('cluster-1', 'held', {});
      await exportWith('cluster-2', 'held', {});
      // The ServiceImport and its derived Service are written; the slices are refused.
      await eventually('the import of lb/held in cluster-2, with ips', async () => {
        const si = await getImport(two, NS, 'held');
        return si?.spec.ips?.length === 1 && si.status?.clusters?.length === 2 ? si : undefined;
      });
      expect(await importedSlices(two, NS, 'held')).toEqual([]);
      // The export side of the same key is written all the same.
      const se = await eventually('conditions on cluster-2’s export of lb/held', async () => {
        const got = await getExport(two, NS, 'held');
        return condition(got, 'Ready')?.status === 'True' && condition(got, 'Conflict') ? got : undefined;
      });
      expect(condition(se, 'Valid')?.status).toBe('True');
      // Reported: an Event on the ServiceImport, /status, the metric.
      const refusal = await eventually('an ImportRefused Event', async () =>
        (await events('cluster-2', 'ServiceImport', 'held')).find((e) => e.reason === 'ImportRefused'),
      );
      expect(refusal.type).toBe('Warning');
      expect(refusal.message).toContain('imported slices of lb/held are not allowed here');
      // Both sources' slices were refused (cluster-1's and cluster-2's own), each named.
      await eventually('both slices named in the refusal', async () => {
        const s = JSON.parse((await nodeHttp(harness, 'cluster-2', '/status')).body) as {
          refusedKeys: { message: string }[];
        };
        const m = s.refusedKeys[0]?.message ?? '';
        return m.includes('-cluster-1-0') && m.includes('-cluster-2-0') ? true : undefined;
      });
      const status = JSON.parse((await nodeHttp(harness, 'cluster-2', '/status')).body) as {
        refusedKeys: { key: string; message: string }[];
      };
      expect(status.refusedKeys.map((r) => r.key)).toEqual(['lb/held']);
      expect(await metric('cluster-2', 'mcs_gossip_refused_keys')).toBe(1);
      // Not retried at full speed: over 10 s (and events of the key's other objects), at most a couple of attempts.
      const before = await metric(
        'cluster-2',
        'mcs_gossip_kube_api_writes_total{resource="endpointslices",verb="create",result="refused"}',
      );
      await sleep(10_000);
      const after = await metric(
        'cluster-2',
        'mcs_gossip_kube_api_writes_total{resource="endpointslices",verb="create",result="refused"}',
      );
      console.log(`refused slice creates in 10 s: ${after - before} (of ${after} in all)`);
      expect(after - before).toBeLessThanOrEqual(2);
    } finally {
      await two.admission.deleteValidatingAdmissionPolicyBinding({ name: 'refuse-held-slices' });
      await two.admission.deleteValidatingAdmissionPolicy({ name: 'refuse-held-slices' });
    }
    await eventually('the admission policy gone', async () => ((await policyInEffect()) ? undefined : true));
    // Once the policy is gone, a change of the key (another endpoint in cluster-1) is written at once.
    await a('cluster-1').apps.patchNamespacedDeploymentScale(
      { namespace: NS, name: 'held', body: { spec: { replicas: 2 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually('the slices of lb/held in cluster-2 once accepted', async () => {
      const n = (await importedSlices(two, NS, 'held')).flatMap((s) => s.endpoints ?? []).length;
      return n === 3 ? true : undefined;
    });
    // The key leaves the refused list when the reconcile that wrote them ends (its last write may follow the slices).
    await eventually('lb/held no longer refused', async () => {
      const status = JSON.parse((await nodeHttp(harness, 'cluster-2', '/status')).body) as { refusedKeys: unknown[] };
      return status.refusedKeys.length === 0 ? true : undefined;
    });
    expect(await metric('cluster-2', 'mcs_gossip_refused_keys')).toBe(0);
  });
});
