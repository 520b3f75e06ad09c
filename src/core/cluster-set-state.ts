import { DIGEST_BUCKETS, hex64, recordHash } from './digest.js';
import type { BucketDigest, BucketSummary, OriginDigest } from './digest.js';
import type { ExportRecord } from './export-record.js';
import { Fingerprint, fingerprintService } from './fingerprint.js';
import type { OriginHeartbeat } from './heartbeat.js';
import { compareHlc, isValidHlc, ZERO_HLC } from './hlc.js';
import type { Hlc } from './hlc.js';
import { compareStrings, isClusterId, serviceKey } from './ids.js';
import type { ClusterId, ServiceKey } from './ids.js';

/** What a merge did. */
export interface MergeResult {
  /** The records now held that changed, at most one per (origin, key), in order of first change. */
  readonly applied: readonly ExportRecord[];
  /** Records ignored because an equal or newer version was already held, or they are below their origin's floor. */
  readonly stale: number;
  /** Records rejected as malformed (bad version, removed with a service, live without one, empty names). */
  readonly invalid: number;
}

/** The last heartbeat held for an origin and when this node first heard it (its own clock). */
export interface HeartbeatState {
  readonly heartbeat: OriginHeartbeat;
  readonly heardAtMs: number;
}

/** Which origins have their endpoints withdrawn: a result, not a side effect. */
export interface Liveness {
  readonly alive: readonly ClusterId[];
  readonly withdrawn: readonly ClusterId[];
}

export interface LivenessOptions {
  /** This cluster: never withdrawn from its own point of view. */
  readonly self?: ClusterId;
  /**
   * When this node started. An origin never heard since (records learned by anti-entropy, no heartbeat yet) is given
   * one TTL from here before it is withdrawn, so a restart does not flap every import. Default: withdrawn at once.
   */
  readonly startedAtMs?: number;
}

interface Entry {
  readonly record: ExportRecord;
  readonly bucket: number;
  /** Digest contribution of this record, hash(key, version, removed) in two 32-bit lanes. */
  readonly ha: number;
  readonly hb: number;
  /** The merge call that stored this entry, and its index in that call's `applied`: dedupes without string keys. */
  readonly batch: number;
  readonly slot: number;
}

/**
 * The records of one key across origins, sorted by origin, and the revision of its last change. The array is
 * copied on write once `recordsFor` has handed it out (`shared`), and updated in place before that.
 */
interface KeyRecords {
  records: ExportRecord[];
  shared: boolean;
  revision: number;
}

/** Puts `r` in place of its origin's record in `k`, or inserts it in origin order. */
function setRecord(k: KeyRecords, r: ExportRecord): void {
  if (k.shared) {
    k.records = k.records.slice();
    k.shared = false;
  }
  const out = k.records;
  let i = 0;
  while (i < out.length && out[i]!.origin < r.origin) i++;
  if (i < out.length && out[i]!.origin === r.origin) out[i] = r;
  else out.splice(i, 0, r);
}

class OriginState {
  readonly records = new Map<ServiceKey, Entry>();
  maxVersion: Hlc = ZERO_HLC;
  /** Records below this version are dropped and refused (see OriginHeartbeat.floor, ClusterSetState.raiseFloor). */
  floor: Hlc = ZERO_HLC;
  /** The heartbeat that carried the floor (signed by the origin): what anti-entropy relays so every node learns it. */
  floorHeartbeat: OriginHeartbeat | undefined;
  /** Forgotten here (unheard past the horizon): listed nowhere until heard again. */
  forgotten = false;
  /**
   * While forgotten: records below this (just above the newest ever held) are refused, so a peer with a longer memory
   * cannot bring them back. Cleared when the origin is heard again, so its unchanged records are taken again.
   */
  forgottenBelow: Hlc | undefined;
  ha = 0;
  hb = 0;
  readonly bucketA = new Uint32Array(DIGEST_BUCKETS);
  readonly bucketB = new Uint32Array(DIGEST_BUCKETS);
  readonly bucketCount = new Uint32Array(DIGEST_BUCKETS);
  heartbeat: HeartbeatState | undefined;

  toggle(e: Entry): void {
    this.ha ^= e.ha;
    this.hb ^= e.hb;
    this.bucketA[e.bucket]! ^= e.ha;
    this.bucketB[e.bucket]! ^= e.hb;
  }
}

function isWellFormed(r: ExportRecord): boolean {
  return (
    typeof r.origin === 'string' &&
    isClusterId(r.origin) &&
    typeof r.namespace === 'string' &&
    r.namespace.length > 0 &&
    !r.namespace.includes('/') &&
    typeof r.name === 'string' &&
    r.name.length > 0 &&
    isValidHlc(r.version) &&
    (r.removed ? r.service === undefined : r.service !== undefined)
  );
}

function entryOf(r: ExportRecord, key: ServiceKey, batch: number, slot: number): Entry {
  const h = recordHash(key, r.version, r.removed);
  return { record: r, bucket: h.bucket, ha: h.a, hb: h.b, batch, slot };
}

/** The content fingerprint of a record: only needed to break a tie between two contents at one version. */
function contentOf(r: ExportRecord): [number, number] {
  const f = new Fingerprint().bool(r.removed);
  if (r.service !== undefined) fingerprintService(f, r.service);
  return f.done();
}

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Whether `next` replaces `held`: the higher version wins. Equal versions with different content can only come from
 * a misbehaving origin, but every node must still pick the same one: the higher content fingerprint, then the
 * greater proof bytes.
 */
function supersedes(next: ExportRecord, held: ExportRecord): boolean {
  const byVersion = compareHlc(next.version, held.version);
  if (byVersion !== 0) return byVersion > 0;
  if (next === held) return false;
  const [na, nb] = contentOf(next);
  const [ha, hb] = contentOf(held);
  if (na !== ha) return na > ha;
  if (nb !== hb) return nb > hb;
  return compareBytes(next.proof, held.proof) > 0;
}

/**
 * Everything one node knows about the ClusterSet: every origin's export records (tombstones included) and its last
 * heartbeat. Pure: no I/O, clock or randomness; callers pass the local time where it matters.
 *
 * Merge is a join (commutative, associative, idempotent) per (origin, key): any two nodes that received the same
 * records in any order, with duplicates, hold the same state. Digests are maintained incrementally on merge, so
 * `digest()` costs O(origins) and `bucketDigest()` O(buckets), whatever the number of records.
 *
 * Tombstones are never dropped: a peer partitioned for any length of time may still hold the live record, and only
 * the tombstone's higher version stops it from coming back. They are small (no service), and bounded by the number of
 * distinct keys an origin ever exported; an origin that leaves the ClusterSet for good is dropped as a whole with
 * {@link ClusterSetState.forgetOrigin}, an operator decision outside the data path.
 */
export class ClusterSetState {
  readonly #origins = new Map<ClusterId, OriginState>();
  /** The same entries indexed by service key, for resolution per key. */
  readonly #byKey = new Map<ServiceKey, KeyRecords>();
  /** `keys()` sorted, kept until a key is added or dropped: resolution walks it on every pass. */
  #sortedKeys: ServiceKey[] | undefined;
  /** Bumped on every change; a key remembers the value at its last change (see `revisionOf`). */
  #revision = 0;
  /** Counts merge calls (see `Entry.batch`). */
  #batch = 0;
  /** Keys changed (or dropped) since the last {@link ClusterSetState.takeChangedKeys}. */
  #changed = new Set<ServiceKey>();

  #origin(origin: ClusterId): OriginState {
    let o = this.#origins.get(origin);
    if (o === undefined) {
      o = new OriginState();
      this.#origins.set(origin, o);
    }
    return o;
  }

  /** Merges records from anywhere (the origin itself, a relay, anti-entropy); order and duplicates do not matter. */
  merge(records: Iterable<ExportRecord>): MergeResult {
    const applied: ExportRecord[] = [];
    const batch = ++this.#batch;
    let stale = 0;
    let invalid = 0;
    for (const r of records) {
      if (!isWellFormed(r)) {
        invalid++;
        continue;
      }
      const key = serviceKey(r.namespace, r.name);
      const known = this.#origins.get(r.origin);
      if (
        known !== undefined &&
        (compareHlc(r.version, known.floor) < 0 ||
          (known.forgottenBelow !== undefined && compareHlc(r.version, known.forgottenBelow) < 0))
      ) {
        stale++;
        continue;
      }
      const o = this.#origin(r.origin);
      if (o.forgotten) this.#remember(o);
      const held = o.records.get(key);
      if (held !== undefined && !supersedes(r, held.record)) {
        stale++;
        continue;
      }
      // A key changed twice in one call keeps its first slot in `applied`, holding the last record.
      const slot = held !== undefined && held.batch === batch ? held.slot : applied.length;
      applied[slot] = r;
      const next = entryOf(r, key, batch, slot);
      if (held !== undefined) o.toggle(held);
      else o.bucketCount[next.bucket]!++;
      o.records.set(key, next);
      o.toggle(next);
      if (compareHlc(r.version, o.maxVersion) > 0) o.maxVersion = r.version;
      let perKey = this.#byKey.get(key);
      if (perKey === undefined) {
        perKey = { records: [], shared: false, revision: 0 };
        this.#byKey.set(key, perKey);
        this.#sortedKeys = undefined;
      }
      setRecord(perKey, r);
      perKey.revision = ++this.#revision;
      this.#changed.add(key);
    }
    return { applied, stale, invalid };
  }

  /**
   * Records a heartbeat. Only a heartbeat newer than the one held counts as hearing the origin: an old one relayed by
   * anti-entropy must not keep a dead origin alive. Returns whether it was newer (and should be relayed).
   */
  observeHeartbeat(hb: OriginHeartbeat, localNowMs: number): boolean {
    if (typeof hb.origin !== 'string' || !isClusterId(hb.origin) || !isValidHlc(hb.version)) return false;
    if (!Number.isSafeInteger(hb.incarnation)) return false;
    if (hb.floor !== undefined && (!isValidHlc(hb.floor) || compareHlc(hb.floor, hb.version) > 0)) return false;
    const known = this.#origins.get(hb.origin);
    if (known !== undefined && compareHlc(hb.version, known.floor) < 0) return false;
    if (known?.forgottenBelow !== undefined && compareHlc(hb.version, known.forgottenBelow) < 0) return false;
    const o = this.#origin(hb.origin);
    // A floor is a fact of its own: taken even from a heartbeat older than the one held (anti-entropy relays it).
    if (hb.floor !== undefined && compareHlc(hb.floor, o.floor) >= 0) {
      this.raiseFloor(hb.origin, hb.floor);
      // Keep the first heartbeat that proves the floor (the origin may have raised it locally before it beat).
      if (compareHlc(hb.floor, o.floorHeartbeat?.floor ?? ZERO_HLC) > 0) o.floorHeartbeat = hb;
    }
    if (o.heartbeat !== undefined) {
      const held = o.heartbeat;
      const cmp = compareHlc(hb.version, held.heartbeat.version);
      // The signed statement of a beat already heard unsigned (liveness relays outrun the topic) replaces it, so
      // what it says (a leave) and its proof (relayed by anti-entropy) are kept; it was not heard any later.
      if (cmp === 0 && hb.proof !== undefined && held.heartbeat.proof === undefined) {
        o.heartbeat = { heartbeat: hb, heardAtMs: held.heardAtMs };
      }
      if (cmp <= 0) return false;
    }
    o.heartbeat = { heartbeat: hb, heardAtMs: localNowMs };
    if (o.forgotten) this.#remember(o);
    return true;
  }

  /** A forgotten origin was heard again: listed again, and its records (the unchanged ones too) taken again. */
  #remember(o: OriginState): void {
    o.forgotten = false;
    o.forgottenBelow = undefined;
  }

  /** Whether this node forgot the origin (unheard past the horizon) and has not heard it since. */
  isForgotten(origin: ClusterId): boolean {
    return this.#origins.get(origin)?.forgotten === true;
  }

  /** The heartbeat that carried an origin's current floor, if any: relayed by anti-entropy with its records. */
  floorHeartbeatOf(origin: ClusterId): OriginHeartbeat | undefined {
    return this.#origins.get(origin)?.floorHeartbeat;
  }

  /**
   * Drops every record of `origin` below `floor` and refuses such records from now on (a floor only rises). Returns
   * the records dropped. Called with the floor an origin signs into its heartbeats, with a floor above everything
   * when it left, and locally to forget an origin unheard past the horizon ({@link ClusterSetState.forgetOrigin}).
   */
  raiseFloor(origin: ClusterId, floor: Hlc): ExportRecord[] {
    if (!isValidHlc(floor)) return [];
    const o = this.#origin(origin);
    if (compareHlc(floor, o.floor) <= 0) return [];
    o.floor = floor;
    return this.#dropBelow(origin, o, floor);
  }

  #dropBelow(origin: ClusterId, o: OriginState, floor: Hlc): ExportRecord[] {
    const dropped: ExportRecord[] = [];
    for (const [key, e] of o.records) {
      if (compareHlc(e.record.version, floor) >= 0) continue;
      dropped.push(e.record);
      o.toggle(e);
      o.bucketCount[e.bucket]!--;
      o.records.delete(key);
      const perKey = this.#byKey.get(key);
      if (perKey === undefined) continue;
      perKey.records = perKey.records.filter((r) => r.origin !== origin);
      perKey.shared = false;
      perKey.revision = ++this.#revision;
      this.#changed.add(key);
      if (perKey.records.length === 0) {
        this.#byKey.delete(key);
        this.#sortedKeys = undefined;
      }
    }
    return dropped;
  }

  /** The floor of an origin (ZERO_HLC: none). */
  floorOf(origin: ClusterId): Hlc {
    return this.#origins.get(origin)?.floor ?? ZERO_HLC;
  }

  /**
   * Moves back when the held heartbeat of `origin` counts as heard, if it is the one at `version` and `heardAtMs` is
   * earlier: a heartbeat relayed by anti-entropy was heard by the relay that long ago, not when it reached us (a dead
   * cluster must not look alive to a fresh node). Returns whether it moved.
   */
  backdateHeartbeat(origin: ClusterId, version: Hlc, heardAtMs: number): boolean {
    const o = this.#origins.get(origin);
    const held = o?.heartbeat;
    if (o === undefined || held === undefined || !Number.isFinite(heardAtMs)) return false;
    if (compareHlc(held.heartbeat.version, version) !== 0 || heardAtMs >= held.heardAtMs) return false;
    o.heartbeat = { heartbeat: held.heartbeat, heardAtMs };
    return true;
  }

  /** Every origin known (by a record or a heartbeat), sorted; forgotten ones are not listed. */
  origins(): ClusterId[] {
    const out: ClusterId[] = [];
    for (const [origin, o] of this.#origins) if (!o.forgotten) out.push(origin);
    return out.sort(compareStrings);
  }

  /** Every record of one origin, tombstones included, sorted by key. */
  recordsOf(origin: ClusterId): ExportRecord[] {
    const o = this.#origins.get(origin);
    if (o === undefined) return [];
    return [...o.records.entries()].sort((x, y) => compareStrings(x[0], y[0])).map(([, e]) => e.record);
  }

  /** The record of one origin for one key, if held. */
  record(origin: ClusterId, key: ServiceKey): ExportRecord | undefined {
    return this.#origins.get(origin)?.records.get(key)?.record;
  }

  /** Every service key with at least one record (live or tombstone), sorted. */
  keys(): readonly ServiceKey[] {
    this.#sortedKeys ??= [...this.#byKey.keys()].sort(compareStrings);
    return this.#sortedKeys;
  }

  /**
   * The keys whose records changed or were dropped since the last call, however they changed (a merge, a floor, a
   * forgotten origin), and forgets them: a node's data path resolves just these. One consumer per state; without one
   * the set is bounded by the number of keys ever held.
   */
  takeChangedKeys(): ServiceKey[] {
    if (this.#changed.size === 0) return [];
    const keys = [...this.#changed];
    this.#changed = new Set();
    return keys;
  }

  /** A number that changes whenever a record of `key` changes (0: never held). Equal revisions, equal records. */
  revisionOf(key: ServiceKey): number {
    return this.#byKey.get(key)?.revision ?? 0;
  }

  /** The records of every origin for one key, tombstones included, sorted by origin. Never mutated afterwards. */
  recordsFor(key: ServiceKey): readonly ExportRecord[] {
    const perKey = this.#byKey.get(key);
    if (perKey === undefined) return [];
    perKey.shared = true;
    return perKey.records;
  }

  /** Number of records held, tombstones included. */
  get size(): number {
    let n = 0;
    for (const o of this.#origins.values()) n += o.records.size;
    return n;
  }

  /** The last heartbeat of an origin, and when it was heard here. */
  heartbeatOf(origin: ClusterId): HeartbeatState | undefined {
    return this.#origins.get(origin)?.heartbeat;
  }

  /** The newest heartbeat of every origin, sorted by origin: what anti-entropy relays. */
  heartbeats(): OriginHeartbeat[] {
    const out: OriginHeartbeat[] = [];
    for (const origin of this.origins()) {
      const hb = this.#origins.get(origin)?.heartbeat;
      if (hb !== undefined) out.push(hb.heartbeat);
    }
    return out;
  }

  /** One summary per origin, sorted: the first round of anti-entropy. O(origins). */
  digest(): OriginDigest[] {
    return this.origins().map((origin) => this.digestOf(origin)!);
  }

  /** The summary of one origin (as in {@link ClusterSetState.digest}), O(1); undefined for an unknown origin. */
  digestOf(origin: ClusterId): OriginDigest | undefined {
    const o = this.#origins.get(origin);
    if (o === undefined) return undefined;
    const heartbeat = o.heartbeat?.heartbeat.version;
    const d: OriginDigest = { origin, count: o.records.size, maxVersion: o.maxVersion, hash: hex64(o.ha, o.hb) };
    return heartbeat === undefined ? d : { ...d, heartbeat };
  }

  /** The non-empty key buckets of one origin: lets a peer find which records differ even if a middle update was lost. */
  bucketDigest(origin: ClusterId): BucketDigest {
    const o = this.#origins.get(origin);
    const buckets: BucketSummary[] = [];
    if (o !== undefined) {
      for (let i = 0; i < DIGEST_BUCKETS; i++) {
        const count = o.bucketCount[i]!;
        if (count > 0) buckets.push({ bucket: i, count, hash: hex64(o.bucketA[i]!, o.bucketB[i]!) });
      }
    }
    return { origin, buckets };
  }

  /** The records of one origin whose keys fall into the given buckets, sorted by key. */
  recordsInBuckets(origin: ClusterId, buckets: Iterable<number>): ExportRecord[] {
    const o = this.#origins.get(origin);
    if (o === undefined) return [];
    const wanted = new Set(buckets);
    const out: [ServiceKey, ExportRecord][] = [];
    for (const [key, e] of o.records) if (wanted.has(e.bucket)) out.push([key, e.record]);
    return out.sort((x, y) => compareStrings(x[0], y[0])).map(([, r]) => r);
  }

  /** The records of one origin with a version strictly above `version`, in version order: the cheap catch-up path. */
  recordsNewerThan(origin: ClusterId, version: Hlc): ExportRecord[] {
    const o = this.#origins.get(origin);
    if (o === undefined) return [];
    const out: ExportRecord[] = [];
    for (const e of o.records.values()) if (compareHlc(e.record.version, version) > 0) out.push(e.record);
    return out.sort((x, y) => compareHlc(x.version, y.version));
  }

  /**
   * Which origins are withdrawn at `nowMs`: those whose newest heartbeat was first heard more than `ttlMs` ago
   * (or never, see {@link LivenessOptions.startedAtMs}). An origin is restored as soon as a newer heartbeat arrives.
   */
  liveness(nowMs: number, ttlMs: number, options: LivenessOptions = {}): Liveness {
    const alive: ClusterId[] = [];
    const withdrawn: ClusterId[] = [];
    for (const origin of this.origins()) {
      const heardAtMs = this.#origins.get(origin)?.heartbeat?.heardAtMs ?? options.startedAtMs;
      const isAlive = origin === options.self || (heardAtMs !== undefined && nowMs - heardAtMs <= ttlMs);
      (isAlive ? alive : withdrawn).push(origin);
    }
    return { alive, withdrawn };
  }

  /**
   * Forgets an origin (unheard past the horizon, or gone for good): drops all its records and its heartbeat, and
   * refuses records below the newest one ever held, so a peer that still holds them cannot bring them back. The
   * origin is taken again, with all its records, as soon as it is heard with a newer heartbeat or record (it came
   * back). Returns the records dropped.
   */
  forgetOrigin(origin: ClusterId): ExportRecord[] {
    const o = this.#origins.get(origin);
    if (o === undefined) return [];
    let top = o.maxVersion;
    // The newest heartbeat held counts too, so a relay of that old beat does not bring the origin back at once (an
    // unsigned one is at most MAX_FUTURE_MS ahead: it can delay a return by that much, no more).
    const beat = o.heartbeat?.heartbeat.version;
    if (beat !== undefined && compareHlc(beat, top) > 0) top = beat;
    const below = { wallMs: top.wallMs, logical: top.logical + 1 };
    o.forgottenBelow = below;
    o.heartbeat = undefined;
    o.forgotten = true;
    return this.#dropBelow(origin, o, below);
  }
}
