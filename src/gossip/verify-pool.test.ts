import { describe, expect, it } from 'vitest';
import { EnvelopeSigner, EnvelopeVerifier, signRecord, signRecords } from './envelope.js';
import type { DecodedEnvelope } from './envelope.js';
import { generateIdentityKey } from './keys.js';
import { syntheticService } from './memory-cluster.js';
import { VerifyPool } from './verify-pool.js';
import { SignedEnvelope } from './wire.js';

async function envelopes(count: number): Promise<DecodedEnvelope[]> {
  const verifier = new EnvelopeVerifier();
  const signers = [new EnvelopeSigner(await generateIdentityKey()), new EnvelopeSigner(await generateIdentityKey())];
  const out: DecodedEnvelope[] = [];
  for (let i = 0; i < count; i++) {
    const r = signRecord(signers[i % 2]!, {
      origin: `c${i % 2}`,
      namespace: 'ns',
      name: `svc-${i}`,
      version: { wallMs: 1_800_000_000_000 + i, logical: 0 },
      removed: false,
      service: syntheticService(i, 2),
    });
    out.push(verifier.decode(r.proof!));
  }
  return out;
}

/** The same envelope with one bit of its signed bytes flipped: decodes, but must not verify. */
function tampered(e: DecodedEnvelope): DecodedEnvelope {
  const message = Uint8Array.from(e.message);
  message[message.length - 1]! ^= 1;
  return { ...e, message };
}

describe('VerifyPool', () => {
  it('verifies big batches in workers and small ones inline, in order, false exactly for bad signatures', async () => {
    const pool = new VerifyPool(new EnvelopeVerifier(), 2);
    try {
      const good = await envelopes(300);
      const bad = new Set([0, 7, 150, 299]);
      const batch = good.map((e, i) => (bad.has(i) ? tampered(e) : e));
      expect(await pool.verify(batch)).toEqual(batch.map((_, i) => !bad.has(i)));
      expect(await pool.verify(batch.slice(0, 10))).toEqual(batch.slice(0, 10).map((_, i) => !bad.has(i)));
      // a signature of another key: false, not an exception
      const swapped = { ...good[1]!, publicKey: good[0]!.publicKey };
      expect(await pool.verify([...good.slice(2, 60), swapped])).toEqual([...good.slice(2, 60).map(() => true), false]);
    } finally {
      await pool.close();
    }
  });

  it('checks each batch signature once per call, remembers it per verifier, and still refuses forgeries in a tree', async () => {
    const pool = new VerifyPool(new EnvelopeVerifier(), 2);
    try {
      const signer = new EnvelopeSigner(await generateIdentityKey());
      const decoder = new EnvelopeVerifier();
      const records = Array.from({ length: 150 }, (_, i) => ({
        origin: 'c0',
        namespace: 'ns',
        name: `svc-${i}`,
        version: { wallMs: 1_800_000_000_000, logical: i },
        removed: false,
        service: syntheticService(i, 2),
      }));
      const trees = signRecords(signer, records).map((r) => decoder.decode(r.proof!));
      const plain = (await envelopes(20)).slice(0, 20);
      // Record 70's payload under record 71's path and signature: its root differs, so it must not verify.
      const forged = decoder.decode(
        SignedEnvelope.encode({
          ...SignedEnvelope.decode(trees[71]!.bytes),
          payload: SignedEnvelope.decode(trees[70]!.bytes).payload,
        }),
      );
      const batch = [...trees.slice(0, 100), forged, ...plain, ...trees.slice(100)];
      const mine = new EnvelopeVerifier();
      const expected = batch.map((e) => e !== forged);
      expect(await pool.verify(batch, mine)).toEqual(expected);
      const known = (v: EnvelopeVerifier, e: DecodedEnvelope): boolean => v.isKnownGood(EnvelopeVerifier.rootId(e));
      expect(trees.every((e) => known(mine, e))).toBe(true);
      expect(known(mine, forged)).toBe(false);
      // Remembered per verifier: the next call needs no check for the trees, and the forgery is still refused.
      expect(await pool.verify([forged, ...trees], mine)).toEqual([false, ...trees.map(() => true)]);
      expect(known(new EnvelopeVerifier(), trees[0]!)).toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('still answers after close (inline)', async () => {
    const pool = new VerifyPool(new EnvelopeVerifier(), 1);
    const batch = await envelopes(40);
    expect((await pool.verify(batch)).every(Boolean)).toBe(true);
    await pool.close();
    const again = [...batch.slice(0, 39), tampered(batch[39]!)];
    expect(await pool.verify(again)).toEqual([...batch.slice(0, 39).map(() => true), false]);
  });
});
