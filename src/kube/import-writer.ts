/**
 * Makes one service key of this cluster match its desired state: the ServiceImport (spec, `status.clusters` and its
 * `Ready` condition), the derived Service that allocates its ClusterSetIP, the imported EndpointSlices, and the
 * conditions of the local ServiceExport. Level-triggered and idempotent: it reads the caches, writes only real differences, and deletes
 * only objects it owns.
 */
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { apiClient } from './api-client.js';
import type { Logger } from 'pino';
import {
  CONDITION_CONFLICT,
  CONDITION_READY,
  CONDITION_VALID,
  compareStrings,
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
  type ServiceImportObject,
  type ServiceKey,
} from '../core/index.js';
import type { ClusterIpPlanner } from './cluster-ip.js';
import { canonical, derivedServiceProjection, importProjection, sliceProjection } from './compare.js';
import { EVENT_COMPONENT, FIELD_MANAGER, LABEL_OWNED_BY, MCS_GROUP, MCS_VERSION, OWNED_BY } from './constants.js';
import { derivedService, serviceImportBody, sliceBody, type DesiredService } from './desired.js';
import { DEFAULT_API_TIMEOUT_MS, withSignal } from './api-options.js';
import { apiServerMessage, describeError } from './errors.js';
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
  /**
   * Picks the ClusterSetIPs of new derived Services; without it, the API server picks them (one write later). The
   * Services cache must then be indexed by `serviceIpIndex` (./cluster-ip.ts).
   */
  readonly clusterIps?: ClusterIpPlanner;
  /** Called when the API server refused a picked address as outside its service ranges (they changed). */
  readonly onServiceRangesStale?: () => void;
}

const OUR_CONDITIONS = new Set([CONDITION_VALID, CONDITION_READY, CONDITION_CONFLICT]);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** Whether an EndpointSlice is one of our imported slices. */
export function isImportedSlice(s: k8s.V1EndpointSlice): boolean {
  const l = s.metadata?.labels ?? {};
  return l[LABEL_MANAGED_BY] === MANAGED_BY && l[LABEL_SERVICE_NAME] !== undefined;
}

/** The slices-cache index value of the imported slices of `key` (see the adapter's EndpointSlice cache). */
export function importedSlicesOf(key: ServiceKey): string {
  return `${IMPORT_INDEX}${key}`;
}

/** The slices-cache index value of the local slices of the Service `key`. */
export function localSlicesOf(key: ServiceKey): string {
  return `${LOCAL_INDEX}${key}`;
}

export const IMPORT_INDEX = 'import ';
export const LOCAL_INDEX = 'local ';

/** Whether a Service is one of our derived Services. */
export function isDerivedService(s: k8s.V1Service): boolean {
  const l = s.metadata?.labels ?? {};
  return l[LABEL_OWNED_BY] === OWNED_BY && l[LABEL_SERVICE_NAME] !== undefined;
}

/** The cluster IPs of our derived Service (none before it exists, or while the API server has not given any). */
function ipsOf(svc: k8s.V1Service | undefined): string[] {
  return (svc?.spec?.clusterIPs ?? []).filter((ip) => ip !== 'None' && ip !== '');
}

function isGone(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 404;
}

function seconds(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Whether a ServiceExport condition reports a problem: Valid=False, Conflict=True, Ready=False. */
function isProblem(c: { readonly type: string; readonly status: string }): boolean {
  return (
    (c.type === CONDITION_VALID && c.status === 'False') ||
    (c.type === CONDITION_CONFLICT && c.status === 'True') ||
    (c.type === CONDITION_READY && c.status === 'False')
  );
}

/** Longest API server message a ServiceImport condition quotes. */
const MAX_CONDITION_MESSAGE = 1000;

function cut(message: string): string {
  return message.length > MAX_CONDITION_MESSAGE ? `${message.slice(0, MAX_CONDITION_MESSAGE - 3)}...` : message;
}

/**
 * Whether the API server refused a derived Service for the addresses it asked for (HTTP 422 naming
 * `spec.clusterIP(s)`: taken meanwhile, or outside the service ranges), not for anything else in it.
 */
export function isClusterIpRefusal(f: WriteError): boolean {
  return isServiceInvalid(f, /spec\.clusterIPs?\b/);
}

/** Whether the API server found a derived Service invalid (HTTP 422) with a message that matches `message`. */
function isServiceInvalid(f: WriteError, message: RegExp): boolean {
  return f.resource === 'services' && f.code === 422 && message.test(apiServerMessage(f.cause));
}

/** An API server's answer that says the cluster cannot give a Service the requested ip families. */
const IP_FAMILY_REFUSAL = /ipFamil|dual-stack|not configured/i;

/**
 * Whether the API server refused the derived Service for its ip families (a single-stack cluster asked for IPv6 or
 * dual-stack): HTTP 422 naming ipFamilies / ipFamilyPolicy, dual-stack or an unconfigured family.
 */
export function isIpFamilyRefusal(f: WriteError): boolean {
  return isServiceInvalid(f, IP_FAMILY_REFUSAL);
}

/**
 * The conditions of a ServiceImport: the core's (cluster-independent), with `Ready` overridden by what only this
 * cluster knows, the writes of the import side its API server refused: False `IPFamilyNotSupported` with the API
 * server's message when it refused the derived Service for its ip families, else False `WriteRefused` with the
 * first refusal by resource, verb and object. Failures that are not refusals (conflicts, timeouts) are retried and
 * change nothing.
 */
export function importReady(core: readonly ConditionData[], failures: readonly WriteError[]): ConditionData[] {
  // In a fixed order (the writes run at the same time and fail in any order): the same refusals give the same message.
  const order = (f: WriteError): string => `${f.resource} ${f.verb} ${f.object}`;
  const ordered = [...failures].sort((a, b) => compareStrings(order(a), order(b)));
  const family = ordered.find(isIpFamilyRefusal);
  const refused = ordered.find((f) => f.refused);
  if (family === undefined && refused === undefined) return [...core];
  const ready: ConditionData =
    family !== undefined
      ? {
          type: CONDITION_READY,
          status: 'False',
          reason: 'IPFamilyNotSupported',
          message: cut(apiServerMessage(family.cause)),
        }
      : { type: CONDITION_READY, status: 'False', reason: 'WriteRefused', message: cut(refused!.message) };
  return [ready, ...core.filter((c) => c.type !== CONDITION_READY)];
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
    this.#custom = apiClient(init.kubeConfig, k8s.CustomObjectsApi);
    this.#core = apiClient(init.kubeConfig, k8s.CoreV1Api);
    this.#discovery = apiClient(init.kubeConfig, k8s.DiscoveryV1Api);
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

  /** The names and resourceVersions of every object of `key` in the cluster (see {@link fingerprintOf}). */
  actualFingerprint(key: ServiceKey): string {
    const { namespace, name } = splitServiceKey(key);
    const { caches } = this.#init;
    const slices = this.#slicesOf(namespace, name).sort((a, b) =>
      (a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1,
    );
    return fingerprintOf([
      caches.serviceImports.get(name, namespace),
      caches.services.get(derivedServiceName(namespace, name), namespace),
      ...slices,
    ]);
  }

  /**
   * Converges `key` to `desired` (undefined: nothing of ours should exist for it). The import side (derived Service,
   * ServiceImport and slices, together where it can; last, its status) and the export side (the ServiceExport's
   * conditions) are written independently and at the same time: a refused write on one never keeps the other from
   * being written. Throws a {@link ReconcileError} listing every write that failed.
   */
  async reconcile(key: ServiceKey, desired: DesiredService | undefined): Promise<void> {
    const { namespace, name } = splitServiceKey(key);
    const ns = this.#init.caches.namespaces.get(namespace);
    const nsLive = ns !== undefined && ns.metadata?.deletionTimestamp === undefined;
    const wantImport = nsLive ? desired?.serviceImport : undefined;
    const failures: WriteError[] = [];
    const step = async (fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof ReconcileError) failures.push(...err.failures);
        else failures.push(err instanceof WriteError ? err : new WriteError('reconcile', 'run', key, err));
      }
    };
    // The two sides at the same time: the ServiceExport's conditions say what this cluster published, never wait
    // for its own import.
    const conditions = desired?.exportConditions;
    await Promise.all([
      wantImport === undefined
        ? step(() => this.#removeImport(namespace, name))
        : step(() => this.#ensureImport(namespace, name, desired!)),
      conditions === undefined ? undefined : step(() => this.#ensureConditions(namespace, name, conditions)),
    ]);
    if (failures.length > 0) throw new ReconcileError(key, failures);
  }

  // ---- imports

  async #removeImport(namespace: string, name: string): Promise<void> {
    const { caches } = this.#init;
    for (const s of this.#slicesOf(namespace, name)) await this.#deleteSlice(namespace, s.metadata?.name ?? '');
    const derived = caches.services.get(derivedServiceName(namespace, name), namespace);
    if (derived !== undefined && isDerivedService(derived))
      await this.#deleteService(namespace, derived.metadata?.name ?? '');
    if (caches.serviceImports.get(name, namespace) !== undefined) {
      await this.#write('serviceimports', 'delete', `${namespace}/${name}`, async () => {
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
      .byIndex(importedSlicesOf(`${namespace}/${name}`))
      .filter((s) => isImportedSlice(s) && s.metadata?.labels?.[LABEL_SERVICE_NAME] === name);
  }

  async #ensureImport(namespace: string, name: string, desired: DesiredService): Promise<void> {
    const { caches } = this.#init;
    const want = desired.serviceImport!;
    const object = `${namespace}/${name}`;
    const cached = caches.serviceImports.get(name, namespace);
    const derivedName = derivedServiceName(namespace, name);
    const derived = this.#derivedOf(namespace, derivedName);
    const clusterSetIp = want.spec.type === 'ClusterSetIP';

    // The steps below are each tried whatever the others did (an update the API server refuses included); only a
    // ServiceImport that cannot be created stops its status from being written.
    const failures: WriteError[] = [];
    /** Runs one write; its failure is recorded, and the answer says whether it succeeded. */
    const step = async (fn: () => Promise<unknown>): Promise<boolean> => {
      try {
        await fn();
        return true;
      } catch (err) {
        failures.push(err instanceof WriteError ? err : new WriteError('serviceimports', 'reconcile', object, err));
        return false;
      }
    };

    // 1. The derived Service (ClusterSetIP only). A new import's gets an address the node picks (./cluster-ip.ts), so
    // it is created at the same time as the ServiceImport (with those ips) and the slices: one write deep, not two.
    // Else (an existing ServiceImport, whose ips must not name an address before a Service holds it; the cluster's
    // service ranges unknown; no address free near the hashed place; a Service to update) it is written first, so
    // that a new ServiceImport is still created with its ips in one write (docs/operations.md "Writes, and why each").
    let svc = derived;
    // (A Service we do not own under the derived name gets no pick: the create fails whatever the ips.)
    const nameFree = caches.services.get(derivedName, namespace) === undefined;
    const planned = clusterSetIp && nameFree && cached === undefined ? this.#pick(object, want) : undefined;
    const ensureDerived = async (): Promise<void> => {
      const ok = await step(async () => {
        svc = await this.#ensureDerived(namespace, derivedName, derived, want, planned);
      });
      // After a failure (e.g. a recreate for new ip families refused), what the cache holds now: never a Service
      // deleted on the way, whose ips are free again.
      if (!ok) svc = this.#derivedOf(namespace, derivedName);
    };
    if (clusterSetIp && planned === undefined) await ensureDerived();
    else if (!clusterSetIp && derived !== undefined) await step(() => this.#deleteService(namespace, derivedName));

    // 2. The ServiceImport, spec.ips the derived Service's cluster IPs (or the planned ones); 3. the imported slices
    // (one per source cluster and endpoint group, each on its own), beside it: they are owned by nothing (as the
    // derived Service), so they wait for no uid.
    const body = serviceImportBody(want, clusterSetIp ? (planned ?? ipsOf(svc)) : []);
    let si: ServiceImport | undefined = cached;
    let importFailed = false;
    const writeImport = async (): Promise<void> => {
      if (cached === undefined) {
        try {
          si = await this.#write('serviceimports', 'create', object, async () => {
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
        } catch (err) {
          // Its status cannot be written without it.
          failures.push(err instanceof WriteError ? err : new WriteError('serviceimports', 'create', object, err));
          importFailed = true;
        }
      } else if (importProjection(cached) !== importProjection(body)) {
        await step(async () => {
          si = await this.#replaceImport(namespace, name, body, cached);
        });
      }
    };
    const writeSlices = async (): Promise<void> => {
      const wanted = new Map(desired.endpointSlices.map((s) => [s.metadata.name, s]));
      const work: Promise<boolean>[] = [];
      for (const s of this.#slicesOf(namespace, name)) {
        const sliceName = s.metadata?.name ?? '';
        if (!wanted.has(sliceName)) work.push(step(() => this.#deleteSlice(namespace, sliceName)));
      }
      for (const [sliceName, w] of wanted) work.push(step(() => this.#ensureSlice(namespace, sliceName, w)));
      await Promise.all(work);
    };
    try {
      await Promise.all([planned === undefined ? undefined : ensureDerived(), writeImport(), writeSlices()]);
      if (importFailed) throw new ReconcileError(object, failures);
      // The API server gave the derived Service other ips than the planned ones (an address taken meanwhile), or
      // none (its create failed): the ServiceImport says what the Service holds.
      if (planned !== undefined && canonical(si!.spec?.ips ?? []) !== canonical(ipsOf(svc))) {
        const current = si!;
        await step(async () => {
          si = await this.#replaceImport(namespace, name, serviceImportBody(want, ipsOf(svc)), current);
        });
      }
    } finally {
      // Held until the ServiceImport no longer names them unless a Service holds them (no other key may pick them
      // meanwhile); if that fix-up failed, the next reconcile of this key does it.
      if (planned !== undefined) this.#init.clusterIps?.release(planned);
    }
    const current = si!;

    // 4. The status, last: `status.clusters` and the Ready condition, which says what the API server refused above.
    // A step of its own: written whatever the others did, and its own failure is added to theirs.
    const ready = importReady(want.status.conditions, failures);
    await step(() => this.#ensureImportStatus(namespace, name, current, want, ready));
    if (failures.length > 0) throw new ReconcileError(object, failures);
  }

  /** `status.clusters` and the ServiceImport's conditions in one merge patch via `/status`, when either differs. */
  async #ensureImportStatus(
    namespace: string,
    name: string,
    si: ServiceImport,
    want: ServiceImportObject,
    conditions: readonly ConditionData[],
  ): Promise<void> {
    const { caches } = this.#init;
    const clusters = want.status.clusters.map((c) => ({ cluster: c.cluster }));
    const previous = si.status?.conditions ?? [];
    const types = new Set(conditions.map((c) => c.type));
    const ours = previous.filter((c) => types.has(c.type));
    if (canonical(si.status?.clusters ?? []) === canonical(clusters) && sameConditions(ours, conditions)) return;
    const now = this.#now();
    const stamped = withTransitionTimes(conditions, ours, seconds(now));
    const all = [...stamped, ...previous.filter((c) => !types.has(c.type))];
    const patched = await this.#write('serviceimports/status', 'patch', `${namespace}/${name}`, async () => {
      const out = (await this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: MCS_GROUP,
          version: MCS_VERSION,
          plural: 'serviceimports',
          namespace,
          name,
          body: { status: { clusters, conditions: all } },
          fieldManager: FIELD_MANAGER,
        },
        this.#options(mergePatch),
      )) as ServiceImport;
      caches.serviceImports.wrote(out);
      return out;
    });
    const prior = new Map(ours.map((c) => [c.type, c]));
    for (const c of conditions) {
      const p = prior.get(c.type);
      if (c.status !== 'False' || (p !== undefined && p.status === c.status && p.reason === c.reason)) continue;
      await this.#recordEvent(
        {
          apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
          kind: 'ServiceImport',
          name,
          namespace,
          uid: patched.metadata.uid,
          resourceVersion: patched.metadata.resourceVersion,
        },
        `${c.type}${c.status}`,
        `${c.type}=${c.status} (${c.reason}): ${c.message}`,
        true,
        now,
      );
    }
  }

  /** Our derived Service of that name, if there is one (a Service we do not own under the name is left alone). */
  #derivedOf(namespace: string, derivedName: string): k8s.V1Service | undefined {
    const derived = this.#init.caches.services.get(derivedName, namespace);
    if (derived === undefined || isDerivedService(derived)) return derived;
    this.#log.warn({ namespace, service: derivedName }, 'a Service we do not own holds the derived name: left alone');
    return undefined;
  }

  /**
   * Addresses for a new derived Service of `want` (see ./cluster-ip.ts), reserved until released; undefined when the
   * API server is to pick them (no planner, service ranges unknown, no free address near the hashed place).
   */
  #pick(object: string, want: ServiceImportObject): string[] | undefined {
    const planner = this.#init.clusterIps;
    if (planner === undefined) return undefined;
    // The Services cache is indexed by cluster IP (serviceIpIndex): no walk of every Service per pick.
    const services = this.#init.caches.services;
    return planner.pick(object, want.spec.ipFamilies, (ip) => services.byIndex(ip).length > 0);
  }

  /**
   * Creates or updates our derived Service. It has no ownerReference: it is created before or beside its
   * ServiceImport (whose uid does not exist yet), and a ServiceImport deleted by hand is written again with the same
   * ClusterSetIP. The node deletes it with its import (unexport, `mcs-gossip leave`). A new one asks for the `planned`
   * addresses when given; refused for them (taken meanwhile, or outside a service range that changed), it is created
   * again without, and the API server picks.
   */
  async #ensureDerived(
    namespace: string,
    derivedName: string,
    derived: k8s.V1Service | undefined,
    want: ServiceImportObject,
    planned?: readonly string[],
  ): Promise<k8s.V1Service> {
    const { caches } = this.#init;
    const object = `${namespace}/${derivedName}`;
    const wantSvc = derivedService(want);
    if (derived !== undefined && canonical(derived.spec?.ipFamilies ?? []) !== canonical(wantSvc.spec?.ipFamilies)) {
      await this.#deleteService(namespace, derivedName); // ip families cannot be changed in place
      derived = undefined;
    }
    if (derived === undefined) {
      const create = (body: k8s.V1Service) =>
        this.#write('services', 'create', object, async () => {
          const created = await this.#core.createNamespacedService(
            { namespace, body, fieldManager: FIELD_MANAGER },
            this.#options(),
          );
          caches.services.wrote(created);
          return created;
        });
      const picks = this.#init.metrics.clusterIpPicks;
      if (planned === undefined) {
        const created = await create(wantSvc);
        picks.inc({ result: 'api' });
        return created;
      }
      try {
        const created = await create({
          ...wantSvc,
          spec: { ...wantSvc.spec, clusterIP: planned[0], clusterIPs: [...planned] },
        });
        picks.inc({ result: 'planned' });
        return created;
      } catch (err) {
        if (!(err instanceof WriteError && isClusterIpRefusal(err))) throw err;
        this.#log.info(
          { namespace, service: derivedName, ips: planned, reason: apiServerMessage(err.cause) },
          'the planned ClusterSetIP was refused; the API server picks one',
        );
        picks.inc({ result: 'refused' });
        if (!/already allocated/i.test(apiServerMessage(err.cause))) this.#init.onServiceRangesStale?.();
        return create(wantSvc);
      }
    }
    if (derivedServiceProjection(derived) === derivedServiceProjection(wantSvc)) return derived;
    const next: k8s.V1Service = structuredClone(derived);
    next.metadata = { ...next.metadata, labels: wantSvc.metadata?.labels };
    next.spec = { ...next.spec, ...wantSvc.spec };
    if (wantSvc.spec?.sessionAffinityConfig === undefined) delete next.spec.sessionAffinityConfig;
    return this.#write('services', 'update', object, async () => {
      const updated = await this.#core.replaceNamespacedService(
        { namespace, name: derivedName, body: next, fieldManager: FIELD_MANAGER },
        this.#options(),
      );
      caches.services.wrote(updated);
      return updated;
    });
  }

  /**
   * One imported slice. Owned by nothing, like the derived Service: it is written beside the ServiceImport and the
   * Service, before either has a uid. A slice an earlier version wrote with an ownerReference is not rewritten for it.
   */
  async #ensureSlice(namespace: string, sliceName: string, w: DesiredService['endpointSlices'][number]): Promise<void> {
    const { caches } = this.#init;
    const actual = caches.endpointSlices.get(sliceName, namespace);
    if (
      actual !== undefined &&
      isImportedSlice(actual) &&
      actual.addressType === w.addressType &&
      sliceProjection(actual) === sliceProjection(w)
    )
      return; // as it should be: nothing to build or write
    const wantBody = sliceBody(w);
    if (actual === undefined) {
      await this.#write('endpointslices', 'create', `${namespace}/${sliceName}`, async () => {
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
    } else {
      const next: k8s.V1EndpointSlice = {
        ...wantBody,
        metadata: { ...wantBody.metadata, resourceVersion: actual.metadata?.resourceVersion },
      };
      await this.#write('endpointslices', 'update', `${namespace}/${sliceName}`, async () => {
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
    return this.#write('serviceimports', 'update', `${namespace}/${name}`, async () => {
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
    await this.#write('endpointslices', 'delete', `${namespace}/${name}`, async () => {
      try {
        await this.#discovery.deleteNamespacedEndpointSlice({ namespace, name }, this.#options());
      } catch (err) {
        if (!isGone(err)) throw err;
      }
      this.#init.caches.endpointSlices.deleted(namespace, name);
    });
  }

  async #deleteService(namespace: string, name: string): Promise<void> {
    await this.#write('services', 'delete', `${namespace}/${name}`, async () => {
      try {
        // Orphan: slices an earlier version made it the owner of are the import's to keep or delete (a ClusterSetIP
        // import turning Headless keeps them), never the garbage collector's.
        await this.#core.deleteNamespacedService({ namespace, name, propagationPolicy: 'Orphan' }, this.#options());
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
    const patched = await this.#write('serviceexports/status', 'patch', `${namespace}/${name}`, async () => {
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
    // Events only where they help an operator: a condition turning into a problem (Valid=False, Conflict=True,
    // Ready=False), and the recovery from one. A healthy export's first conditions make none (docs/operations.md).
    const prior = new Map(ours.map((c) => [c.type, c]));
    for (const c of want) {
      const p = prior.get(c.type);
      if (p !== undefined && p.status === c.status && p.reason === c.reason) continue;
      const warning = isProblem(c);
      if (!warning && (p === undefined || !isProblem(p))) continue;
      await this.#event(patched, c, warning, now);
    }
  }

  async #event(se: ServiceExport, c: ConditionData, warning: boolean, now: Date): Promise<void> {
    await this.#recordEvent(
      {
        apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
        kind: 'ServiceExport',
        name: se.metadata.name ?? '',
        namespace: se.metadata.namespace ?? '',
        uid: se.metadata.uid,
        resourceVersion: se.metadata.resourceVersion,
      },
      `${c.type}${c.status === 'True' ? '' : c.status}`,
      `${c.type}=${c.status} (${c.reason}): ${c.message}`,
      warning,
      now,
    );
  }

  /**
   * Reports writes of `key` the API server refused (see {@link ReconcileError.refused}) as a Warning Event: on the
   * ServiceImport for the import side (it may not exist yet: the Event names it anyway) and on the ServiceExport
   * when its status could not be written.
   */
  async reportRefusal(key: ServiceKey, err: ReconcileError): Promise<void> {
    const { namespace, name } = splitServiceKey(key);
    const now = this.#now();
    const exportSide = err.failures.filter((f) => f.resource === 'serviceexports/status');
    const importSide = err.failures.filter((f) => f.resource !== 'serviceexports/status');
    if (importSide.length > 0) {
      const si = this.#init.caches.serviceImports.get(name, namespace);
      await this.#recordEvent(
        {
          apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
          kind: 'ServiceImport',
          name,
          namespace,
          ...(si?.metadata.uid === undefined ? {} : { uid: si.metadata.uid }),
        },
        'ImportRefused',
        `the API server refused ${importSide.map((f) => f.message).join('; ')}`,
        true,
        now,
      );
    }
    const se = this.#init.caches.serviceExports.get(name, namespace);
    if (exportSide.length > 0 && se !== undefined) {
      await this.#recordEvent(
        {
          apiVersion: `${MCS_GROUP}/${MCS_VERSION}`,
          kind: 'ServiceExport',
          name,
          namespace,
          uid: se.metadata.uid,
        },
        'StatusRefused',
        `the API server refused ${exportSide.map((f) => f.message).join('; ')}`,
        true,
        now,
      );
    }
  }

  async #recordEvent(
    involved: k8s.V1ObjectReference & { name: string; namespace: string },
    reason: string,
    message: string,
    warning: boolean,
    now: Date,
  ): Promise<void> {
    const { namespace } = involved;
    const event: k8s.CoreV1Event = {
      metadata: {
        name: `${involved.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`,
        namespace,
      },
      involvedObject: involved,
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      type: warning ? 'Warning' : 'Normal',
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.#instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.#write('events', 'create', `${namespace}/${event.metadata?.name}`, () =>
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

  /** Runs one API write of `resource` `object` (`<namespace>/<name>`); a failure is thrown as a {@link WriteError}. */
  async #write<T>(resource: string, verb: string, object: string, fn: () => Promise<T>): Promise<T> {
    const end = this.#init.metrics.apiWriteDuration.startTimer({ resource, verb });
    try {
      const out = await fn();
      this.#init.metrics.apiWrites.inc({ resource, verb, result: 'ok' });
      return out;
    } catch (err) {
      const code = err instanceof k8s.ApiException ? err.code : 0;
      const result = code === 409 ? 'conflict' : code === 404 ? 'notfound' : isRefusal(code) ? 'refused' : 'error';
      this.#init.metrics.apiWrites.inc({ resource, verb, result });
      throw new WriteError(resource, verb, object, err);
    } finally {
      end();
    }
  }
}

/**
 * Whether an HTTP status says the API server refused the request itself (invalid, forbidden, too large, …): sending
 * it again unchanged fails again. 401 (credentials expired or rotated), 404 (gone), 408 (timeout), 409 (conflict)
 * and 429 (throttled) are not refusals.
 */
export function isRefusal(code: number): boolean {
  return code >= 400 && code < 500 && code !== 401 && code !== 404 && code !== 408 && code !== 409 && code !== 429;
}

/**
 * What the cluster holds of a key, as names and resourceVersions: a refused key is retried early when this changes
 * (an object of it was deleted or changed by someone else), not only when what it should hold changes.
 */
export function fingerprintOf(
  objects: readonly ({ metadata?: { resourceVersion?: string; name?: string } } | undefined)[],
): string {
  return objects.map((o) => (o === undefined ? '-' : `${o.metadata?.name}@${o.metadata?.resourceVersion}`)).join(',');
}

/** One failed API write: what, of which object, and the API server's answer. */
export class WriteError extends Error {
  override readonly name = 'WriteError';
  /** The HTTP status, 0 when the request got no answer (network, timeout, abort). */
  readonly code: number;
  constructor(
    readonly resource: string,
    readonly verb: string,
    readonly object: string,
    override readonly cause: unknown,
  ) {
    super(`${verb} ${resource} ${object}: ${describeError(cause)}`);
    this.code = cause instanceof k8s.ApiException ? cause.code : cause instanceof WriteError ? cause.code : 0;
  }

  /** The API server refused the write as it is: retrying it unchanged would fail the same way. */
  get refused(): boolean {
    return isRefusal(this.code);
  }
}

/** Every write of one reconcile of a key that failed. */
export class ReconcileError extends Error {
  override readonly name = 'ReconcileError';
  constructor(
    readonly key: string,
    readonly failures: readonly WriteError[],
  ) {
    super(failures.map((f) => f.message).join('; '));
  }

  /** Every failure is a refusal: nothing will change by retrying before the desired state or the cluster does. */
  get refused(): boolean {
    return this.failures.length > 0 && this.failures.every((f) => f.refused);
  }
}
