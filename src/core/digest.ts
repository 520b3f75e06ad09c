import type { ExportRecord } from './export-record.js';
import { fmix32 } from './fingerprint.js';
import { compareHlc, ZERO_HLC } from './hlc.js';
import type { Hlc } from './hlc.js';
import { compareStrings } from './ids.js';
import type { ClusterId, ServiceKey } from './ids.js';

/** Number of key buckets per origin in a {@link BucketDigest}: a lost update costs at most one bucket's records. */
export const DIGEST_BUCKETS = 256;

/**
 * A summary of what a node holds for one origin. Two nodes hold the same records of an origin exactly when count and
 * hash agree (up to a 2^-64 chance). The hash covers keys and versions, not content: an origin issues each version
 * once (its HLC is strictly monotonic and seeded across restarts) and signs it, so a version names one content.
 */
export interface OriginDigest {
  readonly origin: ClusterId;
  /** Records held, tombstones included. */
  readonly count: number;
  /** The highest record version held. */
  readonly maxVersion: Hlc;
  /** 16 hex digits: XOR over the records of hash(key, version, removed). */
  readonly hash: string;
  /** The version of the newest heartbeat held, if any: anti-entropy relays heartbeats too. */
  readonly heartbeat?: Hlc;
}

/** One bucket of an origin's records: the keys whose hash falls into `bucket`. */
export interface BucketSummary {
  readonly bucket: number;
  readonly count: number;
  readonly hash: string;
}

/** The non-empty buckets of one origin, sorted by bucket: the second round of anti-entropy. */
export interface BucketDigest {
  readonly origin: ClusterId;
  readonly buckets: readonly BucketSummary[];
}

/** One record's share of its origin's digest: its key bucket and hash(key, version, removed) in two 32-bit lanes. */
export interface RecordHash {
  readonly bucket: number;
  readonly a: number;
  readonly b: number;
}

/**
 * The digest contribution of a record of `key`; XOR of these over an origin's records is its digest hash. Equal to
 * `new Fingerprint().str(key).num(wallMs).num(logical).bool(removed)`, unrolled: it runs once per merged record.
 */
export function recordHash(key: ServiceKey, version: Hlc, removed: boolean): RecordHash {
  const out = { bucket: 0, a: 0, b: 0 };
  hashParts(key, undefined, version, removed, out);
  return out;
}

/** {@link recordHash} of a record, hashing `<namespace>/<name>` without building the key string. */
export function recordHashOf(r: ExportRecord): RecordHash {
  const out = { bucket: 0, a: 0, b: 0 };
  hashParts(r.namespace, r.name, r.version, r.removed, out);
  return out;
}

/** Writes into `out` (no allocation: `digestOf` hashes every record with one scratch object). */
function hashParts(
  first: string,
  second: string | undefined,
  version: Hlc,
  removed: boolean,
  out: { bucket: number; a: number; b: number },
): void {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < first.length; i++) {
    const c = first.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  let length = first.length;
  if (second !== undefined) {
    a = Math.imul(a ^ 0x2f, 0x01000193); // "/"
    b = Math.imul(b ^ 0x2f, 0x5bd1e995);
    for (let i = 0; i < second.length; i++) {
      const c = second.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    length += 1 + second.length;
  }
  a = Math.imul(a ^ (length | 0x10000), 0x01000193);
  b = Math.imul(b ^ (length | 0x10000), 0x5bd1e995);
  const bucket = fmix32(a) % DIGEST_BUCKETS;
  a = mixNumber(a, version.wallMs, 0x01000193);
  b = mixNumber(b, version.wallMs, 0x5bd1e995);
  a = mixNumber(a, version.logical, 0x01000193);
  b = mixNumber(b, version.logical, 0x5bd1e995);
  a = mixNumber(a, removed ? 1 : 0, 0x01000193);
  b = mixNumber(b, removed ? 1 : 0, 0x5bd1e995);
  out.bucket = bucket;
  out.a = fmix32(a);
  out.b = fmix32(b ^ 0x2545f491);
}

/** As `Fingerprint.num`: both 32-bit halves of an integer up to 2^53. */
function mixNumber(h: number, n: number, prime: number): number {
  return Math.imul(Math.imul(h ^ (n >>> 0), prime) ^ (Math.floor(n / 0x100000000) >>> 0), prime);
}

/** Two 32-bit lanes as 16 hex digits. */
export function hex64(a: number, b: number): string {
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/**
 * The per-origin digests of a set of records (one per (origin, key), as a state holds them), computed from scratch.
 * `ClusterSetState` maintains the same values incrementally; this is the reference and the cold cost.
 */
export function digestOf(records: Iterable<ExportRecord>): OriginDigest[] {
  const origins = new Map<ClusterId, { count: number; maxVersion: Hlc; a: number; b: number }>();
  const h = { bucket: 0, a: 0, b: 0 };
  let lastOrigin: ClusterId | undefined;
  let o = { count: 0, maxVersion: ZERO_HLC, a: 0, b: 0 };
  for (const r of records) {
    if (r.origin !== lastOrigin) {
      const known = origins.get(r.origin);
      if (known === undefined) {
        o = { count: 0, maxVersion: ZERO_HLC, a: 0, b: 0 };
        origins.set(r.origin, o);
      } else o = known;
      lastOrigin = r.origin;
    }
    hashParts(r.namespace, r.name, r.version, r.removed, h);
    o.count++;
    o.a ^= h.a;
    o.b ^= h.b;
    if (compareHlc(r.version, o.maxVersion) > 0) o.maxVersion = r.version;
  }
  return [...origins.entries()]
    .sort((x, y) => compareStrings(x[0], y[0]))
    .map(([origin, o]) => ({ origin, count: o.count, maxVersion: o.maxVersion, hash: hex64(o.a, o.b) }));
}
