// MCS API conformance specs, written by us from the behaviour the public suite (sigs.k8s.io/mcs-api/conformance)
// checks — that Go module cannot be fetched on these machines (docs/conformance.md says why). Each spec names its
// labels like the upstream suite ([Required], [EndpointSlice], …). They talk only to the API servers of two
// clusters: MCS_CONFORMANCE_KUBECONFIG with MCS_CONFORMANCE_CONTEXTS=exporter,other (first context exports).
//
// The [DNS] and [Connectivity] specs run commands in client Pods (`pods/exec`): `dig` and bash's /dev/tcp, against
// servers that answer each TCP connection with their Pod's name (socat). On the local ClusterSet these Pods run in
// its data plane (e2e/harness/pod-sandbox.ts); on clusters of your own, the images below must have those programs.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_IMAGE as DEFAULT_CLIENT_IMAGE,
  SERVER_IMAGE as DEFAULT_SERVER_IMAGE,
  clientPod,
  serverDeployment,
  serverStatefulSet,
  type PodShell,
} from '../harness/pod-client.js';
import { eventually, sleep } from '../harness/wait.js';

const kubeconfig = process.env.MCS_CONFORMANCE_KUBECONFIG ?? '';
const contexts = (process.env.MCS_CONFORMANCE_CONTEXTS ?? '').split(',').filter((c) => c !== '');
const IMPORT_TIMEOUT = 20_000;
const SLICE_TIMEOUT = 60_000;
const GROUP = 'multicluster.x-k8s.io';
const VERSION = 'v1beta1';
/** The servers' image: runs `socat` (and `sh`, for its SYSTEM address). */
const SERVER_IMAGE = process.env.MCS_CONFORMANCE_SERVER_IMAGE ?? DEFAULT_SERVER_IMAGE;
/** The clients' image: has `bash`, `timeout` and `dig`. */
const CLIENT_IMAGE = process.env.MCS_CONFORMANCE_CLIENT_IMAGE ?? DEFAULT_CLIENT_IMAGE;
const POD_TIMEOUT = 60_000;
const DNS_TIMEOUT = 30_000;

interface Client {
  readonly name: string;
  readonly kc: k8s.KubeConfig;
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
    kc,
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

/** A new namespace in every cluster, once its default ServiceAccount exists. */
async function namespaceEverywhere(clients: Client[]): Promise<string> {
  const namespace = `mcs-conformance-${process.pid}-${++counter}`;
  for (const c of clients) {
    await c.core.createNamespace({ body: { metadata: { name: namespace } } });
    await eventually(
      `default ServiceAccount in ${c.name}/${namespace}`,
      () => c.core.readNamespacedServiceAccount({ namespace, name: 'default' }).then(() => true),
      30_000,
    );
  }
  return namespace;
}

/** One test's namespace in every cluster, a Deployment + Service in the exporting cluster. */
async function setup(clients: Client[], service: k8s.V1ServiceSpec, extra?: (ns: string) => Promise<void>) {
  const namespace = await namespaceEverywhere(clients);
  const exporter = clients[0] as Client;
  const labels = { app: 'hello' };
  await exporter.apps.createNamespacedDeployment({
    namespace,
    body: serverDeployment('hello', SERVER_IMAGE, 'exporter'),
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

const shells = new Map<string, PodShell>();

/** The client Pod of `ns` in `c` (made by clientPodIn). */
function shell(c: Client, ns: string): PodShell {
  const sh = shells.get(`${c.name}/${ns}`);
  if (sh === undefined) throw new Error(`no client Pod in ${c.name}/${ns}`);
  return sh;
}

async function clientPodIn(c: Client, ns: string): Promise<void> {
  shells.set(`${c.name}/${ns}`, await clientPod(c.kc, c.name, ns, CLIENT_IMAGE, POD_TIMEOUT));
}

const dig = (c: Client, ns: string, name: string, type: 'A' | 'SRV') => shell(c, ns).dig(name, type);
const connect = (c: Client, ns: string, host: string, port: number) => shell(c, ns).connect(host, port);
const answers = (c: Client, ns: string, host: string, port: number, n: number) => shell(c, ns).answers(host, port, n);

/** The ready Pod IPs of the hello servers in `c`. */
async function serverIps(c: Client, namespace: string): Promise<string[]> {
  const pods = await c.core.listNamespacedPod({ namespace, labelSelector: 'app=hello' });
  return pods.items
    .filter((p) => p.status?.phase === 'Running' && p.status.podIP !== undefined)
    .map((p) => p.status?.podIP as string)
    .sort();
}

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

  /** hello Deployment + Service in `c` too (servers that say `cluster`), optionally exported. */
  const serveIn = async (c: Client, ns: string, spec: k8s.V1ServiceSpec, cluster: string) => {
    const labels = { app: 'hello' };
    await c.apps.createNamespacedDeployment({ namespace: ns, body: serverDeployment('hello', SERVER_IMAGE, cluster) });
    await c.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'hello' }, spec: { selector: labels, ...spec } },
    });
  };

  const fqdn = (ns: string) => `hello.${ns}.svc.clusterset.local`;
  const clientsIn = (ns: string) => Promise.all(clients.map((c) => clientPodIn(c, ns)));

  /** Waits until `dig` in `c` answers `want` (sorted lines). */
  const digUntil = (c: Client, ns: string, name: string, type: 'A' | 'SRV', want: (lines: string[]) => boolean) =>
    eventually(
      `${type} ${name} from a Pod in ${c.name}`,
      async () => {
        const lines = await dig(c, ns, name, type);
        return want(lines) ? lines : undefined;
      },
      DNS_TIMEOUT,
    );

  /** The exporter's cluster id, as its imported slices name it. */
  const sourceCluster = async (c: Client, ns: string) =>
    eventually(
      `the exporter's cluster id on a slice in ${c.name}`,
      async () => {
        const list = await c.discovery.listNamespacedEndpointSlice({
          namespace: ns,
          labelSelector: 'multicluster.kubernetes.io/service-name=hello,multicluster.kubernetes.io/source-cluster',
        });
        return list.items[0]?.metadata?.labels?.['multicluster.kubernetes.io/source-cluster'];
      },
      SLICE_TIMEOUT,
    );

  /** A namespace with a headless Service and a StatefulSet of 2 servers (hostnames hello-0, hello-1), exported. */
  const statefulNs = async () => {
    const ns = await namespaceEverywhere(clients);
    namespaces.push(ns);
    const labels = { app: 'hello' };
    await exporter.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'hello' }, spec: { clusterIP: 'None', selector: labels, ports: [HTTP] } },
    });
    await exporter.apps.createNamespacedStatefulSet({
      namespace: ns,
      body: serverStatefulSet('hello', SERVER_IMAGE, 'exporter'),
    });
    await exportService(exporter, ns);
    await clientsIn(ns);
    const cid = await sourceCluster(other, ns);
    return { ns, cid };
  };

  describe('DNS', () => {
    it('[DNS] [ClusterIP] resolves <svc>.<ns>.svc.clusterset.local from a Pod to the ServiceImport ip in every cluster', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await clientsIn(ns);
      for (const c of clients) {
        const si = await importIn(c, ns, (x) => (x.spec.ips?.length ?? 0) > 0);
        const want = [...(si.spec.ips ?? [])].sort();
        await digUntil(c, ns, fqdn(ns), 'A', (l) => l.join() === want.join());
      }
    });

    it('[DNS] [ClusterIP] serves an SRV record for each named port of the import', async () => {
      const ns = await newNs({ ports: [HTTP, { name: 'extra', port: 9000, targetPort: 9000, protocol: 'TCP' }] });
      await exportService(exporter, ns);
      await clientsIn(ns);
      for (const c of clients) {
        await importIn(c, ns, (x) => x.spec.ports.length === 2);
        for (const [port, number] of [
          ['http', 80],
          ['extra', 9000],
        ] as const) {
          const lines = await digUntil(c, ns, `_${port}._tcp.${fqdn(ns)}`, 'SRV', (l) => l.length > 0);
          expect(lines).toHaveLength(1);
          expect(lines[0]?.split(' ').slice(2)).toEqual([String(number), `${fqdn(ns)}.`]);
        }
      }
    });

    it('[DNS] [ClusterIP] has no answer for the name once the service is unexported', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await clientsIn(ns);
      for (const c of clients) await digUntil(c, ns, fqdn(ns), 'A', (l) => l.length === 1);
      await unexport(exporter, ns);
      for (const c of clients) await digUntil(c, ns, fqdn(ns), 'A', (l) => l.length === 0);
    });

    it('[DNS] [Headless] resolves a headless import to the ready endpoints of the exporting cluster', async () => {
      const ns = await newNs({ ports: [HTTP], clusterIP: 'None' });
      await exportService(exporter, ns);
      await clientsIn(ns);
      const want = await eventually(
        'two Running servers with IPs',
        async () => {
          const ips = await serverIps(exporter, ns);
          return ips.length === 2 ? ips : undefined;
        },
        POD_TIMEOUT,
      );
      for (const c of clients) await digUntil(c, ns, fqdn(ns), 'A', (l) => l.join() === want.join());
    });

    it('[DNS] [Headless] names each endpoint <hostname>.<clusterid>.<svc>.<ns>.svc.clusterset.local, and not <clusterid> alone', async () => {
      const { ns, cid } = await statefulNs();
      const pods = await eventually(
        'the StatefulSet Pods with IPs',
        async () => {
          const list = await exporter.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=hello' });
          const running = list.items.filter((p) => p.status?.podIP !== undefined && p.status.phase === 'Running');
          return running.length === 2 ? running : undefined;
        },
        POD_TIMEOUT,
      );
      for (const c of clients) {
        for (const p of pods) {
          const name = `${p.metadata?.name}.${cid}.${fqdn(ns)}`;
          await digUntil(c, ns, name, 'A', (l) => l.join() === p.status?.podIP);
        }
        expect(await dig(c, ns, `${cid}.${fqdn(ns)}`, 'A')).toEqual([]);
      }
    });

    it('[DNS] [Headless] serves an SRV record per endpoint for a named port, targeting its per-endpoint name', async () => {
      const { ns, cid } = await statefulNs();
      // A headless name has no service port of its own: each record gives its endpoint's port (the targetPort).
      const want = ['hello-0', 'hello-1'].map((h) => `8080 ${h}.${cid}.${fqdn(ns)}.`);
      for (const c of clients) {
        const lines = await digUntil(c, ns, `_http._tcp.${fqdn(ns)}`, 'SRV', (l) => l.length === 2);
        expect(lines.map((l) => l.split(' ').slice(2).join(' ')).sort()).toEqual(want);
      }
    });
  });

  describe('Connectivity', () => {
    /** The exporting Pods' answers, once both servers of the Deployment exist. */
    const exporterPods = (ns: string) =>
      eventually(
        `both hello Pods in ${exporter.name}/${ns}`,
        async () => {
          const pods = (await exporter.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=hello' })).items;
          return pods.length === 2 ? new Set(pods.map((p) => `${p.metadata?.name} exporter`)) : undefined;
        },
        POD_TIMEOUT,
      );

    it('[Connectivity] [ClusterIP] a Pod in every cluster reaches the service through its ClusterSetIP, answered only by exporting Pods', async () => {
      const ns = await newNs({ ports: [HTTP] });
      // The other cluster runs a Service of the same name that it does not export: it must never answer.
      await serveIn(other, ns, { ports: [HTTP] }, 'other');
      await exportService(exporter, ns);
      await clientsIn(ns);
      const allowed = await exporterPods(ns);
      for (const c of clients) {
        const si = await importIn(c, ns, (x) => (x.spec.ips?.length ?? 0) > 0);
        const ip = si.spec.ips?.[0] as string;
        // Until every exporting Pod has answered (connections fail while servers start), then a sample of 8.
        const seen = new Set<string>();
        await eventually(
          `answers from every exporting Pod through ${ip} in ${c.name}`,
          async () => {
            const a = await connect(c, ns, ip, 80);
            if (a !== undefined) seen.add(a);
            return [...allowed].every((x) => seen.has(x)) ? true : undefined;
          },
          DNS_TIMEOUT,
        );
        for (const a of await answers(c, ns, ip, 80, 8)) seen.add(a);
        for (const a of seen) expect(allowed, `answer "${a}" from ${c.name}`).toContain(a);
      }
    });

    it('[Connectivity] [ClusterIP] a Pod in every cluster reaches the service by <svc>.<ns>.svc.clusterset.local', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await clientsIn(ns);
      const allowed = await exporterPods(ns);
      for (const c of clients) {
        const a = await eventually(
          `an answer from ${fqdn(ns)} in ${c.name}`,
          () => connect(c, ns, fqdn(ns), 80),
          DNS_TIMEOUT,
        );
        expect(allowed).toContain(a);
      }
    });

    it('[Connectivity] [ClusterIP] spreads connections over the Pods of every exporting cluster', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await serveIn(other, ns, { ports: [HTTP] }, 'other');
      await exportService(exporter, ns);
      await exportService(other, ns);
      await clientsIn(ns);
      for (const c of clients) {
        const clustersSeen = new Set<string>();
        await eventually(
          `answers from both clusters through ${fqdn(ns)} in ${c.name}`,
          async () => {
            const a = await connect(c, ns, fqdn(ns), 80);
            if (a !== undefined) clustersSeen.add(a.split(' ')[1] ?? '');
            return clustersSeen.has('exporter') && clustersSeen.has('other') ? true : undefined;
          },
          DNS_TIMEOUT,
        );
      }
    });

    it('[Connectivity] [ClusterIP] no longer reaches the service after it is unexported', async () => {
      const ns = await newNs({ ports: [HTTP] });
      await exportService(exporter, ns);
      await clientsIn(ns);
      const ips = new Map<string, string>();
      for (const c of clients) {
        const si = await importIn(c, ns, (x) => (x.spec.ips?.length ?? 0) > 0);
        const ip = si.spec.ips?.[0] as string;
        ips.set(c.name, ip);
        await eventually(`an answer through ${ip} in ${c.name}`, () => connect(c, ns, ip, 80), DNS_TIMEOUT);
      }
      await unexport(exporter, ns);
      for (const c of clients) {
        const ip = ips.get(c.name) as string;
        await eventually(
          `no answer through ${ip} in ${c.name}`,
          async () => ((await connect(c, ns, ip, 80)) === undefined ? true : undefined),
          DNS_TIMEOUT,
        );
        await digUntil(c, ns, fqdn(ns), 'A', (l) => l.length === 0);
      }
    });
  });
});
