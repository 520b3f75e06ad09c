// Which key speaks for which cluster id. The first validly signed claim for a cluster id binds it (trust on first use
// inside a PSK-protected ClusterSet), unless the operator pinned the PeerId of that cluster id in a bootstrap entry;
// a pin always wins. A second key claiming a bound cluster id is refused: the caller reports it (log + metric).
// A cluster rotates its key with a rotation signed by its current key: the binding (pin or not) moves to the new key
// at once, and statements signed by the old key are from then on superseded (skipped quietly when relayed).
import type { PeerId } from '@libp2p/interface';
import type { Binding } from './envelope.js';
import { keyId, peerIdOfKey } from './envelope.js';

export type BindingCheck =
  { readonly ok: true } | { readonly ok: false; readonly boundTo: string; readonly superseded: boolean };

/** What a rotation did. */
export type RotationResult = 'rotated' | 'known' | 'refused';

interface Bound {
  keyId: string;
  pinned: boolean;
  /** The signed binding statement, when one was received (relayed by anti-entropy). */
  proof?: Uint8Array;
  /** Keys this cluster id rotated away from, and the rotations that did it (relayed before anything of the id). */
  readonly superseded: Set<string>;
  readonly rotations: Uint8Array[];
}

/** At most this many rotations are remembered per cluster id (older ones no longer matter to anyone). */
const MAX_ROTATIONS = 8;

export class BindingRegistry {
  readonly #byCluster = new Map<string, Bound>();
  /** Own cluster id and the keys it rotated from: its own statements signed by them are still its own. */
  #self: string | undefined;

  /** @param pins cluster id → PeerId fixed by the operator (Ed25519 PeerIds embed their public key). */
  constructor(pins: ReadonlyMap<string, PeerId> = new Map()) {
    for (const [clusterId, peerId] of pins) {
      const raw = peerId.publicKey?.raw;
      if (raw !== undefined) this.#byCluster.set(clusterId, bound(keyId(raw), true));
    }
  }

  /** Pins a cluster id to a key (our own id at start). */
  pin(clusterId: string, publicKey: Uint8Array): void {
    const prior = this.#byCluster.get(clusterId);
    const next = bound(keyId(publicKey), true);
    if (prior !== undefined) for (const k of prior.superseded) next.superseded.add(k);
    this.#byCluster.set(clusterId, next);
  }

  /** This node's own cluster id: records of it signed by a key it rotated from are accepted (learned back). */
  setSelf(clusterId: string): void {
    this.#self = clusterId;
  }

  /** Whether `publicKey` may speak for `clusterId`; binds it if the cluster id is new. */
  check(clusterId: string, publicKey: Uint8Array): BindingCheck {
    const id = keyId(publicKey);
    const b = this.#byCluster.get(clusterId);
    if (b === undefined) {
      this.#byCluster.set(clusterId, bound(id, false));
      return { ok: true };
    }
    if (b.keyId === id) return { ok: true };
    const superseded = b.superseded.has(id);
    if (superseded && clusterId === this.#self) return { ok: true };
    return { ok: false, boundTo: peerIdOfKey(Buffer.from(b.keyId, 'hex')).toString(), superseded };
  }

  /**
   * Applies a verified rotation (signed by `rotation.publicKey`, to `rotation.rotatesTo`): the cluster id moves to the
   * new key if it was bound to the signing key (or unbound); a rotation to the key already bound is known; one signed
   * by a key that does not speak for the id is refused.
   */
  rotate(rotation: Binding): RotationResult {
    const to = rotation.rotatesTo;
    if (to === undefined) return 'refused';
    const from = keyId(rotation.publicKey);
    const next = keyId(to);
    const b = this.#byCluster.get(rotation.clusterId);
    if (b === undefined) {
      const fresh = bound(next, false);
      fresh.superseded.add(from);
      fresh.rotations.push(rotation.proof);
      this.#byCluster.set(rotation.clusterId, fresh);
      return 'rotated';
    }
    if (b.keyId === next) {
      // Relayed only when it hands over from a key this id was bound to, or as the first one learned (a node that met
      // the new key first): anyone can sign "M → current", and must not push the real hand-over out of the list.
      const trusted = b.superseded.has(from) || b.rotations.length === 0;
      b.superseded.add(from);
      if (trusted && !b.rotations.some((p) => Buffer.compare(p, rotation.proof) === 0)) this.#keep(b, rotation.proof);
      return 'known';
    }
    if (b.keyId !== from) return b.superseded.has(next) ? 'known' : 'refused';
    b.superseded.add(from);
    b.keyId = next;
    delete b.proof; // the old key's binding statement speaks for a key no longer bound
    this.#keep(b, rotation.proof);
    return 'rotated';
  }

  #keep(b: Bound, proof: Uint8Array): void {
    b.rotations.push(proof);
    if (b.rotations.length > MAX_ROTATIONS) b.rotations.splice(0, b.rotations.length - MAX_ROTATIONS);
  }

  /** Records a verified binding statement (after `check` accepted its key), so it can be relayed. */
  remember(binding: Binding): void {
    const b = this.#byCluster.get(binding.clusterId);
    if (b !== undefined && b.keyId === keyId(binding.publicKey)) b.proof = binding.proof;
  }

  /** The signed binding statement of a cluster id, if held. */
  proofOf(clusterId: string): Uint8Array | undefined {
    return this.#byCluster.get(clusterId)?.proof;
  }

  /** The rotations of a cluster id, oldest first: sent before anything else of it, so a peer follows them. */
  rotationsOf(clusterId: string): readonly Uint8Array[] {
    return this.#byCluster.get(clusterId)?.rotations ?? [];
  }

  /** PeerId bound to a cluster id. */
  peerIdOf(clusterId: string): string | undefined {
    const b = this.#byCluster.get(clusterId);
    return b === undefined ? undefined : peerIdOfKey(Buffer.from(b.keyId, 'hex')).toString();
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

function bound(keyId: string, pinned: boolean): Bound {
  return { keyId, pinned, superseded: new Set(), rotations: [] };
}
