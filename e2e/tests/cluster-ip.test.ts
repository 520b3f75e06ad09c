// The writer's ClusterSetIP picks, on a real API server: a new import's derived Service, ServiceImport and slices are
// created together with the ip the node picked; an ip taken meanwhile or outside the service ranges is refused by the
// API server, and the writer lets it pick instead, with the ServiceImport following. The writer runs alone here (its
// own caches, the node's least-privilege kubeconfig), so the Services cache can be made blind to a squatter.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceImportObject } from '../../src/core/index.js';
import { derivedServiceName } from '../../src/core/index.js';
import { apiClient } from '../../src/kube/api-client.js';
import {
  ClusterIpPlanner,
  pickAddress,
  rangesOf,
  serviceIpIndex,
  type ServiceCidrObject,
} from '../../src/kube/cluster-ip.js';
import { MCS_GROUP, MCS_VERSION } from '../../src/kube/constants.js';
import { ImportWriter, type WriterCaches } from '../../src/kube/import-writer.js';
import { ResilientInformer, type KubeObject } from '../../src/kube/informer.js';
import { sliceIndex } from '../../src/kube/kube-adapter.js';
import { KubeMetrics } from '../../src/kube/metrics.js';
import type { ServiceExport, ServiceImport } from '../../src/kube/objects.js';
import { down, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { admin, ensureNamespace, eventually, getImport, nodeKubeConfig } from './kube-helpers.js';

const NS = 'ipw';
/** Services with this label are left out of the writer's cache: a Service it cannot know of yet. */
const HIDDEN = 'test.mcs-gossip.x-k8s.io/hidden';

function serviceImport(name: string): ServiceImportObject {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1beta1',
    kind: 'ServiceImport',
    metadata: { name, namespace: NS },
    spec: {
      type: 'ClusterSetIP',
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      ips: [],
      sessionAffinity: 'None',
      ipFamilies: ['IPv4'],
    },
    status: { clusters: [{ cluster: 'cluster-9' }], conditions: [] },
  };
}

describe('ClusterSetIPs the writer picks, on a real API server', () => {
  let dir: string;
  let harness: Harness;
  let kc: k8s.KubeConfig;
  let caches: WriterCaches & { readonly all: ResilientInformer<KubeObject>[] };
  const planner = new ClusterIpPlanner();
  const registry = new Registry();
  const metrics = new KubeMetrics(registry);
  let stale = 0;
  let writer: ImportWriter;
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

  const picks = async () =>
    Object.fromEntries((await metrics.clusterIpPicks.get()).values.map((v) => [v.labels.result, v.value]));
  const writes = async (resource: string, verb: string) =>
    (await metrics.apiWrites.get()).values.find(
      (v) => v.labels.resource === resource && v.labels.verb === verb && v.labels.result === 'ok',
    )?.value ?? 0;
  const realRanges = async () => {
    const list = await apiClient(kc, k8s.NetworkingV1Api).listServiceCIDR();
    return rangesOf(list.items as ServiceCidrObject[]);
  };
  /** What the writer's cache holds as taken, as the writer sees it. */
  const cachedIps = () => new Set(caches.services.list().flatMap((s) => s.spec?.clusterIPs ?? []));
  const reconcile = (name: string) =>
    writer.reconcile(`${NS}/${name}`, { serviceImport: serviceImport(name), endpointSlices: [] });
  const derivedOf = (name: string) =>
    admin(harness, 'cluster-1').core.readNamespacedService({ namespace: NS, name: derivedServiceName(NS, name) });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-clusterip-'));
    harness = await up({ dir, clusters: 1, onProgress: () => {} });
    kc = await nodeKubeConfig(harness, 'cluster-1', join(dir, 'node.kubeconfig'));
    await ensureNamespace(admin(harness, 'cluster-1').core, NS);
    const core = apiClient(kc, k8s.CoreV1Api);
    const discovery = apiClient(kc, k8s.DiscoveryV1Api);
    const custom = apiClient(kc, k8s.CustomObjectsApi);
    const cache = <T extends KubeObject>(
      resource: string,
      path: string,
      list: () => Promise<k8s.KubernetesListObject<T>>,
      extra: { labelSelector?: string; indexBy?: (o: T) => string | undefined } = {},
    ) => new ResilientInformer<T>({ kubeConfig: kc, resource, path, list, logger: log, onChange: () => {}, ...extra });
    const listMcs =
      <T extends KubeObject>(plural: string) =>
      async () =>
        (await custom.listCustomObjectForAllNamespaces({
          group: MCS_GROUP,
          version: MCS_VERSION,
          resourcePlural: plural,
        })) as k8s.KubernetesListObject<T>;
    const notHidden = `${HIDDEN}!=true`;
    const namespaces = cache('namespaces', '/api/v1/namespaces', () => core.listNamespace());
    const services = cache(
      'services',
      '/api/v1/services',
      () => core.listServiceForAllNamespaces({ labelSelector: notHidden }),
      { labelSelector: notHidden, indexBy: serviceIpIndex },
    );
    const endpointSlices = cache(
      'endpointslices',
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => discovery.listEndpointSliceForAllNamespaces(),
      { indexBy: sliceIndex },
    );
    const serviceExports = cache<ServiceExport>(
      'serviceexports',
      `/apis/${MCS_GROUP}/${MCS_VERSION}/serviceexports`,
      listMcs('serviceexports'),
    );
    const serviceImports = cache<ServiceImport>(
      'serviceimports',
      `/apis/${MCS_GROUP}/${MCS_VERSION}/serviceimports`,
      listMcs('serviceimports'),
    );
    const all = [
      namespaces,
      services,
      endpointSlices,
      serviceExports,
      serviceImports,
    ] as ResilientInformer<KubeObject>[];
    caches = { namespaces, services, endpointSlices, serviceExports, serviceImports, all };
    await Promise.all(all.map((i) => i.start()));
    await eventually('the namespace in the cache', async () => namespaces.get(NS));
    writer = new ImportWriter({
      kubeConfig: kc,
      caches,
      logger: log,
      metrics,
      clusterIps: planner,
      onServiceRangesStale: () => stale++,
    });
  });

  afterAll(async () => {
    for (const i of caches?.all ?? []) await i.stop();
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('reads the service ranges with the node’s RBAC, and creates Service and ServiceImport at once with its pick', async () => {
    const ranges = await realRanges();
    expect(ranges.get('IPv4')).toBeDefined();
    planner.setRanges(ranges);
    const want = pickAddress(ranges.get('IPv4')!, `${NS}/a`, (ip) => cachedIps().has(ip));
    await reconcile('a');
    const svc = await derivedOf('a');
    expect(svc.spec?.clusterIPs).toEqual([want]);
    // Created with the ip: one create of each, no ServiceImport update after it.
    expect((await getImport(admin(harness, 'cluster-1'), NS, 'a'))?.spec.ips).toEqual([want]);
    expect(await writes('services', 'create')).toBe(1);
    expect(await writes('serviceimports', 'create')).toBe(1);
    expect(await writes('serviceimports', 'update')).toBe(0);
    expect(await picks()).toEqual({ planned: 1 });
  });

  it('an ip taken meanwhile: the API server refuses it and picks one, and the ServiceImport says which', async () => {
    const range = (await realRanges()).get('IPv4')!;
    const squatted = pickAddress(range, `${NS}/b`, (ip) => cachedIps().has(ip))!;
    // A Service the writer's cache cannot see holds the address the writer will pick.
    await admin(harness, 'cluster-1').core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'squatter', labels: { [HIDDEN]: 'true' } },
        spec: { clusterIP: squatted, ports: [{ port: 80 }] },
      },
    });
    await reconcile('b');
    const svc = await derivedOf('b');
    const ips = svc.spec?.clusterIPs ?? [];
    expect(ips).toHaveLength(1);
    expect(ips[0]).not.toBe(squatted);
    expect((await getImport(admin(harness, 'cluster-1'), NS, 'b'))?.spec.ips).toEqual(ips);
    expect(await picks()).toEqual({ planned: 1, refused: 1 });
    expect(stale).toBe(0); // taken, not out of range: the ranges are still right
  });

  it('a pick outside the service ranges (they changed): refused, the API server picks, the ranges are read again', async () => {
    planner.setRanges(rangesOf([{ metadata: { name: 'kubernetes' }, spec: { cidrs: ['192.168.250.0/24'] } }]));
    await reconcile('c');
    const ips = (await derivedOf('c')).spec?.clusterIPs ?? [];
    expect(ips).toHaveLength(1);
    expect(ips[0]!.startsWith('192.168.250.')).toBe(false);
    expect((await getImport(admin(harness, 'cluster-1'), NS, 'c'))?.spec.ips).toEqual(ips);
    expect(await picks()).toEqual({ planned: 1, refused: 2 });
    expect(stale).toBe(1);
  });

  it('without service ranges, the API server picks, and the ServiceImport is still created with its ips', async () => {
    planner.setRanges(new Map());
    const updatesBefore = await writes('serviceimports', 'update');
    await reconcile('d');
    const ips = (await derivedOf('d')).spec?.clusterIPs ?? [];
    expect(ips).toHaveLength(1);
    expect((await getImport(admin(harness, 'cluster-1'), NS, 'd'))?.spec.ips).toEqual(ips);
    expect(await writes('serviceimports', 'update')).toBe(updatesBefore);
    expect(await picks()).toEqual({ planned: 1, refused: 2, api: 1 });
  });

  it('an existing ServiceImport whose Service was deleted by hand: the Service first, with no pick', async () => {
    planner.setRanges(await realRanges());
    const before = await picks();
    await admin(harness, 'cluster-1').core.deleteNamespacedService({
      namespace: NS,
      name: derivedServiceName(NS, 'a'),
    });
    await eventually('the deleted Service out of the cache', async () =>
      caches.services.get(derivedServiceName(NS, 'a'), NS) === undefined ? true : undefined,
    );
    await reconcile('a');
    const ips = (await derivedOf('a')).spec?.clusterIPs ?? [];
    expect(ips).toHaveLength(1);
    expect((await getImport(admin(harness, 'cluster-1'), NS, 'a'))?.spec.ips).toEqual(ips);
    expect(await picks()).toEqual({ ...before, api: (before.api ?? 0) + 1 });
  });
});
