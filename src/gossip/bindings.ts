// Which key speaks for which cluster id. The first validly signed claim for a cluster id binds it (trust on first use
// inside a PSK-protected ClusterSet), unless the operator pinned the PeerId of that cluster id in a bootstrap entry;
// a pin always wins. A second key claiming a bound cluster id is refused: the caller reports it (log + metric).
import type { PeerId } from '@libp2p/interface';
import type { Binding } from './envelope.js';
import { keyId, peerIdOfKey } from './envelope.js';

export type BindingCheck = { readonly ok: true } | { readonly ok: false; readonly boundTo: string };

interface Bound {
  readonly keyId: string;
  readonly pinned: boolean;
  /** The signed binding statement, when one was received (relayed by anti-entropy). */
  proof?: Uint8Array;
}

export class BindingRegistry {
  readonly #byCluster = new Map<string, Bound>();

  /** @param pins cluster id → PeerId fixed by the operator (Ed25519 PeerIds embed their public key). */
  constructor(pins: ReadonlyMap<string, PeerId> = new Map()) {
    for (const [clusterId, peerId] of pins) {
      const raw = peerId.publicKey?.raw;
      if (raw !== undefined) this.#byCluster.set(clusterId, { keyId: keyId(raw), pinned: true });
    }
  }

  /** Pins a cluster id to a key (our own id at start). */
  pin(clusterId: string, publicKey: Uint8Array): void {
    this.#byCluster.set(clusterId, { keyId: keyId(publicKey), pinned: true });
  }

  /** Whether `publicKey` may speak for `clusterId`; binds it if the cluster id is new. */
  check(clusterId: string, publicKey: Uint8Array): BindingCheck {
    const id = keyId(publicKey);
    const bound = this.#byCluster.get(clusterId);
    if (bound === undefined) {
      this.#byCluster.set(clusterId, { keyId: id, pinned: false });
      return { ok: true };
    }
    if (bound.keyId === id) return { ok: true };
    return { ok: false, boundTo: peerIdOfKey(Buffer.from(bound.keyId, 'hex')).toString() };
  }

  /** Records a verified binding statement (after `check` accepted its key), so it can be relayed. */
  remember(binding: Binding): void {
    const bound = this.#byCluster.get(binding.clusterId);
    if (bound !== undefined && bound.keyId === keyId(binding.publicKey)) bound.proof = binding.proof;
  }

  /** The signed binding statement of a cluster id, if held. */
  proofOf(clusterId: string): Uint8Array | undefined {
    return this.#byCluster.get(clusterId)?.proof;
  }

  /** PeerId bound to a cluster id. */
  peerIdOf(clusterId: string): string | undefined {
    const bound = this.#byCluster.get(clusterId);
    return bound === undefined ? undefined : peerIdOfKey(Buffer.from(bound.keyId, 'hex')).toString();
  }

  /** Whether a cluster id is bound (by a pin or a signed claim). */
  isBound(clusterId: string): boolean {
    return this.#byCluster.has(clusterId);
  }

  /** Whether `publicKey` speaks for some cluster id of the ClusterSet (a member, not just a holder of the PSK). */
  isMemberKey(publicKey: Uint8Array): boolean {
    const id = keyId(publicKey);
    for (const b of this.#byCluster.values()) if (b.keyId === id) return true;
    return false;
  }

  entries(): { clusterId: string; peerId: string; pinned: boolean }[] {
    return [...this.#byCluster].map(([clusterId, b]) => ({
      clusterId,
      peerId: peerIdOfKey(Buffer.from(b.keyId, 'hex')).toString(),
      pinned: b.pinned,
    }));
  }
}
