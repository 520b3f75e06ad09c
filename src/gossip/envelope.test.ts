import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExportRecord } from '../core/index.js';
import { EnvelopeKind } from './constants.js';
import {
  bindingOf,
  EnvelopeSigner,
  EnvelopeVerifier,
  heartbeatOf,
  peerIdOfKey,
  recordOf,
  signBinding,
  signHeartbeat,
  signRecord,
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
    const extraField = Uint8Array.from([...proof, 0x28, 0x01]);
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

  it('round-trip a binding', () => {
    const b = signBinding(signer, 'east', 'prod', 1234);
    const back = bindingOf(verifier.open(b.proof));
    expect(back.clusterId).toBe('east');
    expect(back.clusterSet).toBe('prod');
    expect(back.issuedAtMs).toBe(1234);
    expect(peerIdOfKey(back.publicKey).equals(peerIdOfKey(signer.publicKey))).toBe(true);
  });
});
