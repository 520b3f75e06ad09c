// Merkle trees over signed statements: an origin that issues many records at once (its first export of a namespace,
// a restart, a burst of endpoint changes) signs the root of a tree over them once, and every record carries its leaf
// index and the sibling hashes up to the root. A receiver recomputes the root from the record and its path (a few
// SHA-256s) and checks one Ed25519 signature per tree instead of one per record: a bootstrap of 10,000 records spent
// most of its CPU on signature checks. Anyone holding one record of a batch can still forward it alone and unaltered:
// the path proves it is in the signed tree, and a changed byte changes the root.
//
// Hashes are domain-separated by their first byte, so no value can be read as both a leaf and an inner node:
// leaves hash a signed message (which starts with the envelope domain text), inner nodes hash 0x01 || left || right,
// and leaves that pad a tree to a power of two are SHA-256(0x02).
import { hash } from 'node:crypto';

export const MERKLE_HASH_BYTES = 32;
/** Deepest tree `merkleTree` builds (a guard: envelope.ts signs ≤ 64 leaves and accepts no deeper paths). */
export const MAX_MERKLE_DEPTH = 16;

const sha256 = (data: Uint8Array): Buffer => hash('sha256', data, 'buffer');
const PAD = sha256(Uint8Array.of(0x02));

/** The leaf hash of a signed message. */
export const merkleLeaf = sha256;

function inner(left: Uint8Array, right: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + 2 * MERKLE_HASH_BYTES);
  b[0] = 0x01;
  b.set(left, 1);
  b.set(right, 1 + MERKLE_HASH_BYTES);
  return sha256(b);
}

/** The depth of the tree over `count` leaves (≥ 2): ⌈log2 count⌉. */
export function merkleDepth(count: number): number {
  return Math.ceil(Math.log2(count));
}

/** The root of the tree over `leaves` (≥ 2, padded to a power of two) and, per leaf, its path (siblings, leaf first). */
export function merkleTree(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[] } {
  if (leaves.length < 2) throw new RangeError('a Merkle tree needs at least two leaves');
  const depth = merkleDepth(leaves.length);
  if (depth > MAX_MERKLE_DEPTH) throw new RangeError(`more than 2^${MAX_MERKLE_DEPTH} leaves`);
  const paths = leaves.map(() => new Uint8Array(depth * MERKLE_HASH_BYTES));
  let level: Uint8Array[] = [...leaves];
  for (let d = 0; d < depth; d++) {
    if (level.length % 2 === 1) level.push(PAD);
    // Leaf i's sibling at depth d is node ((i >> d) ^ 1) of this level (odd levels end with a padding hash).
    for (let i = 0; i < leaves.length; i++) paths[i]!.set(level[(i >> d) ^ 1]!, d * MERKLE_HASH_BYTES);
    const up: Uint8Array[] = [];
    for (let j = 0; j < level.length; j += 2) up.push(inner(level[j]!, level[j + 1]!));
    level = up;
  }
  return { root: level[0]!, paths };
}

/**
 * The root a leaf and its path lead to. The caller checks the shape first: `path` a whole number of hashes, no more
 * than it accepts, and `index` < 2^depth.
 */
export function merkleRoot(leaf: Uint8Array, path: Uint8Array, index: number): Uint8Array {
  let h: Uint8Array = leaf;
  let i = index;
  for (let at = 0; at < path.length; at += MERKLE_HASH_BYTES) {
    const sibling = path.subarray(at, at + MERKLE_HASH_BYTES);
    h = (i & 1) === 0 ? inner(h, sibling) : inner(sibling, h);
    i >>>= 1;
  }
  return h;
}
