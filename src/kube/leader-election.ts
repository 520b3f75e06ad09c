/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the holder renews the
 * lease; another candidate takes it over only once it has not been renewed for its duration (judged by this
 * process's clock from when it last saw the lease change, so clocks need not agree). Optimistic concurrency on the
 * Lease's resourceVersion makes a takeover race safe: one update wins, the other gets 409.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError } from './errors.js';

export interface LeaderElectorInit {
  readonly kubeConfig: k8s.KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** This candidate (unique per replica: pod name, or host + pid). */
  readonly identity: string;
  /** How long a lease is valid without renewal (ms). */
  readonly leaseDurationMs: number;
  /** How often the holder renews and candidates retry (ms). */
  readonly renewIntervalMs: number;
  readonly logger: Logger;
  readonly onChange: (leader: boolean) => void;
  readonly now?: () => number;
}

export class LeaderElector {
  readonly #init: LeaderElectorInit;
  readonly #api: k8s.CoordinationV1Api;
  readonly #now: () => number;
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  /** The last lease seen and when (local clock) its renewTime last changed. */
  #observed: { renew: string; holder: string; atMs: number } | undefined;
  #lastRenewOkMs = 0;
  #inflight: Promise<void> = Promise.resolve();

  constructor(init: LeaderElectorInit) {
    this.#init = init;
    this.#api = init.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    this.#now = init.now ?? Date.now;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#inflight = this.#tick();
  }

  /** Stops; a leader releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inflight; // a renewal in flight must not make us leader again after stop
    if (this.#leader) {
      this.#set(false);
      try {
        const lease = await this.#api.readNamespacedLease({ name: this.#init.name, namespace: this.#init.namespace });
        if (lease.spec?.holderIdentity === this.#init.identity) {
          lease.spec.holderIdentity = '';
          lease.spec.leaseDurationSeconds = 1;
          await this.#api.replaceNamespacedLease({
            name: this.#init.name,
            namespace: this.#init.namespace,
            body: lease,
          });
        }
      } catch (err) {
        this.#init.logger.debug({ err: describeError(err) }, 'releasing the lease failed');
      }
    }
  }

  #set(leader: boolean): void {
    if (leader === this.#leader || (leader && !this.#started)) return;
    this.#leader = leader;
    this.#init.logger.info({ identity: this.#init.identity, leader }, leader ? 'became leader' : 'lost leadership');
    this.#init.onChange(leader);
  }

  async #tick(): Promise<void> {
    if (!this.#started) return;
    try {
      await this.#tryAcquireOrRenew();
    } catch (err) {
      this.#init.logger.warn({ err: describeError(err) }, 'lease update failed');
    }
    // A leader that could not renew within the lease duration must assume someone else took over.
    if (this.#leader && this.#now() - this.#lastRenewOkMs > this.#init.leaseDurationMs) this.#set(false);
    if (this.#started) {
      this.#timer = setTimeout(() => {
        this.#inflight = this.#tick();
      }, this.#init.renewIntervalMs);
    }
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.#init;
    const now = this.#now();
    const spec = (transitions: number, acquire: Date | undefined): k8s.V1LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.#init.leaseDurationMs / 1000),
      renewTime: new k8s.V1MicroTime(now),
      acquireTime: new k8s.V1MicroTime(acquire === undefined ? now : acquire.getTime()),
      leaseTransitions: transitions,
    });
    let lease: k8s.V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
      await this.#api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: spec(0, undefined) },
      });
      this.#lastRenewOkMs = now;
      this.#set(true);
      return;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const renew = lease.spec?.renewTime === undefined ? '' : String(lease.spec.renewTime);
    if (this.#observed === undefined || this.#observed.renew !== renew || this.#observed.holder !== holder) {
      this.#observed = { renew, holder, atMs: now };
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    const held = holder !== '' && holder !== identity && now - this.#observed.atMs < durationMs;
    if (held) {
      this.#set(false);
      return;
    }
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    const acquire = holder === identity ? lease.spec?.acquireTime : undefined;
    lease.spec = spec(transitions, acquire === undefined ? undefined : new Date(acquire));
    try {
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) {
        this.#set(false);
        return;
      }
      throw err;
    }
    this.#lastRenewOkMs = now;
    this.#set(true);
  }
}
