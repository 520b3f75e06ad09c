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
import { withSignal } from '../../kube/api-options.js';
import { describeError } from '../../kube/errors.js';
import type { DiagnoseContext } from './checks.js';
import type { ContextTarget } from './flags.js';
import {
  READ_RESOURCE,
  type Condition,
  type ContextReport,
  type ExportView,
  type ImportView,
  type NodeProbe,
  type NodeStatusView,
  type ReadError,
  type ReadTarget,
} from './model.js';

/** The label the Helm chart puts on the node pods. */
export const NODE_POD_SELECTOR = 'app.kubernetes.io/name=mcs-gossip';
/** The container port the node's HTTP endpoint (/metrics, /readyz, /status) is named by. */
export const METRICS_PORT_NAME = 'metrics';
const REQUEST_TIMEOUT_MS = 8000;

/**
 * Runs `fn` with a signal that aborts after `ms`: the request it makes is aborted (its socket destroyed), and the
 * returned promise rejects with `<what>: no answer within <ms> ms` even if `fn` ignores the signal. The signal is
 * aborted once `fn` settles too, so nothing it started stays behind.
 */
export async function bounded<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`${what}: no answer within ${ms} ms`)), ms);
  const aborted = new Promise<never>((_, reject) =>
    ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason as Error), { once: true }),
  );
  aborted.catch(() => {});
  try {
    return await Promise.race([fn(ctl.signal), aborted]);
  } finally {
    clearTimeout(timer);
    ctl.abort(new Error(`${what}: done`));
  }
}

/** A call of the generated API clients bounded by {@link bounded}: the options carry the abort signal. */
export function boundedCall<T>(what: string, fn: (options: k8s.ConfigurationOptions) => Promise<T>): Promise<T> {
  return bounded(what, REQUEST_TIMEOUT_MS, (signal) => fn(withSignal(signal)));
}

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
  return bounded(
    `GET ${url.host}`,
    timeoutMs,
    (signal) =>
      new Promise((resolve, reject) => {
        // The signal destroys the request and its socket when the time is up (a black-holed API server).
        const req = request(url, { ...opts, signal }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
  );
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

type FoundPod = Omit<NodeProbe, 'status' | 'error'>;

/**
 * The node pods among the pods labelled app.kubernetes.io/name=mcs-gossip: Running, not being deleted, with a
 * container port named `metrics` (the `helm test` pod has the label too, and finished pods stay listed). The others
 * are returned in `skipped`, each `namespace/name (why)`.
 */
export function selectNodePods(items: readonly k8s.V1Pod[]): { pods: FoundPod[]; skipped: string[] } {
  const pods: FoundPod[] = [];
  const skipped: string[] = [];
  for (const p of items) {
    const name = `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
    const containers = p.spec?.containers ?? [];
    const withPort = containers.find((c) => c.ports?.some((x) => x.name === METRICS_PORT_NAME));
    const port = withPort?.ports?.find((x) => x.name === METRICS_PORT_NAME)?.containerPort;
    const phase = p.status?.phase ?? 'Unknown';
    const why =
      p.metadata?.deletionTimestamp !== undefined
        ? 'being deleted'
        : withPort === undefined || port === undefined
          ? `no container port named "${METRICS_PORT_NAME}"`
          : phase !== 'Running'
            ? phase
            : undefined;
    if (why !== undefined) {
      skipped.push(`${name} (${why})`);
      continue;
    }
    const podIP = p.status?.podIP;
    pods.push({
      namespace: p.metadata?.namespace ?? '',
      pod: p.metadata?.name ?? '',
      ...(port === undefined ? {} : { port }),
      ...(podIP === undefined || podIP === '' ? {} : { podIP }),
      args: [...(withPort?.command ?? []), ...(withPort?.args ?? [])],
    });
  }
  const key = (a: { namespace: string; pod: string }) => `${a.namespace}/${a.pod}`;
  pods.sort((a, b) => key(a).localeCompare(key(b)));
  skipped.sort();
  return { pods, skipped };
}

/** The node pods of a context (label app.kubernetes.io/name=mcs-gossip), in `namespace` or all namespaces. */
export async function findNodePods(
  kc: k8s.KubeConfig,
  namespace: string | undefined,
  options?: k8s.ConfigurationOptions,
): Promise<{ pods: FoundPod[]; skipped: string[] }> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list =
    namespace === undefined
      ? await core.listPodForAllNamespaces({ labelSelector: NODE_POD_SELECTOR }, options)
      : await core.listNamespacedPod({ namespace, labelSelector: NODE_POD_SELECTOR }, options);
  return selectNodePods(list.items);
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

/** One line for a failed read: the API server's reason and message (`HTTP 403 Forbidden: …`), else the error's. */
export function readErrorMessage(err: unknown): string {
  const line = describeError(err).split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Reads one context. Never throws: what failed is in `apiError` / `readErrors` / the probes' `error`. */
export async function collectContext(target: ContextTarget, namespace: string | undefined): Promise<ContextReport> {
  const kc = target.kubeConfig;
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const readErrors: ReadError[] = [];
  // Whether some read got an answer of the API server (an HTTP error is an answer).
  let answered = false;
  const failed = (what: ReadTarget, err: unknown) => {
    if (err instanceof k8s.ApiException) answered = true;
    readErrors.push({ what, resource: READ_RESOURCE[what], message: readErrorMessage(err) });
  };
  const attempt = async <T>(what: ReadTarget, fn: (options: k8s.ConfigurationOptions) => Promise<T>) => {
    try {
      const v = await boundedCall(`list ${READ_RESOURCE[what]}`, fn);
      answered = true;
      return v;
    } catch (err) {
      failed(what, err);
      return undefined;
    }
  };
  const property = async (what: 'clusterid' | 'clusterset', name: string): Promise<string | undefined> => {
    try {
      const o = (await boundedCall(`get ClusterProperty ${name}`, (options) =>
        custom.getClusterCustomObject(
          { group: ABOUT_GROUP, version: ABOUT_VERSION, plural: 'clusterproperties', name },
          options,
        ),
      )) as { spec?: { value?: unknown } };
      answered = true;
      return typeof o.spec?.value === 'string' ? o.spec.value : undefined;
    } catch (err) {
      // Absent is not unreadable: the identity check says it is missing.
      if (err instanceof k8s.ApiException && err.code === 404) {
        answered = true;
        return undefined;
      }
      failed(what, err);
      return undefined;
    }
  };
  const list = (plural: string) => async (options: k8s.ConfigurationOptions) =>
    (
      (await custom.listCustomObjectForAllNamespaces(
        { group: MCS_GROUP, version: MCS_VERSION, resourcePlural: plural },
        options,
      )) as { items: RawObject[] }
    ).items;
  const [clusterId, clusterSetName, found, exports, imports, namespaces] = await Promise.all([
    property('clusterid', CLUSTER_ID_PROPERTY),
    property('clusterset', CLUSTERSET_PROPERTY),
    attempt('pods', (options) => findNodePods(kc, namespace, options)),
    attempt('serviceexports', list('serviceexports')),
    attempt('serviceimports', list('serviceimports')),
    attempt('namespaces', async (options) =>
      (await core.listNamespace({}, options)).items.map((n) => n.metadata?.name ?? ''),
    ),
  ]);
  const probes = await Promise.all((found?.pods ?? []).map((p) => probeNode(kc, p)));
  const node = chooseNode(probes);
  // No read got any answer: the API server itself is the problem (down, black-holed, bad TLS), said once.
  const apiError = !answered && readErrors.length > 0 ? readErrors[readErrors.length - 1]?.message : undefined;
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
    ...(found === undefined || found.skipped.length === 0 ? {} : { skippedPods: found.skipped }),
    readErrors,
  };
}

/** What `diagnose` reads of a context beyond `collectContext`: Services, CoreDNS, its RBAC, Node and service CIDRs. */
export async function collectDiagnostics(target: ContextTarget, report: ContextReport): Promise<DiagnoseContext> {
  // An API server that answered nothing before is not asked again (each read would wait its whole timeout).
  if (report.apiError !== undefined) {
    const e = `API server unreachable (${report.apiError})`;
    return {
      report,
      servicesError: e,
      corefileError: e,
      corednsAccessError: e,
      nodesError: e,
      serviceCidrError: e,
    };
  }
  const kc = target.kubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const networking = kc.makeApiClient(k8s.NetworkingV1Api);
  const settle = async <T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> => {
    try {
      return { ok: await p };
    } catch (err) {
      return { err };
    }
  };
  const review = (verb: string) =>
    boundedCall('create SubjectAccessReview', (options) =>
      authz.createSubjectAccessReview(
        {
          body: {
            spec: {
              user: COREDNS_USER,
              groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
              resourceAttributes: { group: MCS_GROUP, resource: 'serviceimports', verb },
            },
          },
        },
        options,
      ),
    ).then((r) => r.status?.allowed === true);
  const [services, corefile, list, watch, nodes, serviceCidrs] = await Promise.all([
    settle(boundedCall('list Services', (options) => core.listServiceForAllNamespaces({}, options))),
    settle(
      boundedCall('get ConfigMap kube-system/coredns', (options) =>
        core.readNamespacedConfigMap({ namespace: 'kube-system', name: 'coredns' }, options),
      ),
    ),
    settle(review('list')),
    settle(review('watch')),
    settle(boundedCall('list Nodes', (options) => core.listNode({}, options))),
    settle(boundedCall('list ServiceCIDRs', (options) => networking.listServiceCIDR({}, options))),
  ]);
  const out: {
    -readonly [K in keyof DiagnoseContext]: DiagnoseContext[K];
  } = { report };
  if ('ok' in services)
    out.services = services.ok.items.map((s) => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`);
  else out.servicesError = readErrorMessage(services.err);
  if ('ok' in corefile) out.corefile = corefile.ok.data?.Corefile ?? '';
  else if (corefile.err instanceof k8s.ApiException && corefile.err.code === 404) out.corefile = null;
  else out.corefileError = readErrorMessage(corefile.err);
  if ('ok' in list && 'ok' in watch) out.corednsAccess = { list: list.ok, watch: watch.ok };
  else out.corednsAccessError = readErrorMessage('err' in list ? list.err : (watch as { err: unknown }).err);
  if ('ok' in nodes)
    out.podCidrs = [
      ...new Set(
        nodes.ok.items.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR === undefined ? [] : [n.spec.podCIDR])),
      ),
    ].sort();
  if ('ok' in serviceCidrs) out.serviceCidrs = serviceCidrs.ok.items.flatMap((s) => s.spec?.cidrs ?? []).sort();
  else out.serviceCidrError = readErrorMessage(serviceCidrs.err);
  if (!('ok' in nodes)) out.nodesError = readErrorMessage(nodes.err);
  return out;
}

/** The user CoreDNS runs as in a kubeadm-like cluster. */
export const COREDNS_USER = 'system:serviceaccount:kube-system:coredns';
