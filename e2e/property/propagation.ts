// Phase B, "propagation": real objects applied in cluster-1; within a bound, either cluster-2 holds a ServiceImport
// (and imported slices) that matches them, or the cluster-1 ServiceExport says Valid=False with a reason and a
// message — never neither. The outcome must also be the one localExports predicts from the objects as the API server
// returned them (import ⇔ Valid=True; else the same reason and message).
import * as k8s from '@kubernetes/client-node';
import {
  localExports,
  sortPorts,
  type EndpointSliceObject,
  type LocalObjects,
  type ServiceExportObject,
  type ServiceObject,
  type ServicePort,
} from '../../src/core/index.js';
import { stableJson } from '../../src/core/stable-json.js';
import { MCS, sleep } from '../tests/kube-helpers.js';
import { serviceBody, serviceExportBody, sliceBodies, type CaseSpec } from './objects.js';
import type { Admin } from './verdicts.js';

/** Valid=False reasons that say an export cannot be imported (importability.ts) or exported (ExternalName). */
const INVALID_REASONS = new Set([
  'InvalidExportedLabels',
  'InvalidExportedAnnotations',
  'UnimportableService',
  'UnimportableEndpoints',
  'InvalidServiceType',
]);

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface ServiceExportView {
  metadata: k8s.V1ObjectMeta;
  spec?: { exportedLabels?: Record<string, string>; exportedAnnotations?: Record<string, string> };
  status?: { conditions?: Condition[] };
}

interface ServiceImportView {
  metadata: k8s.V1ObjectMeta;
  spec?: {
    type?: string;
    ips?: string[];
    ports?: { name?: string; protocol?: string; port?: number; appProtocol?: string }[];
    sessionAffinity?: string;
    sessionAffinityConfig?: unknown;
    ipFamilies?: string[];
    internalTrafficPolicy?: string;
    trafficDistribution?: string;
  };
  status?: { clusters?: { cluster: string }[] };
}

export type CaseResult =
  | { readonly outcome: 'rejected'; readonly object: string; readonly code: number; readonly message: string }
  | { readonly outcome: 'imported' | 'invalid'; readonly ms: number; readonly reason?: string }
  | { readonly outcome: 'failed'; readonly failure: string };

/** A case the property fails on: what was expected, what was seen. */
export class PropagationFailure extends Error {
  override readonly name = 'PropagationFailure';
}

function statusMessage(err: k8s.ApiException<unknown>): string {
  try {
    return (JSON.parse(String(err.body)) as { message?: string }).message ?? String(err.body);
  } catch {
    return String(err.body);
  }
}

async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retriable = !(err instanceof k8s.ApiException) || err.code === 429 || err.code >= 500;
      if (!retriable || attempt >= 6) throw err;
      await sleep(200 * 2 ** attempt);
    }
  }
}

async function orNull<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 404) return undefined;
    throw err;
  }
}

function endpointKeys(slices: readonly k8s.V1EndpointSlice[]): string[] {
  const keys = new Set<string>();
  for (const s of slices) for (const e of s.endpoints ?? []) keys.add(`${s.addressType} ${e.addresses.join(',')}`);
  return [...keys].sort();
}

/** What cluster-2's import must hold, from the objects as cluster-1's API server returned them. */
interface Expected {
  readonly type: 'ClusterSetIP' | 'Headless';
  readonly ports: readonly ServicePort[];
  readonly sessionAffinity?: string;
  readonly sessionAffinityConfig?: unknown;
  readonly ipFamilies: readonly string[];
  readonly internalTrafficPolicy?: string;
  readonly trafficDistribution?: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly endpoints: readonly string[];
}

function expectedOf(svc: k8s.V1Service, slices: readonly k8s.V1EndpointSlice[], se: ServiceExportView): Expected {
  const ports: ServicePort[] = (svc.spec?.ports ?? []).map((p) => {
    const out: { name?: string; protocol: string; port: number; appProtocol?: string } = {
      protocol: p.protocol ?? 'TCP',
      port: p.port,
    };
    if (p.name !== undefined) out.name = p.name;
    if (p.appProtocol !== undefined) out.appProtocol = p.appProtocol;
    return out;
  });
  return {
    type: svc.spec?.clusterIP === 'None' ? 'Headless' : 'ClusterSetIP',
    ports: sortPorts(ports),
    sessionAffinity: svc.spec?.sessionAffinity,
    sessionAffinityConfig: svc.spec?.sessionAffinityConfig,
    ipFamilies: svc.spec?.ipFamilies ?? [],
    internalTrafficPolicy: svc.spec?.internalTrafficPolicy,
    trafficDistribution: svc.spec?.trafficDistribution,
    labels: se.spec?.exportedLabels ?? {},
    annotations: se.spec?.exportedAnnotations ?? {},
    endpoints: endpointKeys(slices),
  };
}

/** Undefined when the import matches, else the first difference. */
function importDifference(
  want: Expected,
  si: ServiceImportView | undefined,
  slices: readonly k8s.V1EndpointSlice[],
): string | undefined {
  if (si === undefined) return 'no ServiceImport in cluster-2';
  const spec = si.spec ?? {};
  const eq = (a: unknown, b: unknown) => stableJson(a) === stableJson(b);
  const checks: [string, unknown, unknown][] = [
    ['spec.type', spec.type, want.type],
    ['spec.ports', spec.ports ?? [], want.ports],
    ['spec.sessionAffinity', spec.sessionAffinity, want.sessionAffinity],
    ['spec.sessionAffinityConfig', spec.sessionAffinityConfig, want.sessionAffinityConfig],
    ['spec.ipFamilies', spec.ipFamilies ?? [], want.ipFamilies],
    ['spec.internalTrafficPolicy', spec.internalTrafficPolicy, want.internalTrafficPolicy],
    ['spec.trafficDistribution', spec.trafficDistribution, want.trafficDistribution],
    ['metadata.labels', si.metadata.labels ?? {}, want.labels],
    ['metadata.annotations', si.metadata.annotations ?? {}, want.annotations],
  ];
  for (const [field, got, expected] of checks)
    if (!eq(got, expected))
      return `${field}: ${stableJson(got).slice(0, 300)}, expected ${stableJson(expected).slice(0, 300)}`;
  if (want.type === 'ClusterSetIP' && (spec.ips ?? []).length === 0) return 'spec.ips: empty (no ClusterSetIP yet)';
  if (want.type === 'Headless' && (spec.ips ?? []).length !== 0) return `spec.ips: ${stableJson(spec.ips)} on Headless`;
  if (!(si.status?.clusters ?? []).some((c) => c.cluster === 'cluster-1')) return 'status.clusters: no cluster-1';
  const got = endpointKeys(slices);
  if (!eq(got, want.endpoints)) {
    const missing = want.endpoints.filter((k) => !got.includes(k));
    const extra = got.filter((k) => !want.endpoints.includes(k));
    return `imported endpoints: ${got.length}, expected ${want.endpoints.length} (missing ${stableJson(missing.slice(0, 5))}, extra ${stableJson(extra.slice(0, 5))})`;
  }
  return undefined;
}

export interface PropagationContext {
  readonly one: Admin;
  readonly two: Admin;
  readonly namespace: string;
  readonly boundMs: number;
  /** The node's /status of cluster-2 (refused keys, unimportable records), for failure reports. */
  readonly nodeStatus: (cluster: string) => Promise<string>;
}

async function cleanup(ctx: PropagationContext, name: string): Promise<void> {
  const { one, namespace } = ctx;
  const quiet = (p: Promise<unknown>) => orNull(p).catch(() => undefined);
  await Promise.all([
    quiet(one.custom.deleteNamespacedCustomObject({ ...MCS, plural: 'serviceexports', namespace, name })),
    quiet(one.core.deleteNamespacedService({ namespace, name })),
    quiet(
      one.discovery.deleteCollectionNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${name}`,
      }),
    ),
  ]);
}

/** Applies one case in cluster-1, waits for its outcome, removes its objects. */
export async function runCase(ctx: PropagationContext, name: string, c: CaseSpec): Promise<CaseResult> {
  try {
    return await apply(ctx, name, c);
  } finally {
    await cleanup(ctx, name);
  }
}

async function apply(ctx: PropagationContext, name: string, c: CaseSpec): Promise<CaseResult> {
  const { one, two, namespace } = ctx;
  const create = async (object: string, fn: () => Promise<unknown>): Promise<CaseResult | undefined> => {
    try {
      await retrying(fn);
      return undefined;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code >= 400 && err.code < 500)
        return { outcome: 'rejected', object, code: err.code, message: statusMessage(err) };
      throw err;
    }
  };
  const rejected =
    (await create('Service', () =>
      one.core.createNamespacedService({ namespace, body: serviceBody(name, c.service) }),
    )) ??
    (await sliceBodies(name, c.slices).reduce<Promise<CaseResult | undefined>>(
      async (prev, body) =>
        (await prev) ??
        create(`EndpointSlice ${body.metadata?.name}`, () =>
          one.discovery.createNamespacedEndpointSlice({ namespace, body }),
        ),
      Promise.resolve(undefined),
    )) ??
    (await create('ServiceExport', () =>
      one.custom.createNamespacedCustomObject({
        ...MCS,
        plural: 'serviceexports',
        namespace,
        body: serviceExportBody(name, c),
      }),
    ));
  if (rejected !== undefined) return rejected;
  const t0 = Date.now();

  // The objects as stored (defaulted), and what the core predicts of them.
  const [svc, slices, se] = await Promise.all([
    retrying(() => one.core.readNamespacedService({ namespace, name })),
    retrying(() =>
      one.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${name}` }),
    ).then((l) => l.items),
    retrying(
      () =>
        one.custom.getNamespacedCustomObject({
          ...MCS,
          plural: 'serviceexports',
          namespace,
          name,
        }) as Promise<ServiceExportView>,
    ),
  ]);
  // As the node does (kube-adapter.ts): the client's objects, read through the core's structural types.
  const objects: LocalObjects = {
    namespaces: [{ metadata: { name: namespace } }],
    services: [svc as ServiceObject],
    serviceExports: [se as ServiceExportObject],
    endpointSlices: slices as EndpointSliceObject[],
  };
  const predicted = localExports(objects).exports[0]?.valid;
  if (predicted === undefined) throw new Error(`localExports gave no export for ${namespace}/${name}`);
  const want = expectedOf(svc, slices, se);

  const getImport = () =>
    orNull(
      two.custom.getNamespacedCustomObject({
        ...MCS,
        plural: 'serviceimports',
        namespace,
        name,
      }) as Promise<ServiceImportView>,
    );
  const getImportedSlices = () =>
    two.discovery
      .listNamespacedEndpointSlice({ namespace, labelSelector: `multicluster.kubernetes.io/service-name=${name}` })
      .then((l) => l.items);

  const deadline = t0 + ctx.boundMs;
  let lastValid: Condition | undefined;
  for (;;) {
    const [seNow, si, imported] = await Promise.all([
      retrying(
        () =>
          one.custom.getNamespacedCustomObject({
            ...MCS,
            plural: 'serviceexports',
            namespace,
            name,
          }) as Promise<ServiceExportView>,
      ),
      retrying(getImport),
      retrying(getImportedSlices),
    ]);
    const valid = seNow.status?.conditions?.find((x) => x.type === 'Valid');
    lastValid = valid;
    const predictedText = `localExports predicts Valid=${predicted.status} ${predicted.reason}: ${predicted.message}`;
    if (
      valid?.status === 'False' &&
      valid.reason !== undefined &&
      INVALID_REASONS.has(valid.reason) &&
      (valid.message ?? '') !== ''
    ) {
      const ms = Date.now() - t0;
      if (predicted.status === 'True')
        return {
          outcome: 'failed',
          failure: `marked Valid=False ${valid.reason} (${valid.message}) after ${ms} ms, but ${predictedText}`,
        };
      if (valid.reason !== predicted.reason || valid.message !== predicted.message)
        return {
          outcome: 'failed',
          failure: `marked Valid=False ${valid.reason}: ${valid.message}\n  but ${predictedText}`,
        };
      // Not published: no import of it may stay in cluster-2.
      for (;;) {
        const stays = await retrying(getImport);
        if (stays === undefined) return { outcome: 'invalid', ms, reason: valid.reason };
        if (Date.now() > deadline)
          return {
            outcome: 'failed',
            failure: `marked Valid=False ${valid.reason}, yet cluster-2 holds a ServiceImport of it ${ctx.boundMs} ms after the export: ${stableJson(stays.spec).slice(0, 400)}`,
          };
        await sleep(150);
      }
    }
    const diff = importDifference(want, si, imported);
    if (diff === undefined) {
      const ms = Date.now() - t0;
      if (predicted.status !== 'True')
        return { outcome: 'failed', failure: `imported in cluster-2 after ${ms} ms, but ${predictedText}` };
      return { outcome: 'imported', ms };
    }
    if (Date.now() > deadline) {
      const [s1, s2] = await Promise.all([
        ctx.nodeStatus('cluster-1').catch((e: Error) => e.message),
        ctx.nodeStatus('cluster-2').catch((e: Error) => e.message),
      ]);
      return {
        outcome: 'failed',
        failure:
          `neither within ${ctx.boundMs} ms: no matching import in cluster-2 (${diff}) and the export is ` +
          `${lastValid === undefined ? 'without a Valid condition' : `Valid=${lastValid.status} ${lastValid.reason ?? ''}: ${lastValid.message ?? ''}`}` +
          `\n  ${predictedText}\n  node status cluster-1: ${s1}\n  node status cluster-2: ${s2}`,
      };
    }
    await sleep(100);
  }
}
