import type { ClusterSetState } from './cluster-set-state.js';
import type { BucketDigest, OriginDigest } from './digest.js';
import type { ExportRecord } from './export-record.js';
import type { OriginHeartbeat } from './heartbeat.js';
import { compareHlc } from './hlc.js';
import type { ClusterId } from './ids.js';

/** What a peer told us it holds: its per-origin digests and, in a second round, bucket digests of some origins. */
export interface RemoteSummary {
  readonly digests: readonly OriginDigest[];
  readonly buckets?: readonly BucketDigest[];
}

/** What to send a peer so it catches up with us, and which origins need a finer (bucket) comparison. */
export interface Delta {
  /** Records the peer is missing or may be missing, sorted by origin then key/version. */
  readonly records: readonly ExportRecord[];
  /** Heartbeats newer than the peer's. */
  readonly heartbeats: readonly OriginHeartbeat[];
  /**
   * The heartbeats that carried the floors of origins the peer may hold differently: to be delivered before the
   * records, so the peer drops (and refuses) what lies below them — also a stale peer that still holds removals
   * collected long ago.
   */
  readonly floors: readonly OriginHeartbeat[];
  /**
   * Origins held by both whose digests differ and for which no bucket digest was given: ask the peer for
   * `bucketDigest(origin)` and call {@link deltaFor} again with it. Needed when an update in the middle was lost,
   * which `maxVersion` alone cannot reveal.
   */
  readonly compareBuckets: readonly ClusterId[];
}

/** `out.push(...items)` without spreading: a spread passes every item as an argument and overflows the stack. */
function append<T>(out: T[], items: readonly T[]): void {
  for (const x of items) out.push(x);
}

/**
 * The anti-entropy delta from `local` to a peer, computed from the peer's summary alone (pure; both sides run it).
 *
 * Per origin: the peer lacks it entirely → all its records; digests equal → nothing; otherwise everything newer
 * than the peer's `maxVersion` (cheap catch-up) plus, once the peer's bucket digest is known, every record of each
 * bucket whose hash differs. Sending a record the peer already has at a newer version is harmless: merge drops it.
 */
export function deltaFor(local: ClusterSetState, remote: RemoteSummary): Delta {
  const remoteDigests = new Map(remote.digests.map((d) => [d.origin, d]));
  const remoteBuckets = new Map((remote.buckets ?? []).map((b) => [b.origin, b]));
  const records: ExportRecord[] = [];
  const heartbeats: OriginHeartbeat[] = [];
  const compareBuckets: ClusterId[] = [];
  const floors: OriginHeartbeat[] = [];
  for (const mine of local.digest()) {
    const theirs = remoteDigests.get(mine.origin);
    const floor = local.floorHeartbeatOf(mine.origin);
    if (floor !== undefined && (theirs === undefined || theirs.hash !== mine.hash || theirs.count !== mine.count)) {
      floors.push(floor);
    }
    const hb = local.heartbeatOf(mine.origin)?.heartbeat;
    if (hb !== undefined && (theirs?.heartbeat === undefined || compareHlc(hb.version, theirs.heartbeat) > 0)) {
      heartbeats.push(hb);
    }
    if (theirs === undefined) {
      append(records, local.recordsOf(mine.origin));
      continue;
    }
    if (theirs.hash === mine.hash && theirs.count === mine.count) continue;
    const buckets = remoteBuckets.get(mine.origin);
    if (buckets === undefined) {
      append(records, local.recordsNewerThan(mine.origin, theirs.maxVersion));
      if (mine.count > 0) compareBuckets.push(mine.origin);
      continue;
    }
    const theirBuckets = new Map(buckets.buckets.map((b) => [b.bucket, b]));
    const differing: number[] = [];
    for (const b of local.bucketDigest(mine.origin).buckets) {
      const t = theirBuckets.get(b.bucket);
      if (t === undefined || t.hash !== b.hash || t.count !== b.count) differing.push(b.bucket);
    }
    append(records, local.recordsInBuckets(mine.origin, differing));
  }
  return { records, heartbeats, floors, compareBuckets };
}
