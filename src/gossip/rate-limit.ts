// A token bucket per peer: bounds how often one peer may make us run the (comparatively expensive) sync protocol.

export class PeerRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();

  /**
   * @param perMinute sustained rate
   * @param burst bucket size
   * @param now clock (injectable for tests)
   */
  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `peer`; false when the peer is over its rate. */
  tryTake(peer: string): boolean {
    const t = this.now();
    const b = this.#buckets.get(peer) ?? { tokens: this.burst, atMs: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.atMs) * this.perMinute) / 60_000);
    b.atMs = t;
    this.#buckets.set(peer, b);
    if (this.#buckets.size > 10_000) this.#buckets.clear();
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
