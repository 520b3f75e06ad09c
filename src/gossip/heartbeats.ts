// This origin's liveness: its beats (hop by hop through the liveness exchange, signed on the topic after a start and
// rarely after), other origins' beats relayed to us, heartbeats dated by the relays that carried them, and the leave.
import type { PeerId } from '@libp2p/interface';
import type { OriginHeartbeat } from '../core/index.js';
import {
  LIVENESS_PROTOCOL,
  LIVENESS_PROTOCOL_PACKED,
  MAX_ADDRS_PER_HEARTBEAT,
  SIGNED_HEARTBEAT_EVERY,
} from './constants.js';
import type { GossipContext } from './context.js';
import { signHeartbeat } from './envelope.js';
import type { EnvelopeSigner } from './envelope.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { LivenessExchange, MAX_FUTURE_MS } from './liveness.js';
import type { Beat } from './liveness.js';
import type { PeerVersions } from './peer-versions.js';
import type { Settledness } from './settledness.js';
import type { SettledDigest } from './sync.js';
import { isSoftwareVersion } from './versioning.js';

export interface HeartbeatsInit {
  readonly signer: EnvelopeSigner;
  readonly versions: PeerVersions;
  readonly settledness: Settledness;
  readonly heartbeatIntervalMs: number;
  readonly endpointTtlMs: number;
  /** The key rotation this node hands over with (it rides ahead of every signed beat). */
  readonly rotationProof: Uint8Array | undefined;
  /** Publishes own envelopes on the topic; resolves with whether it went out. */
  readonly publish: (envelopes: Uint8Array[], kind: 'delta' | 'heartbeat') => Promise<boolean>;
  /** This node's own addresses. */
  readonly addrs: () => string[];
  /** An origin's announced addresses (its peer is redialled through them). */
  readonly learnAddrs: (origin: string, addrs: readonly string[]) => void;
  /** A beat showed records we lack: pull from the peer that relayed it. */
  readonly gapSync: (from: PeerId) => void;
}

export class Heartbeats {
  readonly #ctx: GossipContext;
  readonly #init: HeartbeatsInit;
  #timer: NodeJS.Timeout | undefined;
  #liveness: LivenessExchange | undefined;
  /** Signed heartbeats published on the topic, and beats made (published or not). */
  #heartbeats = 0;
  #beats = 0;

  constructor(ctx: GossipContext, init: HeartbeatsInit) {
    this.#ctx = ctx;
    this.#init = init;
  }

  /** Creates the liveness exchange on `node` and serves its protocol. */
  async handle(node: GossipLibp2p): Promise<void> {
    const bindings = this.#ctx.bindings;
    const versions = this.#init.versions;
    const liveness = new LivenessExchange({
      node,
      topic: this.#ctx.topic,
      self: this.#ctx.clusterId,
      now: this.#ctx.now,
      ttlMs: this.#init.endpointTtlMs,
      flushDelayMs: Math.min(2000, Math.max(250, Math.round(this.#init.heartbeatIntervalMs / 5))),
      isMember: (peer) =>
        peer.publicKey !== undefined &&
        bindings.isMemberKey(peer.publicKey.raw) &&
        !versions.isIncompatible(peer.toString()),
      isBound: (origin) => bindings.isBound(origin),
      onBeat: (beat, from) => this.#onBeat(beat, from),
      onOwnBeat: (version) => this.#ctx.clock.seed(version),
      metrics: this.#ctx.metrics,
      log: this.#ctx.log,
    });
    this.#liveness = liveness;
    await node.handle(
      [LIVENESS_PROTOCOL_PACKED, LIVENESS_PROTOCOL],
      (stream, connection) => liveness.handle(stream, connection.remotePeer),
      {
        maxInboundStreams: 2,
        maxOutboundStreams: 2,
      },
    );
  }

  /** Beats now, then on every period. */
  start(): void {
    this.#heartbeat();
  }

  /** Stops beating (a leave, or the node stops). */
  stopBeating(): void {
    clearTimeout(this.#timer);
  }

  stop(): void {
    this.#liveness?.stop();
    this.#liveness = undefined;
  }

  /** A fresher beat for the liveness exchange to relay. */
  relay(beat: Beat): void {
    this.#liveness?.observe(beat);
  }

  /** A peer connected or disconnected: the exchange starts over with it. */
  forgetPeer(peer: PeerId): void {
    this.#liveness?.forgetPeer(peer);
  }

  /** Takes in the settled digests a sync server advertised: heartbeats dated by the relay, the own clock seeded. */
  adoptAdvertised(advertised: readonly SettledDigest[]): void {
    this.#backdateHeartbeats(advertised);
    this.#seedFromAdvertised(advertised);
  }

  /** See {@link GossipNode.leave}: signs and publishes the leave (the exports were withdrawn already). */
  async leave(): Promise<boolean> {
    const { clusterId, clock, state, metrics, own, log } = this.#ctx;
    const now = this.#ctx.now();
    own.seedClock();
    const floor = clock.tick(now);
    const version = clock.tick(now);
    const digest = state.digestOf(clusterId);
    const hb = signHeartbeat(this.#init.signer, {
      heartbeat: { origin: clusterId, incarnation: own.incarnation, version, floor, left: true },
      recordCount: 0,
      maxVersion: digest?.maxVersion ?? { wallMs: 0, logical: 0 },
      recordsHash: '',
      addrs: [],
    });
    own.left = true;
    this.stopBeating();
    own.floor = floor;
    state.observeHeartbeat(hb, now);
    metrics.records.set(state.size);
    let delivered = 0;
    const deadline = performance.now() + 10_000;
    while (delivered < 3) {
      if (await this.#init.publish([hb.proof ?? new Uint8Array()], 'heartbeat')) delivered++;
      else if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    if (delivered > 0) log.warn({ clusterId }, 'left the ClusterSet');
    else
      log.error(
        { clusterId },
        'left the ClusterSet, but no peer could be told: the others forget this cluster only after the origin horizon',
      );
    return delivered > 0;
  }

  #heartbeat(): void {
    const { clusterId, clock, state, own } = this.#ctx;
    const node = this.#ctx.libp2p();
    // After a leave the signed leave is this origin's last word: a later (unsigned) beat would hide it.
    if (this.#ctx.stopping() || node === undefined || own.left) return;
    const now = this.#ctx.now();
    const software = this.#init.versions.software;
    try {
      const digest = state.digestOf(clusterId);
      const publish = node.services.pubsub.getSubscribers(this.#ctx.topic).length > 0;
      // The signed heartbeat (with our addresses) goes on the topic for the first beats after start, then rarely:
      // liveness itself relays hop by hop (LivenessExchange), at a fraction of the cost.
      const signedOnTopic =
        publish && (own.signNextBeat || this.#heartbeats < 3 || this.#beats % SIGNED_HEARTBEAT_EVERY === 0);
      if (signedOnTopic) own.signNextBeat = false;
      const version = clock.tick(now);
      const maxVersion = digest?.maxVersion ?? { wallMs: 0, logical: 0 };
      const floor = own.floor;
      const hb = signHeartbeat(this.#init.signer, {
        heartbeat: {
          origin: clusterId,
          incarnation: own.incarnation,
          version,
          ...(floor === undefined ? {} : { floor }),
          ...(own.left ? { left: true } : {}),
        },
        recordCount: digest?.count ?? 0,
        maxVersion,
        recordsHash: digest?.hash ?? '',
        addrs: signedOnTopic ? this.#init.addrs().slice(0, MAX_ADDRS_PER_HEARTBEAT) : [],
        ...(isSoftwareVersion(software) ? { software } : {}),
      });
      state.observeHeartbeat(hb, now);
      this.#beats++;
      this.#liveness?.observe({
        origin: clusterId,
        incarnation: own.incarnation,
        version,
        beatAtMs: now,
        recordCount: digest?.count ?? 0,
        maxVersion,
        addrs: this.#init.addrs().slice(0, MAX_ADDRS_PER_HEARTBEAT),
        ...(isSoftwareVersion(software) ? { software } : {}),
      });
      if (signedOnTopic) {
        this.#heartbeats++;
        // After a key rotation the hand-over rides ahead of every signed beat: a peer still bound to the previous
        // key must follow it before it weighs a statement of the new one.
        const rotation = this.#init.rotationProof;
        void this.#init.publish(rotation === undefined ? [hb.proof!] : [rotation, hb.proof!], 'heartbeat');
      }
    } catch (err) {
      this.#ctx.log.warn({ err }, 'heartbeat failed');
    }
    // Beat on the next multiple of the period (plus a little jitter), so all clusters' beats relay in the same frames.
    const period = this.#init.heartbeatIntervalMs;
    const delay = period - (now % period) + Math.random() * Math.min(100, period / 20);
    this.#timer = setTimeout(() => this.#heartbeat(), delay);
  }

  /** A fresher beat of another origin arrived through the liveness exchange. */
  #onBeat(beat: Beat, from: PeerId): void {
    const { state, metrics } = this.#ctx;
    const { settledness } = this.#init;
    if (beat.addrs !== undefined) this.#init.learnAddrs(beat.origin, beat.addrs);
    if (beat.software !== undefined) this.#init.versions.announced(beat.origin, beat.software);
    const hb: OriginHeartbeat = { origin: beat.origin, incarnation: beat.incarnation, version: beat.version };
    // A relayed age dates a beat back at most to "withdrawn" (see #backdateHeartbeats).
    const heardAt = Math.max(beat.beatAtMs, this.#ctx.now() - this.#init.endpointTtlMs - 1);
    if (!state.observeHeartbeat(hb, heardAt)) return;
    settledness.settleIfComplete(beat.origin, beat.recordCount, beat.maxVersion);
    metrics.envelopes.inc({ kind: 'heartbeat', result: 'relayed' });
    this.#ctx.emit('heartbeat', { origin: beat.origin, incarnation: beat.incarnation });
    // A relayed max version from the future (a lying member) triggers nothing.
    if (beat.maxVersion.wallMs > this.#ctx.now() + MAX_FUTURE_MS) return;
    if (settledness.hasGap(beat.origin, beat.recordCount, beat.maxVersion)) this.#init.gapSync(from);
  }

  /**
   * A restarted node whose clock is behind the one it ran with before continues above what its peers hold of it
   * (its own digest in DONE), so its beats and records are fresher than theirs at once; never beyond the tolerated
   * skew ahead of our clock.
   */
  #seedFromAdvertised(advertised: readonly SettledDigest[]): void {
    const own = advertised.find((a) => a.digest.origin === this.#ctx.clusterId)?.digest;
    if (own === undefined) return;
    const limit = this.#ctx.now() + MAX_FUTURE_MS;
    for (const v of [own.maxVersion, own.heartbeat]) if (v !== undefined && v.wallMs <= limit) this.#ctx.clock.seed(v);
  }

  /** Heartbeats the sync relayed count as heard when the peer heard them, not now. */
  #backdateHeartbeats(advertised: readonly SettledDigest[]): void {
    const now = this.#ctx.now();
    for (const { digest, heartbeatAgeMs } of advertised) {
      if (digest.heartbeat === undefined || heartbeatAgeMs === undefined || digest.origin === this.#ctx.clusterId) {
        continue;
      }
      // No relay can date a beat further back than "withdrawn": ages beyond the TTL tell nothing more.
      const age = Math.min(heartbeatAgeMs, this.#init.endpointTtlMs + 1);
      if (this.#ctx.state.backdateHeartbeat(digest.origin, digest.heartbeat, now - age)) {
        this.#ctx.log.debug({ origin: digest.origin, heartbeatAgeMs }, 'relayed heartbeat dated by the relay');
      }
    }
  }
}
