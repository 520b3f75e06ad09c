/**
 * Reads one context through its API server: the identity ClusterProperties, the node pods and each one's `/status`
 * through the pod proxy (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/status`), ServiceExports, ServiceImports and
 * namespaces. Nothing here writes.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import {
  ABOUT_GROUP,
  ABOUT_VERSION,
  CLUSTER_ID_PROPERTY,
  CLUSTERSET_PROPERTY,
  MCS_GROUP,
  MCS_VERSION,
} from '../../kube/constants.js';
import { describeError } from '../../kube/errors.js';
import type { DiagnoseContext } from './checks.js';
import type { ContextTarget } from './flags.js';
import type { Condition, ContextReport, ExportView, ImportView, NodeProbe, NodeStatusView } from './model.js';

/** The label the Helm chart puts on the node pods. */
export const NODE_POD_SELECTOR = 'app.kubernetes.io/name=mcs-gossip';
/** The container port the node's HTTP endpoint (/metrics, /readyz, /status) is named by. */
export const METRICS_PORT_NAME = 'metrics';
const REQUEST_TIMEOUT_MS = 8000;

/** GET `path` of the context's API server with its credentials; resolves with the code and body, any code. */
export async function apiGet(
  kc: k8s.KubeConfig,
  path: string,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<{ code: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('no cluster in the context');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  const opts: RequestOptions = { method: 'GET', headers: { accept: 'application/json, */*' } };
  await kc.applyToHTTPSOptions(opts);
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The first line of an API server's error body: its Status message, else the text. */
function errorLine(code: number, body: string): string {
  let text = body.trim();
  try {
    const status = JSON.parse(body) as { message?: unknown };
    if (typeof status.message === 'string') text = status.message;
  } catch {
    // plain text (the proxy's own errors)
  }
  const line = text.split('\n')[0] ?? '';
  return `HTTP ${code}${line === '' ? '' : `: ${line.slice(0, 300)}`}`;
}

/** Parses a node's `/status` body; throws when it is not one. */
export function parseNodeStatus(body: string): NodeStatusView {
  const v = JSON.parse(body) as unknown;
  const r = (v as { readiness?: { ready?: unknown; reason?: unknown } } | null)?.readiness;
  if (typeof v !== 'object' || v === null || typeof r?.ready !== 'boolean')
    throw new Error('the answer is not a node status (no readiness)');
  return v as NodeStatusView;
}

/** GET /status of one node pod through the API server's pod proxy. */
export async function probeNode(kc: k8s.KubeConfig, pod: Omit<NodeProbe, 'status' | 'error'>): Promise<NodeProbe> {
  if (pod.port === undefined) return { ...pod, error: `the pod has no container port named "${METRICS_PORT_NAME}"` };
  if (pod.podIP === undefined) return { ...pod, error: 'the pod has no IP yet' };
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.pod)}:${pod.port}/proxy/status`;
  try {
    const res = await apiGet(kc, path);
    if (res.code !== 200) return { ...pod, error: `unreachable: ${errorLine(res.code, res.body)}` };
    return { ...pod, status: parseNodeStatus(res.body) };
  } catch (err) {
    return { ...pod, error: `unreachable: ${describeError(err)}` };
  }
}

/** The node pods of a context (label app.kubernetes.io/name=mcs-gossip), in `namespace` or all namespaces. */
export async function findNodePods(
  kc: k8s.KubeConfig,
  namespace: string | undefined,
): Promise<Omit<NodeProbe, 'status' | 'error'>[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list =
    namespace === undefined
      ? await core.listPodForAllNamespaces({ labelSelector: NODE_POD_SELECTOR })
      : await core.listNamespacedPod({ namespace, labelSelector: NODE_POD_SELECTOR });
  return list.items
    .filter((p) => p.metadata?.deletionTimestamp === undefined)
    .map((p) => {
      const containers = p.spec?.containers ?? [];
      const withPort = containers.find((c) => c.ports?.some((x) => x.name === METRICS_PORT_NAME));
      const port = withPort?.ports?.find((x) => x.name === METRICS_PORT_NAME)?.containerPort;
      const args = [...((withPort ?? containers[0])?.command ?? []), ...((withPort ?? containers[0])?.args ?? [])];
      const podIP = p.status?.podIP;
      return {
        namespace: p.metadata?.namespace ?? '',
        pod: p.metadata?.name ?? '',
        ...(port === undefined ? {} : { port }),
        ...(podIP === undefined || podIP === '' ? {} : { podIP }),
        args,
      };
    })
    .sort((a, b) => `${a.namespace}/${a.pod}`.localeCompare(`${b.namespace}/${b.pod}`));
}

/** The pod whose status counts: the leader, else the first that answered, else the first found. */
export function chooseNode(pods: readonly NodeProbe[]): NodeProbe | undefined {
  return (
    pods.find((p) => p.status?.leader === true) ?? pods.find((p) => p.status !== undefined) ?? pods[0] ?? undefined
  );
}

function conditionsOf(obj: unknown): Condition[] {
  const conds = (obj as { status?: { conditions?: unknown } }).status?.conditions;
  if (!Array.isArray(conds)) return [];
  return (conds as Record<string, unknown>[])
    .filter((c) => typeof c.type === 'string' && typeof c.status === 'string')
    .map((c) => ({
      type: c.type as string,
      status: c.status as string,
      ...(typeof c.reason === 'string' ? { reason: c.reason } : {}),
      ...(typeof c.message === 'string' ? { message: c.message } : {}),
    }));
}

interface RawObject {
  metadata?: { name?: string; namespace?: string };
  spec?: { type?: string; ips?: string[]; ports?: { name?: string; port?: number; protocol?: string }[] };
  status?: { clusters?: { cluster?: string }[] };
}

export function exportViewOf(o: RawObject): ExportView {
  return { namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '', conditions: conditionsOf(o) };
}

export function importViewOf(o: RawObject): ImportView {
  return {
    namespace: o.metadata?.namespace ?? '',
    name: o.metadata?.name ?? '',
    type: o.spec?.type ?? '',
    ips: [...(o.spec?.ips ?? [])],
    ports: (o.spec?.ports ?? [])
      .map((p) => `${p.name === undefined || p.name === '' ? '' : `${p.name}:`}${p.port ?? '?'}/${p.protocol ?? 'TCP'}`)
      .sort(),
    clusters: (o.status?.clusters ?? [])
      .map((c) => c.cluster ?? '')
      .filter((c) => c !== '')
      .sort(),
    conditions: conditionsOf(o),
  };
}

const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) =>
  `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);

/** Reads one context. Never throws: what failed is in `apiError` / `readErrors` / the probes' `error`. */
export async function collectContext(target: ContextTarget, namespace: string | undefined): Promise<ContextReport> {
  const kc = target.kubeConfig;
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const readErrors: string[] = [];
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withTimeout(fn(), REQUEST_TIMEOUT_MS, what);
    } catch (err) {
      readErrors.push(`${what}: ${describeError(err)}`);
      return undefined;
    }
  };
  const property = async (name: string): Promise<string | undefined> => {
    try {
      const o = (await withTimeout(
        custom.getClusterCustomObject({
          group: ABOUT_GROUP,
          version: ABOUT_VERSION,
          plural: 'clusterproperties',
          name,
        }),
        REQUEST_TIMEOUT_MS,
        `ClusterProperty ${name}`,
      )) as { spec?: { value?: unknown } };
      return typeof o.spec?.value === 'string' ? o.spec.value : undefined;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      readErrors.push(`ClusterProperty ${name}: ${describeError(err)}`);
      return undefined;
    }
  };
  const list = (plural: string) => async () =>
    (
      (await custom.listCustomObjectForAllNamespaces({
        group: MCS_GROUP,
        version: MCS_VERSION,
        resourcePlural: plural,
      })) as { items: RawObject[] }
    ).items;
  const [clusterId, clusterSetName, pods, exports, imports, namespaces] = await Promise.all([
    property(CLUSTER_ID_PROPERTY),
    property(CLUSTERSET_PROPERTY),
    attempt('list node pods', () => findNodePods(kc, namespace)),
    attempt('list ServiceExports', list('serviceexports')),
    attempt('list ServiceImports', list('serviceimports')),
    attempt('list Namespaces', async () => (await core.listNamespace()).items.map((n) => n.metadata?.name ?? '')),
  ]);
  const probes = await Promise.all((pods ?? []).map((p) => probeNode(kc, p)));
  const node = chooseNode(probes);
  // Every read failed: the API server itself is the problem, said once.
  const apiError =
    pods === undefined && exports === undefined && namespaces === undefined
      ? readErrors[readErrors.length - 1]
      : undefined;
  return {
    context: target.context,
    ...(clusterId === undefined ? {} : { clusterId }),
    ...(clusterSetName === undefined ? {} : { clusterSetName }),
    ...(apiError === undefined ? {} : { apiError }),
    pods: probes,
    ...(node === undefined ? {} : { node }),
    exports: (exports ?? []).map(exportViewOf).sort(byKey),
    imports: (imports ?? []).map(importViewOf).sort(byKey),
    ...(namespaces === undefined ? {} : { namespaces: namespaces.sort() }),
    readErrors,
  };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** What `diagnose` reads of a context beyond `collectContext`: Services, CoreDNS, its RBAC, Node and service CIDRs. */
export async function collectDiagnostics(target: ContextTarget, report: ContextReport): Promise<DiagnoseContext> {
  const kc = target.kubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const networking = kc.makeApiClient(k8s.NetworkingV1Api);
  const t = <T>(p: Promise<T>, what: string) => withTimeout(p, REQUEST_TIMEOUT_MS, what);
  const settle = async <T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> => {
    try {
      return { ok: await p };
    } catch (err) {
      return { err };
    }
  };
  const review = (verb: string) =>
    t(
      authz.createSubjectAccessReview({
        body: {
          spec: {
            user: COREDNS_USER,
            groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
            resourceAttributes: { group: MCS_GROUP, resource: 'serviceimports', verb },
          },
        },
      }),
      'SubjectAccessReview',
    ).then((r) => r.status?.allowed === true);
  const [services, corefile, list, watch, nodes, serviceCidrs] = await Promise.all([
    settle(t(core.listServiceForAllNamespaces(), 'list Services')),
    settle(t(core.readNamespacedConfigMap({ namespace: 'kube-system', name: 'coredns' }), 'ConfigMap coredns')),
    settle(review('list')),
    settle(review('watch')),
    settle(t(core.listNode(), 'list Nodes')),
    settle(t(networking.listServiceCIDR(), 'list ServiceCIDRs')),
  ]);
  const out: {
    -readonly [K in keyof DiagnoseContext]: DiagnoseContext[K];
  } = { report };
  if ('ok' in services)
    out.services = services.ok.items.map((s) => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`);
  if ('ok' in corefile) out.corefile = corefile.ok.data?.Corefile ?? '';
  else if (corefile.err instanceof k8s.ApiException && corefile.err.code === 404) out.corefile = null;
  else out.corefileError = describeError(corefile.err);
  if ('ok' in list && 'ok' in watch) out.corednsAccess = { list: list.ok, watch: watch.ok };
  else out.corednsAccessError = describeError('err' in list ? list.err : (watch as { err: unknown }).err);
  if ('ok' in nodes)
    out.podCidrs = [
      ...new Set(
        nodes.ok.items.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR === undefined ? [] : [n.spec.podCIDR])),
      ),
    ].sort();
  if ('ok' in serviceCidrs) out.serviceCidrs = serviceCidrs.ok.items.flatMap((s) => s.spec?.cidrs ?? []).sort();
  else out.serviceCidrError = describeError(serviceCidrs.err);
  return out;
}

/** The user CoreDNS runs as in a kubeadm-like cluster. */
export const COREDNS_USER = 'system:serviceaccount:kube-system:coredns';
