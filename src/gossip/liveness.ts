// Liveness relayed hop by hop. Every origin beats once per heartbeat period; instead of one gossipsub message per
// origin and period (each copied to every node several times over, ~90 % of a 50-cluster ClusterSet's idle traffic and
// CPU), each node pushes to a few connected peers, at most once per flush interval, the entries that are fresher than
// what that peer has heard from or been told by us: one small frame carries every origin that beat since the last.
// An entry carries its age, so a relayed beat is never taken for a fresher one than it is (no clock agreement needed).
// Entries are accepted only from peers whose key is bound to a cluster id of the ClusterSet, and only about bound
// cluster ids (docs/gossip.md "Liveness" has the trust argument).
import type { PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { LengthPrefixedStream } from '@libp2p/utils';
import type { Logger } from 'pino';
import { compareHlc, isClusterId, isValidHlc } from '../core/index.js';
import type { ClusterId, Hlc } from '../core/index.js';
import {
  MAX_ADDRS_PER_HEARTBEAT,
  LIVENESS_FANOUT,
  LIVENESS_FRAME_BURST,
  LIVENESS_FRAMES_PER_MINUTE,
  LIVENESS_PROTOCOL,
  LIVENESS_PROTOCOL_PACKED,
  MAX_LIVENESS_ENTRIES,
  MAX_LIVENESS_FRAME_BYTES,
  MIN_WIRE_VERSION,
  WIRE_VERSION,
} from './constants.js';
import { InvalidMessageError } from './errors.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { connectedPeers } from './libp2p-node.js';
import type { GossipMetrics } from './metrics.js';
import { PeerRateLimiter } from './rate-limit.js';
import { isSoftwareVersion } from './versioning.js';
import { LivenessFrame } from './wire.js';
import type { LivenessEntry } from './wire.js';

/** The freshest beat of one origin known here. */
export interface Beat {
  readonly origin: ClusterId;
  readonly incarnation: number;
  readonly version: Hlc;
  /** Local time (ms, the node's `now`) at which this beat was fresh at its origin, as far as we can tell. */
  readonly beatAtMs: number;
  /** The origin's records as of the beat. */
  readonly recordCount: number;
  readonly maxVersion: Hlc;
  /** The origin's addresses, when the beat carried them (they are kept per origin, not per beat). */
  readonly addrs?: readonly string[];
  /** The origin's software version, when the beat carried it (kept per origin, like the addresses). */
  readonly software?: string;
}

/** What the exchange needs from its node. */
export interface LivenessHost {
  readonly node: GossipLibp2p;
  readonly topic: string;
  readonly self: ClusterId;
  readonly now: () => number;
  /** Beats older than this are not relayed (their origin counts as gone anyway). */
  readonly ttlMs: number;
  /** Delay between a fresher beat and the push that relays it (coalesces beats into one frame). */
  readonly flushDelayMs: number;
  /** Whether a peer speaks for a cluster id of the ClusterSet. */
  isMember(peer: PeerId): boolean;
  /** Whether a cluster id is bound to a key (entries about unknown ids are dropped: no state grows from them). */
  isBound(origin: ClusterId): boolean;
  /** A fresher beat of another origin arrived from `from`. */
  onBeat(beat: Beat, from: PeerId): void;
  /**
   * A peer relayed a beat of this node itself (at most MAX_FUTURE_MS ahead of our clock): after a restart with a clock
   * behind the last one, the node continues above it, so its beats are fresher than those peers hold.
   */
  onOwnBeat?(version: Hlc): void;
  readonly metrics: GossipMetrics;
  readonly log: Logger;
}

const MAX_U32 = 0xffff_ffff;
const MAX_ADDR_LENGTH = 256;
/** Clock skew tolerated between clusters: beats stamped further ahead of our clock than this are refused. */
export const MAX_FUTURE_MS = 60_000;
/** Liveness frames are cut at about this many bytes (the receiver takes up to MAX_LIVENESS_FRAME_BYTES). */
const TARGET_LIVENESS_FRAME_BYTES = 128 * 1024;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class LivenessExchange {
  readonly #host: LivenessHost;
  readonly #beats = new Map<ClusterId, Beat>();
  /** Each origin's latest known addresses, and per peer the origins whose addresses it was sent. */
  readonly #addrs = new Map<ClusterId, readonly string[]>();
  /** Each origin's software version, sent along with its addresses. */
  readonly #software = new Map<ClusterId, string>();
  readonly #addrsSent = new Map<string, Set<ClusterId>>();
  /** Per peer: the version of each origin's beat it is known to have (it sent it to us, or we sent it). */
  readonly #peerHas = new Map<string, Map<ClusterId, Hlc>>();
  readonly #limiter = new PeerRateLimiter(LIVENESS_FRAMES_PER_MINUTE, LIVENESS_FRAME_BURST);
  /**
   * One long-lived outbound stream per peer (frames are small: a stream per frame would cost more than they do), with
   * the last entry sent on it per origin (later entries repeat only what changed: see {@link compactEntry}).
   */
  readonly #out = new Map<
    string,
    { stream: Stream; lp: LengthPrefixedStream<Stream>; sent: Map<ClusterId, LivenessSummary>; packed?: OriginRefs }
  >();
  /** Per peer: the last write queued (frames to one peer go out in order, one at a time). */
  readonly #queue = new Map<string, Promise<void>>();
  #flushTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(host: LivenessHost) {
    this.#host = host;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const o of this.#out.values()) o.stream.abort(new Error('stopping'));
    this.#out.clear();
  }

  /** A peer connected or disconnected: forget what it had (a new connection starts from nothing). */
  forgetPeer(peer: PeerId): void {
    const key = peer.toString();
    this.#peerHas.delete(key);
    this.#addrsSent.delete(key);
    this.#out.get(key)?.stream.abort(new Error('peer reconnected'));
    this.#out.delete(key);
    this.#queue.delete(key);
  }

  beatOf(origin: ClusterId): Beat | undefined {
    return this.#beats.get(origin);
  }

  /**
   * Takes a beat (our own, or one learned from a signed heartbeat); relays it when it is fresher than the held one.
   * Returns whether it was fresher.
   */
  observe(beat: Beat): boolean {
    const held = this.#beats.get(beat.origin);
    if (held !== undefined && compareHlc(beat.version, held.version) <= 0) return false;
    // Addresses only with a fresher beat: a stale or replayed entry cannot replace them.
    if (beat.addrs !== undefined && beat.addrs.length > 0) this.#addrs.set(beat.origin, beat.addrs);
    if (beat.software !== undefined) this.#software.set(beat.origin, beat.software);
    this.#beats.set(beat.origin, beat);
    this.#scheduleFlush();
    return true;
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#stopped) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.flush();
    }, this.#host.flushDelayMs);
  }

  /**
   * The peers liveness is pushed to: every member in the topic's gossipsub mesh (meshes are symmetric, so a node in
   * anyone's mesh is pushed to), then other connected members up to LIVENESS_FANOUT.
   */
  #targets(): PeerId[] {
    const node = this.#host.node;
    const out: PeerId[] = [];
    const seen = new Set<string>();
    const connected = connectedPeers(node).filter((p) => this.#host.isMember(p));
    const byKey = new Map(connected.map((p) => [p.toString(), p]));
    // The gossipsub implementation has getMeshPeers; its exported interface does not declare it.
    const pubsub = node.services.pubsub as unknown as { getMeshPeers?: (topic: string) => string[] };
    for (const key of pubsub.getMeshPeers?.(this.#host.topic) ?? []) {
      const p = byKey.get(key);
      if (p !== undefined && !seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
    for (const p of connected) {
      if (out.length >= LIVENESS_FANOUT) break;
      const key = p.toString();
      if (!seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
    return out;
  }

  /** Pushes to each target the beats it lacks (normally called by the flush timer). */
  flush(): void {
    if (this.#stopped) return;
    const now = this.#host.now();
    for (const peer of this.#targets()) {
      const key = peer.toString();
      // One write at a time per peer, built when it can go out: a slow peer gets fresh ages later, not a backlog.
      if (this.#queue.has(key)) {
        this.#scheduleFlush();
        continue;
      }
      let has = this.#peerHas.get(key);
      if (has === undefined) {
        has = new Map();
        this.#peerHas.set(key, has);
      }
      let sent = this.#addrsSent.get(key);
      if (sent === undefined) {
        sent = new Set();
        this.#addrsSent.set(key, sent);
      }
      const frames: LivenessEntry[][] = [];
      let entries: LivenessEntry[] = [];
      let size = 0;
      for (const b of this.#beats.values()) {
        const age = now - b.beatAtMs;
        if (age > this.#host.ttlMs) continue;
        const theirs = has.get(b.origin);
        if (theirs !== undefined && compareHlc(theirs, b.version) >= 0) continue;
        has.set(b.origin, b.version);
        const addrs = sent.has(b.origin) ? undefined : this.#addrs.get(b.origin);
        const software = sent.has(b.origin) ? undefined : this.#software.get(b.origin);
        if (addrs !== undefined || software !== undefined) sent.add(b.origin);
        const entry = toWire(b, age, addrs ?? [], software);
        const entrySize =
          64 + entry.origin.length + entry.softwareVersion.length + entry.addrs.reduce((n, a) => n + a.length + 2, 0);
        if (
          entries.length > 0 &&
          (size + entrySize > TARGET_LIVENESS_FRAME_BYTES || entries.length >= MAX_LIVENESS_ENTRIES)
        ) {
          frames.push(entries);
          entries = [];
          size = 0;
        }
        entries.push(entry);
        size += entrySize;
      }
      if (entries.length > 0) frames.push(entries);
      if (frames.length > 0) void this.#send(peer, frames);
    }
  }

  /** Writes frames on the peer's long-lived stream (opened on first use on an existing connection). */
  #send(peer: PeerId, frames: LivenessEntry[][]): Promise<void> {
    const key = peer.toString();
    const write = async (): Promise<void> => {
      let out = this.#out.get(key);
      try {
        if (out === undefined) {
          // Never dial for liveness: a peer that went away is not redialled from here.
          if (this.#host.node.getConnections(peer).length === 0) throw new Error('not connected');
          // The packed encoding first; a node before it answers for LIVENESS_PROTOCOL only.
          const stream = await this.#host.node.dialProtocol(peer, [LIVENESS_PROTOCOL_PACKED, LIVENESS_PROTOCOL], {
            signal: AbortSignal.timeout(5000),
          });
          out = {
            stream,
            lp: lpStream(stream, { maxDataLength: MAX_LIVENESS_FRAME_BYTES }),
            sent: new Map(),
            ...(stream.protocol === LIVENESS_PROTOCOL_PACKED ? { packed: new Map() } : {}),
          };
          this.#out.set(key, out);
        }
        for (const entries of frames) {
          const sent = out.sent;
          const data = LivenessFrame.encode(
            out.packed === undefined
              ? { version: WIRE_VERSION, entries: entries.map((e) => compactEntry(e, sent)) }
              : { version: WIRE_VERSION, ...packEntries(entries, sent, out.packed) },
          );
          await out.lp.write(data, { signal: AbortSignal.timeout(5000) });
          this.#host.metrics.livenessFrames.inc({ direction: 'out' });
          this.#host.metrics.livenessBytes.inc({ direction: 'out' }, data.length);
        }
      } catch (err) {
        out?.stream.abort(err instanceof Error ? err : new Error(String(err)));
        if (out !== undefined && this.#out.get(key) === out) this.#out.delete(key);
        // The peer did not get them: let the next flush offer them again.
        const has = this.#peerHas.get(key);
        const sent = this.#addrsSent.get(key);
        for (const e of frames.flat()) {
          has?.delete(e.origin);
          if (e.addrs.length > 0 || e.softwareVersion !== '') sent?.delete(e.origin);
        }
        this.#host.log.debug({ peer: key, err }, 'liveness push failed');
      }
    };
    const done = write().finally(() => {
      if (this.#queue.get(key) === done) this.#queue.delete(key);
    });
    this.#queue.set(key, done);
    return done;
  }

  /**
   * Serves an inbound liveness stream (LIVENESS_PROTOCOL, or LIVENESS_PROTOCOL_PACKED as `stream.protocol` says):
   * frames until the peer closes it. A bad frame ends the stream.
   */
  async handle(stream: Stream, peer: PeerId): Promise<void> {
    const metrics = this.#host.metrics;
    const lp = lpStream(stream, { maxDataLength: MAX_LIVENESS_FRAME_BYTES });
    // The last entry this stream carried per origin: later ones may repeat only what changed.
    const carried = new Map<ClusterId, LivenessSummary>();
    // On the packed protocol: the origins in the order the stream first carried them (an origin_ref is a place here).
    const byRef: ClusterId[] | undefined = stream.protocol === LIVENESS_PROTOCOL_PACKED ? [] : undefined;
    try {
      if (!this.#host.isMember(peer)) throw new InvalidMessageError('liveness from a peer that is no member');
      for (;;) {
        let data;
        try {
          data = await lp.read();
        } catch (err) {
          if (stream.readStatus !== 'readable') break; // the peer closed or reset the stream: done
          throw err;
        }
        if (!this.#limiter.tryTake(peer.toString())) {
          // Dropping the frame would leave the two ends disagreeing on what the stream carried (later entries may
          // repeat its entries): the stream ends instead, unread, and the sender's next flush opens one in full.
          metrics.livenessFrames.inc({ direction: 'rate_limited' });
          throw new Error('liveness frames over the rate limit');
        }
        let frame: LivenessFrame;
        try {
          frame = LivenessFrame.decode(data, { limits: { entries: MAX_LIVENESS_ENTRIES } });
        } catch (err) {
          throw new InvalidMessageError(`liveness frame does not decode: ${(err as Error).message}`);
        }
        if (frame.version < MIN_WIRE_VERSION || frame.version > WIRE_VERSION) {
          throw new InvalidMessageError(`unsupported liveness version ${frame.version}`);
        }
        if (byRef === undefined && (frame.repeats.length > 0 || frame.entries.some((e) => e.originRef !== 0))) {
          throw new InvalidMessageError(`packed liveness frame on ${LIVENESS_PROTOCOL}`);
        }
        const entries =
          byRef === undefined
            ? frame.entries.map((e) => expandEntry(e, carried))
            : unpackEntries(frame, carried, byRef);
        metrics.livenessFrames.inc({ direction: 'in' });
        metrics.livenessBytes.inc({ direction: 'in' }, data.byteLength);
        this.ingest(entries, peer);
      }
    } catch (err) {
      if (err instanceof InvalidMessageError) metrics.livenessFrames.inc({ direction: 'invalid' });
      this.#host.log.debug({ peer: peer.toString(), err }, 'liveness stream ended');
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Applies the entries of one frame from `peer`; malformed entries reject the whole frame before any is applied. */
  ingest(entries: readonly LivenessEntry[], peer: PeerId): number {
    const now = this.#host.now();
    const beats: Beat[] = [];
    for (const e of entries) beats.push(fromWire(e, now));
    const key = peer.toString();
    let has = this.#peerHas.get(key);
    if (has === undefined) {
      has = new Map();
      this.#peerHas.set(key, has);
    }
    let fresher = 0;
    for (const b of beats) {
      // A beat from the future would shadow every real one of its origin (withdrawing it everywhere): refused.
      if (b.version.wallMs > now + MAX_FUTURE_MS) {
        this.#host.metrics.livenessFrames.inc({ direction: 'future_entry' });
        continue;
      }
      if (b.origin === this.#host.self) {
        this.#host.onOwnBeat?.(b.version);
        continue;
      }
      if (!this.#host.isBound(b.origin)) continue;
      const theirs = has.get(b.origin);
      if (theirs === undefined || compareHlc(b.version, theirs) > 0) has.set(b.origin, b.version);
      if ((b.addrs !== undefined && b.addrs.length > 0) || b.software !== undefined) {
        this.#addrsSent.get(key)?.add(b.origin);
      }
      if (this.observe(b)) {
        fresher++;
        this.#host.onBeat(b, peer);
      }
    }
    return fresher;
  }
}

/** Most origins one liveness stream may carry (a bound on the per-stream state of a receiver). */
const MAX_ORIGINS_PER_STREAM = MAX_LIVENESS_ENTRIES;

/** What a stream remembers per origin: the fields a repeat leaves out. */
export type LivenessSummary = Pick<
  LivenessEntry,
  'incarnation' | 'wallMs' | 'recordCount' | 'maxWallMs' | 'maxLogical'
>;

const summaryOf = (e: LivenessEntry): LivenessSummary => ({
  incarnation: e.incarnation,
  wallMs: e.wallMs,
  recordCount: e.recordCount,
  maxWallMs: e.maxWallMs,
  maxLogical: e.maxLogical,
});

/**
 * The entry to put on a stream after `sent` (the last entry the stream carried per origin, updated here): when the
 * origin's incarnation and record summary are those last sent, only the version's wall-clock step and what changes
 * every beat go out: besides its origin id, a beat entry shrinks from ~25 to ~7 bytes. Liveness is most of a node's
 * idle traffic, and grows with the number of clusters.
 */
export function compactEntry(e: LivenessEntry, sent: Map<ClusterId, LivenessSummary>): LivenessEntry {
  const p = sent.get(e.origin);
  sent.set(e.origin, summaryOf(e));
  if (
    p === undefined ||
    p.incarnation !== e.incarnation ||
    p.recordCount !== e.recordCount ||
    p.maxWallMs !== e.maxWallMs ||
    p.maxLogical !== e.maxLogical ||
    e.wallMs < p.wallMs
  ) {
    return e;
  }
  return {
    ...e,
    incarnation: 0n,
    wallMs: 0n,
    recordCount: 0,
    maxWallMs: 0n,
    maxLogical: 0,
    sameSummary: true,
    wallMsDelta: e.wallMs - p.wallMs,
  };
}

/** The full entry a received one stands for, given what the stream carried before (`carried`, updated here). */
export function expandEntry(e: LivenessEntry, carried: Map<ClusterId, LivenessSummary>): LivenessEntry {
  // Checked before anything is kept (fromWire checks it again with the rest of the entry).
  if (!isClusterId(e.origin)) throw new InvalidMessageError(`liveness entry: bad origin "${e.origin.slice(0, 64)}"`);
  let full = e;
  if (e.sameSummary) {
    const p = carried.get(e.origin);
    if (p === undefined) {
      throw new InvalidMessageError(`liveness entry of "${e.origin}" repeats a summary never sent`);
    }
    if (e.incarnation !== 0n || e.wallMs !== 0n || e.recordCount !== 0 || e.maxWallMs !== 0n || e.maxLogical !== 0) {
      throw new InvalidMessageError(`liveness entry of "${e.origin}" both repeats and carries a summary`);
    }
    full = {
      ...e,
      incarnation: p.incarnation,
      wallMs: p.wallMs + e.wallMsDelta,
      recordCount: p.recordCount,
      maxWallMs: p.maxWallMs,
      maxLogical: p.maxLogical,
      sameSummary: false,
      wallMsDelta: 0n,
    };
  } else if (e.wallMsDelta !== 0n) {
    throw new InvalidMessageError(`liveness entry of "${e.origin}": a wall-clock step without a summary`);
  }
  if (!carried.has(full.origin) && carried.size >= MAX_ORIGINS_PER_STREAM) {
    throw new InvalidMessageError('liveness stream carries too many origins');
  }
  carried.set(full.origin, summaryOf(full));
  return full;
}

/** Sender side of a packed stream: the place (1, 2, …) of each origin it has carried, in the order first carried. */
export type OriginRefs = Map<ClusterId, number>;

/**
 * The frame content for a packed stream (LIVENESS_PROTOCOL_PACKED), after `sent` and `refs` (updated here): an origin
 * the stream carried before is named by its place, and an entry that repeats its origin's summary goes into `repeats`
 * as four varints (place, age, wall-clock step, logical) — about 6 bytes instead of ~16 with the origin's name.
 * Each origin at most once (flush makes one entry per origin); throws otherwise.
 */
export function packEntries(
  entries: readonly LivenessEntry[],
  sent: Map<ClusterId, LivenessSummary>,
  refs: OriginRefs,
): { entries: LivenessEntry[]; repeats: Uint8Array<ArrayBuffer> } {
  const full: LivenessEntry[] = [];
  const repeats: number[] = [];
  const seen = new Set<ClusterId>();
  for (const e of entries) {
    // The receiver applies full entries before repeats: an origin twice in one frame would come out of order.
    if (seen.has(e.origin)) throw new Error(`liveness frame with origin "${e.origin}" twice`);
    seen.add(e.origin);
    const ref = refs.get(e.origin);
    const c = compactEntry(e, sent);
    if (ref === undefined) {
      // First carried here: named in full, and given the next place.
      refs.set(e.origin, refs.size + 1);
      full.push(c);
    } else if (c.sameSummary && c.addrs.length === 0 && c.softwareVersion === '') {
      // A repeat with nothing else to say (addresses and version ride in a full entry, once per origin and peer).
      writeVarint(repeats, ref);
      writeVarint(repeats, c.ageMs);
      writeVarint(repeats, Number(c.wallMsDelta));
      writeVarint(repeats, c.logical);
    } else {
      full.push({ ...c, origin: '', originRef: ref });
    }
  }
  return { entries: full, repeats: Uint8Array.from(repeats) };
}

/**
 * The full entries a packed frame stands for, given what the stream carried before (`carried`, `byRef`: updated
 * here). Its full entries come first, then its repeats. Throws InvalidMessageError on a malformed frame.
 */
export function unpackEntries(
  frame: LivenessFrame,
  carried: Map<ClusterId, LivenessSummary>,
  byRef: ClusterId[],
): LivenessEntry[] {
  const out: LivenessEntry[] = [];
  const originOf = (ref: number): ClusterId => {
    const origin = ref >= 1 ? byRef[ref - 1] : undefined;
    if (origin === undefined) throw new InvalidMessageError(`liveness entry names origin place ${ref}, never carried`);
    return origin;
  };
  for (const e of frame.entries) {
    let named = e;
    if (e.originRef !== 0) {
      if (e.origin !== '') throw new InvalidMessageError('liveness entry with both an origin and its place');
      named = { ...e, origin: originOf(e.originRef), originRef: 0 };
    }
    const first = !carried.has(named.origin);
    const full = expandEntry(named, carried);
    if (first) byRef.push(full.origin);
    out.push(full);
  }
  const bytes = frame.repeats;
  let at = 0;
  const next = (): number => {
    // Unsigned LEB128 of at most 8 bytes (56 bits), and at most Number.MAX_SAFE_INTEGER.
    let value = 0;
    for (let i = 0, scale = 1; i < 8; i++, scale *= 128) {
      const b = bytes[at++];
      if (b === undefined) throw new InvalidMessageError('liveness repeats end inside a varint');
      value += (b & 0x7f) * scale;
      if (!Number.isSafeInteger(value)) throw new InvalidMessageError('liveness repeat: number out of range');
      if (b < 0x80) return value;
    }
    throw new InvalidMessageError('liveness repeat: varint longer than 8 bytes');
  };
  while (at < bytes.length) {
    if (out.length >= MAX_LIVENESS_ENTRIES) throw new InvalidMessageError('liveness frame with too many entries');
    const origin = originOf(next());
    const ageMs = next();
    const wallMsDelta = BigInt(next());
    const logical = next();
    if (ageMs > MAX_U32 || logical > MAX_U32)
      throw new InvalidMessageError(`liveness repeat of "${origin}": out of range`);
    out.push(
      expandEntry(
        {
          origin,
          incarnation: 0n,
          wallMs: 0n,
          logical,
          ageMs,
          recordCount: 0,
          maxWallMs: 0n,
          maxLogical: 0,
          addrs: [],
          sameSummary: true,
          wallMsDelta,
          softwareVersion: '',
          originRef: 0,
        },
        carried,
      ),
    );
  }
  return out;
}

function writeVarint(out: number[], n: number): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function toWire(b: Beat, ageMs: number, addrs: readonly string[], software: string | undefined): LivenessEntry {
  return {
    addrs: [...addrs],
    softwareVersion: software ?? '',
    origin: b.origin,
    incarnation: BigInt(b.incarnation),
    wallMs: BigInt(b.version.wallMs),
    logical: b.version.logical,
    ageMs: Math.max(0, Math.min(MAX_U32, Math.round(ageMs))),
    recordCount: b.recordCount,
    maxWallMs: BigInt(b.maxVersion.wallMs),
    maxLogical: b.maxVersion.logical,
    sameSummary: false,
    wallMsDelta: 0n,
    originRef: 0,
  };
}

function fromWire(e: LivenessEntry, now: number): Beat {
  if (!isClusterId(e.origin)) throw new InvalidMessageError(`liveness entry: bad origin "${e.origin.slice(0, 64)}"`);
  if (e.incarnation > MAX_SAFE || e.wallMs > MAX_SAFE || e.maxWallMs > MAX_SAFE) {
    throw new InvalidMessageError(`liveness entry of "${e.origin}": number out of range`);
  }
  const version = { wallMs: Number(e.wallMs), logical: e.logical };
  const maxVersion = { wallMs: Number(e.maxWallMs), logical: e.maxLogical };
  if (!isValidHlc(version) || !isValidHlc(maxVersion)) {
    throw new InvalidMessageError(`liveness entry of "${e.origin}": bad version`);
  }
  if (e.addrs.length > MAX_ADDRS_PER_HEARTBEAT || e.addrs.some((a) => a.length > MAX_ADDR_LENGTH)) {
    throw new InvalidMessageError(`liveness entry of "${e.origin}": too many or too long addresses`);
  }
  return {
    ...(e.addrs.length > 0 ? { addrs: e.addrs } : {}),
    // A version this build cannot parse is left out; the entry still counts (see heartbeatOf).
    ...(isSoftwareVersion(e.softwareVersion) ? { software: e.softwareVersion } : {}),
    origin: e.origin,
    incarnation: Number(e.incarnation),
    version,
    beatAtMs: now - e.ageMs,
    recordCount: e.recordCount,
    maxVersion,
  };
}
