// The Ready condition of ServiceImports on a two-cluster ClusterSet with real nodes: True while an exporter is
// heard, False Pending once every exporter is unheard past the endpoint TTL, and False with the API server's answer
// when the importing cluster refuses the derived Service (here for its ip families, by an admission policy).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, startComponent, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { nodeReady } from './node-helpers.js';
import { admin, deployWeb, ensureNamespace, eventually, exportService, getImport } from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2'] as const;
const NS = 'cond';
const FAMILY_MESSAGE = 'ipFamilies IPv6 is not configured on this cluster';

describe('ServiceImport conditions', () => {
  let dir: string;
  let harness: Harness;
  const a = (c: string) => admin(harness, c);

  const readyOf = async (c: string, name: string) =>
    (await getImport(a(c), NS, name))?.status?.conditions?.find((x) => x.type === 'Ready');

  const readyIs = (c: string, name: string, status: string, reason: string, timeoutMs?: number) =>
    eventually(
      `Ready=${status} ${reason} on ${c} ${NS}/${name}`,
      async () => {
        const r = await readyOf(c, name);
        return r?.status === status && r.reason === reason ? r : undefined;
      },
      timeoutMs,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-import-conditions-'));
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

  it('an export of cluster-1 gives a ServiceImport in cluster-2 with Ready=True Ready', async () => {
    await deployWeb(a('cluster-1'), NS, 'web', 1);
    await exportService(a('cluster-1'), NS, 'web');
    const ready = await readyIs('cluster-2', 'web', 'True', 'Ready');
    expect(ready.message).toContain('cluster-1');
    expect(ready.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const si = await getImport(a('cluster-2'), NS, 'web');
    expect(si?.status?.clusters).toEqual([{ cluster: 'cluster-1' }]);
    // The exporting cluster imports too, and says the same.
    expect(await readyIs('cluster-1', 'web', 'True', 'Ready')).toMatchObject({ message: ready.message });
  });

  it('is Ready=False Pending once the only exporter is unheard past the TTL, and True again when it is back', async () => {
    await readyIs('cluster-2', 'web', 'True', 'Ready');
    await stopComponent(harness, 'cluster-1', 'mcs-gossip');
    try {
      const pending = await readyIs('cluster-2', 'web', 'False', 'Pending', 60_000);
      expect(pending.message).toContain('cluster-1');
      // The import itself stays, status.clusters included.
      expect((await getImport(a('cluster-2'), NS, 'web'))?.status?.clusters).toEqual([{ cluster: 'cluster-1' }]);
    } finally {
      await startComponent(harness, 'cluster-1', 'mcs-gossip');
      await nodeReady(harness, 'cluster-1');
    }
    await readyIs('cluster-2', 'web', 'True', 'Ready', 60_000);
  });

  it('is Ready=False IPFamilyNotSupported with the API server message when cluster-2 refuses the derived Service', async () => {
    const two = a('cluster-2');
    await two.admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: 'refuse-fam-services' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'] },
            ],
          },
          validations: [
            {
              expression:
                "!has(object.metadata.labels) || !('multicluster.kubernetes.io/service-name' in object.metadata.labels) || object.metadata.labels['multicluster.kubernetes.io/service-name'] != 'fam'",
              message: FAMILY_MESSAGE,
            },
          ],
        },
      },
    });
    await two.admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: 'refuse-fam-services' },
        spec: { policyName: 'refuse-fam-services', validationActions: ['Deny'] },
      },
    });
    // A policy takes effect (and goes) a moment after it is created (deleted): probe with a dry-run Service.
    const policyInEffect = async (): Promise<boolean> => {
      try {
        await two.core.createNamespacedService({
          namespace: NS,
          dryRun: 'All',
          body: {
            metadata: { name: 'probe', labels: { 'multicluster.kubernetes.io/service-name': 'fam' } },
            spec: { ports: [{ port: 80 }] },
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
      await deployWeb(a('cluster-1'), NS, 'fam', 1);
      await exportService(a('cluster-1'), NS, 'fam');
      const ready = await readyIs('cluster-2', 'fam', 'False', 'IPFamilyNotSupported');
      expect(ready.message).toContain(FAMILY_MESSAGE);
      const event = await eventually('a Warning Event on the ServiceImport for Ready=False', async () => {
        const list = await two.core.listNamespacedEvent({
          namespace: NS,
          fieldSelector: 'involvedObject.kind=ServiceImport,involvedObject.name=fam',
        });
        return list.items.find((e) => e.reason === 'ReadyFalse');
      });
      expect(event.type).toBe('Warning');
      expect(event.message).toContain('IPFamilyNotSupported');
      expect(event.message).toContain(FAMILY_MESSAGE);
      // Only the importing cluster that refused says so: cluster-1 imports fam as Ready.
      await readyIs('cluster-1', 'fam', 'True', 'Ready');
    } finally {
      await two.admission.deleteValidatingAdmissionPolicyBinding({ name: 'refuse-fam-services' });
      await two.admission.deleteValidatingAdmissionPolicy({ name: 'refuse-fam-services' });
    }
    await eventually('the admission policy gone', async () => ((await policyInEffect()) ? undefined : true));
    // Once the policy is gone, a change of the key (another endpoint in cluster-1) is written, and Ready again.
    await a('cluster-1').apps.patchNamespacedDeploymentScale(
      { namespace: NS, name: 'fam', body: { spec: { replicas: 2 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await readyIs('cluster-2', 'fam', 'True', 'Ready');
    expect((await getImport(a('cluster-2'), NS, 'fam'))?.spec.ips?.length).toBe(1);
  });
});
