import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { envelopesOf } from './sync.js';
import { SyncEnvelopes, SyncFrame } from './wire.js';

const frame = (f: Partial<SyncFrame>): SyncFrame => ({
  type: SyncFrame.Type.RECORDS,
  version: 1,
  digests: [],
  envelopes: [],
  buckets: [],
  pullMe: false,
  deflated: new Uint8Array(0),
  summary: new Uint8Array(0),
  ...f,
});

describe('deflated RECORDS frames', () => {
  const envelopes = Array.from({ length: 50 }, (_, i) => new Uint8Array(300).fill(i));

  it('inflate to the envelopes they carry, and plain frames pass through', async () => {
    const deflated = deflateRawSync(SyncEnvelopes.encode({ envelopes }));
    const hex = (list: readonly Uint8Array[]): string[] => list.map((e) => Buffer.from(e).toString('hex'));
    expect(hex(await envelopesOf(frame({ deflated })))).toEqual(hex(envelopes));
    expect(hex(await envelopesOf(frame({ envelopes })))).toEqual(hex(envelopes));
  });

  it('refuse a frame that inflates beyond 4 MiB (a 64 MiB bomb), garbage, and both fields at once', async () => {
    const bomb = deflateRawSync(SyncEnvelopes.encode({ envelopes: [new Uint8Array(64 * 1024 * 1024)] }));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    await expect(envelopesOf(frame({ deflated: bomb }))).rejects.toThrow(/does not inflate/);
    await expect(envelopesOf(frame({ deflated: new Uint8Array([1, 2, 3, 4, 5]) }))).rejects.toThrow(/does not inflate/);
    await expect(envelopesOf(frame({ deflated: deflateRawSync(new Uint8Array([0xff, 0xff, 0xff])) }))).rejects.toThrow(
      /does not decode/,
    );
    const deflated = deflateRawSync(SyncEnvelopes.encode({ envelopes }));
    await expect(envelopesOf(frame({ deflated, envelopes }))).rejects.toThrow(/both plain and deflated/);
  });
});
