import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MERKLE_HASH_BYTES, merkleDepth, merkleLeaf, merkleRoot, merkleTree } from './merkle.js';

const leavesArb = fc
  .integer({ min: 2, max: 130 })
  .map((n) =>
    Array.from({ length: n }, (_, i) => merkleLeaf(Buffer.from(`statement ${i} ${randomBytes(4).toString('hex')}`))),
  );

describe('Merkle trees', () => {
  it('every leaf and its path lead to the root; the depth is ⌈log2 n⌉', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const { root, paths } = merkleTree(leaves);
        for (const [i, leaf] of leaves.entries()) {
          expect(paths[i]!.length).toBe(merkleDepth(leaves.length) * MERKLE_HASH_BYTES);
          expect(Buffer.compare(merkleRoot(leaf, paths[i]!, i), root)).toBe(0);
        }
      }),
      { numRuns: 60 },
    );
    expect([2, 3, 4, 5, 64, 65].map(merkleDepth)).toEqual([1, 2, 2, 3, 6, 7]);
  });

  it('any other leaf, index or path byte leads elsewhere', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), (leaves, pick, flip) => {
        const { root, paths } = merkleTree(leaves);
        const i = pick % leaves.length;
        const path = paths[i]!;
        const other = (i + 1) % leaves.length;
        // another leaf of the same tree on this leaf's path
        expect(Buffer.compare(merkleRoot(leaves[other]!, path, i), root)).not.toBe(0);
        // this leaf at another index
        const depth = path.length / MERKLE_HASH_BYTES;
        const j = (i ^ (1 << (flip % depth))) >>> 0;
        expect(Buffer.compare(merkleRoot(leaves[i]!, path, j), root)).not.toBe(0);
        // one bit of the path flipped
        const bent = Uint8Array.from(path);
        bent[flip % bent.length]! ^= 1 << (flip % 8);
        expect(Buffer.compare(merkleRoot(leaves[i]!, bent, i), root)).not.toBe(0);
        // a path cut short (a subtree root presented as the leaf's root)
        expect(Buffer.compare(merkleRoot(leaves[i]!, path.subarray(MERKLE_HASH_BYTES), i >> 1), root)).not.toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a tree of fewer than two leaves', () => {
    expect(() => merkleTree([merkleLeaf(Buffer.from('x'))])).toThrow(RangeError);
  });
});
