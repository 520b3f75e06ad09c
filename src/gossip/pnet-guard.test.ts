import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { installPnetGuard } from './pnet-guard.js';

const pnetRequire = createRequire(createRequire(import.meta.url).resolve('@libp2p/pnet'));
const xsalsa20 = pnetRequire('xsalsa20') as (
  nonce: Uint8Array,
  key: Uint8Array,
) => {
  update(input: Uint8Array): Uint8Array;
};

describe('pnet guard', () => {
  it('decrypts a 4 MiB read in one call, identically to small pieces', () => {
    installPnetGuard();
    const nonce = new Uint8Array(24).fill(1);
    const key = new Uint8Array(32).fill(2);
    const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => i & 255);
    const whole = xsalsa20(nonce, key).update(data);
    const pieces = xsalsa20(nonce, key);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < data.length; i += 1000) parts.push(pieces.update(data.subarray(i, i + 1000)));
    expect(Buffer.compare(Buffer.concat(parts), whole)).toBe(0);
  });
});
