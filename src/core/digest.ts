import type { Hlc } from './hlc.js';
import type { ClusterId } from './ids.js';

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
