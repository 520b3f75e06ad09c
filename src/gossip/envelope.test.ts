import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExportRecord } from '../core/index.js';
import { EnvelopeKind } from './constants.js';
import {
  bindingOf,
  EnvelopeSigner,
  EnvelopeVerifier,
  heartbeatOf,
  MAX_SIGNED_BATCH,
  peerIdOfKey,
  recordOf,
  signBinding,
  signHeartbeat,
  signRecord,
  signRecords,
} from './envelope.js';
import { InvalidMessageError, InvalidSignatureError } from './errors.js';
import { generateIdentityKey } from './keys.js';
import { syntheticService } from './memory-cluster.js';
import { SignedEnvelope } from './wire.js';

const key = await generateIdentityKey();
const signer = new EnvelopeSigner(key);
const verifier = new EnvelopeVerifier();

const live: ExportRecord = {
  origin: 'east',
  namespace: 'default',
  name: 'web',
  version: { wallMs: 1_700_000_000_123, logical: 7 },
  removed: false,
  service: syntheticService(3, 4),
};

const batch: ExportRecord[] = Array.from({ length: 100 }, (_, i) => ({
  ...live,
  name: `web-${i}`,
  service: syntheticService(i, 2),
}));

describe('batch-signed record envelopes (Merkle trees)', () => {
  it('round-trip every record of a batch; one signature per tree of up to MAX_SIGNED_BATCH', () => {
    const signed = signRecords(signer, batch);
    const signatures = new Set(
      signed.map((r) => Buffer.from(SignedEnvelope.decode(r.proof!).signature).toString('hex')),
    );
    expect(signatures.size).toBe(Math.ceil(batch.length / MAX_SIGNED_BATCH));
    for (const r of signed) {
      const back = recordOf(new EnvelopeVerifier().open(r.proof!));
      expect(back).toEqual(r);
    }
    // One statement twice in a batch is refused (two equal sibling leaves would give it two proofs).
    expect(() => signRecords(signer, [live, live])).toThrow(RangeError);
    // A batch of one is an ordinary envelope.
    expect(SignedEnvelope.decode(signRecords(signer, [live])[0]!.proof!).merklePath).toHaveLength(0);
  });

  it('reject a changed payload, a path or index of another record, and a flipped bit anywhere', () => {
    const signed = signRecords(signer, batch.slice(0, 20)).map((r) => SignedEnvelope.decode(r.proof!));
    const [a, b] = [signed[3]!, signed[4]!];
    const fresh = () => new EnvelopeVerifier();
    // Verified once, a tree's signature is remembered: none of the forgeries below may ride on that.
    const warm = new EnvelopeVerifier();
    warm.open(SignedEnvelope.encode(a));
    for (const forged of [
      { ...a, payload: b.payload },
      { ...a, merklePath: b.merklePath },
      { ...a, merkleIndex: b.merkleIndex },
      { ...b, signature: signRecord(signer, batch[4]!).proof!.subarray(-64) as Uint8Array<ArrayBuffer> },
    ]) {
      for (const v of [fresh(), warm])
        expect(() => v.open(SignedEnvelope.encode(forged))).toThrow(InvalidSignatureError);
    }
    const proof = SignedEnvelope.encode(a);
    for (let i = 0; i < proof.length; i += 5) {
      const bad = new Uint8Array(proof);
      bad[i] = bad[i]! ^ 0x01;
      for (const v of [fresh(), warm]) expect(() => recordOf(v.open(bad))).toThrow(/./);
    }
    expect(recordOf(warm.open(SignedEnvelope.encode(b))).name).toBe('web-4');
  });

  it('reject malformed paths: not whole hashes, too deep, index beyond the tree, index without a path', () => {
    const a = SignedEnvelope.decode(signRecords(signer, batch.slice(0, 8))[5]!.proof!);
    const cases: [Partial<SignedEnvelope>, RegExp][] = [
      [{ merklePath: a.merklePath.subarray(0, 40) }, /bad Merkle path/],
      [{ merklePath: new Uint8Array(7 * 32), merkleIndex: 5 }, /bad Merkle path/],
      [{ kind: EnvelopeKind.heartbeat }, /not a record/],
      [{ merkleIndex: 8 }, /Merkle index beyond the tree/],
      [{ merklePath: new Uint8Array(0), merkleIndex: 3 }, /Merkle index without a path/],
    ];
    for (const [change, message] of cases) {
      const bytes = SignedEnvelope.encode({ ...a, ...change });
      expect(() => verifier.open(bytes)).toThrow(InvalidMessageError);
      expect(() => verifier.open(bytes)).toThrow(message);
    }
  });

  it('a batch signature never verifies a plain envelope, nor a plain signature a batched one', () => {
    const batched = SignedEnvelope.decode(signRecords(signer, batch.slice(0, 2))[0]!.proof!);
    const plain = SignedEnvelope.decode(signRecord(signer, batch[0]!).proof!);
    expect(Buffer.compare(batched.payload, plain.payload)).toBe(0);
    const stripped = { ...batched, merklePath: new Uint8Array(0), merkleIndex: 0 };
    expect(() => verifier.open(SignedEnvelope.encode(stripped))).toThrow(InvalidSignatureError);
    const dressed = { ...plain, merklePath: batched.merklePath, merkleIndex: batched.merkleIndex };
    expect(() => verifier.open(SignedEnvelope.encode(dressed))).toThrow(InvalidSignatureError);
  });
});

describe('record envelopes', () => {
  it('round-trip a live record and a tombstone exactly', () => {
    for (const r of [live, { ...live, removed: true, service: undefined }]) {
      const { service, ...rest } = r;
      const input: ExportRecord = service === undefined ? rest : r;
      const signed = signRecord(signer, input);
      const opened = verifier.open(signed.proof!);
      expect(opened.kind).toBe(EnvelopeKind.record);
      expect(peerIdOfKey(opened.publicKey).toString()).toBe(key.publicKey.toString());
      const back = recordOf(opened);
      expect(back).toEqual(signed);
      expect(back.proof).toBe(signed.proof);
    }
  });

  it('reject any flipped bit', () => {
    const proof = signRecord(signer, live).proof!;
    for (let i = 0; i < proof.length; i += 7) {
      const bad = new Uint8Array(proof);
      bad[i] = bad[i]! ^ 0x01;
      expect(() => recordOf(verifier.open(bad))).toThrow(/./);
    }
  });

  it('keep kinds apart: a record signature does not verify as a heartbeat', () => {
    const env = SignedEnvelope.decode(signRecord(signer, live).proof!);
    const relabelled = SignedEnvelope.encode({ ...env, kind: EnvelopeKind.heartbeat });
    expect(() => verifier.open(relabelled)).toThrow(InvalidSignatureError);
  });

  it('reject an unsigned envelope, a short key and an unknown kind', () => {
    const env = SignedEnvelope.decode(signRecord(signer, live).proof!);
    expect(() => verifier.open(SignedEnvelope.encode({ ...env, signature: new Uint8Array() }))).toThrow(
      InvalidSignatureError,
    );
    expect(() => verifier.open(SignedEnvelope.encode({ ...env, publicKey: new Uint8Array(31) }))).toThrow(
      InvalidSignatureError,
    );
    expect(() => verifier.open(SignedEnvelope.encode({ ...env, kind: 9 }))).toThrow(InvalidMessageError);
  });

  it('reject a validly signed statement in any encoding but the canonical one (one statement, one proof)', () => {
    const proof = signRecord(signer, live).proof!;
    expect(verifier.open(proof).bytes).toBe(proof);
    // An unknown field appended: protobuf decoders skip it, the signature still verifies.
    const extraField = Uint8Array.from([...proof, 0x78, 0x01]); // field 15, varint
    // The same fields in another order.
    const env = SignedEnvelope.decode(proof);
    const signature = SignedEnvelope.encode({ ...env, payload: new Uint8Array(0), publicKey: new Uint8Array(0) });
    const rest = SignedEnvelope.encode({ ...env, signature: new Uint8Array(0) });
    const reordered = Uint8Array.from([...signature, ...rest]);
    expect(Buffer.compare(SignedEnvelope.encode(SignedEnvelope.decode(reordered)), proof)).toBe(0);
    for (const bytes of [extraField, reordered]) {
      expect(() => verifier.open(bytes)).toThrow(InvalidMessageError);
      expect(() => verifier.open(bytes)).toThrow(/non-canonical envelope/);
    }
  });

  it('reject well-signed records with impossible content', () => {
    const bad: ExportRecord[] = [
      { ...live, origin: '' },
      { ...live, namespace: 'a/b' },
      { ...live, name: 'x'.repeat(300) },
      { ...live, removed: true },
      { origin: 'east', namespace: 'default', name: 'web', version: live.version, removed: false },
    ];
    for (const r of bad)
      expect(() => recordOf(verifier.open(signRecord(signer, r).proof!))).toThrow(InvalidMessageError);
    const weird = { ...live, service: { ...live.service!, ports: 'nope' } } as unknown as ExportRecord;
    expect(() => recordOf(verifier.open(signRecord(signer, weird).proof!))).toThrow(InvalidMessageError);
  });

  it('never throw anything but typed errors on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          const env = verifier.open(bytes);
          recordOf(env);
        } catch (err) {
          expect(err instanceof InvalidMessageError || err instanceof InvalidSignatureError).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('heartbeat and binding envelopes', () => {
  it('round-trip a heartbeat with its summary and addresses', () => {
    const hb = signHeartbeat(signer, {
      heartbeat: { origin: 'east', incarnation: 1_700_000_000_000, version: { wallMs: 1_700_000_000_500, logical: 2 } },
      recordCount: 12,
      maxVersion: { wallMs: 1_700_000_000_400, logical: 0 },
      recordsHash: '0123456789abcdef',
      addrs: ['/ip4/10.0.0.1/tcp/7946'],
    });
    const info = heartbeatOf(verifier.open(hb.proof!));
    expect(info.heartbeat).toEqual(hb);
    expect(info.recordCount).toBe(12);
    expect(info.recordsHash).toBe('0123456789abcdef');
    expect(info.addrs).toEqual(['/ip4/10.0.0.1/tcp/7946']);
  });

  it('carries the software version; one this build cannot parse is left out, the heartbeat still taken', () => {
    const base = {
      heartbeat: { origin: 'east', incarnation: 1, version: { wallMs: 1_700_000_000_500, logical: 0 } },
      recordCount: 0,
      maxVersion: { wallMs: 0, logical: 0 },
      recordsHash: '',
      addrs: [],
    };
    expect(heartbeatOf(verifier.open(signHeartbeat(signer, { ...base, software: '0.2.0' }).proof!)).software).toBe(
      '0.2.0',
    );
    for (const odd of ['v2', '2026.12', 'x'.repeat(200)]) {
      const info = heartbeatOf(verifier.open(signHeartbeat(signer, { ...base, software: odd }).proof!));
      expect(info.software).toBeUndefined();
      expect(info.heartbeat.origin).toBe('east');
    }
  });

  it('round-trip a binding', () => {
    const b = signBinding(signer, 'east', 'prod', 1234);
    const back = bindingOf(verifier.open(b.proof));
    expect(back.clusterId).toBe('east');
    expect(back.clusterSet).toBe('prod');
    expect(back.issuedAtMs).toBe(1234);
    expect(peerIdOfKey(back.publicKey).equals(peerIdOfKey(signer.publicKey))).toBe(true);
  });
});
