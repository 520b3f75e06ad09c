// Phase A, "verdicts": for exported-service content, importProblem's verdict against the importing cluster's API
// server's, which judges the objects an importer would write (ServiceImport, derived Service, imported slices) created
// with a server-side dry run (`dryRun: All`: validated and admitted, never stored).
import * as k8s from '@kubernetes/client-node';
import {
  ClusterSetState,
  derivedServiceName,
  importProblem,
  MANAGED_BY,
  MAX_ENDPOINTS_PER_SLICE,
  MAX_EXPORTED_MAP_ENTRIES,
  MAX_SERVICE_JSON_BYTES,
  MCS_API_VERSION,
  resolve,
  sortPorts,
  type ExportedService,
  type ImportedEndpointSliceObject,
  type ImportProblem,
  type ServiceImportObject,
} from '../../src/core/index.js';
import { stableJson } from '../../src/core/stable-json.js';
import { derivedService, serviceImportBody, sliceBody } from '../../src/kube/desired.js';
import { MCS, sleep, type admin } from '../tests/kube-helpers.js';

export type Admin = ReturnType<typeof admin>;

export const ORIGIN = 'cluster-1';
export const IMPORTER = 'cluster-2';

/**
 * What `resolve` makes of one exporter's content, built for any content (resolve itself skips what importProblem
 * rejects, so it cannot show what an importer *would* write). Checked against resolve() for every importable case.
 */
export function importOf(
  service: ExportedService,
  namespace: string,
  name: string,
): { serviceImport: ServiceImportObject; endpointSlices: ImportedEndpointSliceObject[] } {
  const metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = { name, namespace };
  if (Object.keys(service.exportedLabels).length > 0) metadata.labels = { ...service.exportedLabels };
  if (Object.keys(service.exportedAnnotations).length > 0) metadata.annotations = { ...service.exportedAnnotations };
  const spec: { -readonly [K in keyof ServiceImportObject['spec']]: ServiceImportObject['spec'][K] } = {
    type: service.type,
    ports: sortPorts(service.ports),
    ips: [],
    sessionAffinity: service.sessionAffinity,
    ipFamilies: service.ipFamilies,
  };
  if (service.sessionAffinityConfig !== undefined) spec.sessionAffinityConfig = service.sessionAffinityConfig;
  if (service.internalTrafficPolicy !== undefined) spec.internalTrafficPolicy = service.internalTrafficPolicy;
  if (service.trafficDistribution !== undefined) spec.trafficDistribution = service.trafficDistribution;
  const derived = derivedServiceName(namespace, name);
  const labels = {
    'endpointslice.kubernetes.io/managed-by': MANAGED_BY,
    'kubernetes.io/service-name': derived,
    'multicluster.kubernetes.io/service-name': name,
    'multicluster.kubernetes.io/source-cluster': ORIGIN,
  };
  const endpointSlices: ImportedEndpointSliceObject[] = [];
  let n = 0;
  for (const group of service.endpointGroups) {
    for (let start = 0; start < group.endpoints.length; start += MAX_ENDPOINTS_PER_SLICE) {
      endpointSlices.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${derived}-${ORIGIN}-${n++}`, namespace, labels },
        addressType: group.addressType,
        endpoints: group.endpoints.slice(start, start + MAX_ENDPOINTS_PER_SLICE),
        ports: group.ports,
      });
    }
  }
  return {
    serviceImport: {
      apiVersion: MCS_API_VERSION,
      kind: 'ServiceImport',
      metadata,
      spec,
      status: {
        clusters: [{ cluster: ORIGIN }],
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Ready', message: `Imported from 1 cluster(s): ${ORIGIN}.` },
        ],
      },
    },
    endpointSlices,
  };
}

/** Undefined when importOf agrees with resolve() (for content resolve() imports), else what differs. */
export function mirrorDifference(service: ExportedService, namespace: string, name: string): string | undefined {
  const state = new ClusterSetState();
  const merged = state.merge([
    { origin: ORIGIN, namespace, name, version: { wallMs: 1, logical: 1 }, removed: false, service },
  ]);
  if (merged.invalid > 0) return 'ClusterSetState.merge rejected the record as malformed';
  const r = resolve(state, { localCluster: IMPORTER, namespaces: [namespace] });
  const mine = importOf(service, namespace, name);
  if (r.serviceImports.length !== 1) return `resolve() made ${r.serviceImports.length} ServiceImports`;
  if (stableJson(r.serviceImports[0]) !== stableJson(mine.serviceImport))
    return `ServiceImport: resolve() ${stableJson(r.serviceImports[0]).slice(0, 400)} vs ${stableJson(mine.serviceImport).slice(0, 400)}`;
  if (stableJson(r.endpointSlices) !== stableJson(mine.endpointSlices))
    return `EndpointSlices: resolve() made ${r.endpointSlices.length}, the mirror ${mine.endpointSlices.length} (or their content differs)`;
  return undefined;
}

/** One object an importer would write. */
export interface Planned {
  readonly kind: 'ServiceImport' | 'Service' | 'EndpointSlice';
  readonly name: string;
  readonly body: object;
}

/** The answer of the API server to one dry-run create. */
export interface DryRun {
  readonly kind: Planned['kind'];
  readonly name: string;
  readonly ok: boolean;
  readonly code?: number;
  readonly message?: string;
  readonly warnings?: readonly string[];
}

function statusMessage(body: unknown): string {
  if (typeof body !== 'string') return String(body);
  try {
    const s = JSON.parse(body) as { message?: string };
    return s.message ?? body;
  } catch {
    return body;
  }
}

/** Creates `o` in `namespace` with `dryRun: All`; retries 429, 5xx and connection errors. */
async function dryRun(a: Admin, namespace: string, o: Planned): Promise<DryRun & { response?: unknown }> {
  for (let attempt = 0; ; attempt++) {
    try {
      let response: unknown;
      if (o.kind === 'Service')
        response = await a.core.createNamespacedService({ namespace, body: o.body as k8s.V1Service, dryRun: 'All' });
      else if (o.kind === 'EndpointSlice')
        response = await a.discovery.createNamespacedEndpointSlice({
          namespace,
          body: o.body as k8s.V1EndpointSlice,
          dryRun: 'All',
        });
      else
        response = await a.custom.createNamespacedCustomObject({
          ...MCS,
          plural: 'serviceimports',
          namespace,
          body: o.body,
          dryRun: 'All',
        });
      return { kind: o.kind, name: o.name, ok: true, response };
    } catch (err) {
      const retriable = !(err instanceof k8s.ApiException) || err.code === 429 || err.code >= 500;
      if (retriable && attempt < 6) {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      if (err instanceof k8s.ApiException)
        return { kind: o.kind, name: o.name, ok: false, code: err.code, message: statusMessage(err.body) };
      throw err;
    }
  }
}

/**
 * What an importer writes for this content, judged by the API server: the ServiceImport (spec.ips from the derived
 * Service's dry-run cluster IPs, as the writer sets them), the imported slices, and the derived Service. A Headless
 * import has no derived Service of its own, but its ports join the derived Service of any ClusterSetIP import it is
 * merged into (the port union), so importProblem checks Service port rules whatever the type: the derived Service is
 * dry-run as if the import were ClusterSetIP (IPv4) whenever it has ports (a Headless export without ports adds none).
 */
export async function judge(a: Admin, service: ExportedService, namespace: string, name: string): Promise<DryRun[]> {
  const { serviceImport, endpointSlices } = importOf(service, namespace, name);
  const results: DryRun[] = [];
  let ips: string[] = [];
  // Of a Headless export, only the ports can reach a derived Service (a merged import's other fields are the oldest
  // export's, and a Headless winner has no derived Service): its ports are tried with IPv4, what this cluster has.
  const asClusterSetIp =
    serviceImport.spec.type === 'Headless'
      ? { ...serviceImport, spec: { ...serviceImport.spec, type: 'ClusterSetIP' as const, ipFamilies: ['IPv4'] } }
      : serviceImport;
  if (serviceImport.spec.type !== 'Headless' || serviceImport.spec.ports.length > 0) {
    const svc = derivedService(asClusterSetIp);
    const r = await dryRun(a, namespace, { kind: 'Service', name: svc.metadata?.name ?? '', body: svc });
    const { response, ...rest } = r;
    results.push(rest);
    if (r.ok && serviceImport.spec.type !== 'Headless') ips = (response as k8s.V1Service).spec?.clusterIPs ?? [];
  }
  const planned: Planned[] = [
    { kind: 'ServiceImport', name, body: serviceImportBody(serviceImport, ips) },
    ...endpointSlices.map((s) => ({
      kind: 'EndpointSlice' as const,
      name: s.metadata.name,
      body: sliceBody(s),
    })),
  ];
  for (const r of await Promise.all(planned.map((o) => dryRun(a, namespace, o)))) {
    const { response: _response, ...rest } = r;
    results.push(rest);
  }
  return results;
}

/** A bound of the record (wire), not of the API server: entries per map, or the JSON size of one record. */
export function isWireBound(p: ImportProblem): boolean {
  return (
    p.field === 'endpointslices' ||
    (/^spec\.exported(Labels|Annotations)$/.test(p.field) &&
      p.message.endsWith(`; at most ${MAX_EXPORTED_MAP_ENTRIES}`))
  );
}

/** Whether the content really exceeds a wire bound (computed here, independently of importability.ts). */
export function exceedsWireBound(s: ExportedService): boolean {
  return (
    Object.keys(s.exportedLabels).length > MAX_EXPORTED_MAP_ENTRIES ||
    Object.keys(s.exportedAnnotations).length > MAX_EXPORTED_MAP_ENTRIES ||
    Buffer.byteLength(JSON.stringify(s), 'utf8') > MAX_SERVICE_JSON_BYTES
  );
}

export type VerdictOutcome = 'importable' | 'unimportable' | 'wire-bound';

export function describeProblem(p: ImportProblem | undefined): string {
  return p === undefined ? 'undefined (importable)' : `${p.reason} ${p.message}`;
}

export function describeDryRuns(results: readonly DryRun[]): string {
  return results
    .map((r) => `  ${r.kind} ${r.name}: ${r.ok ? 'created (dry run)' : `refused ${r.code}: ${r.message}`}`)
    .join('\n');
}

/** A case where importProblem and the API server disagree (the property's failure). */
export class VerdictMismatch extends Error {
  override readonly name = 'VerdictMismatch';
  constructor(
    readonly kind: 'under-rejection' | 'over-rejection' | 'mirror' | 'false wire bound',
    readonly problem: ImportProblem | undefined,
    readonly results: readonly DryRun[],
    detail = '',
  ) {
    super(
      `${kind}: importProblem says ${describeProblem(problem)}; the API server of ${IMPORTER}:\n${describeDryRuns(results)}${detail === '' ? '' : `\n  ${detail}`}`,
    );
  }
}

/** The property of one case: importProblem === undefined ⇔ every dry-run create succeeds (wire bounds aside). */
/**
 * The property of one case: importProblem === undefined ⇔ every dry-run create succeeds (wire bounds aside: a record
 * over one may be refused whatever the API server says). A disagreement throws a {@link VerdictMismatch}.
 */
export async function checkVerdict(
  a: Admin,
  service: ExportedService,
  namespace: string,
  name: string,
): Promise<VerdictOutcome> {
  const problem = importProblem(service);
  if (problem === undefined) {
    const diff = mirrorDifference(service, namespace, name);
    if (diff !== undefined) throw new VerdictMismatch('mirror', problem, [], diff);
  }
  const results = await judge(a, service, namespace, name);
  const refused = results.some((r) => !r.ok);
  if (problem === undefined) {
    if (refused) throw new VerdictMismatch('under-rejection', problem, results);
    return 'importable';
  }
  if (isWireBound(problem)) {
    if (!exceedsWireBound(service))
      throw new VerdictMismatch('false wire bound', problem, results, 'no wire bound is exceeded');
    return 'wire-bound';
  }
  if (!refused) throw new VerdictMismatch('over-rejection', problem, results);
  return 'unimportable';
}
