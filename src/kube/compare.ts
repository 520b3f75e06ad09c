/**
 * Desired-versus-actual comparison of the objects we write: each object is projected onto the fields we manage, with
 * the API server's defaults filled in, so server-set fields (uid, resourceVersion, clusterIP, targetPort, …) never
 * count as a difference and an idle node writes nothing.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ImportedEndpointSliceObject, ServiceImportObject } from '../core/index.js';
import type { DesiredService } from './desired.js';
import type { ServiceImport } from './objects.js';

/** JSON with sorted keys and undefined members dropped: equal projections give equal strings. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = x;
    }
    return out;
  });
}

function mapOrEmpty(m: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  return m ?? {};
}

function sliceEndpoint(e: {
  readonly addresses: readonly string[];
  readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
  readonly hostname?: string;
  readonly zone?: string;
  readonly nodeName?: string;
}): unknown {
  const c = e.conditions ?? {};
  return {
    addresses: e.addresses,
    conditions: { ready: c.ready, serving: c.serving, terminating: c.terminating },
    hostname: e.hostname,
    zone: e.zone,
    nodeName: e.nodeName,
  };
}

function slicePort(p: {
  readonly name?: string;
  readonly protocol?: string;
  readonly port?: number;
  readonly appProtocol?: string;
}): unknown {
  return { name: p.name ?? '', protocol: p.protocol ?? 'TCP', port: p.port, appProtocol: p.appProtocol };
}

/** What we manage of an imported slice. */
/**
 * Projections of slices, by object: cache objects are replaced, never changed, on every event, and desired slices
 * are immutable, so a slice compared again (every reconcile of its key) is not serialised again.
 */
const sliceProjections = new WeakMap<object, string>();

export function sliceProjection(s: ImportedEndpointSliceObject | k8s.V1EndpointSlice): string {
  let p = sliceProjections.get(s);
  if (p === undefined) {
    p = sliceProjectionOf(s);
    sliceProjections.set(s, p);
  }
  return p;
}

function sliceProjectionOf(s: ImportedEndpointSliceObject | k8s.V1EndpointSlice): string {
  return canonical({
    labels: mapOrEmpty(s.metadata?.labels),
    addressType: s.addressType,
    endpoints: (s.endpoints ?? []).map(sliceEndpoint),
    ports: (s.ports ?? []).map(slicePort),
  });
}

/** What we manage of a ServiceImport: labels, annotations and spec (ips included). */
export function importProjection(si: ServiceImportObject | ServiceImport): string {
  const spec = si.spec ?? {};
  return canonical({
    labels: mapOrEmpty(si.metadata?.labels),
    annotations: mapOrEmpty(si.metadata?.annotations),
    spec: {
      type: spec.type,
      ports: (spec.ports ?? []).map((p) => ({
        name: p.name,
        protocol: p.protocol ?? 'TCP',
        port: p.port,
        appProtocol: p.appProtocol,
      })),
      ips: spec.ips ?? [],
      sessionAffinity: spec.sessionAffinity,
      sessionAffinityConfig: spec.sessionAffinityConfig,
      ipFamilies: spec.ipFamilies ?? [],
      internalTrafficPolicy: spec.internalTrafficPolicy,
      trafficDistribution: spec.trafficDistribution,
    },
  });
}

/** What we manage of a derived Service (see `derivedService`). */
export function derivedServiceProjection(svc: k8s.V1Service): string {
  const spec = svc.spec ?? {};
  const affinity = spec.sessionAffinity ?? 'None';
  return canonical({
    labels: mapOrEmpty(svc.metadata?.labels),
    type: spec.type ?? 'ClusterIP',
    selector: spec.selector ?? {},
    ports: (spec.ports ?? []).map((p) => ({
      name: p.name,
      protocol: p.protocol ?? 'TCP',
      port: p.port,
      appProtocol: p.appProtocol,
    })),
    ipFamilies: spec.ipFamilies ?? [],
    sessionAffinity: affinity,
    // The server defaults the ClientIP timeout (10800 s); only a timeout we chose is compared.
    timeoutSeconds:
      affinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : undefined,
  });
}

/**
 * Whether two desired states of a key are the same: by reference first (resolution hands out the same objects for a
 * key whose records did not change), by canonical JSON for what differs in identity only.
 */
export function sameDesired(a: DesiredService | undefined, b: DesiredService | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (a.serviceImport !== b.serviceImport && canonical(a.serviceImport) !== canonical(b.serviceImport)) return false;
  if (a.endpointSlices !== b.endpointSlices) {
    if (a.endpointSlices.length !== b.endpointSlices.length) return false;
    for (let i = 0; i < a.endpointSlices.length; i++) {
      const x = a.endpointSlices[i];
      const y = b.endpointSlices[i];
      // Projections are memoised per object: the writer needs the new slice's anyway.
      if (x === y) continue;
      if (x === undefined || y === undefined || x.metadata.name !== y.metadata.name) return false;
      if (sliceProjection(x) !== sliceProjection(y)) return false;
    }
  }
  return a.exportConditions === b.exportConditions || canonical(a.exportConditions) === canonical(b.exportConditions);
}
