// Origin lifecycle over long horizons: origins unheard past the origin horizon are forgotten with their imports, and
// this origin collects its own old tombstones (re-issuing its old live records first, then raising its floor).
import { compareHlc } from '../core/index.js';
import type { ExportRecord, Hlc } from '../core/index.js';
import { HOUSEKEEPING_MAX_INTERVAL_MS } from './constants.js';
import type { GossipContext } from './context.js';
import type { Publisher } from './publisher.js';

export interface HousekeepingInit {
  readonly publisher: Publisher;
  /** See GossipNodeInit.originHorizonMs. */
  readonly originHorizonMs: number;
  /** See GossipNodeInit.tombstoneHorizonMs. */
  readonly tombstoneHorizonMs: number;
}

export class Housekeeping {
  readonly #ctx: GossipContext;
  readonly #init: HousekeepingInit;
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: GossipContext, init: HousekeepingInit) {
    this.#ctx = ctx;
    this.#init = init;
  }

  start(): void {
    this.#timer = setInterval(() => this.#housekeeping(), this.#intervalMs());
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #intervalMs(): number {
    const horizon = Math.min(this.#init.originHorizonMs, this.#init.tombstoneHorizonMs);
    return Math.max(100, Math.min(HOUSEKEEPING_MAX_INTERVAL_MS, Math.floor(horizon / 8)));
  }

  /** Forgets origins unheard past the horizon, and collects this origin's old tombstones. */
  #housekeeping(): void {
    if (this.#ctx.stopping() || this.#ctx.libp2p() === undefined) return;
    const { clusterId, state, metrics, log, own } = this.#ctx;
    const horizonMs = this.#init.originHorizonMs;
    try {
      const now = this.#ctx.now();
      const forgotten: ExportRecord[] = [];
      for (const origin of state.origins()) {
        if (origin === clusterId) continue;
        const hb = state.heartbeatOf(origin);
        const heard = hb?.heardAtMs ?? own.startedAtMs;
        if (now - heard <= horizonMs) continue;
        // Also by the origin's own clock: a relay cannot make a live origin look forgotten with an inflated age.
        if (hb !== undefined && now - hb.heartbeat.version.wallMs <= horizonMs) continue;
        const dropped = state.forgetOrigin(origin);
        forgotten.push(...dropped.slice(0, 1));
        metrics.forgottenOrigins.inc();
        log.warn(
          { origin, unheardMs: now - heard, records: dropped.length },
          'forgot a cluster unheard past the horizon (with its imports)',
        );
      }
      metrics.records.set(state.size);
      if (forgotten.length > 0) this.#ctx.emit('state:change', { records: forgotten });
      if (!own.left) this.#collectOwnTombstones(now);
    } catch (err) {
      log.error({ err }, 'housekeeping failed');
    }
  }

  /**
   * Re-issues own live records older than 3/4 of the tombstone horizon (so every node holds them above the floor long
   * before it rises past their old versions), then raises the own floor to now − horizon: tombstones below go here,
   * and everywhere once the floor reaches a node with a signed heartbeat.
   */
  #collectOwnTombstones(now: number): void {
    const { publisher } = this.#init;
    const { clusterId, clock, state, metrics, log, own } = this.#ctx;
    if (!publisher.hasDesired()) return; // not published from listed caches yet: nothing is known to be current
    const horizon = this.#init.tombstoneHorizonMs;
    const refreshBefore = now - Math.floor((horizon * 3) / 4);
    const floor: Hlc = { wallMs: now - horizon, logical: 0 };
    const stale = state
      .recordsOf(clusterId)
      .filter((r) => !r.removed && r.version.wallMs < refreshBefore && r.service !== undefined);
    if (stale.length > 0) {
      own.seedClock();
      publisher.publishLocal(
        stale.map((r) => ({
          origin: r.origin,
          namespace: r.namespace,
          name: r.name,
          removed: false as const,
          service: r.service!,
          version: clock.tick(now),
        })),
      );
      log.info({ records: stale.length }, 're-issued own records ahead of the tombstone floor');
    }
    if (own.floor !== undefined && compareHlc(floor, own.floor) <= 0) return;
    const below = state.recordsOf(clusterId).filter((r) => compareHlc(r.version, floor) < 0);
    if (below.some((r) => !r.removed)) return; // a live record below the floor: wait for its re-issue
    // Nothing to collect: the floor stays where it is. Raising it anyway would change nothing held, yet cost a signed
    // heartbeat flooded to the whole ClusterSet on every run (once a minute per node, not once per 90 beats).
    if (below.length === 0) return;
    state.raiseFloor(clusterId, floor);
    own.floor = floor;
    own.signNextBeat = true;
    metrics.records.set(state.size);
    if (below.length > 0) log.info({ tombstones: below.length, floor }, 'collected own tombstones');
  }
}
