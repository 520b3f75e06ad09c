// Keeps the node meshed for months: libp2p's reconnect queue gives up after a few tries and bootstrap dials once, so
// we redial the bootstrap peers and, while below the target peer count, learned peers, with capped exponential
// backoff and jitter, forever.
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from 'pino';
import type { GossipLibp2p } from './libp2p-node.js';
import { connectedPeers } from './libp2p-node.js';
import type { GossipMetrics } from './metrics.js';

export interface RedialPolicy {
  /** First retry delay (ms). */
  readonly baseMs: number;
  /** Largest delay between attempts (ms). */
  readonly maxMs: number;
  /** Learned peers are dialled only while fewer than this many peers are connected. */
  readonly targetPeers: number;
  /** Time allowed for one dial (ms). */
  readonly dialTimeoutMs: number;
}

interface Target {
  readonly peerId: PeerId;
  addrs: Multiaddr[];
  readonly bootstrap: boolean;
  attempts: number;
  nextAtMs: number;
  dialing: boolean;
}

/** The delay before attempt `attempts + 1`: base·2^attempts capped at max, times a jitter in [0.5, 1). */
export function backoffMs(
  policy: Pick<RedialPolicy, 'baseMs' | 'maxMs'>,
  attempts: number,
  random = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempts, 30));
  return Math.round(exp * (0.5 + random() / 2));
}

export class Redialer {
  readonly #targets = new Map<string, Target>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly node: GossipLibp2p,
    private readonly policy: RedialPolicy,
    private readonly log: Logger,
    private readonly metrics: GossipMetrics,
  ) {}

  /** Adds (or refreshes the addresses of) a peer to keep dialling. */
  add(peerId: PeerId, addrs: readonly Multiaddr[], bootstrap: boolean): void {
    if (peerId.equals(this.node.peerId)) return;
    const key = peerId.toString();
    const t = this.#targets.get(key);
    if (t !== undefined) {
      if (addrs.length > 0) t.addrs = [...addrs];
      return;
    }
    this.#targets.set(key, { peerId, addrs: [...addrs], bootstrap, attempts: 0, nextAtMs: 0, dialing: false });
  }

  has(peerId: PeerId): boolean {
    return this.#targets.has(peerId.toString());
  }

  /** A connection to the peer opened: reset its backoff. */
  connected(peerId: PeerId): void {
    const t = this.#targets.get(peerId.toString());
    if (t !== undefined) t.attempts = 0;
  }

  /** The peer disconnected: try again soon. */
  disconnected(peerId: PeerId): void {
    const t = this.#targets.get(peerId.toString());
    if (t !== undefined) t.nextAtMs = performance.now() + backoffMs(this.policy, 0);
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), 250);
    this.#timer.unref();
    this.#tick();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = performance.now();
    // Learned peers fill the gap to the target, counting dials in flight, so a node never dials everyone it knows.
    let budget = this.policy.targetPeers - connectedPeers(this.node).length;
    for (const t of this.#targets.values()) if (t.dialing && !t.bootstrap) budget--;
    for (const t of this.#targets.values()) {
      if (t.dialing || now < t.nextAtMs) continue;
      if (this.node.getConnections(t.peerId).length > 0) continue;
      if (!t.bootstrap) {
        if (budget <= 0) continue;
        budget--;
      }
      void this.#dial(t);
    }
  }

  async #dial(t: Target): Promise<void> {
    t.dialing = true;
    try {
      const target = t.addrs.length > 0 ? t.addrs : t.peerId;
      await this.node.dial(target, { signal: AbortSignal.timeout(this.policy.dialTimeoutMs) });
      t.attempts = 0;
      this.metrics.dials.inc({ result: 'ok' });
    } catch (err) {
      t.attempts++;
      this.metrics.dials.inc({ result: 'error' });
      this.log.debug({ peer: t.peerId.toString(), attempts: t.attempts, err }, 'dial failed');
    } finally {
      t.nextAtMs = performance.now() + backoffMs(this.policy, t.attempts);
      t.dialing = false;
    }
  }
}
