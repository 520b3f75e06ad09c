// Which origins this node holds as completely as the ClusterSet does (see GossipNode.isSettled), and the gap check
// heartbeats are weighed with.
import { compareHlc } from '../core/index.js';
import type { ClusterId, Hlc } from '../core/index.js';
import type { GossipContext } from './context.js';

export class Settledness {
  readonly #ctx: GossipContext;
  readonly #originHorizonMs: number;
  readonly #settled = new Set<ClusterId>();

  constructor(ctx: GossipContext, originHorizonMs: number) {
    this.#ctx = ctx;
    this.#originHorizonMs = originHorizonMs;
  }

  /** The origins settled since start. */
  get origins(): ReadonlySet<ClusterId> {
    return this.#settled;
  }

  has(origin: ClusterId): boolean {
    return this.#settled.has(origin);
  }

  /** A new start: nothing is settled until this run published or synced. */
  clear(): void {
    this.#settled.clear();
  }

  /** See {@link GossipNode.isSettled}. */
  isSettled(origin: ClusterId): boolean {
    const { state, own } = this.#ctx;
    if (this.#settled.has(origin) || state.isForgotten(origin)) return true;
    // Unheard for a whole horizon since this node started: no peer will ever settle it (it is gone for good).
    const started = own.startedAtMs > 0 && this.#ctx.now() - own.startedAtMs > this.#originHorizonMs;
    return started && state.heartbeatOf(origin) === undefined;
  }

  settle(origins: readonly ClusterId[]): void {
    const fresh = origins.filter((o) => !this.#settled.has(o));
    if (fresh.length === 0) return;
    for (const o of fresh) this.#settled.add(o);
    this.#ctx.metrics.settledOrigins.set(this.#settled.size);
    this.#ctx.log.info({ origins: fresh }, 'origins settled');
    this.#ctx.emit('settled', { origins: fresh });
  }

  /**
   * The origin's own beat says it holds exactly what we hold of it (count and newest version, and the hash when the
   * beat is signed): we know it as completely as it does, so it is settled. A restarted node holds less than the
   * beat says, so it still waits for a sync.
   */
  settleIfComplete(origin: ClusterId, recordCount: number, maxVersion: Hlc, recordsHash?: string): void {
    if (this.#settled.has(origin) || this.#ctx.libp2p() === undefined) return;
    if (this.hasGap(origin, recordCount, maxVersion, recordsHash)) return;
    const mine = this.#ctx.state.digestOf(origin);
    if ((mine?.count ?? 0) !== recordCount) return; // we hold more than it says: not the same set either
    this.settle([origin]);
  }

  /** Whether a heartbeat says its origin holds records we do not: then we pull from the peer that relayed it. */
  hasGap(origin: ClusterId, recordCount: number, maxVersion: Hlc, recordsHash?: string): boolean {
    const mine = this.#ctx.state.digestOf(origin);
    if (mine === undefined) return recordCount > 0;
    const cmp = compareHlc(maxVersion, mine.maxVersion);
    if (cmp !== 0) return cmp > 0;
    return recordCount !== mine.count || (recordsHash !== undefined && recordsHash !== mine.hash);
  }
}
