// Anti-entropy scheduling (docs/gossip.md "Anti-entropy"): syncs on connect, on a detected gap, when a server asks
// for it and periodically; serving peers' sessions; and the origins a completed session settles.
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { compareHlc, isClusterId } from '../core/index.js';
import type { ClusterId } from '../core/index.js';
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  SYNC_PROTOCOL,
  SYNC_PROTOCOL_SUMMARY,
  SYNC_REQUEST_BURST,
  SYNC_REQUESTS_PER_MINUTE,
} from './constants.js';
import type { GossipContext } from './context.js';
import type { IngestResult } from './ingest.js';
import { connectedPeers } from './libp2p-node.js';
import type { GossipLibp2p } from './libp2p-node.js';
import type { PeerVersions } from './peer-versions.js';
import { PeerRateLimiter } from './rate-limit.js';
import type { Settledness } from './settledness.js';
import { runSyncClient, serveSync } from './sync.js';
import type { SettledDigest, SyncHost } from './sync.js';

export interface AntiEntropyInit {
  readonly versions: PeerVersions;
  readonly settledness: Settledness;
  /** Takes in a sync RECORDS frame (verified off the event loop, applied in order). */
  readonly ingestFrame: (envelopes: readonly Uint8Array[], from: PeerId) => Promise<IngestResult>;
  /** A client session completed: the server's settled digests, with its heartbeat ages. */
  readonly adoptAdvertised: (advertised: readonly SettledDigest[]) => void;
  readonly syncIntervalMs: number;
  readonly syncTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
}

const jitter = (ms: number, spread: number): number => Math.round(ms * (1 - spread + 2 * spread * Math.random()));

export class AntiEntropy {
  readonly #ctx: GossipContext;
  readonly #init: AntiEntropyInit;
  readonly #rateLimiter = new PeerRateLimiter(SYNC_REQUESTS_PER_MINUTE, SYNC_REQUEST_BURST);
  #syncTimer: NodeJS.Timeout | undefined;
  readonly #syncing = new Set<string>();
  readonly #syncSoon = new Map<string, NodeJS.Timeout>();
  #lastSyncAt = -Infinity;
  /** Peers a sync completed with since start. */
  readonly #syncedPeers = new Set<string>();
  /** Syncs that failed in a row while none had completed since start (the retry backoff). */
  #unsyncedFailures = 0;

  constructor(ctx: GossipContext, init: AntiEntropyInit) {
    this.#ctx = ctx;
    this.#init = init;
  }

  /** A new start: no peer was synced with in this run. */
  reset(): void {
    this.#syncedPeers.clear();
    this.#unsyncedFailures = 0;
  }

  /** Serves the sync protocol on `node`. */
  async handle(node: GossipLibp2p): Promise<void> {
    await node.handle(
      [SYNC_PROTOCOL_SUMMARY, SYNC_PROTOCOL],
      (stream, connection) => this.#onSyncStream(stream, connection),
      {
        maxInboundStreams: 4,
        maxOutboundStreams: 4,
      },
    );
  }

  /** Starts the periodic sync with a random peer. */
  start(): void {
    this.#syncTimer = setTimeout(() => this.#periodicSync(), jitter(this.#init.syncIntervalMs, 0.25));
  }

  stop(): void {
    clearTimeout(this.#syncTimer);
    for (const t of this.#syncSoon.values()) clearTimeout(t);
    this.#syncSoon.clear();
  }

  /** A peer connected. */
  connected(peer: PeerId): void {
    // Join and reconnect: pull from the new peer, unless we completed a sync moments ago (a node opening many
    // connections at once needs one or two syncs, not one per connection; heartbeats reveal any gap left).
    // A node that has never synced (just started) pulls from its first peer at once. While a sync is running or
    // due, new connections start none: a bootstrap pulls the full state once, not from every peer it meets.
    const busy = this.#syncBusy();
    if (!busy && this.#lastSyncAt === -Infinity) this.#scheduleSync(peer, 0);
    else if (!busy && performance.now() - this.#lastSyncAt > 5000) {
      this.#scheduleSync(peer, 200 + Math.random() * 800);
    }
  }

  /** See {@link GossipNode.syncWith}. */
  async syncWith(peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    const node = this.#ctx.libp2p();
    if (node === undefined || this.#ctx.stopping()) return;
    const { versions, settledness, syncTimeoutMs } = this.#init;
    const { metrics, log } = this.#ctx;
    const key = peer.toString();
    if (this.#syncing.has(key) || versions.isIncompatible(key)) return;
    this.#syncing.add(key);
    const started = performance.now();
    const timeout = AbortSignal.timeout(syncTimeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
    let failed = false;
    try {
      if (!(await versions.identifiedCompatible(peer))) return;
      const advertised = await runSyncClient(this.#syncHost(), node, peer, {
        signal,
        frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
      });
      metrics.syncSessions.inc({ role: 'client', result: 'ok' });
      this.#lastSyncAt = performance.now();
      this.#init.adoptAdvertised(advertised);
      settledness.settle(this.#matchingDigests(advertised, key));
      this.#syncedPeers.add(key);
      this.#pursueUnsettled();
    } catch (err) {
      metrics.syncSessions.inc({ role: 'client', result: 'error' });
      log.debug({ peer: key, err }, 'sync failed');
      failed = true;
    } finally {
      metrics.syncDuration.observe({ role: 'client' }, (performance.now() - started) / 1000);
      this.#syncing.delete(key);
    }
    if (failed) this.#retryUntilSynced(key);
  }

  /**
   * A heartbeat showed records we lack: pull from the peer that relayed it — unless a sync is already running or due
   * (a bootstrap sees gaps from every peer at once; the next beats show whatever is still missing after it).
   */
  gapSync(from: PeerId): void {
    if (this.#syncBusy()) return;
    this.#scheduleSync(from, 500);
  }

  /**
   * A sync failed and none has completed since start: try again — with another connected peer when there is one —
   * after 1 s, 2 s, 4 s … at most 16 s (jittered), until one completes. Nothing else would: a node whose binding no
   * peer has yet is not pushed liveness, so no gap shows, and the periodic sync is a minute away. Without a connection
   * the next one starts a sync (see connected()).
   */
  #retryUntilSynced(failed: string): void {
    const node = this.#ctx.libp2p();
    if (node === undefined || this.#ctx.stopping() || this.#syncedPeers.size > 0) return;
    const peers = connectedPeers(node);
    const others = peers.filter((p) => p.toString() !== failed);
    const pool = others.length > 0 ? others : peers;
    const peer = pool[Math.floor(Math.random() * pool.length)];
    if (peer === undefined) return;
    const delay = jitter(Math.min(16_000, 1000 * 2 ** this.#unsyncedFailures), 0.25);
    this.#unsyncedFailures++;
    this.#scheduleSync(peer, delay);
  }

  /**
   * While an origin we have heard of is not settled, sync with the next connected peer we have not synced with since
   * start (each at most once: an origin no peer has settled stays unsettled until one does, or until it is heard).
   */
  #pursueUnsettled(): void {
    const node = this.#ctx.libp2p();
    if (node === undefined || this.#ctx.stopping()) return;
    const { clusterId, state } = this.#ctx;
    if (state.origins().every((o) => o === clusterId || this.#init.settledness.has(o))) return;
    const next = connectedPeers(node).find((p) => !this.#syncedPeers.has(p.toString()));
    if (next !== undefined) this.#scheduleSync(next, 200);
  }

  /**
   * The origins of a peer's settled digests that this node now holds at least as completely: the same count and hash,
   * or a newer max version (we heard more since). A peer that advertised more than it sent settles nothing of it.
   */
  #matchingDigests(advertised: readonly SettledDigest[], peer: string): ClusterId[] {
    const out: ClusterId[] = [];
    for (const { digest: theirs } of advertised) {
      if (!isClusterId(theirs.origin) || theirs.origin === this.#ctx.clusterId) continue;
      const mine = this.#ctx.state.digestOf(theirs.origin);
      const count = mine?.count ?? 0;
      const same = count === theirs.count && (count === 0 || mine?.hash === theirs.hash);
      const newer = mine !== undefined && compareHlc(mine.maxVersion, theirs.maxVersion) > 0;
      if (same || newer) out.push(theirs.origin);
      else
        this.#ctx.log.warn({ peer, origin: theirs.origin }, 'a peer advertised records of an origin it did not send');
    }
    return out;
  }

  #syncHost(): SyncHost {
    const { state, bindings, now, metrics, log } = this.#ctx;
    return {
      state,
      ingest: (envelopes, from) => this.#init.ingestFrame(envelopes, from),
      bindingProof: (origin) => bindings.proofOf(origin),
      rotationProofs: (origin) => bindings.rotationsOf(origin),
      pullFrom: (peer) => this.#scheduleSync(peer, 200),
      settledOrigins: () => this.#init.settledness.origins,
      summaryWillDo: () => this.#summaryWillDo(),
      now,
      heartbeatIntervalMs: this.#init.heartbeatIntervalMs,
      metrics,
      log,
    };
  }

  /**
   * Whether this node's sessions may begin with a summary: it has settled every other origin it holds (not one
   * forgotten) and heard its heartbeat within 1.5 periods, so a server with the same records has no record, floor,
   * settled origin or heartbeat (it relays one only 1.5 periods newer) to give. Otherwise the HELLO carries digests.
   */
  #summaryWillDo(): boolean {
    const { state, clusterId, now } = this.#ctx;
    const freshAfter = now() - 1.5 * this.#init.heartbeatIntervalMs;
    for (const origin of state.origins()) {
      if (origin === clusterId || state.isForgotten(origin)) continue;
      if (!this.#init.settledness.has(origin)) return false;
      const heard = state.heartbeatOf(origin)?.heardAtMs;
      if (heard === undefined || heard < freshAfter) return false;
    }
    return true;
  }

  /** Whether a sync session is running or scheduled. */
  #syncBusy(): boolean {
    return this.#syncing.size > 0 || this.#syncSoon.size > 0;
  }

  #scheduleSync(peer: PeerId, delayMs: number): void {
    if (this.#ctx.stopping()) return;
    const key = peer.toString();
    if (this.#syncSoon.has(key)) return;
    const t = setTimeout(() => {
      this.#syncSoon.delete(key);
      void this.syncWith(peer);
    }, delayMs);
    this.#syncSoon.set(key, t);
  }

  #periodicSync(): void {
    const node = this.#ctx.libp2p();
    if (node === undefined || this.#ctx.stopping()) return;
    const peers = connectedPeers(node);
    const peer = peers[Math.floor(Math.random() * peers.length)];
    if (peer !== undefined) void this.syncWith(peer);
    this.#syncTimer = setTimeout(() => this.#periodicSync(), jitter(this.#init.syncIntervalMs, 0.25));
  }

  #onSyncStream(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer;
    const { versions, syncTimeoutMs } = this.#init;
    const { metrics, log } = this.#ctx;
    if (versions.isIncompatible(peer.toString())) {
      stream.abort(new Error('incompatible version'));
      return;
    }
    if (!this.#rateLimiter.tryTake(peer.toString())) {
      metrics.syncRateLimited.inc();
      stream.abort(new Error('rate limited'));
      return;
    }
    const started = performance.now();
    const signal = AbortSignal.timeout(syncTimeoutMs);
    versions
      .identifiedCompatible(peer)
      .then((ok) => {
        if (!ok) throw new Error('incompatible version');
        return serveSync(this.#syncHost(), stream, peer, { signal, frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS });
      })
      .then(
        () => {
          metrics.syncSessions.inc({ role: 'server', result: 'ok' });
          metrics.syncDuration.observe({ role: 'server' }, (performance.now() - started) / 1000);
        },
        (err: unknown) => {
          metrics.syncSessions.inc({ role: 'server', result: 'error' });
          log.debug({ peer: peer.toString(), err }, 'sync serve failed');
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        },
      );
  }
}
