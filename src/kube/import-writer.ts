/**
 * Makes one service key of this cluster match its desired state: the ServiceImport (spec and `status.clusters`), the
 * derived Service that allocates its ClusterSetIP, the imported EndpointSlices, and the conditions of the local
 * ServiceExport. Level-triggered and idempotent: it reads the caches, writes only real differences, and deletes
 * only objects it owns.
 */
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  CONDITION_CONFLICT,
  CONDITION_READY,
  CONDITION_VALID,
  derivedServiceName,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  LABEL_SOURCE_CLUSTER,
  MANAGED_BY,
  sameConditions,
  splitServiceKey,
  withTransitionTimes,
  type Condition,
  type ConditionData,
  type ServiceKey,
} from '../core/index.js';
import { canonical, derivedServiceProjection, importProjection, ownedBy, sliceProjection } from './compare.js';
import { EVENT_COMPONENT, FIELD_MANAGER, LABEL_OWNED_BY, MCS_GROUP, MCS_VERSION, OWNED_BY } from './constants.js';
import { derivedService, ownerReference, serviceImportBody, sliceBody, type DesiredService } from './desired.js';
import { DEFAULT_API_TIMEOUT_MS, withSignal } from './api-options.js';
import { describeError } from './errors.js';
import type { ResilientInformer } from './informer.js';
import type { KubeMetrics } from './metrics.js';
import type { ServiceExport, ServiceImport } from './objects.js';

/** The caches the writer reads. */
export interface WriterCaches {
  readonly namespaces: ResilientInformer<k8s.V1Namespace>;
  readonly services: ResilientInformer<k8s.V1Service>;
  readonly endpointSlices: ResilientInformer<k8s.V1EndpointSlice>;
  readonly serviceExports: ResilientInformer<ServiceExport>;
  readonly serviceImports: ResilientInformer<ServiceImport>;
}

export interface ImportWriterInit {
  readonly kubeConfig: k8s.KubeConfig;
  readonly caches: WriterCaches;
  readonly logger: Logger;
  readonly metrics: KubeMetrics;
  /** Wall clock for condition transition times and Events. Default `() => new Date()`. */
  readonly now?: () => Date;
  /** Aborts the writes in flight when it fires (leadership lost): a replica that steps down stops writing at once. */
  readonly signal?: () => AbortSignal;
}

const OUR_CONDITIONS = new Set([CONDITION_VALID, CONDITION_READY, CONDITION_CONFLICT]);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** Whether an EndpointSlice is one of our imported slices. */
export function isImportedSlice(s: k8s.V1EndpointSlice): boolean {
  const l = s.metadata?.labels ?? {};
  return l[LABEL_MANAGED_BY] === MANAGED_BY && l[LABEL_SERVICE_NAME] !== undefined;
}

/** Whether a Service is one of our derived Services. */
export function isDerivedService(s: k8s.V1Service): boolean {
  const l = s.metadata?.labels ?? {};
  return l[LABEL_OWNED_BY] === OWNED_BY && l[LABEL_SERVICE_NAME] !== undefined;
}

function isGone(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 404;
}

function seconds(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class ImportWriter {
  readonly #init: ImportWriterInit;
  readonly #log: Logger;
  readonly #custom: k8s.CustomObjectsApi;
  readonly #core: k8s.CoreV1Api;
  readonly #discovery: k8s.DiscoveryV1Api;
  readonly #now: () => Date;
  readonly #instance = `${hostname()}-${process.pid}`;

  constructor(init: ImportWriterInit) {
    this.#init = init;
    this.#log = init.logger;
    this.#custom = init.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.#core = init.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#discovery = init.kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
    this.#now = init.now ?? (() => new Date());
  }

  /** Every service key for which this cluster holds an object we own or a ServiceExport. */
  actualKeys(): Set<ServiceKey> {
    const { caches } = this.#init;
    const keys = new Set<ServiceKey>();
    for (const si of caches.serviceImports.list()) keys.add(`${si.metadata.namespace}/${si.metadata.name}`);
    for (const s of caches.endpointSlices.list())
      if (isImportedSlice(s)) keys.add(`${s.metadata?.namespace}/${s.metadata?.labels?.[LABEL_SERVICE_NAME]}`);
    for (const s of caches.services.list())
      if (isDerivedService(s)) keys.add(`${s.metadata?.namespace}/${s.metadata?.labels?.[LABEL_SERVICE_NAME]}`);
    for (const se of caches.serviceExports.list()) keys.add(`${se.metadata.namespace}/${se.metadata.name}`);
    return keys;
  }

  /**
   * The source clusters this cluster's objects of `key` name: the ServiceImport's `status.clusters` and the imported
   * slices' source-cluster labels. What was written from an origin's records.
   */
  sourcesOf(key: ServiceKey): Set<string> {
    const { namespace, name } = splitServiceKey(key);
    const out = new Set<string>();
    for (const c of this.#init.caches.serviceImports.get(name, namespace)?.status?.clusters ?? [])
      if (typeof c.cluster === 'string') out.add(c.cluster);
    for (const s of this.#slicesOf(namespace, name)) {
      const source = s.metadata?.labels?.[LABEL_SOURCE_CLUSTER];
      if (source !== undefined) out.add(source);
    }
    return out;
  }

  /** Converges `key` to `desired` (undefined: nothing of ours should exist for it). */
  async reconcile(key: ServiceKey, desired: DesiredService | undefined): Promise<void> {
    const { namespace, name } = splitServiceKey(key);
    const ns = this.#init.caches.namespaces.get(namespace);
    const nsLive = ns !== undefined && ns.metadata?.deletionTimestamp === undefined;
    const wantImport = nsLive ? desired?.serviceImport : undefined;
    if (wantImport === undefined) {
      await this.#removeImport(namespace, name);
    } else {
      await this.#ensureImport(namespace, name, desired!);
    }
    if (desired?.exportConditions !== undefined)
      await this.#ensureConditions(namespace, name, desired.exportConditions);
  }

  // ---- imports

  async #removeImport(namespace: string, name: string): Promise<void> {
    const { caches } = this.#init;
    for (const s of this.#slicesOf(namespace, name)) await this.#deleteSlice(namespace, s.metadata?.name ?? '');
    const derived = caches.services.get(derivedServiceName(namespace, name), namespace);
    if (derived !== undefined && isDerivedService(derived))
      await this.#deleteService(namespace, derived.metadata?.name ?? '');
    if (caches.serviceImports.get(name, namespace) !== undefined) {
      await this.#write('serviceimports', 'delete', async () => {
        try {
          await this.#custom.deleteNamespacedCustomObject(
            {
              group: MCS_GROUP,
              version: MCS_VERSION,
              plural: 'serviceimports',
              namespace,
              name,
            },
            this.#options(),
          );
        } catch (err) {
          if (!isGone(err)) throw err;
        }
        caches.serviceImports.deleted(namespace, name);
      });
    }
  }

  #slicesOf(namespace: string, name: string): k8s.V1EndpointSlice[] {
    return this.#init.caches.endpointSlices
      .list(namespace)
      .filter((s) => isImportedSlice(s) && s.metadata?.labels?.[LABEL_SERVICE_NAME] === name);
  }

  async #ensureImport(namespace: string, name: string, desired: DesiredService): Promise<void> {
    const { caches } = this.#init;
    const want = desired.serviceImport!;
    let current = caches.serviceImports.get(name, namespace);
    const derivedName = derivedServiceName(namespace, name);
    let derived = caches.services.get(derivedName, namespace);
    if (derived !== undefined && !isDerivedService(derived)) {
      this.#log.warn({ namespace, service: derivedName }, 'a Service we do not own holds the derived name: left alone');
      derived = undefined;
    }
    const clusterSetIp = want.spec.type === 'ClusterSetIP';
    const ipsOf = (svc: k8s.V1Service | undefined) =>
      svc !== undefined && current !== undefined && ownedBy(svc.metadata?.ownerReferences, current.metadata.uid)
        ? (svc.spec?.clusterIPs ?? []).filter((ip) => ip !== 'None' && ip !== '')
        : [];

    // 1. The ServiceImport (spec.ips from the derived Service once it exists).
    const body = serviceImportBody(want, clusterSetIp ? ipsOf(derived) : []);
    if (current === undefined) {
      current = await this.#write('serviceimports', 'create', async () => {
        const created = (await this.#custom.createNamespacedCustomObject(
          {
            group: MCS_GROUP,
            version: MCS_VERSION,
            plural: 'serviceimports',
            namespace,
            body,
            fieldManager: FIELD_MANAGER,
          },
          this.#options(),
        )) as ServiceImport;
        caches.serviceImports.wrote(created);
        return created;
      });
    } else if (importProjection(current) !== importProjection(body)) {
      current = await this.#replaceImport(namespace, name, body, current);
    }

    // 2. status.clusters.
    const clusters = want.status.clusters.map((c) => ({ cluster: c.cluster }));
    if (canonical(current.status?.clusters ?? []) !== canonical(clusters)) {
      current = await this.#write('serviceimports/status', 'patch', async () => {
        const patched = (await this.#custom.patchNamespacedCustomObjectStatus(
          {
            group: MCS_GROUP,
            version: MCS_VERSION,
            plural: 'serviceimports',
            namespace,
            name,
            body: { status: { clusters } },
            fieldManager: FIELD_MANAGER,
          },
          this.#options(mergePatch),
        )) as ServiceImport;
        caches.serviceImports.wrote(patched);
        return patched;
      });
    }

    // 3. The derived Service (ClusterSetIP only), then spec.ips from its cluster IPs.
    if (clusterSetIp) {
      const wantSvc = derivedService(want, current);
      if (derived !== undefined && canonical(derived.spec?.ipFamilies ?? []) !== canonical(wantSvc.spec?.ipFamilies)) {
        await this.#deleteService(namespace, derivedName); // ip families cannot be changed in place
        derived = undefined;
      }
      if (derived === undefined) {
        derived = await this.#write('services', 'create', async () => {
          const created = await this.#core.createNamespacedService(
            {
              namespace,
              body: wantSvc,
              fieldManager: FIELD_MANAGER,
            },
            this.#options(),
          );
          caches.services.wrote(created);
          return created;
        });
      } else if (
        derivedServiceProjection(derived) !== derivedServiceProjection(wantSvc) ||
        !ownedBy(derived.metadata?.ownerReferences, current.metadata.uid)
      ) {
        const next: k8s.V1Service = structuredClone(derived);
        next.metadata = {
          ...next.metadata,
          labels: wantSvc.metadata?.labels,
          ownerReferences: [ownerReference(current)],
        };
        next.spec = { ...next.spec, ...wantSvc.spec };
        if (wantSvc.spec?.sessionAffinityConfig === undefined) delete next.spec.sessionAffinityConfig;
        derived = await this.#write('services', 'update', async () => {
          const updated = await this.#core.replaceNamespacedService(
            {
              namespace,
              name: derivedName,
              body: next,
              fieldManager: FIELD_MANAGER,
            },
            this.#options(),
          );
          caches.services.wrote(updated);
          return updated;
        });
      }
      const ips = ipsOf(derived);
      if (ips.length > 0 && canonical(current.spec?.ips ?? []) !== canonical(ips)) {
        current = await this.#replaceImport(namespace, name, serviceImportBody(want, ips), current);
      }
    } else if (derived !== undefined) {
      await this.#deleteService(namespace, derivedName);
    }

    // 4. Imported slices: one per source cluster and endpoint group, owned by the ServiceImport.
    const wanted = new Map(desired.endpointSlices.map((s) => [s.metadata.name, s]));
    for (const s of this.#slicesOf(namespace, name)) {
      const sliceName = s.metadata?.name ?? '';
      if (!wanted.has(sliceName)) await this.#deleteSlice(namespace, sliceName);
    }
    for (const [sliceName, w] of wanted) {
      const actual = caches.endpointSlices.get(sliceName, namespace);
      const wantBody = sliceBody(w, current);
      if (actual === undefined) {
        await this.#write('endpointslices', 'create', async () => {
          const created = await this.#discovery.createNamespacedEndpointSlice(
            {
              namespace,
              body: wantBody,
              fieldManager: FIELD_MANAGER,
            },
            this.#options(),
          );
          caches.endpointSlices.wrote(created);
        });
      } else if (!isImportedSlice(actual)) {
        this.#log.warn(
          { namespace, slice: sliceName },
          'an EndpointSlice we do not own holds an imported name: left alone',
        );
      } else if (actual.addressType !== wantBody.addressType) {
        await this.#deleteSlice(namespace, sliceName); // addressType is immutable: recreated on the next pass
        throw new Error(`slice ${namespace}/${sliceName} changed address type; recreating`);
      } else if (
        sliceProjection(actual) !== sliceProjection(w) ||
        !ownedBy(actual.metadata?.ownerReferences, current.metadata.uid)
      ) {
        const next: k8s.V1EndpointSlice = {
          ...wantBody,
          metadata: { ...wantBody.metadata, resourceVersion: actual.metadata?.resourceVersion },
        };
        await this.#write('endpointslices', 'update', async () => {
          const updated = await this.#discovery.replaceNamespacedEndpointSlice(
            {
              namespace,
              name: sliceName,
              body: next,
              fieldManager: FIELD_MANAGER,
            },
            this.#options(),
          );
          caches.endpointSlices.wrote(updated);
        });
      }
    }
  }

  async #replaceImport(
    namespace: string,
    name: string,
    body: ServiceImport,
    current: ServiceImport,
  ): Promise<ServiceImport> {
    const next: ServiceImport = {
      ...body,
      metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion },
    };
    return this.#write('serviceimports', 'update', async () => {
      const updated = (await this.#custom.replaceNamespacedCustomObject(
        {
          group: MCS_GROUP,
          version: MCS_VERSION,
          plural: 'serviceimports',
          namespace,
          name,
          body: next,
          fieldManager: FIELD_MANAGER,
        },
        this.#options(),
      )) as ServiceImport;
      this.#init.caches.serviceImports.wrote(updated);
      return updated;
    });
  }

  async #deleteSlice(namespace: string, name: string): Promise<void> {
    await this.#write('endpointslices', 'delete', async () => {
      try {
        await this.#discovery.deleteNamespacedEndpointSlice({ namespace, name }, this.#options());
      } catch (err) {
        if (!isGone(err)) throw err;
      }
      this.#init.caches.endpointSlices.deleted(namespace, name);
    });
  }

  async #deleteService(namespace: string, name: string): Promise<void> {
    await this.#write('services', 'delete', async () => {
      try {
        await this.#core.deleteNamespacedService({ namespace, name }, this.#options());
      } catch (err) {
        if (!isGone(err)) throw err;
      }
      this.#init.caches.services.deleted(namespace, name);
    });
  }

  // ---- ServiceExport conditions

  async #ensureConditions(namespace: string, name: string, want: readonly ConditionData[]): Promise<void> {
    const { caches } = this.#init;
    const se = caches.serviceExports.get(name, namespace);
    if (se === undefined || se.metadata.deletionTimestamp !== undefined) return;
    const previous = se.status?.conditions ?? [];
    const ours = previous.filter((c) => OUR_CONDITIONS.has(c.type));
    const generation = se.metadata.generation;
    const sameGeneration = ours.every((c) => c.observedGeneration === generation);
    if (sameConditions(ours, want) && sameGeneration) return;
    const now = this.#now();
    const stamped: Condition[] = withTransitionTimes(want, ours, seconds(now)).map((c) =>
      generation === undefined ? c : { ...c, observedGeneration: generation },
    );
    const conditions = [...stamped, ...previous.filter((c) => !OUR_CONDITIONS.has(c.type))];
    const patched = await this.#write('serviceexports/status', 'patch', async () => {
      try {
        return (await this.#custom.patchNamespacedCustomObjectStatus(
          {
            group: MCS_GROUP,
            version: MCS_VERSION,
            plural: 'serviceexports',
            namespace,
            name,
            body: { status: { conditions } },
            fieldManager: FIELD_MANAGER,
          },
          this.#options(mergePatch),
        )) as ServiceExport;
      } catch (err) {
        if (isGone(err)) return undefined;
        throw err;
      }
    });
    if (patched === undefined) return;
    caches.serviceExports.wrote(patched);
    const prior = new Map(ours.map((c) => [c.type, c]));
    for (const c of want) {
      const p = prior.get(c.type);
      if (p !== undefined && p.status === c.status && p.reason === c.reason) continue;
      await this.#event(patched, c, now);
    }
  }

  async #event(se: ServiceExport, c: ConditionData, now: Date): Promise<void> {
    const warning =
      (c.type === CONDITION_VALID && c.status === 'False') ||
      (c.type === CONDITION_CONFLICT && c.status === 'True') ||
      (c.type === CONDITION_READY && c.status === 'False');
    const namespace = se.metadata.namespace ?? '';
    const event: k8s.CoreV1Event = {
      metadata: {
        name: `${se.metadata.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`,
        namespace,
      },
      involvedObject: {
        apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
        kind: 'ServiceExport',
        name: se.metadata.name,
        namespace,
        uid: se.metadata.uid,
        resourceVersion: se.metadata.resourceVersion,
      },
      reason: `${c.type}${c.status === 'True' ? '' : c.status}`,
      message: `${c.type}=${c.status} (${c.reason}): ${c.message}`.slice(0, 1024),
      type: warning ? 'Warning' : 'Normal',
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.#instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.#write('events', 'create', () =>
        this.#core.createNamespacedEvent({ namespace, body: event }, this.#options()),
      );
    } catch (err) {
      this.#log.debug({ err: describeError(err) }, 'recording an Event failed');
    }
  }

  /** Per-request options: a timeout, and the abort of the current leadership. */
  #options(base?: k8s.ConfigurationOptions): k8s.ConfigurationOptions {
    const timeout = AbortSignal.timeout(DEFAULT_API_TIMEOUT_MS);
    const lead = this.#init.signal?.();
    return withSignal(lead === undefined ? timeout : AbortSignal.any([timeout, lead]), base);
  }

  // ---- instrumentation

  async #write<T>(resource: string, verb: string, fn: () => Promise<T>): Promise<T> {
    const end = this.#init.metrics.apiWriteDuration.startTimer({ resource, verb });
    try {
      const out = await fn();
      this.#init.metrics.apiWrites.inc({ resource, verb, result: 'ok' });
      return out;
    } catch (err) {
      const code = err instanceof k8s.ApiException ? err.code : 0;
      const result = code === 409 ? 'conflict' : code === 404 ? 'notfound' : 'error';
      this.#init.metrics.apiWrites.inc({ resource, verb, result });
      throw err;
    } finally {
      end();
    }
  }
}
