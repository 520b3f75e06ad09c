// Who this node dials: bootstrap peers forever, peers learned from identify and from heartbeat addresses while it
// has fewer than the target (Redialer); and the addresses it is reachable at.
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { GossipContext } from './context.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { Redialer } from './redial.js';
import type { RedialPolicy } from './redial.js';

export interface MembershipInit {
  /** Bootstrap peers: redialled forever. */
  readonly bootstrap: readonly { readonly addr: Multiaddr; readonly peerId: PeerId }[];
  readonly redial: RedialPolicy;
}

export class Membership {
  readonly #ctx: GossipContext;
  readonly #init: MembershipInit;
  #redialer: Redialer | undefined;

  constructor(ctx: GossipContext, init: MembershipInit) {
    this.#ctx = ctx;
    this.#init = init;
  }

  /** Starts dialling the bootstrap peers (and, from then on, learned ones). */
  start(node: GossipLibp2p): void {
    this.#redialer = new Redialer(node, this.#init.redial, this.#ctx.log, this.#ctx.metrics);
    for (const b of this.#init.bootstrap) this.#redialer.add(b.peerId, [b.addr], true);
    this.#redialer.start();
  }

  stop(): void {
    this.#redialer?.stop();
    this.#redialer = undefined;
  }

  connected(peer: PeerId): void {
    this.#redialer?.connected(peer);
  }

  disconnected(peer: PeerId): void {
    this.#redialer?.disconnected(peer);
  }

  /** A directly connected peer's listen addresses: it is redialled when we drop below the target peer count. */
  identified(peer: PeerId, addrs: readonly Multiaddr[]): void {
    if (addrs.length > 0) this.#redialer?.add(peer, addrs, false);
  }

  /** An origin's announced addresses (heartbeats, liveness entries): its bound peer is redialled through them. */
  learnAddrs(origin: string, learned: readonly string[]): void {
    const redialer = this.#redialer;
    const peerIdText = this.#ctx.bindings.peerIdOf(origin);
    if (redialer === undefined || peerIdText === undefined || learned.length === 0) return;
    try {
      const peerId = peerIdFromString(peerIdText);
      if (redialer.has(peerId)) return;
      const addrs: Multiaddr[] = [];
      for (const a of learned) {
        try {
          addrs.push(multiaddr(a));
        } catch {
          // ignore unparsable addresses
        }
      }
      redialer.add(peerId, addrs, false);
    } catch {
      // a bad address never matters
    }
  }

  /** The addresses this node listens on (announced ones included). */
  addrs(): string[] {
    return (
      this.#ctx
        .libp2p()
        ?.getMultiaddrs()
        .map((a) => a.toString()) ?? []
    );
  }
}
