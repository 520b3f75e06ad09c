// The local ClusterSet harness and our CRDs, against real control planes (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok) started by the harness library.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, kubeConfigFor, loadCrds, up, type ClusterSetState } from '../harness/clusterset.js';
import { isAlive } from '../harness/process.js';
import { eventually } from '../harness/wait.js';

const MCS = { group: 'multicluster.x-k8s.io', namespace: 'default' } as const;
/** The HTTP status of a rejected API call (e.g. 422 for a schema violation). */
async function rejection(p: Promise<unknown>): Promise<{ code: number; body: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) return { code: err.code, body: String(err.body) };
    throw err;
  }
  throw new Error('the API server accepted an object it should have rejected');
}

describe('local ClusterSet of real control planes', () => {
  let dir: string;
  let state: ClusterSetState;
  const api = (cluster: string) => {
    const kc = kubeConfigFor(state, cluster);
    return {
      core: kc.makeApiClient(k8s.CoreV1Api),
      apps: kc.makeApiClient(k8s.AppsV1Api),
      discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
      ext: kc.makeApiClient(k8s.ApiextensionsV1Api),
      custom: kc.makeApiClient(k8s.CustomObjectsApi),
      version: kc.makeApiClient(k8s.VersionApi),
    };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-foundation-'));
    state = await up({ dir, clusters: 2, clusterSetName: 'foundation-test', onProgress: () => {} });
  });

  afterAll(async () => {
    if (state !== undefined) {
      await down(dir);
      for (const p of state.clusters.flatMap((c) => c.components)) expect(isAlive(p)).toBe(false);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the pinned, version-stamped Kubernetes', async () => {
    const v = await api('cluster-1').version.getCode();
    expect(v.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(v.gitVersion).not.toContain('v0.0.0');
  });

  it('installs our CRDs and they are Established, with both MCS versions served', async () => {
    const { ext } = api('cluster-2');
    for (const crd of await loadCrds()) {
      const got = await ext.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
      expect(got.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
      expect(got.spec.versions.map((v) => `${v.name}:${v.served}:${v.storage}`).sort()).toEqual(
        crd.metadata?.name === 'clusterproperties.about.k8s.io'
          ? ['v1alpha1:true:false', 'v1beta1:true:true']
          : ['v1alpha1:true:false', 'v1beta1:true:true'],
      );
    }
    // What the API server stores is exactly our schema: nothing dropped on the way (enums, list types, …).
    for (const crd of await loadCrds()) {
      const got = await ext.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
      for (const v of crd.spec.versions) {
        const stored = got.spec.versions.find((x) => x.name === v.name);
        expect(stored?.schema, `${crd.metadata?.name} ${v.name}`).toEqual(v.schema);
        expect(stored?.additionalPrinterColumns).toEqual(v.additionalPrinterColumns);
      }
    }
    const si = await ext.readCustomResourceDefinition({ name: 'serviceimports.multicluster.x-k8s.io' });
    expect(si.spec.names.shortNames).toEqual(['svcim', 'svcimport']);
    expect(si.spec.names.categories).toEqual(['multicluster']);
    const se = await ext.readCustomResourceDefinition({ name: 'serviceexports.multicluster.x-k8s.io' });
    expect(se.spec.names.shortNames).toEqual(['svcex', 'svcexport']);
  });

  it('gives every cluster its ClusterProperties', async () => {
    for (const c of state.clusters) {
      const list = (await api(c.name).custom.listClusterCustomObject({
        group: 'about.k8s.io',
        version: 'v1beta1',
        plural: 'clusterproperties',
      })) as { items: { metadata: { name: string }; spec: { value: string } }[] };
      const props = Object.fromEntries(list.items.map((i) => [i.metadata.name, i.spec.value]));
      expect(props).toEqual({ 'cluster.clusterset.k8s.io': c.name, 'clusterset.k8s.io': 'foundation-test' });
    }
  });

  it('round-trips ServiceExport and ServiceImport through v1alpha1 and v1beta1', async () => {
    const { custom } = api('cluster-1');
    const spec = {
      type: 'ClusterSetIP',
      ips: ['10.101.0.10'],
      ports: [{ name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' }],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      ipFamilies: ['IPv4'],
      internalTrafficPolicy: 'Cluster',
      trafficDistribution: 'PreferClose',
    };
    for (const [writeV, readV] of [
      ['v1beta1', 'v1alpha1'],
      ['v1alpha1', 'v1beta1'],
    ] as const) {
      const name = `rt-${writeV}`;
      await custom.createNamespacedCustomObject({
        ...MCS,
        version: writeV,
        plural: 'serviceimports',
        body: { apiVersion: `${MCS.group}/${writeV}`, kind: 'ServiceImport', metadata: { name }, spec },
      });
      const got = (await custom.getNamespacedCustomObject({
        ...MCS,
        version: readV,
        plural: 'serviceimports',
        name,
      })) as { apiVersion: string; spec: unknown };
      expect(got.apiVersion).toBe(`${MCS.group}/${readV}`);
      expect(got.spec).toEqual(spec);

      const exportSpec = { exportedLabels: { tier: 'web' }, exportedAnnotations: { team: 'a' } };
      await custom.createNamespacedCustomObject({
        ...MCS,
        version: writeV,
        plural: 'serviceexports',
        body: { apiVersion: `${MCS.group}/${writeV}`, kind: 'ServiceExport', metadata: { name }, spec: exportSpec },
      });
      const ex = (await custom.getNamespacedCustomObject({
        ...MCS,
        version: readV,
        plural: 'serviceexports',
        name,
      })) as {
        spec: unknown;
      };
      expect(ex.spec).toEqual(exportSpec);
    }
    // Conditions go through the status subresource.
    const status = {
      conditions: [
        {
          type: 'Valid',
          status: 'True',
          reason: 'Valid',
          message: 'ok',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    await custom.patchNamespacedCustomObjectStatus(
      { ...MCS, version: 'v1beta1', plural: 'serviceexports', name: 'rt-v1beta1', body: { status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const withStatus = (await custom.getNamespacedCustomObject({
      ...MCS,
      version: 'v1alpha1',
      plural: 'serviceexports',
      name: 'rt-v1beta1',
    })) as { status: unknown };
    expect(withStatus.status).toEqual(status);
  });

  it('rejects invalid objects with a reason naming the field', async () => {
    const { custom } = api('cluster-1');
    const si = (name: string, spec: unknown) =>
      custom.createNamespacedCustomObject({
        ...MCS,
        version: 'v1beta1',
        plural: 'serviceimports',
        body: { apiVersion: `${MCS.group}/v1beta1`, kind: 'ServiceImport', metadata: { name }, spec },
      });
    const port = [{ port: 80, protocol: 'TCP' }];
    const badType = await rejection(si('bad-type', { type: 'LoadBalancer', ports: port }));
    expect(badType.code).toBe(422);
    expect(badType.body).toContain('spec.type');
    const threeIps = await rejection(
      si('three-ips', { type: 'ClusterSetIP', ports: port, ips: ['1.1.1.1', '1.1.1.2', '1.1.1.3'] }),
    );
    expect(threeIps.code).toBe(422);
    expect(threeIps.body).toContain('spec.ips');
    const noPorts = await rejection(si('no-ports', { type: 'ClusterSetIP' }));
    expect(noPorts.code).toBe(422);
    expect(noPorts.body).toContain('spec.ports');
    const emptyProp = await rejection(
      custom.createClusterCustomObject({
        group: 'about.k8s.io',
        version: 'v1beta1',
        plural: 'clusterproperties',
        body: {
          apiVersion: 'about.k8s.io/v1beta1',
          kind: 'ClusterProperty',
          metadata: { name: 'x.example.com' },
          spec: { value: '' },
        },
      }),
    );
    expect(emptyProp.code).toBe(422);
    expect(emptyProp.body).toContain('spec.value');
  });

  it('runs a Deployment on kwok nodes and kube-controller-manager writes its EndpointSlice', async () => {
    const { core, apps, discovery } = api('cluster-2');
    const namespace = 'web';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await eventually('default ServiceAccount in web', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace }).then(() => true),
    );
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'web', image: 'example.invalid/web:1', ports: [{ containerPort: 8080 }] }] },
          },
        },
      },
    });
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    const pods = await eventually('2 Running pods with IPs', async () => {
      const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
      const running = list.items.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
      return running.length === 2 ? running : undefined;
    });
    for (const p of pods) expect(p.status?.podIP).toMatch(/^10\.202\./);
    const slice = await eventually('an EndpointSlice with 2 ready addresses', async () => {
      const list = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: 'kubernetes.io/service-name=web',
      });
      const s = list.items[0];
      const ready = (s?.endpoints ?? []).filter((e) => e.conditions?.ready === true) ?? [];
      return ready.length === 2 ? s : undefined;
    });
    expect(slice.metadata?.labels?.['endpointslice.kubernetes.io/managed-by']).toBe('endpointslice-controller.k8s.io');
    expect((slice.endpoints ?? []).flatMap((e) => e.addresses).sort()).toEqual(pods.map((p) => p.status?.podIP).sort());
    const svc = await core.readNamespacedService({ name: 'web', namespace });
    expect(svc.spec?.clusterIP).toMatch(/^10\.102\./);
  });

  it('completes a namespace deletion (namespace controller and garbage collector run)', async () => {
    const { core } = api('cluster-1');
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'c' }, data: { a: 'b' } } });
    await core.deleteNamespace({ name: 'doomed' });
    await eventually('namespace doomed to be gone', async () => {
      try {
        await core.readNamespace({ name: 'doomed' });
        return undefined;
      } catch (err) {
        return err instanceof k8s.ApiException && err.code === 404 ? true : undefined;
      }
    });
  });

  it('keeps clusters isolated', async () => {
    await api('cluster-1').core.createNamespace({ body: { metadata: { name: 'only-in-one' } } });
    const r = await rejection(api('cluster-2').core.readNamespace({ name: 'only-in-one' }));
    expect(r.code).toBe(404);
    const one = state.clusters[0];
    const two = state.clusters[1];
    expect(one?.server).not.toBe(two?.server);
    expect(one?.serviceCidr).not.toBe(two?.serviceCidr);
  });
});
