// Shared helpers of the Kubernetes adapter and node integration tests: a least-privilege ServiceAccount identity
// per cluster (so the audit log tells our writes apart), workloads, pollers and audit-log counting.
import { readFile } from 'node:fs/promises';
import * as k8s from '@kubernetes/client-node';
import { ignoreAlreadyExists } from '../harness/api-errors.js';
import { kubeConfigFor, type ClusterSetState } from '../harness/clusterset.js';
import { writeNodeKubeConfig } from '../harness/node-identity.js';

export { SA_NAME, SA_USER, SYSTEM_NAMESPACE } from '../harness/node-identity.js';
export { eventually, sleep } from '../harness/wait.js';
import { eventually } from '../harness/wait.js';

export const MCS = { group: 'multicluster.x-k8s.io', version: 'v1beta1' } as const;
export const ABOUT = { group: 'about.k8s.io', version: 'v1beta1', plural: 'clusterproperties' } as const;

export function admin(state: ClusterSetState, cluster: string) {
  const kc = kubeConfigFor(state, cluster);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
    admission: kc.makeApiClient(k8s.AdmissionregistrationV1Api),
    networking: kc.makeApiClient(k8s.NetworkingV1Api),
  };
}

/** The node's least-privilege kubeconfig for `cluster`, written to `file` (see e2e/harness/node-identity.ts). */
export function nodeKubeConfig(state: ClusterSetState, cluster: string, file: string): Promise<k8s.KubeConfig> {
  return writeNodeKubeConfig(kubeConfigFor(state, cluster), cluster, file);
}

export interface AuditEntry {
  readonly user: string;
  readonly verb: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly code?: number;
  readonly time: string;
}

/** Writes recorded in an API server's audit log (ResponseComplete stage), optionally by one user since a time. */
export async function auditWrites(file: string, user?: string, sinceMs = 0): Promise<AuditEntry[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out: AuditEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as {
      stage?: string;
      verb: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
      responseStatus?: { code?: number };
      stageTimestamp?: string;
      requestReceivedTimestamp?: string;
    };
    if (e.stage !== undefined && e.stage !== 'ResponseComplete') continue;
    const username = e.user?.username ?? '';
    if (user !== undefined && username !== user) continue;
    const time = e.requestReceivedTimestamp ?? e.stageTimestamp ?? '';
    if (Date.parse(time) < sinceMs) continue;
    out.push({
      user: username,
      verb: e.verb,
      resource: e.objectRef?.resource ?? '',
      subresource: e.objectRef?.subresource,
      namespace: e.objectRef?.namespace,
      name: e.objectRef?.name,
      code: e.responseStatus?.code,
      time,
    });
  }
  return out;
}

/** Creates a namespace (if absent) and waits for its default ServiceAccount, without which no pod is admitted. */
export async function ensureNamespace(core: k8s.CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } }).catch(ignoreAlreadyExists);
  await eventually(`the default ServiceAccount in ${name}`, () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true),
  );
}

/** A Deployment of `replicas` kwok pods and its Service `name` (port 80 → 8080, named http). */
export async function deployWeb(
  a: ReturnType<typeof admin>,
  namespace: string,
  name: string,
  replicas: number,
  ports: k8s.V1ServicePort[] = [{ name: 'http', port: 80, targetPort: 8080 }],
): Promise<void> {
  const labels = { app: name };
  await a.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name, image: 'example.invalid/web:1', ports: [{ containerPort: 8080 }] }] },
        },
      },
    },
  });
  await a.core.createNamespacedService({ namespace, body: { metadata: { name }, spec: { selector: labels, ports } } });
}

export async function exportService(a: ReturnType<typeof admin>, namespace: string, name: string): Promise<void> {
  await a.custom.createNamespacedCustomObject({
    ...MCS,
    plural: 'serviceexports',
    namespace,
    body: { apiVersion: `${MCS.group}/${MCS.version}`, kind: 'ServiceExport', metadata: { name } },
  });
}

export async function unexportService(a: ReturnType<typeof admin>, namespace: string, name: string): Promise<void> {
  await a.custom.deleteNamespacedCustomObject({ ...MCS, plural: 'serviceexports', namespace, name });
}

export interface SiView {
  metadata: { name: string; namespace: string; uid: string };
  spec: {
    type: string;
    ips?: string[];
    ports: { name?: string; protocol: string; port: number }[];
    ipFamilies?: string[];
  };
  status?: {
    clusters?: { cluster: string }[];
    conditions?: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[];
  };
}

export async function getImport(
  a: ReturnType<typeof admin>,
  namespace: string,
  name: string,
): Promise<SiView | undefined> {
  try {
    return (await a.custom.getNamespacedCustomObject({ ...MCS, plural: 'serviceimports', namespace, name })) as SiView;
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 404) return undefined;
    throw err;
  }
}

export interface SeView {
  metadata: { name: string };
  status?: {
    conditions?: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[];
  };
}

export async function getExport(a: ReturnType<typeof admin>, namespace: string, name: string): Promise<SeView> {
  return (await a.custom.getNamespacedCustomObject({ ...MCS, plural: 'serviceexports', namespace, name })) as SeView;
}

export function condition(se: SeView, type: string) {
  return se.status?.conditions?.find((c) => c.type === type);
}

/** Imported slices of `name` in `namespace` (label multicluster.kubernetes.io/service-name). */
export async function importedSlices(a: ReturnType<typeof admin>, namespace: string, name: string) {
  const list = await a.discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `multicluster.kubernetes.io/service-name=${name}`,
  });
  return list.items;
}

export function readyAddresses(slices: readonly k8s.V1EndpointSlice[]): string[] {
  return slices
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false)
    .flatMap((e) => e.addresses)
    .sort();
}
