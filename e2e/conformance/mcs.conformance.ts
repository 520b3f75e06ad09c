// MCS API conformance specs, written by us from the behaviour the public suite (sigs.k8s.io/mcs-api/conformance)
// checks — that Go module cannot be fetched on these machines (docs/conformance.md says why). Each spec names its
// labels like the upstream suite ([Required], [EndpointSlice], …). They talk only to the API servers of two
// clusters: MCS_CONFORMANCE_KUBECONFIG with MCS_CONFORMANCE_CONTEXTS=exporter,other (first context exports).
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../harness/wait.js';

const kubeconfig = process.env.MCS_CONFORMANCE_KUBECONFIG ?? '';
const contexts = (process.env.MCS_CONFORMANCE_CONTEXTS ?? '').split(',').filter((c) => c !== '');
const IMPORT_TIMEOUT = 20_000;
const SLICE_TIMEOUT = 60_000;
const GROUP = 'multicluster.x-k8s.io';
const VERSION = 'v1beta1';

interface Client {
  readonly name: string;
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly discovery: k8s.DiscoveryV1Api;
  readonly custom: k8s.CustomObjectsApi;
}

function client(context: string): Client {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  kc.setCurrentContext(context);
  return {
    name: context,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
  };
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface ServiceImport {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    type: string;
    ips?: string[];
    ports: { name?: string; protocol?: string; appProtocol?: string; port: number }[];
    sessionAffinity?: string;
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    ipFamilies?: string[];
    internalTrafficPolicy?: string;
    trafficDistribution?: string;
  };
}

/** Holds for `ms` (e.g. "never appears"): fails as soon as `bad` returns a reason. */
async function consistently(ms: number, bad: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const why = await bad();
    if (why !== undefined) throw new Error(why);
    await sleep(250);
  }
}

const notFound = (err: unknown) => err instanceof k8s.ApiException && err.code === 404;

async function getImport(c: Client, namespace: string, name: string): Promise<ServiceImport | undefined> {
  try {
    return (await c.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'serviceimports',
      name,
    })) as ServiceImport;
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

async function exportConditions(c: Client, namespace: string, name: string): Promise<Condition[]> {
  const se = (await c.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'serviceexports',
    name,
  })) as { status?: { conditions?: Condition[] } };
  return se.status?.conditions ?? [];
}

const conditionOf = (conds: Condition[], type: string) => conds.find((c) => c.type === type);

/** Waits until the ServiceExport `ns/name` in `c` has condition `type` with `status`, and returns it. */
const conditionIn = (c: Client, ns: string, name: string, type: string, status: string) =>
  eventually(
    `${type}=${status} on ${c.name}/${ns}/${name}`,
    async () => {
      const cond = conditionOf(await exportConditions(c, ns, name), type);
      return cond?.status === status ? cond : undefined;
    },
    IMPORT_TIMEOUT,
  );

let counter = 0;

/** One test's namespace in every cluster, a Deployment + Service in the exporting cluster. */
async function setup(clients: Client[], service: k8s.V1ServiceSpec, extra?: (ns: string) => Promise<void>) {
  const namespace = `mcs-conformance-${process.pid}-${++counter}`;
  for (const c of clients) {
    await c.core.createNamespace({ body: { metadata: { name: namespace } } });
    await eventually(
      `default ServiceAccount in ${c.name}/${namespace}`,
      () => c.core.readNamespacedServiceAccount({ namespace, name: 'default' }).then(() => true),
      30_000,
    );
  }
  const exporter = clients[0] as Client;
  const labels = { app: 'hello' };
  await exporter.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'hello' },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: 'hello', image: 'registry.invalid/hello:1', ports: [{ containerPort: 8080 }] }],
          },
        },
      },
    },
  });
  await exporter.core.createNamespacedService({
    namespace,
    body: { metadata: { name: 'hello' }, spec: { selector: labels, ...service } },
  });
  await extra?.(namespace);
  return namespace;
}

async function exportService(
  c: Client,
  namespace: string,
  name = 'hello',
  spec: Record<string, unknown> = {},
  metadata: Record<string, unknown> = {},
) {
  await c.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'serviceexports',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ServiceExport', metadata: { name, ...metadata }, spec },
  });
}

async function unexport(c: Client, namespace: string, name = 'hello') {
  await c.custom.deleteNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'serviceexports',
    name,
  });
}

const importIn = (c: Client, ns: string, pred: (si: ServiceImport) => boolean = () => true) =>
  eventually(
    `ServiceImport ${ns}/hello in ${c.name}`,
    async () => {
      const si = await getImport(c, ns, 'hello');
      return si !== undefined && pred(si) ? si : undefined;
    },
    IMPORT_TIMEOUT,
  );

const HTTP = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' } as const;

describe.skipIf(kubeconfig === '' || contexts.length < 2)('MCS conformance', () => {
  const clients: Client[] = [];
  let exporter: Client;
  let other: Client;
  const namespaces: string[] = [];

  beforeAll(() => {
    for (const ctx of contexts) clients.push(client(ctx));
    exporter = clients[0] as Client;
    other = clients[1] as Client;
  });

  afterAll(async () => {
    for (const c of clients) {
      for (const ns of namespaces) await c.core.deleteNamespace({ name: ns }).catch(() => undefined);
    }
  });

  const newNs = async (spec: k8s.V1ServiceSpec) => {
    const ns = await setup(clients, spec);
    namespaces.push(ns);
    return ns;
  };

  describe('ServiceImport', () => {
    it('[Required] is created in every cluster while any cluster exports the service, and removed after the last', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      for (const c of clients) await importIn(c, ns);
      await unexport(exporter, ns);
      for (const c of clients) {
        await eventually(
          `ServiceImport gone from ${c.name}`,
          async () => ((await getImport(c, ns, 'hello')) === undefined ? true : undefined),
          IMPORT_TIMEOUT,
        );
      }
    });

    it('[Required] carries only the exported labels and annotations', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(
        exporter,
        ns,
        'hello',
        { exportedLabels: { 'example.com/tier': 'web' }, exportedAnnotations: { 'example.com/owner': 'team-a' } },
        { labels: { 'not-exported': 'x' }, annotations: { 'not-exported': 'y' } },
      );
      for (const c of clients) {
        const si = await importIn(c, ns, (s) => s.metadata.labels?.['example.com/tier'] === 'web');
        expect(si.metadata.annotations?.['example.com/owner']).toBe('team-a');
        expect(si.metadata.labels?.['not-exported']).toBeUndefined();
        expect(si.metadata.annotations?.['not-exported']).toBeUndefined();
      }
    });

    it('[Required] [ClusterIP] exports a ClusterIP Service as ClusterSetIP with Valid=True', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      for (const c of clients) {
        const si = await importIn(c, ns);
        expect(si.spec.type).toBe('ClusterSetIP');
      }
      const valid = await conditionIn(exporter, ns, 'hello', 'Valid', 'True');
      expect(valid.reason).toBe('Valid');
    });

    it('[Required] [ClusterIP] copies sessionAffinity and sessionAffinityConfig from the Service', async () => {
      const ns = await newNs({
        ports: [HTTP],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } },
      });
      await exportService(exporter, ns);
      for (const c of clients) {
        const si = await importIn(c, ns);
        expect(si.spec.sessionAffinity).toBe('ClientIP');
        expect(si.spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 300 } });
      }
    });

    it('[Required] [ClusterIP] copies internalTrafficPolicy and trafficDistribution from the defaulted Service', async () => {
      const ns = await newNs({ ports: [HTTP], internalTrafficPolicy: 'Local', trafficDistribution: 'PreferClose' });
      await exportService(exporter, ns);
      const svc = await exporter.core.readNamespacedService({ namespace: ns, name: 'hello' });
      for (const c of clients) {
        const si = await importIn(c, ns);
        expect(si.spec.internalTrafficPolicy).toBe(svc.spec?.internalTrafficPolicy);
        expect(si.spec.trafficDistribution).toBe(svc.spec?.trafficDistribution);
      }
    });

    it('[Required] [ClusterIP] has as many ips as ipFamilies, in order', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      for (const c of clients) {
        const si = await importIn(c, ns, (s) => (s.spec.ips?.length ?? 0) > 0);
        expect(si.spec.ipFamilies?.length).toBe(si.spec.ips?.length);
        si.spec.ips?.forEach((ip, i) => expect(ip.includes(':') ? 'IPv6' : 'IPv4').toBe(si.spec.ipFamilies?.[i]));
      }
    });

    it('[Required] has the ports of the Service, sorted by name, appProtocol included', async () => {
      const ns = await newNs({
        ports: [
          { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP', appProtocol: 'https' },
          { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
          { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
        ],
      });
      await exportService(exporter, ns);
      for (const c of clients) {
        const si = await importIn(c, ns);
        const ports = [...si.spec.ports].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
        expect(ports).toEqual([
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'http', port: 80, protocol: 'TCP' },
          { name: 'https', port: 443, protocol: 'TCP', appProtocol: 'https' },
        ]);
      }
    });

    it('[Required] unions ports when a second cluster exports an extra SCTP port, with Conflict on both exports', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await importIn(other, ns);
      await other.core.createNamespacedService({
        namespace: ns,
        body: {
          metadata: { name: 'hello' },
          spec: { ports: [HTTP, { name: 'sctp', port: 9000, protocol: 'SCTP', targetPort: 9000 }] },
        },
      });
      await exportService(other, ns);
      for (const c of clients) {
        const si = await importIn(c, ns, (s) => s.spec.ports.length === 2);
        expect(si.spec.ports.map((p) => `${p.name}/${p.protocol}/${p.port}`).sort()).toEqual([
          'http/TCP/80',
          'sctp/SCTP/9000',
        ]);
      }
      for (const c of clients) {
        const conflict = await conditionIn(c, ns, 'hello', 'Conflict', 'True');
        expect(conflict.reason).toContain('PortConflict');
      }
    });

    it("[Required] keeps the oldest export's port when a second cluster reuses the name with another number", async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await importIn(other, ns);
      await other.core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: 'hello' }, spec: { ports: [{ ...HTTP, port: 8081 }] } },
      });
      await exportService(other, ns);
      for (const c of clients) {
        const cond = await conditionIn(c, ns, 'hello', 'Conflict', 'True');
        expect(cond.reason).toContain('PortConflict');
      }
      for (const c of clients) {
        const si = await importIn(c, ns);
        expect(si.spec.ports.map((p) => `${p.name}/${p.port}`)).toEqual(['http/80']);
      }
    });

    it('[Required] [Headless] exports a headless Service as Headless with no ips', async () => {
      const ns = await newNs({ ports: [HTTP], clusterIP: 'None' });
      await exportService(exporter, ns);
      for (const c of clients) {
        const si = await importIn(c, ns);
        expect(si.spec.type).toBe('Headless');
        expect(si.spec.ips ?? []).toEqual([]);
        expect(si.spec.ipFamilies?.length).toBeGreaterThan(0);
      }
    });

    it('[Required] [ExternalName] marks an ExternalName export Valid=False and imports nothing', async () => {
      const ns = `mcs-conformance-${process.pid}-${++counter}`;
      namespaces.push(ns);
      for (const c of clients) await c.core.createNamespace({ body: { metadata: { name: ns } } });
      await exporter.core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: 'hello' }, spec: { type: 'ExternalName', externalName: 'example.com' } },
      });
      await exportService(exporter, ns);
      const valid = await conditionIn(exporter, ns, 'hello', 'Valid', 'False');
      expect(valid.reason).toBe('InvalidServiceType');
      await consistently(5_000, async () =>
        (await Promise.all(clients.map((c) => getImport(c, ns, 'hello')))).some((s) => s !== undefined)
          ? 'a ServiceImport appeared for an ExternalName export'
          : undefined,
      );
    });

    it('[Required] resolves ClusterIP vs headless to ClusterSetIP (oldest), with Conflict on both exports', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await importIn(other, ns);
      await other.core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: 'hello' }, spec: { clusterIP: 'None', ports: [HTTP] } },
      });
      await exportService(other, ns);
      for (const c of clients) {
        const cond = await conditionIn(c, ns, 'hello', 'Conflict', 'True');
        expect(cond.reason).toContain('TypeConflict');
        expect((await importIn(c, ns)).spec.type).toBe('ClusterSetIP');
      }
    });

    it('[Required] marks a ServiceExport without a Service Valid=False NoService', async () => {
      const ns = `mcs-conformance-${process.pid}-${++counter}`;
      namespaces.push(ns);
      for (const c of clients) await c.core.createNamespace({ body: { metadata: { name: ns } } });
      await exportService(exporter, ns, 'missing');
      const valid = await conditionIn(exporter, ns, 'missing', 'Valid', 'False');
      expect(valid.reason).toBe('NoService');
    });
  });

  describe('EndpointSlice', () => {
    it("[Required] [EndpointSlice] imports a slice of the exporter's endpoints into every cluster with the MCS labels", async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      for (const c of clients) {
        const slice = await eventually(
          `imported EndpointSlice in ${c.name}`,
          async () => {
            const list = await c.discovery.listNamespacedEndpointSlice({
              namespace: ns,
              labelSelector: `multicluster.kubernetes.io/service-name=hello,multicluster.kubernetes.io/source-cluster`,
            });
            const s = list.items.find((x) => (x.endpoints ?? []).length === 2);
            return s;
          },
          SLICE_TIMEOUT,
        );
        const labels = slice.metadata?.labels ?? {};
        expect(labels['multicluster.kubernetes.io/source-cluster']).toBeTruthy();
        expect(labels['endpointslice.kubernetes.io/managed-by']).not.toBe('endpointslice-controller.k8s.io');
        expect(slice.addressType).toBe('IPv4');
      }
    });
  });
});
