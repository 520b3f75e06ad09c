// The software and wire versions of peers and origins (docs/upgrades.md): identify agents are checked against this
// node's version, incompatible peers refused (log, metric, status row) and hung up on, sync sessions held back until
// a peer's identify ran.
import type { PeerId } from '@libp2p/interface';
import type { ClusterId } from '../core/index.js';
import type { GossipContext } from './context.js';
import { compatibility, parseAgentVersion } from './versioning.js';

/** A peer refused for its version (docs/upgrades.md), until it connects with a compatible one. */
export interface IncompatiblePeer {
  readonly peerId: string;
  /** The cluster id its key is bound to, when it is. */
  readonly clusterId?: string;
  /** Its identify agent's software version (absent: it announced none, before 0.2.0). */
  readonly version?: string;
  readonly wire: number;
  readonly reason: 'WireVersion' | 'SoftwareVersion';
  readonly message: string;
  /** When it was last refused (ms since the epoch). */
  readonly sinceMs: number;
}

/** How long an incompatible peer's connection stays open (nothing it sends is taken) before it is hung up on. */
const INCOMPATIBLE_HANGUP_DELAY_MS = 1000;
/** How long a sync session waits for the peer's identify (its version) before it runs anyway. */
const IDENTIFY_WAIT_MS = 3000;
/** A refused peer not connected for this long is dropped from status() and the metric. */
const INCOMPATIBLE_FORGET_MS = 10 * 60_000;

export class PeerVersions {
  /** This node's software version. */
  readonly software: string;
  readonly #ctx: GossipContext;
  /** The software version each origin announces (heartbeats, liveness, identify of its bound key). */
  readonly #originSoftware = new Map<ClusterId, string>();
  /** The software version in each connected peer's identify agent, by PeerId (null: it announces none). */
  readonly #agentSoftware = new Map<string, string | null>();
  /** Peers refused for their version, by PeerId. */
  readonly #incompatible = new Map<string, IncompatiblePeer>();
  /** Per connected peer: whether its identify passed the version check (unset until it ran). */
  readonly #identified = new Map<string, boolean>();
  readonly #identifyWaiters = new Map<string, (() => void)[]>();
  /** Refused peers gone: forgotten when the timer fires unless they are back. */
  readonly #forgetIncompatible = new Map<string, NodeJS.Timeout>();

  constructor(ctx: GossipContext, software: string) {
    this.#ctx = ctx;
    this.software = software;
  }

  /** Whether a peer (by PeerId) is refused for its version. */
  isIncompatible(peer: string): boolean {
    return this.#incompatible.has(peer);
  }

  incompatiblePeers(): IncompatiblePeer[] {
    return [...this.#incompatible.values()];
  }

  /** An origin announced its software version (undefined: it announces none). */
  announced(origin: ClusterId, software: string | undefined): void {
    if (software === undefined) this.#originSoftware.delete(origin);
    else this.#originSoftware.set(origin, software);
  }

  /** The software version of an origin: this node's own, or the one it announced. */
  softwareOf(origin: ClusterId): string | undefined {
    if (origin === this.#ctx.clusterId) return this.software;
    // A connected peer's identify is the surest word on the process running now (null: it announces none).
    const peerId = this.#ctx.bindings.peerIdOf(origin);
    const agent = peerId === undefined ? undefined : this.#agentSoftware.get(peerId);
    if (agent !== undefined) return agent ?? undefined;
    return this.#originSoftware.get(origin);
  }

  /**
   * Checks a peer's identify agent against this node's version (versioning.ts). An incompatible peer is logged,
   * counted, listed in status() and hung up on; redials retry it with backoff, so an upgraded peer gets back in.
   * Returns whether the peer is compatible.
   */
  check(peerId: PeerId, agent: string | undefined): boolean {
    const key = peerId.toString();
    const theirs = parseAgentVersion(agent);
    const verdict = compatibility(this.software, theirs);
    const clusterId = this.#ctx.bindings.entries().find((e) => e.peerId === key)?.clusterId;
    this.#agentSoftware.set(key, theirs.software ?? null);
    if (verdict.ok) {
      if (this.#incompatible.delete(key)) {
        this.#ctx.log.info({ peerId: key, clusterId, version: theirs.software }, 'peer is compatible again');
        this.#countIncompatible();
      }
      if (clusterId !== undefined) this.announced(clusterId, theirs.software);
      this.#identifiedAs(key, true);
      return true;
    }
    const previous = this.#incompatible.get(key);
    const entry: IncompatiblePeer = {
      peerId: key,
      ...(clusterId === undefined ? {} : { clusterId }),
      ...(theirs.software === undefined ? {} : { version: theirs.software }),
      wire: theirs.wire,
      reason: verdict.reason,
      message: verdict.message,
      sinceMs: this.#ctx.now(),
    };
    this.#incompatible.set(key, entry);
    this.#identifiedAs(key, false);
    this.#countIncompatible();
    if (previous?.message !== verdict.message) {
      this.#ctx.log.warn(
        { peerId: key, clusterId, version: theirs.software, wire: theirs.wire, reason: verdict.reason },
        `refusing peer ${clusterId ?? key}: it ${verdict.message}`,
      );
    }
    // Hung up on a moment later, so the peer's identify of this node completes too and it says why on its side.
    const node = this.#ctx.libp2p();
    setTimeout(() => {
      if (this.#incompatible.has(key)) void node?.hangUp(peerId).catch(() => undefined);
    }, INCOMPATIBLE_HANGUP_DELAY_MS).unref();
    return false;
  }

  /**
   * Whether a peer passed the version check, waiting (up to IDENTIFY_WAIT_MS) for its identify when it has not run yet:
   * no sync session runs with a peer before its version is known. A peer whose identify never completes is served.
   */
  async identifiedCompatible(peer: PeerId): Promise<boolean> {
    const key = peer.toString();
    const known = this.#identified.get(key);
    if (known !== undefined) return known;
    await new Promise<void>((resolve) => {
      const waiters = this.#identifyWaiters.get(key) ?? [];
      const done = () => {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        if (waiters.length === 0 && this.#identifyWaiters.get(key) === waiters) this.#identifyWaiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, IDENTIFY_WAIT_MS);
      timer.unref();
      waiters.push(done);
      this.#identifyWaiters.set(key, waiters);
    });
    return this.#identified.get(key) ?? true;
  }

  /** A peer connected: a refused peer that is back is not forgotten. */
  connected(peer: PeerId): void {
    const back = this.#forgetIncompatible.get(peer.toString());
    if (back !== undefined) {
      clearTimeout(back);
      this.#forgetIncompatible.delete(peer.toString());
    }
  }

  /** A peer disconnected. */
  disconnected(peer: PeerId): void {
    // A reconnecting peer may run another version (it was upgraded): it is checked again.
    const key = peer.toString();
    this.#identified.delete(key);
    this.#agentSoftware.delete(key);
    this.#releaseWaiters(key);
    // A refused peer that stays away (decommissioned, re-keyed) is forgotten after a while, its row and metric too.
    if (this.#incompatible.has(key) && !this.#forgetIncompatible.has(key)) {
      const node = this.#ctx.libp2p();
      const timer = setTimeout(() => {
        this.#forgetIncompatible.delete(key);
        if ((node?.getConnections(peer).length ?? 0) > 0 || !this.#incompatible.delete(key)) return;
        this.#countIncompatible();
      }, INCOMPATIBLE_FORGET_MS);
      timer.unref();
      this.#forgetIncompatible.set(key, timer);
    }
  }

  /** The node stops: pending forgets are dropped, waiting sessions go on, connected peers' checks are dropped. */
  stop(): void {
    for (const t of this.#forgetIncompatible.values()) clearTimeout(t);
    this.#forgetIncompatible.clear();
    this.#releaseWaiters();
    this.#identified.clear();
    this.#agentSoftware.clear();
  }

  #identifiedAs(key: string, compatible: boolean): void {
    this.#identified.set(key, compatible);
    this.#releaseWaiters(key);
  }

  /** Lets the sessions waiting for a peer's identify go on (it ran, the peer left, or this node stops). */
  #releaseWaiters(key?: string): void {
    const keys = key === undefined ? [...this.#identifyWaiters.keys()] : [key];
    for (const k of keys) for (const w of [...(this.#identifyWaiters.get(k) ?? [])]) w();
  }

  #countIncompatible(): void {
    this.#ctx.metrics.incompatiblePeers.reset();
    for (const p of this.#incompatible.values()) this.#ctx.metrics.incompatiblePeers.inc({ reason: p.reason });
  }
}
