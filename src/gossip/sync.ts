// Anti-entropy over a libp2p stream (SYNC_PROTOCOL): the client sends its per-origin digests; the server answers with
// the records the client lacks (everything of unknown origins, the records newer than the client's max version of
// differing ones) and, for origins that may still differ (an update lost in the middle), its digests; the client
// merges, then sends bucket digests of the origins still differing and gets the records of the differing buckets.
// The server always ends with DONE, which carries the digests of the origins it has settled (holds as completely as
// the ClusterSet does): after the session the client holds everything the server held of them, so it settles them
// too. A restarted node changes no import of an origin before it is settled (docs/reliability.md).
// Frames are length-prefixed protobuf (SyncFrame), bounded in size, each read under a timeout. Records travel as
// their origin's signed envelopes, verified by the receiver before they touch state.
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';
import type { PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { LengthPrefixedStream } from '@libp2p/utils';
import type { Logger } from 'pino';
import { compareHlc, compareStrings, deltaFor, DIGEST_BUCKETS, ZERO_HLC } from '../core/index.js';
import type { BucketDigest, ClusterSetState, OriginDigest } from '../core/index.js';
import {
  MAX_BUCKETS_PER_ORIGIN,
  MAX_DIGESTS_PER_FRAME,
  MAX_ENVELOPES_PER_FRAME,
  MAX_INFLATED_SYNC_FRAME_BYTES,
  MAX_SYNC_FRAME_BYTES,
  SYNC_PROTOCOL,
  SYNC_PROTOCOL_SUMMARY,
  TARGET_SYNC_FRAME_BYTES,
  MIN_WIRE_VERSION,
  WIRE_VERSION,
} from './constants.js';
import { InvalidMessageError } from './errors.js';
import type { GossipLibp2p } from './libp2p-node.js';
import type { GossipMetrics } from './metrics.js';
import { SyncEnvelopes, SyncFrame } from './wire.js';
import type { OriginBuckets, OriginDigest as WireOriginDigest } from './wire.js';

/** What the sync protocol needs from the node. */
export interface SyncHost {
  readonly state: ClusterSetState;
  /** Verifies and applies envelopes; `reject` set means the peer sent something invalid. */
  /** Verification may run while the next frame is read; batches are applied in call order. */
  ingest(
    envelopes: readonly Uint8Array[],
    from: PeerId,
  ): Promise<{ readonly reject?: string; readonly recordBytes: number }>;
  /** The signed binding of an origin, if held (sent along with an origin the client does not know yet). */
  bindingProof(origin: string): Uint8Array | undefined;
  /** The key rotations of an origin, oldest first: sent before anything of it, so a client bound to an old key follows. */
  rotationProofs(origin: string): readonly Uint8Array[];
  /** The client holds something we lack: pull from it soon. */
  pullFrom(peer: PeerId): void;
  /** Origins this node has settled: advertised in DONE, so a client that completes the session settles them too. */
  settledOrigins(): ReadonlySet<string>;
  /** This node's clock (ms): the age of heartbeats in DONE. */
  now(): number;
  /**
   * Whether a session may begin with the summary of our digests instead of the digests: every origin we hold is
   * settled and its heartbeat fresh, so a server holding the same records has nothing to tell us.
   */
  summaryWillDo(): boolean;
  readonly metrics: GossipMetrics;
  readonly log: Logger;
  /** Heartbeats travel by gossip; sync relays one only when the client's copy is older than ~1.5 periods. */
  readonly heartbeatIntervalMs: number;
}

// zlib runs on libuv's thread pool: compression overlaps the event loop's work.
const deflateAsync = promisify(deflateRaw);
const inflateAsync = promisify(inflateRaw);

/**
 * The envelopes of a RECORDS frame: plain, or inflated from `deflated` (bounded: a frame may not inflate beyond
 * MAX_INFLATED_SYNC_FRAME_BYTES). Throws InvalidMessageError.
 */
export async function envelopesOf(frame: SyncFrame): Promise<Uint8Array[]> {
  if (frame.deflated.length === 0) return frame.envelopes;
  if (frame.envelopes.length > 0) throw new InvalidMessageError('RECORDS frame with both plain and deflated envelopes');
  let inflated: Buffer;
  try {
    inflated = await inflateAsync(frame.deflated, { maxOutputLength: MAX_INFLATED_SYNC_FRAME_BYTES });
  } catch (err) {
    throw new InvalidMessageError(`deflated RECORDS frame does not inflate: ${(err as Error).message}`);
  }
  try {
    return SyncEnvelopes.decode(inflated, { limits: { envelopes: MAX_ENVELOPES_PER_FRAME } }).envelopes;
  } catch (err) {
    throw new InvalidMessageError(`deflated RECORDS frame does not decode: ${(err as Error).message}`);
  }
}

/** Frames of fewer envelopes go uncompressed (a topic-sized repair is not worth a thread-pool round trip). */
const COMPRESS_MIN_ENVELOPES = 8;

/** RECORDS frames a client holds while their signatures are checked (each ≤ 1 MiB). */
const MAX_FRAMES_IN_FLIGHT = 4;

export interface SyncOptions {
  /** Aborts the whole session. */
  readonly signal: AbortSignal;
  /** Time allowed for each frame to arrive. */
  readonly frameTimeoutMs: number;
}

const DECODE_LIMITS = {
  limits: {
    digests: MAX_DIGESTS_PER_FRAME,
    envelopes: MAX_ENVELOPES_PER_FRAME,
    buckets: MAX_DIGESTS_PER_FRAME,
    buckets$: { buckets: MAX_BUCKETS_PER_ORIGIN },
  },
};

export function digestToWire(d: OriginDigest): WireOriginDigest {
  return {
    origin: d.origin,
    count: d.count,
    maxWallMs: BigInt(d.maxVersion.wallMs),
    maxLogical: d.maxVersion.logical,
    hash: d.hash,
    ...(d.heartbeat === undefined
      ? {}
      : { heartbeatWallMs: BigInt(d.heartbeat.wallMs), heartbeatLogical: d.heartbeat.logical }),
  };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function digestFromWire(d: WireOriginDigest): OriginDigest {
  if (d.origin.length === 0 || d.origin.length > 253 || d.hash.length > 64 || d.maxWallMs > MAX_SAFE) {
    throw new InvalidMessageError('bad digest');
  }
  const base = {
    origin: d.origin,
    count: d.count,
    maxVersion: { wallMs: Number(d.maxWallMs), logical: d.maxLogical },
    hash: d.hash,
  };
  if (d.heartbeatWallMs === undefined) return base;
  if (d.heartbeatWallMs > MAX_SAFE) throw new InvalidMessageError('bad digest');
  return { ...base, heartbeat: { wallMs: Number(d.heartbeatWallMs), logical: d.heartbeatLogical ?? 0 } };
}

/**
 * SHA-256 of record digests — origin, count, max version and hash of each, in origin order; heartbeats left out — so
 * two nodes holding the same records of the same origins have the same summary (a sync HELLO's `summary`).
 */
export function digestSummary(digests: readonly OriginDigest[]): Uint8Array<ArrayBuffer> {
  const h = createHash('sha256');
  for (const d of [...digests].sort((a, b) => compareStrings(a.origin, b.origin))) {
    h.update(`${d.origin}\n${d.count}\n${d.maxVersion.wallMs}.${d.maxVersion.logical}\n${d.hash}\n`);
  }
  return new Uint8Array(h.digest());
}

function bucketsToWire(b: BucketDigest): OriginBuckets {
  return { origin: b.origin, buckets: b.buckets.map((x) => ({ index: x.bucket, count: x.count, hash: x.hash })) };
}

class FramedStream {
  readonly #lp: LengthPrefixedStream<Stream>;

  constructor(
    readonly stream: Stream,
    private readonly options: SyncOptions,
    private readonly metrics: GossipMetrics,
  ) {
    this.#lp = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME_BYTES });
  }

  #signal(): AbortSignal {
    return AbortSignal.any([this.options.signal, AbortSignal.timeout(this.options.frameTimeoutMs)]);
  }

  async send(frame: Partial<SyncFrame> & Pick<SyncFrame, 'type'>): Promise<void> {
    const bytes = SyncFrame.encode({
      version: WIRE_VERSION,
      digests: [],
      envelopes: [],
      buckets: [],
      pullMe: false,
      deflated: new Uint8Array(0),
      summary: new Uint8Array(0),
      ...frame,
    });
    this.metrics.syncBytes.inc({ direction: 'out' }, bytes.length);
    this.metrics.syncBytesOut += bytes.length;
    await this.#lp.write(bytes, { signal: this.#signal() });
  }

  async receive(): Promise<SyncFrame> {
    const data = await this.#lp.read({ signal: this.#signal() });
    this.metrics.syncBytes.inc({ direction: 'in' }, data.byteLength);
    this.metrics.syncBytesIn += data.byteLength;
    let frame: SyncFrame;
    try {
      frame = SyncFrame.decode(data, DECODE_LIMITS);
    } catch (err) {
      throw new InvalidMessageError(`sync frame does not decode: ${(err as Error).message}`);
    }
    if (frame.version < MIN_WIRE_VERSION || frame.version > WIRE_VERSION)
      throw new InvalidMessageError(`unsupported sync version ${frame.version}`);
    return frame;
  }

  /**
   * Sends envelopes in RECORDS frames of about TARGET_SYNC_FRAME_BYTES (before compression). Frames of more than a few
   * envelopes go deflated (records are JSON: ~4–10× smaller, so Noise, pnet and the network carry that much less);
   * the next frame is compressed while the previous one is written.
   */
  async sendEnvelopes(envelopes: readonly Uint8Array[]): Promise<void> {
    const batches: Uint8Array[][] = [];
    let batch: Uint8Array[] = [];
    let size = 0;
    for (const env of envelopes) {
      if (
        batch.length > 0 &&
        (size + env.length > TARGET_SYNC_FRAME_BYTES || batch.length >= MAX_ENVELOPES_PER_FRAME)
      ) {
        batches.push(batch);
        batch = [];
        size = 0;
      }
      batch.push(env);
      size += env.length + 4;
    }
    if (batch.length > 0) batches.push(batch);
    let next = batches.length > 0 ? this.#recordsFrame(batches[0]!) : undefined;
    for (let i = 0; i < batches.length; i++) {
      const frame = await next!;
      next = i + 1 < batches.length ? this.#recordsFrame(batches[i + 1]!) : undefined;
      next?.catch(() => undefined); // awaited in the next round
      await this.send(frame);
    }
  }

  async #recordsFrame(envelopes: Uint8Array[]): Promise<Partial<SyncFrame> & Pick<SyncFrame, 'type'>> {
    const plain = { type: SyncFrame.Type.RECORDS, envelopes: envelopes as Uint8Array<ArrayBuffer>[] };
    if (envelopes.length < COMPRESS_MIN_ENVELOPES) return plain;
    const body = SyncEnvelopes.encode({ envelopes: envelopes as Uint8Array<ArrayBuffer>[] });
    const deflated = await deflateAsync(body, { level: 1 });
    if (deflated.length >= body.length || deflated.length > MAX_SYNC_FRAME_BYTES - 1024) return plain;
    return { type: SyncFrame.Type.RECORDS, deflated: new Uint8Array(deflated) };
  }
}

/**
 * Pulls from `peer` what it has and we lack. Resolves with the digests of the origins the peer advertised as settled
 * (we should now hold all it held of them), each with how long ago the peer heard the origin's heartbeat. Throws on
 * protocol errors and timeouts (the stream is aborted).
 */
export async function runSyncClient(
  host: SyncHost,
  node: GossipLibp2p,
  peer: PeerId,
  options: SyncOptions,
): Promise<SettledDigest[]> {
  // The summary protocol first; a node before it answers for SYNC_PROTOCOL only.
  const stream = await node.dialProtocol(peer, [SYNC_PROTOCOL_SUMMARY, SYNC_PROTOCOL], { signal: options.signal });
  const framed = new FramedStream(stream, options, host.metrics);
  try {
    const hello = (): Promise<void> =>
      framed.send({ type: SyncFrame.Type.HELLO, digests: host.state.digest().map(digestToWire) });
    // Whether the HELLO sent was a summary the server may still ask digests for.
    let summarised = stream.protocol === SYNC_PROTOCOL_SUMMARY && host.summaryWillDo();
    if (summarised) await framed.send({ type: SyncFrame.Type.HELLO, summary: digestSummary(host.state.digest()) });
    else await hello();
    let bucketRound = false;
    let settled: SettledDigest[] = [];
    // RECORDS frames are verified while the next ones are read (at most MAX_FRAMES_IN_FLIGHT held), and all of them
    // are applied before anything that depends on the state (the bucket round, the end).
    const inFlight: Promise<void>[] = [];
    const settle = async (): Promise<void> => {
      while (inFlight.length > 0) await inFlight.shift();
    };
    for (;;) {
      const frame = await framed.receive();
      if (frame.type === SyncFrame.Type.RECORDS) {
        const envelopes = await envelopesOf(frame);
        host.metrics.syncEnvelopesIn += envelopes.length;
        for (const e of envelopes) host.metrics.syncEnvelopeBytesIn += e.length;
        const applied = host.ingest(envelopes, peer).then((result) => {
          if (result.reject !== undefined) {
            throw new InvalidMessageError(`peer sent an invalid envelope: ${result.reject}`);
          }
          host.metrics.syncRecordBytesIn += result.recordBytes;
        });
        applied.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
        inFlight.push(applied);
        if (inFlight.length >= MAX_FRAMES_IN_FLIGHT) await inFlight.shift();
        continue;
      }
      await settle();
      if (frame.type === SyncFrame.Type.SEND_DIGESTS && summarised) {
        summarised = false;
        host.metrics.syncSummaries.inc({ result: 'differ' });
        await hello();
      } else if (frame.type === SyncFrame.Type.DIGESTS && !bucketRound) {
        bucketRound = true;
        const mine = new Map(host.state.digest().map((d) => [d.origin, d]));
        const buckets: OriginBuckets[] = [];
        const digests: WireOriginDigest[] = [];
        for (const w of frame.digests) {
          const theirs = digestFromWire(w);
          const m = mine.get(theirs.origin);
          if (m === undefined || (m.hash === theirs.hash && m.count === theirs.count)) continue;
          buckets.push(bucketsToWire(host.state.bucketDigest(theirs.origin)));
          digests.push(digestToWire(m));
        }
        // Even with nothing to compare, answer BUCKETS: the server's DONE (with its settled origins) ends the session.
        await framed.send({ type: SyncFrame.Type.BUCKETS, buckets, digests });
      } else if (frame.type === SyncFrame.Type.DONE) {
        if (summarised) host.metrics.syncSummaries.inc({ result: 'same' });
        settled = frame.digests.map((w) => ({
          digest: digestFromWire(w),
          ...(w.heartbeatAgeMs === undefined || w.heartbeatAgeMs > MAX_SAFE
            ? {}
            : { heartbeatAgeMs: Number(w.heartbeatAgeMs) }),
        }));
        break;
      } else {
        throw new InvalidMessageError(`unexpected sync frame ${frame.type}`);
      }
    }
    await stream.close({ signal: options.signal });
    return settled;
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

/** A digest the server advertised as settled, and how long ago (its clock) it heard the origin's heartbeat. */
export interface SettledDigest {
  readonly digest: OriginDigest;
  readonly heartbeatAgeMs?: number;
}

/** DONE, with the digests of the origins this node has settled and the age of their heartbeats. */
function doneFrame(host: SyncHost): Partial<SyncFrame> & Pick<SyncFrame, 'type'> {
  const now = host.now();
  const digests: WireOriginDigest[] = [];
  for (const origin of host.settledOrigins()) {
    if (digests.length >= MAX_DIGESTS_PER_FRAME) break;
    // Forgotten here is no knowledge of the origin to vouch for: a client must settle it elsewhere.
    if (host.state.isForgotten(origin)) continue;
    const d = host.state.digestOf(origin);
    const wire = digestToWire(d ?? { origin, count: 0, maxVersion: ZERO_HLC, hash: '' });
    const heard = host.state.heartbeatOf(origin)?.heardAtMs;
    digests.push(
      heard === undefined ? wire : { ...wire, heartbeatAgeMs: BigInt(Math.max(0, Math.round(now - heard))) },
    );
  }
  return { type: SyncFrame.Type.DONE, digests };
}

/** Answers one sync session on an inbound stream. Throws on protocol errors and timeouts (the caller aborts). */
export async function serveSync(host: SyncHost, stream: Stream, peer: PeerId, options: SyncOptions): Promise<void> {
  const framed = new FramedStream(stream, options, host.metrics);
  let hello = await framed.receive();
  if (hello.type !== SyncFrame.Type.HELLO) throw new InvalidMessageError('expected HELLO');
  if (hello.summary.length > 0) {
    if (stream.protocol !== SYNC_PROTOCOL_SUMMARY) {
      throw new InvalidMessageError(`HELLO with a summary on ${SYNC_PROTOCOL}`);
    }
    if (hello.digests.length > 0) throw new InvalidMessageError('HELLO with both a summary and digests');
    const mine = digestSummary(host.state.digest());
    if (Buffer.compare(hello.summary, mine) === 0) {
      // The same records: nothing to send, and the client has settled all it holds (it sends a summary only then).
      await framed.send({ type: SyncFrame.Type.DONE });
      await stream.close({ signal: options.signal });
      return;
    }
    await framed.send({ type: SyncFrame.Type.SEND_DIGESTS });
    hello = await framed.receive();
    if (hello.type !== SyncFrame.Type.HELLO || hello.summary.length > 0) {
      throw new InvalidMessageError('expected HELLO with digests');
    }
  }
  const theirs = hello.digests.map(digestFromWire);
  const known = new Set(theirs.map((d) => d.origin));
  const delta = deltaFor(host.state, { digests: theirs });

  const envelopes: Uint8Array[] = [];
  const bindingsSent = new Set<string>();
  const binding = (origin: string) => {
    if (bindingsSent.has(origin)) return;
    bindingsSent.add(origin);
    for (const rotation of host.rotationProofs(origin)) envelopes.push(rotation);
    if (known.has(origin)) return;
    const proof = host.bindingProof(origin);
    if (proof !== undefined) envelopes.push(proof);
  };
  // Floors first: the client drops what lies below them before it weighs the records.
  for (const hb of delta.floors) {
    if (hb.proof === undefined) continue;
    binding(hb.origin);
    envelopes.push(hb.proof);
  }
  for (const r of delta.records) {
    binding(r.origin);
    if (r.proof !== undefined) envelopes.push(r.proof);
  }
  const theirHeartbeats = new Map(theirs.map((d) => [d.origin, d.heartbeat]));
  const staleBefore = 1.5 * host.heartbeatIntervalMs;
  for (const hb of delta.heartbeats) {
    const their = theirHeartbeats.get(hb.origin);
    if (hb.proof === undefined) continue;
    if (their !== undefined && hb.version.wallMs - their.wallMs < staleBefore) continue;
    binding(hb.origin);
    envelopes.push(hb.proof);
  }
  await framed.sendEnvelopes(envelopes);

  if (clientHasMore(host.state, theirs)) host.pullFrom(peer);

  if (delta.compareBuckets.length === 0) {
    await framed.send(doneFrame(host));
  } else {
    const mine = new Map(host.state.digest().map((d) => [d.origin, d]));
    const digests = delta.compareBuckets.flatMap((o) => {
      const d = mine.get(o);
      return d === undefined ? [] : [digestToWire(d)];
    });
    await framed.send({ type: SyncFrame.Type.DIGESTS, digests });
    const next = await framed.receive();
    if (next.type === SyncFrame.Type.BUCKETS) {
      const wanted = new Set(delta.compareBuckets);
      const out: Uint8Array[] = [];
      for (const ob of next.buckets) {
        if (!wanted.has(ob.origin)) continue;
        wanted.delete(ob.origin);
        const their = new Map<number, { count: number; hash: string }>();
        for (const b of ob.buckets) if (b.index < DIGEST_BUCKETS) their.set(b.index, b);
        const differing: number[] = [];
        for (const b of host.state.bucketDigest(ob.origin).buckets) {
          const t = their.get(b.bucket);
          if (t === undefined || t.hash !== b.hash || t.count !== b.count) differing.push(b.bucket);
        }
        for (const r of host.state.recordsInBuckets(ob.origin, differing)) if (r.proof !== undefined) out.push(r.proof);
      }
      await framed.sendEnvelopes(out);
      await framed.send(doneFrame(host));
    } else {
      throw new InvalidMessageError('expected BUCKETS');
    }
  }
  await stream.close({ signal: options.signal });
}

/**
 * Whether the client's digests show records we lack (an origin, a newer version, or a different set). Heartbeats
 * alone do not count: they arrive by gossip, and every sync would otherwise trigger a sync back.
 */
function clientHasMore(state: ClusterSetState, theirs: readonly OriginDigest[]): boolean {
  const mine = new Map(state.digest().map((d) => [d.origin, d]));
  for (const t of theirs) {
    const m = mine.get(t.origin);
    if (m === undefined) {
      if (t.count > 0) return true;
      continue;
    }
    if (compareHlc(t.maxVersion, m.maxVersion) > 0) return true;
    if (compareHlc(t.maxVersion, m.maxVersion) === 0 && (t.hash !== m.hash || t.count !== m.count)) return true;
  }
  return false;
}
