/**
 * A list+watch cache of one resource that keeps itself running: the client's ListWatch relists on 410 Gone, and we
 * restart it with exponential backoff after any other failure (a missing CRD, a dropped connection, RBAC). Writes
 * we made are overlaid on the cache until the watch catches up, so a reconcile never acts on a view older than
 * its own writes.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { INFORMER_BACKOFF_BASE_MS, INFORMER_BACKOFF_MAX_MS } from './constants.js';
import { describeError } from './errors.js';

export interface KubeObject {
  metadata?: k8s.V1ObjectMeta;
}

export interface ResilientInformerInit<T extends KubeObject> {
  readonly kubeConfig: k8s.KubeConfig;
  /** A short name for logs and metrics, e.g. `services`. */
  readonly resource: string;
  /** The watch path, e.g. `/api/v1/services`. */
  readonly path: string;
  readonly list: () => Promise<k8s.KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /** Called on every add, update and delete (after the cache changed). */
  /** `previousIndex`: the object's `indexBy` value before this change, when it had another one. */
  readonly onChange: (obj: T, verb: 'add' | 'update' | 'delete', previousIndex?: string) => void;
  /** Called on a failed list or watch (before the backoff). */
  readonly onError?: (err: unknown) => void;
  /** Called when a list succeeded and the watch runs (again). */
  readonly onSynced?: () => void;
  /**
   * An index of the objects by a value of theirs (e.g. the service an EndpointSlice belongs to), read with
   * {@link ResilientInformer.byIndex}: the objects of one value without walking the cache.
   */
  readonly indexBy?: (obj: T) => string | undefined;
}

function rv(obj: KubeObject | undefined): number {
  const v = Number(obj?.metadata?.resourceVersion ?? '0');
  return Number.isFinite(v) ? v : 0;
}

const cacheKey = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;

export class ResilientInformer<T extends KubeObject> {
  readonly #init: ResilientInformerInit<T>;
  readonly #informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  /** Our own recent writes (object, or null for a delete), until the watch shows the same or a newer version. */
  readonly #overlay = new Map<string, { obj: T | null; rv: number }>();
  #started = false;
  #synced = false;
  #listed = false;
  #backoffMs = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  /** `indexBy` value → cache keys of the objects with it; and each indexed object's value. */
  readonly #index = new Map<string, Set<string>>();
  readonly #indexed = new Map<string, string>();

  constructor(init: ResilientInformerInit<T>) {
    this.#init = init;
    this.#informer = k8s.makeInformer(init.kubeConfig, init.path, init.list, init.labelSelector);
    const changed = (verb: 'add' | 'update' | 'delete') => (obj: T) => {
      this.#settle(obj, verb);
      const previous = this.#reindex(obj, verb === 'delete');
      init.onChange(obj, verb, previous);
    };
    this.#informer.on('add', changed('add'));
    this.#informer.on('update', changed('update'));
    this.#informer.on('delete', changed('delete'));
    this.#informer.on('error', (err: unknown) => this.#failed(err));
    this.#informer.on('connect', () => {});
  }

  get resource(): string {
    return this.#init.resource;
  }

  /** True once a list succeeded and no failure happened since. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * True once a list succeeded since start, even if the watch failed afterwards: the cache then holds a complete (if
   * possibly stale) view. Before that it may be empty or partial, and nothing may be published, tombstoned or deleted
   * from it (docs/reliability.md).
   */
  get listed(): boolean {
    return this.#listed;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#run();
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#synced = false;
    this.#listed = false;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    await this.#informer.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    const o = this.#overlay.get(cacheKey(namespace, name));
    const cached = this.#informer.get(name, namespace);
    if (o !== undefined && o.rv > rv(cached)) return o.obj ?? undefined;
    return cached;
  }

  list(namespace?: string): T[] {
    const out = new Map<string, T>();
    for (const obj of this.#informer.list(namespace))
      out.set(cacheKey(obj.metadata?.namespace, obj.metadata?.name), obj);
    for (const [k, o] of this.#overlay) {
      if (namespace !== undefined && !k.startsWith(`${namespace}/`)) continue;
      const cached = out.get(k);
      if (o.rv <= rv(cached)) continue;
      if (o.obj === null) out.delete(k);
      else out.set(k, o.obj);
    }
    return [...out.values()];
  }

  /** Records the object a write returned (create, update, patch). */
  wrote(obj: T): void {
    const key = cacheKey(obj.metadata?.namespace, obj.metadata?.name);
    const v = rv(obj);
    if (v > rv(this.#informer.get(obj.metadata?.name ?? '', obj.metadata?.namespace))) {
      this.#overlay.set(key, { obj, rv: v });
      this.#reindex(obj, false);
    }
  }

  /** The objects whose `indexBy` value is `value` (as {@link ResilientInformer.get} sees them: own writes included). */
  byIndex(value: string): T[] {
    const keys = this.#index.get(value);
    if (keys === undefined) return [];
    const out: T[] = [];
    for (const k of keys) {
      const slash = k.indexOf('/');
      const obj = this.get(k.slice(slash + 1), k.slice(0, slash));
      if (obj !== undefined && this.#init.indexBy?.(obj) === value) out.push(obj);
    }
    return out;
  }

  /** Moves the object in the index; returns its value before, when it changed (and the object stays indexed). */
  #reindex(obj: T, gone: boolean): string | undefined {
    const indexBy = this.#init.indexBy;
    if (indexBy === undefined) return undefined;
    const key = cacheKey(obj.metadata?.namespace, obj.metadata?.name);
    const before = this.#indexed.get(key);
    const after = gone ? undefined : indexBy(obj);
    if (before === after) return undefined;
    if (before !== undefined) {
      const set = this.#index.get(before);
      set?.delete(key);
      if (set?.size === 0) this.#index.delete(before);
      this.#indexed.delete(key);
    }
    if (after !== undefined) {
      let set = this.#index.get(after);
      if (set === undefined) {
        set = new Set();
        this.#index.set(after, set);
      }
      set.add(key);
      this.#indexed.set(key, after);
    }
    return before;
  }

  /** Records a delete we made: hidden until the watch reports it (or shows a newer object). */
  deleted(namespace: string | undefined, name: string): void {
    const cached = this.#informer.get(name, namespace);
    if (cached === undefined) return;
    this.#overlay.set(cacheKey(namespace, name), { obj: null, rv: rv(cached) + 1 });
  }

  #settle(obj: T, verb: 'add' | 'update' | 'delete'): void {
    const key = cacheKey(obj.metadata?.namespace, obj.metadata?.name);
    const o = this.#overlay.get(key);
    if (o === undefined) return;
    if (verb === 'delete' || rv(obj) >= o.rv) this.#overlay.delete(key);
  }

  async #run(): Promise<void> {
    if (!this.#started) return;
    let failed = false;
    const onErr = () => (failed = true);
    this.#informer.on('error', onErr);
    try {
      await this.#informer.start();
    } catch (err) {
      failed = true;
      this.#failed(err);
    } finally {
      this.#informer.off('error', onErr);
    }
    if (!failed && this.#started) {
      this.#synced = true;
      this.#listed = true;
      this.#backoffMs = 0;
      this.#lastError = undefined;
      this.#init.onSynced?.();
    }
  }

  #failed(err: unknown): void {
    this.#synced = false;
    const message = describeError(err);
    this.#lastError = message;
    this.#init.onError?.(err);
    if (!this.#started || this.#restartTimer !== undefined) return;
    this.#backoffMs = Math.min(
      INFORMER_BACKOFF_MAX_MS,
      this.#backoffMs === 0 ? INFORMER_BACKOFF_BASE_MS : this.#backoffMs * 2,
    );
    this.#init.logger.warn(
      { resource: this.#init.resource, err: message, retryInMs: this.#backoffMs },
      'list/watch failed',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      void this.#run();
    }, this.#backoffMs);
  }
}
