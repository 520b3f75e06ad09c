import { createHash } from 'node:crypto';

// node:crypto is used only for sha256, a pure function of its input: no I/O, clock or randomness.

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** Lowercase, unpadded base32hex (RFC 4648 §7) of the first bits of `bytes`, `chars` characters long. */
export function base32hex(bytes: Uint8Array, chars: number): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32HEX[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= chars) break;
  }
  return out;
}

const cache = new Map<string, string>();
const CACHE_LIMIT = 100_000;

/**
 * The name of the "derived" Service that carries the ClusterSetIP of `namespace/name`, as the reference
 * implementation names it: `derived-` + first 10 chars of lowercase unpadded base32hex(sha256("<ns>/<name>")).
 */
export function derivedServiceName(namespace: string, name: string): string {
  return derivedServiceNameOfKey(`${namespace}/${name}`);
}

/** {@link derivedServiceName} of a service key `<ns>/<name>`. Memoised: resolution asks once per service per pass. */
export function derivedServiceNameOfKey(key: string): string {
  let derived = cache.get(key);
  if (derived === undefined) {
    derived = 'derived-' + base32hex(createHash('sha256').update(key).digest(), 10);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, derived);
  }
  return derived;
}
