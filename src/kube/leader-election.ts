/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
 * - the holder renews every `retryPeriodMs`; another candidate takes the lease over only once it has not changed for
 *   `leaseDurationMs` (judged by this process's clock from when it last saw the lease change, so clocks need not
 *   agree); optimistic concurrency on the Lease's resourceVersion makes a takeover race safe (one update wins, the
 *   other gets 409);
 * - a leader that has not renewed successfully for `renewDeadlineMs` (< lease duration) steps down, by a timer that
 *   fires even while an API call hangs, and every call is aborted after at most the time left to that deadline. So a
 *   leader stops acting at least `leaseDurationMs - renewDeadlineMs` before any other candidate can take over: never
 *   two active replicas under one PeerId and origin.
 */
import * as k8s from '@kubernetes/client-node';
import { apiClient } from './api-client.js';
import type { Logger } from 'pino';
import { withSignal, withTimeout } from './api-options.js';
import { describeError } from './errors.js';

export interface LeaderElectorInit {
  readonly kubeConfig: k8s.KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** This candidate (unique per replica: pod name, or host + pid). */
  readonly identity: string;
  /** How long a lease is valid without renewal (ms). */
  readonly leaseDurationMs: number;
  /** A leader that could not renew for this long steps down (ms); must be below the lease duration. */
  readonly renewDeadlineMs: number;
  /** How often the holder renews and candidates retry (ms); must be below the renew deadline. */
  readonly retryPeriodMs: number;
  readonly logger: Logger;
  readonly onChange: (leader: boolean) => void;
  /** Monotonic clock (ms). Default `performance.now`. */
  readonly now?: () => number;
}

/** Throws unless retry period < renew deadline < lease duration, as client-go requires. */
export function checkLeaseTimings(leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number): void {
  if (!(retryPeriodMs > 0 && retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new RangeError(
      `lease timings must satisfy retry period (${retryPeriodMs} ms) < renew deadline (${renewDeadlineMs} ms) < lease duration (${leaseDurationMs} ms)`,
    );
  }
}

export class LeaderElector {
  readonly #init: LeaderElectorInit;
  readonly #api: k8s.CoordinationV1Api;
  readonly #now: () => number;
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #started = false;
  /** The last lease seen and when (local clock) its holder or renewTime last changed. */
  #observed: { renew: string; holder: string; atMs: number } | undefined;
  /** When (local clock, taken before the request was sent) the last successful renewal started. */
  #lastRenewOkMs = 0;
  #inflight: Promise<void> = Promise.resolve();
  /** Aborts the calls of the current attempt (on stop, or when the renew deadline passes). */
  #attempt: AbortController | undefined;

  constructor(init: LeaderElectorInit) {
    checkLeaseTimings(init.leaseDurationMs, init.renewDeadlineMs, init.retryPeriodMs);
    this.#init = init;
    this.#api = apiClient(init.kubeConfig, k8s.CoordinationV1Api);
    this.#now = init.now ?? (() => performance.now());
  }

  isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#inflight = this.#tick();
  }

  /** Stops; a leader steps down first, then releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#attempt?.abort(new Error('leader elector stopped'));
    const wasLeader = this.#leader;
    this.#set(false);
    await this.#inflight; // a renewal in flight must not make us leader again after stop
    if (!wasLeader) return;
    const { name, namespace, identity } = this.#init;
    const options = () => withTimeout(this.#init.retryPeriodMs);
    try {
      const lease = await this.#api.readNamespacedLease({ name, namespace }, options());
      if (lease.spec?.holderIdentity === identity) {
        lease.spec.holderIdentity = '';
        lease.spec.leaseDurationSeconds = 1;
        await this.#api.replaceNamespacedLease({ name, namespace, body: lease }, options());
      }
    } catch (err) {
      this.#init.logger.debug({ err: describeError(err) }, 'releasing the lease failed');
    }
  }

  #set(leader: boolean): void {
    if (leader === this.#leader || (leader && !this.#started)) return;
    this.#leader = leader;
    if (!leader) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
    this.#init.logger.info({ identity: this.#init.identity, leader }, leader ? 'became leader' : 'lost leadership');
    this.#init.onChange(leader);
  }

  /** A renewal that started at `startedMs` succeeded: lead, and step down if no other succeeds by the deadline. */
  #renewed(startedMs: number): void {
    this.#lastRenewOkMs = startedMs;
    const left = startedMs + this.#init.renewDeadlineMs - this.#now();
    if (left <= 0 || !this.#started) return; // too late: whatever we read may be stale by now
    this.#set(true);
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(() => this.#deadlinePassed(), left);
  }

  #deadlinePassed(): void {
    this.#deadlineTimer = undefined;
    if (!this.#leader) return;
    this.#init.logger.warn(
      { identity: this.#init.identity, renewDeadlineMs: this.#init.renewDeadlineMs },
      'could not renew the lease within the renew deadline: stepping down',
    );
    this.#attempt?.abort(new Error('renew deadline passed'));
    this.#set(false);
  }

  async #tick(): Promise<void> {
    if (!this.#started) return;
    const attempt = new AbortController();
    this.#attempt = attempt;
    // A leader's calls may take no longer than what is left to its deadline; a candidate's no longer than a renew
    // deadline (an acquisition that comes back later than that is refused by #renewed anyway).
    const budget = this.#leader
      ? Math.max(1, Math.ceil(this.#lastRenewOkMs + this.#init.renewDeadlineMs - this.#now()))
      : Math.ceil(this.#init.renewDeadlineMs);
    const signal = AbortSignal.any([attempt.signal, AbortSignal.timeout(budget)]);
    try {
      await this.#tryAcquireOrRenew(signal);
    } catch (err) {
      this.#init.logger.warn({ err: describeError(err) }, 'lease update failed');
    } finally {
      if (this.#attempt === attempt) this.#attempt = undefined;
    }
    if (this.#started) {
      this.#timer = setTimeout(() => {
        this.#inflight = this.#tick();
      }, this.#init.retryPeriodMs);
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    const { namespace, name, identity } = this.#init;
    const started = this.#now();
    const wall = Date.now();
    const options = withSignal(signal);
    const spec = (transitions: number, acquire: Date | undefined): k8s.V1LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.#init.leaseDurationMs / 1000),
      renewTime: new k8s.V1MicroTime(wall),
      acquireTime: new k8s.V1MicroTime(acquire === undefined ? wall : acquire.getTime()),
      leaseTransitions: transitions,
    });
    let lease: k8s.V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace }, options);
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
      await this.#api.createNamespacedLease(
        { namespace, body: { metadata: { name, namespace }, spec: spec(0, undefined) } },
        options,
      );
      this.#renewed(started);
      return;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const renew = lease.spec?.renewTime === undefined ? '' : String(lease.spec.renewTime);
    const now = this.#now();
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
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease }, options);
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) {
        this.#set(false);
        return;
      }
      throw err;
    }
    this.#renewed(started);
  }
}
