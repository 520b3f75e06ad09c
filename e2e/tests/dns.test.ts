// clusterset.local DNS from our objects: a real CoreDNS (in-tree kubernetes plugin with `multicluster`) pointed at
// cluster-2 answers a real DNS client (node:dns over UDP) from the ServiceImports and EndpointSlices that the
// mcs-gossip nodes wrote for services exported in cluster-1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, kubeConfigFor, up, type ClusterSetState } from '../harness/clusterset.js';
import { startCoreDns, type CoreDns } from '../harness/coredns.js';
import { eventually } from '../harness/wait.js';

const NS = 'dns-test';

describe('clusterset.local DNS served by CoreDNS from our objects', () => {
  let dir: string;
  let state: ClusterSetState;
  let dns: CoreDns;
  const api = (cluster: string) => {
    const kc = kubeConfigFor(state, cluster);
    return {
      core: kc.makeApiClient(k8s.CoreV1Api),
      custom: kc.makeApiClient(k8s.CustomObjectsApi),
    };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-dns-'));
    state = await up({ dir, clusters: 2, nodes: true, clusterSetName: 'dns-test', onProgress: () => {} });
    dns = await startCoreDns(state, 'cluster-2');
    for (const c of ['cluster-1', 'cluster-2']) {
      const { core } = api(c);
      await core.createNamespace({ body: { metadata: { name: NS } } });
      await eventually(`default ServiceAccount in ${c}`, () =>
        core.readNamespacedServiceAccount({ namespace: NS, name: 'default' }).then(() => true),
      );
    }
    const { core, custom } = api('cluster-1');
    // Two pods with hostnames under the headless service's subdomain, so their endpoints carry hostnames.
    for (const [i, name] of ['web-0', 'web-1'].entries()) {
      await core.createNamespacedPod({
        namespace: NS,
        body: {
          metadata: { name, labels: { app: 'web' } },
          spec: {
            hostname: name,
            subdomain: 'web-headless',
            nodeName: `kwok-node-${i}`,
            containers: [{ name: 'web', image: 'registry.invalid/web:1', ports: [{ containerPort: 8080 }] }],
          },
        },
      });
    }
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
      },
    });
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'web-headless' },
        spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
      },
    });
    for (const name of ['web', 'web-headless']) {
      await custom.createNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1beta1',
        namespace: NS,
        plural: 'serviceexports',
        body: { apiVersion: 'multicluster.x-k8s.io/v1beta1', kind: 'ServiceExport', metadata: { name } },
      });
    }
  });

  afterAll(async () => {
    await dns?.stop();
    if (state !== undefined) await down(dir);
    await rm(dir, { recursive: true, force: true });
  });

  const podIps = async () => {
    const pods = await api('cluster-1').core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' });
    return pods.items.map((p) => p.status?.podIP ?? '').filter((ip) => ip !== '');
  };

  it('answers <svc>.<ns>.svc.clusterset.local with the ServiceImport ClusterSetIP', async () => {
    const ip = await eventually('ServiceImport ip in cluster-2', async () => {
      const si = (await api('cluster-2').custom.getNamespacedCustomObject({
        group: 'multicluster.x-k8s.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'serviceimports',
        name: 'web',
      })) as { spec: { ips?: string[] } };
      return si.spec.ips?.[0];
    });
    expect(ip).toMatch(/^10\.102\./); // allocated from cluster-2's own service CIDR
    const answer = await eventually('A record', async () => {
      const a = await dns.resolver.resolve4(`web.${NS}.svc.clusterset.local`);
      return a.length > 0 ? a : undefined;
    });
    expect(answer).toEqual([ip]);
  });

  it('answers SRV per named port', async () => {
    const srv = await eventually('SRV record', async () => {
      const s = await dns.resolver.resolveSrv(`_http._tcp.web.${NS}.svc.clusterset.local`);
      return s.length > 0 ? s : undefined;
    });
    expect(srv.map((r) => r.port)).toEqual([80]);
    expect(srv[0]?.name).toBe(`web.${NS}.svc.clusterset.local`);
  });

  it('answers a headless import with an A record per ready endpoint', async () => {
    const ips = await eventually('2 pod IPs', async () => {
      const got = await podIps();
      return got.length === 2 ? got : undefined;
    });
    const answer = await eventually('headless A records', async () => {
      const a = await dns.resolver.resolve4(`web-headless.${NS}.svc.clusterset.local`);
      return a.length === 2 ? a : undefined;
    });
    expect(answer.sort()).toEqual(ips.sort());
  });

  it('answers <hostname>.<clusterid>.<svc>.<ns>.svc.clusterset.local per endpoint, and not <clusterid>.<svc>…', async () => {
    const pods = await api('cluster-1').core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' });
    for (const p of pods.items) {
      const name = `${p.spec?.hostname}.cluster-1.web-headless.${NS}.svc.clusterset.local`;
      const a = await eventually(name, async () => {
        const r = await dns.resolver.resolve4(name);
        return r.length > 0 ? r : undefined;
      });
      expect(a).toEqual([p.status?.podIP]);
    }
    await expect(dns.resolver.resolve4(`cluster-1.web-headless.${NS}.svc.clusterset.local`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('stops answering once the service is no longer exported anywhere', async () => {
    await api('cluster-1').custom.deleteNamespacedCustomObject({
      group: 'multicluster.x-k8s.io',
      version: 'v1beta1',
      namespace: NS,
      plural: 'serviceexports',
      name: 'web',
    });
    await eventually('NXDOMAIN after unexport', async () => {
      try {
        await dns.resolver.resolve4(`web.${NS}.svc.clusterset.local`);
        return undefined;
      } catch (err) {
        return (err as { code?: string }).code === 'ENOTFOUND' ? true : undefined;
      }
    });
  });
});
