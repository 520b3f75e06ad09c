// The gossip node of one cluster: joins the ClusterSet mesh, publishes this cluster's export records as signed deltas,
// relays heartbeats, runs anti-entropy with its peers and merges what it receives into the ClusterSetState.
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Message } from '@libp2p/gossipsub';
import type { Connection, ConnectionGater, Ed25519PrivateKey, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  ClusterSetState,
  compareHlc,
  DEFAULT_ENDPOINT_TTL_MS,
  HlcClock,
  isClusterId,
  planOwnRecords,
  serviceKey,
} from '../core/index.js';
import type { ClusterId, ExportedService, ExportRecord, Hlc, OriginHeartbeat, ServiceKey } from '../core/index.js';
import { BindingRegistry } from './bindings.js';
import {
  DEFAULT_DELTA_COALESCE_MS,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_ORIGIN_HORIZON_MS,
  DEFAULT_TOMBSTONE_HORIZON_MS,
  HOUSEKEEPING_MAX_INTERVAL_MS,
  DEFAULT_REDIAL_BASE_MS,
  DEFAULT_REDIAL_MAX_MS,
  DEFAULT_SYNC_INTERVAL_MS,
  DEFAULT_SYNC_TIMEOUT_MS,
  DEFAULT_TARGET_PEERS,
  EnvelopeKind,
  LIVENESS_PROTOCOL,
  MAX_ADDRS_PER_HEARTBEAT,
  MAX_ENVELOPES_PER_FRAME,
  MAX_TOPIC_MESSAGE_BYTES,
  REPLAY_WINDOW_MS,
  SIGNED_HEARTBEAT_EVERY,
  SYNC_PROTOCOL,
  SYNC_REQUEST_BURST,
  SYNC_REQUESTS_PER_MINUTE,
  TARGET_DELTA_BYTES,
  topicFor,
  MIN_WIRE_VERSION,
  WIRE_VERSION,
} from './constants.js';
import {
  bindingOf,
  EnvelopeSigner,
  EnvelopeVerifier,
  heartbeatOf,
  keyId,
  peerIdOfKey,
  recordOf,
  signBinding,
  signHeartbeat,
  signRotation,
  signRecords,
} from './envelope.js';
import type { Binding, DecodedEnvelope, HeartbeatInfo, OpenedEnvelope } from './envelope.js';
import { GossipConfigError, InvalidMessageError, InvalidSignatureError, NotStartedError } from './errors.js';
import { connectedPeers, createGossipLibp2p } from './libp2p-node.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { LivenessExchange, MAX_FUTURE_MS } from './liveness.js';
import type { Beat } from './liveness.js';
import { GossipMetrics } from './metrics.js';
import { PeerRateLimiter } from './rate-limit.js';
import { Redialer } from './redial.js';
import { runSyncClient, serveSync } from './sync.js';
import type { SettledDigest } from './sync.js';
import { sharedVerifyPool } from './verify-pool.js';
import type { SyncHost } from './sync.js';
import { agentVersion, compatibility, isSoftwareVersion, parseAgentVersion } from './versioning.js';
import { TopicMessage } from './wire.js';

/** A bootstrap peer: a multiaddr ending in `/p2p/<PeerId>`, optionally pinning that PeerId to a cluster id. */
export interface BootstrapEntry {
  readonly addr: string;
  /** When set, only this PeerId may speak for `clusterId` (it overrides trust on first use). */
  readonly clusterId?: string;
}

export interface GossipNodeInit {
  /** This cluster's id (the `cluster.clusterset.k8s.io` ClusterProperty). */
  readonly clusterId: ClusterId;
  /** The ClusterSet name (the `clusterset.k8s.io` ClusterProperty): names the topic. */
  readonly clusterSetName: string;
  /** The persistent identity: its PeerId is this cluster's PeerId. */
  readonly privateKey: Ed25519PrivateKey;
  /**
   * The identity key this cluster used before (a key rotation): it signs a rotation to `privateKey` that every peer
   * follows without a restart, and this node re-issues its records signed by it. Keep it configured until the
   * ClusterSet has converged (docs/reliability.md), then drop it.
   */
  readonly previousKey?: Ed25519PrivateKey;
  /** The ClusterSet key (pnet format). Required: without it the node does not start. */
  readonly psk: Uint8Array | undefined;
  /** Listen multiaddrs. Default `/ip4/0.0.0.0/tcp/7946`. */
  readonly listen?: readonly string[];
  /** Addresses announced to peers (e.g. the NAT or LoadBalancer address). Default: the listen addresses. */
  readonly announce?: readonly string[];
  /** Bootstrap peers: `/ip4/…/tcp/…/p2p/<id>` strings, `clusterId=/ip4/…/p2p/<id>` strings (a pin), or entries. */
  readonly bootstrap?: readonly (string | BootstrapEntry)[];
  /** The state this node merges into (shared with the resolver). Default: a new, empty one. */
  readonly state?: ClusterSetState;
  /** Endpoint TTL (ms): liveness in status(). Default: the core's DEFAULT_ENDPOINT_TTL_MS (30 s). */
  readonly endpointTtlMs?: number;
  /**
   * Heartbeat period (ms). Default 10 s. Beats fall on multiples of the period in wall-clock time, so the beats of all
   * clusters relay together; liveness travels hop by hop (LIVENESS_PROTOCOL), a signed heartbeat on the topic only
   * after start and every SIGNED_HEARTBEAT_EVERY beats.
   */
  readonly heartbeatIntervalMs?: number;
  /** Period of background anti-entropy with a random peer (ms). Default 60 s (jittered ±25 %): liveness entries also reveal gaps. */
  readonly syncIntervalMs?: number;
  /** Time allowed for a whole anti-entropy session (ms). Default 20 s. */
  readonly syncTimeoutMs?: number;
  /** Redial backoff (ms). Defaults 500 ms … 30 s. */
  readonly redialBaseMs?: number;
  readonly redialMaxMs?: number;
  /** Learned peers are dialled while fewer than this many are connected. Default 8. */
  readonly targetPeers?: number;
  /** Gossipsub mesh degree D. Default 4. */
  readonly meshDegree?: number;
  readonly logger?: Logger;
  /** Where the metrics go. Default: a private Registry (never the global one). */
  readonly metricsRegistry?: Registry;
  /** Passed to libp2p (tests use it to cut the network). */
  readonly connectionGater?: ConnectionGater;
  /**
   * This node's software version (semver, docs/upgrades.md): announced in identify, heartbeats and liveness; a peer
   * whose version is incompatible with it (versioning.ts) is refused. Default `unknown`: only the wire is checked.
   */
  readonly softwareVersion?: string;
  /** Wall clock (ms). Default Date.now. */
  readonly now?: () => number;
  /**
   * Another origin unheard this long (by this node's clock; never heard since start counts from start) is forgotten
   * with its imports: it left without saying so. Default 24 h. Keep it far above the endpoint TTL.
   */
  readonly originHorizonMs?: number;
  /**
   * This origin collects its own tombstones older than this: it re-issues its live records older than 3/4 of it,
   * then signs the floor (now − horizon) into its heartbeats, and every node drops and refuses its records below the
   * floor (so a peer partitioned longer cannot bring a removal back). Default 24 h.
   */
  readonly tombstoneHorizonMs?: number;
}

/** Emitted when records of other clusters were applied to the state. */
export interface StateChangeDetail {
  readonly records: readonly ExportRecord[];
}

/** Emitted when a newer heartbeat of another cluster arrived. */
export interface HeartbeatDetail {
  readonly origin: ClusterId;
  readonly incarnation: number;
}

/** Emitted when origins became settled (see {@link GossipNode.isSettled}). */
export interface SettledDetail {
  readonly origins: readonly ClusterId[];
}

export interface GossipNodeEvents {
  'state:change': CustomEvent<StateChangeDetail>;
  settled: CustomEvent<SettledDetail>;
  heartbeat: CustomEvent<HeartbeatDetail>;
}

export interface PeerStatus {
  readonly peerId: string;
  readonly addrs: readonly string[];
}

export interface OriginStatus {
  readonly origin: ClusterId;
  /** The origin announced that it left the ClusterSet. */
  readonly left?: boolean;
  readonly peerId?: string;
  /** Records held of it, tombstones included. */
  readonly records: number;
  readonly maxVersion: Hlc;
  readonly incarnation?: number;
  readonly heartbeatAgeMs?: number;
  readonly alive: boolean;
  /** The software version it announces (absent from nodes before 0.2.0, and until heard). */
  readonly version?: string;
}

/** A peer refused for its version (docs/upgrades.md), until it connects with a compatible one. */
export interface IncompatiblePeer {
  readonly peerId: string;
  /** The cluster id its key is bound to, when it is. */
  readonly clusterId?: string;
  /** Its identify agent's software version (absent: it announced none, before 0.2.0). */
  readonly version?: string;
  readonly wire: number;
  readonly reason: 'WireVersion' | 'SoftwareVersion';
  readonly message: string;
  /** When it was last refused (ms since the epoch). */
  readonly sinceMs: number;
}

export interface GossipStatus {
  readonly clusterId: ClusterId;
  readonly clusterSetName: string;
  readonly peerId: string;
  readonly addrs: readonly string[];
  readonly peers: readonly PeerStatus[];
  readonly origins: readonly OriginStatus[];
  /** Origins this node holds as completely as the ClusterSet does since it started (itself once it published). */
  readonly settled: readonly ClusterId[];
  /** This node's software version and the wire versions it speaks (versioning.ts). */
  readonly version: string;
  readonly wire: { readonly version: number; readonly min: number };
  /** Peers refused for their version. */
  readonly incompatiblePeers: readonly IncompatiblePeer[];
}

/** Outcome of taking in one batch of envelopes. */
interface IngestResult {
  /** Set when the batch must be rejected (nothing of it was applied). */
  readonly reject?: string;
  /** Envelopes that are replays (older than held by more than the replay window). */
  readonly replays: number;
  readonly applied: number;
  /** Bytes of the record envelopes in the batch (for repair accounting). */
  readonly recordBytes: number;
}

type Kind = 'record' | 'heartbeat' | 'binding';
const KIND_NAME: Record<number, Kind> = { 1: 'record', 2: 'heartbeat', 3: 'binding' };

interface MeshPeersOf {
  getMeshPeers(topic: string): readonly string[];
}

/** How long an incompatible peer's connection stays open (nothing it sends is taken) before it is hung up on. */
const INCOMPATIBLE_HANGUP_DELAY_MS = 1000;
/** How long a sync session waits for the peer's identify (its version) before it runs anyway. */
const IDENTIFY_WAIT_MS = 3000;
/** A refused peer not connected for this long is dropped from status() and the metric. */
const INCOMPATIBLE_FORGET_MS = 10 * 60_000;

const jitter = (ms: number, spread: number): number => Math.round(ms * (1 - spread + 2 * spread * Math.random()));

/** Parses a bootstrap entry; throws GossipConfigError unless it ends in `/p2p/<PeerId>`. */
export function parseBootstrapEntry(entry: string | BootstrapEntry): {
  addr: Multiaddr;
  peerId: PeerId;
  clusterId?: string;
} {
  let text: string;
  let clusterId: string | undefined;
  if (typeof entry === 'string') {
    const eq = entry.indexOf('=');
    const slash = entry.indexOf('/');
    if (eq > 0 && (slash < 0 || eq < slash)) {
      clusterId = entry.slice(0, eq);
      text = entry.slice(eq + 1);
    } else {
      text = entry;
    }
  } else {
    text = entry.addr;
    clusterId = entry.clusterId;
  }
  let addr: Multiaddr;
  try {
    addr = multiaddr(text);
  } catch (err) {
    throw new GossipConfigError(`bad bootstrap address "${text}": ${(err as Error).message}`);
  }
  const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
  if (id === undefined) throw new GossipConfigError(`bootstrap address "${text}" must end in /p2p/<PeerId>`);
  let peerId: PeerId;
  try {
    peerId = peerIdFromString(id);
  } catch (err) {
    throw new GossipConfigError(`bad PeerId in bootstrap address "${text}": ${(err as Error).message}`);
  }
  return clusterId === undefined ? { addr, peerId } : { addr, peerId, clusterId };
}

/**
 * One cluster's member of the ClusterSet gossip mesh.
 *
 * @example
 * ```ts
 * const node = new GossipNode({ clusterId: 'east', clusterSetName: 'prod', privateKey, psk, bootstrap, state });
 * node.on('state:change', () => reconcileImports());
 * await node.start();
 * node.setLocalExports(desired); // level-triggered: call whenever local exports change
 * ```
 */
export class GossipNode extends EventTarget {
  readonly clusterId: ClusterId;
  readonly clusterSetName: string;
  readonly topic: string;
  readonly state: ClusterSetState;
  readonly metrics: GossipMetrics;
  /** This origin's clock: seeded above every own record learned back from peers. */
  readonly clock = new HlcClock();

  readonly #init: GossipNodeInit;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #signer: EnvelopeSigner;
  readonly #verifier = new EnvelopeVerifier();
  readonly #verifyPool = sharedVerifyPool();
  /** Sync frames are verified in parallel but applied one after another, in the order they arrived. */
  #applyChain: Promise<unknown> = Promise.resolve();
  readonly #bindings: BindingRegistry;
  readonly #bootstrap: ReturnType<typeof parseBootstrapEntry>[];
  readonly #rateLimiter = new PeerRateLimiter(SYNC_REQUESTS_PER_MINUTE, SYNC_REQUEST_BURST);
  readonly #heartbeatIntervalMs: number;
  readonly #syncIntervalMs: number;
  readonly #endpointTtlMs: number;

  #libp2p: GossipLibp2p | undefined;
  #redialer: Redialer | undefined;
  #liveness: LivenessExchange | undefined;
  #desired: ReadonlyMap<ServiceKey, ExportedService> | undefined;
  /** Own envelopes waiting for the mesh: records by key (latest wins), plus the binding. */
  readonly #pending = new Map<string, Uint8Array>();
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #housekeepingTimer: NodeJS.Timeout | undefined;
  /** This origin's floor, signed into its heartbeats once it collected tombstones (or left). */
  #floor: Hlc | undefined;
  #left = false;
  /** The next beat goes on the topic signed (the floor rose: every node should learn it soon). */
  #signNextBeat = false;
  #syncTimer: NodeJS.Timeout | undefined;
  readonly #syncing = new Set<string>();
  readonly #syncSoon = new Map<string, NodeJS.Timeout>();
  #incarnation = 0;
  /** Signed heartbeats published on the topic, and beats made (published or not). */
  #heartbeats = 0;
  #beats = 0;
  #lastSyncAt = -Infinity;
  /** See {@link GossipNode.isSettled}. */
  readonly #settled = new Set<ClusterId>();
  /** A key rotation from the previous identity key (GossipNodeInit.previousKey), and that key. */
  #rotation: Binding | undefined;
  #previousKeyId: string | undefined;
  /** Peers a sync completed with since start. */
  readonly #syncedPeers = new Set<string>();
  #startedAtMs = 0;
  #stopping = false;
  readonly #software: string;
  /** The software version each origin announces (heartbeats, liveness, identify of its bound key). */
  readonly #originSoftware = new Map<ClusterId, string>();
  /** The software version in each connected peer's identify agent, by PeerId (null: it announces none). */
  readonly #agentSoftware = new Map<string, string | null>();
  /** Peers refused for their version, by PeerId. */
  readonly #incompatible = new Map<string, IncompatiblePeer>();
  /** Per connected peer: whether its identify passed the version check (unset until it ran). */
  readonly #identified = new Map<string, boolean>();
  readonly #identifyWaiters = new Map<string, (() => void)[]>();
  /** Refused peers gone: forgotten when the timer fires unless they are back. */
  readonly #forgetIncompatible = new Map<string, NodeJS.Timeout>();

  constructor(init: GossipNodeInit) {
    super();
    if (init.clusterId === '' || init.clusterSetName === '') {
      throw new GossipConfigError('clusterId and clusterSetName are required');
    }
    this.#init = init;
    this.clusterId = init.clusterId;
    this.clusterSetName = init.clusterSetName;
    this.topic = topicFor(init.clusterSetName);
    this.state = init.state ?? new ClusterSetState();
    this.metrics = new GossipMetrics(init.metricsRegistry);
    this.#now = init.now ?? Date.now;
    this.#software = init.softwareVersion ?? 'unknown';
    this.#signer = new EnvelopeSigner(init.privateKey);
    this.#bootstrap = (init.bootstrap ?? []).map(parseBootstrapEntry);
    const pins = new Map<string, PeerId>();
    for (const b of this.#bootstrap) if (b.clusterId !== undefined) pins.set(b.clusterId, b.peerId);
    this.#bindings = new BindingRegistry(pins);
    const peerId = this.#signer.publicKey;
    const previous = init.previousKey === undefined ? undefined : new EnvelopeSigner(init.previousKey);
    if (previous !== undefined && keyId(previous.publicKey) === keyId(peerId)) {
      throw new GossipConfigError('the previous identity key is the identity key itself');
    }
    const ownPin = pins.get(init.clusterId);
    const pinnedTo = keyId(ownPin?.publicKey?.raw ?? new Uint8Array());
    if (ownPin !== undefined && pinnedTo !== keyId(peerId) && pinnedTo !== keyId(previous?.publicKey ?? peerId)) {
      throw new GossipConfigError(`cluster id "${init.clusterId}" is pinned to ${ownPin.toString()}, not to this key`);
    }
    this.#bindings.setSelf(init.clusterId);
    if (previous === undefined) {
      this.#bindings.pin(init.clusterId, peerId);
    } else {
      // Bound to the previous key, then handed over: the previous key is superseded, the hand-over kept to relay.
      this.#bindings.pin(init.clusterId, previous.publicKey);
      this.#rotation = signRotation(previous, init.clusterId, init.clusterSetName, peerId, this.#now());
      this.#previousKeyId = keyId(previous.publicKey);
      this.#bindings.rotate(this.#rotation);
    }
    this.#heartbeatIntervalMs = init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.#syncIntervalMs = init.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    this.#endpointTtlMs = init.endpointTtlMs ?? DEFAULT_ENDPOINT_TTL_MS;
    const parent = init.logger ?? pino({ level: 'silent' });
    // A parent that already names the cluster (the node's logger) is not told it twice.
    this.#log = parent.child(
      parent.bindings().cluster === init.clusterId
        ? { component: 'gossip' }
        : { component: 'gossip', cluster: init.clusterId },
    );
    this.metrics.readMesh(() => {
      const pubsub = this.#libp2p?.services.pubsub;
      if (pubsub === undefined) return undefined;
      return {
        // The implementation has it; the GossipSub interface libp2p's services are typed with does not.
        meshPeers: (pubsub as Partial<MeshPeersOf>).getMeshPeers?.(this.topic).length ?? 0,
        subscribers: pubsub.getSubscribers(this.topic).length,
        pubsubPeers: pubsub.getPeers().length,
      };
    });
  }

  /** The libp2p node (for tests and diagnostics); throws before start. */
  get libp2p(): GossipLibp2p {
    if (this.#libp2p === undefined) throw new NotStartedError('gossip node is not started');
    return this.#libp2p;
  }

  get peerId(): PeerId {
    return this.libp2p.peerId;
  }

  isStarted(): boolean {
    return this.#libp2p !== undefined;
  }

  async start(): Promise<void> {
    if (this.#libp2p !== undefined) return;
    this.#stopping = false;
    this.#settled.clear();
    this.#syncedPeers.clear();
    const node = await createGossipLibp2p({
      privateKey: this.#init.privateKey,
      psk: this.#init.psk,
      topic: this.topic,
      listen: this.#init.listen ?? ['/ip4/0.0.0.0/tcp/7946'],
      ...(this.#init.announce === undefined ? {} : { announce: this.#init.announce }),
      ...(this.#init.connectionGater === undefined ? {} : { connectionGater: this.#init.connectionGater }),
      ...(this.#init.meshDegree === undefined ? {} : { meshDegree: this.#init.meshDegree }),
      userAgent: agentVersion(this.#software),
      metricsRegistry: this.metrics.registry,
    });
    this.#libp2p = node;
    const pubsub = node.services.pubsub;
    pubsub.topicValidators.set(this.topic, (peer, msg) => this.#validateTopicMessage(peer, msg));
    await node.handle(SYNC_PROTOCOL, (stream, connection) => this.#onSyncStream(stream, connection), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
    const liveness = new LivenessExchange({
      node,
      topic: this.topic,
      self: this.clusterId,
      now: this.#now,
      ttlMs: this.#endpointTtlMs,
      flushDelayMs: Math.min(2000, Math.max(250, Math.round(this.#heartbeatIntervalMs / 5))),
      isMember: (peer) =>
        peer.publicKey !== undefined &&
        this.#bindings.isMemberKey(peer.publicKey.raw) &&
        !this.#incompatible.has(peer.toString()),
      isBound: (origin) => this.#bindings.isBound(origin),
      onBeat: (beat, from) => this.#onBeat(beat, from),
      onOwnBeat: (version) => this.clock.seed(version),
      metrics: this.metrics,
      log: this.#log,
    });
    this.#liveness = liveness;
    await node.handle(LIVENESS_PROTOCOL, (stream, connection) => liveness.handle(stream, connection.remotePeer), {
      maxInboundStreams: 2,
      maxOutboundStreams: 2,
    });
    node.addEventListener('peer:connect', (evt) => {
      const back = this.#forgetIncompatible.get(evt.detail.toString());
      if (back !== undefined) {
        clearTimeout(back);
        this.#forgetIncompatible.delete(evt.detail.toString());
      }
      this.#redialer?.connected(evt.detail);
      this.#liveness?.forgetPeer(evt.detail);
      this.metrics.peers.set(connectedPeers(node).length);
      // Join and reconnect: pull from the new peer, unless we completed a sync moments ago (a node opening many
      // connections at once needs one or two syncs, not one per connection; heartbeats reveal any gap left).
      // A node that has never synced (just started) pulls from its first peer at once. While a sync is running or
      // due, new connections start none: a bootstrap pulls the full state once, not from every peer it meets.
      const busy = this.#syncBusy();
      if (!busy && this.#lastSyncAt === -Infinity) this.#scheduleSync(evt.detail, 0);
      else if (!busy && performance.now() - this.#lastSyncAt > 5000) {
        this.#scheduleSync(evt.detail, 200 + Math.random() * 800);
      }
    });
    // Directly connected peers are remembered, so they are redialled when we drop below the target peer count.
    node.addEventListener('peer:identify', (evt) => {
      if (!this.#checkPeerVersion(evt.detail.peerId, evt.detail.agentVersion)) return;
      if (evt.detail.listenAddrs.length > 0) this.#redialer?.add(evt.detail.peerId, evt.detail.listenAddrs, false);
    });
    node.addEventListener('peer:disconnect', (evt) => {
      // A reconnecting peer may run another version (it was upgraded): it is checked again.
      const key = evt.detail.toString();
      this.#identified.delete(key);
      this.#agentSoftware.delete(key);
      this.#releaseWaiters(key);
      // A refused peer that stays away (decommissioned, re-keyed) is forgotten after a while, its row and metric too.
      if (this.#incompatible.has(key) && !this.#forgetIncompatible.has(key)) {
        const timer = setTimeout(() => {
          this.#forgetIncompatible.delete(key);
          if (node.getConnections(evt.detail).length > 0 || !this.#incompatible.delete(key)) return;
          this.#countIncompatible();
        }, INCOMPATIBLE_FORGET_MS);
        timer.unref();
        this.#forgetIncompatible.set(key, timer);
      }
      this.#redialer?.disconnected(evt.detail);
      this.#liveness?.forgetPeer(evt.detail);
      this.metrics.peers.set(connectedPeers(node).length);
    });
    pubsub.addEventListener('subscription-change', () => this.#scheduleFlush(0));
    await node.start();
    pubsub.subscribe(this.topic);

    const nowMs = this.#now();
    this.#startedAtMs = nowMs;
    this.#seedClockFromState();
    // Every start gets a higher incarnation than the last, as long as the clock has not gone back past it.
    this.#incarnation = this.clock.tick(nowMs).wallMs;
    const binding = signBinding(this.#signer, this.clusterId, this.clusterSetName, nowMs);
    this.#bindings.remember(binding);
    // The rotation goes first, so a peer bound to the previous key follows it before it weighs the new binding.
    if (this.#rotation !== undefined) this.#pending.set('\u0000rotation', this.#rotation.proof);
    this.#pending.set('\u0000binding', binding.proof);

    this.#redialer = new Redialer(
      node,
      {
        baseMs: this.#init.redialBaseMs ?? DEFAULT_REDIAL_BASE_MS,
        maxMs: this.#init.redialMaxMs ?? DEFAULT_REDIAL_MAX_MS,
        targetPeers: this.#init.targetPeers ?? DEFAULT_TARGET_PEERS,
        dialTimeoutMs: 10_000,
      },
      this.#log,
      this.metrics,
    );
    for (const b of this.#bootstrap) this.#redialer.add(b.peerId, [b.addr], true);
    this.#redialer.start();
    this.#heartbeat();
    this.#syncTimer = setTimeout(() => this.#periodicSync(), jitter(this.#syncIntervalMs, 0.25));
    this.#housekeepingTimer = setInterval(() => this.#housekeeping(), this.#housekeepingIntervalMs());
    this.#housekeepingTimer.unref();
    this.#log.info({ peerId: node.peerId.toString(), addrs: this.#addrs(), topic: this.topic }, 'gossip node started');
  }

  async stop(): Promise<void> {
    const node = this.#libp2p;
    if (node === undefined) return;
    this.#stopping = true;
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#syncTimer);
    clearInterval(this.#housekeepingTimer);
    clearTimeout(this.#flushTimer);
    for (const t of this.#syncSoon.values()) clearTimeout(t);
    this.#syncSoon.clear();
    for (const t of this.#forgetIncompatible.values()) clearTimeout(t);
    this.#forgetIncompatible.clear();
    this.#releaseWaiters();
    this.#identified.clear();
    this.#agentSoftware.clear();
    this.#redialer?.stop();
    this.#redialer = undefined;
    this.#liveness?.stop();
    this.#liveness = undefined;
    await node.stop();
    this.#libp2p = undefined;
    this.#log.info('gossip node stopped');
  }

  /**
   * Level-triggered: makes the ClusterSet hold exactly `desired` for this cluster. New or changed exports get a new
   * version, exports gone get a tombstone (also those learned back from peers after a restart). Returns what was
   * issued (empty when nothing changed).
   */
  setLocalExports(desired: ReadonlyMap<ServiceKey, ExportedService>): ExportRecord[] {
    this.#desired = desired;
    const issued = this.#reconcileOwn();
    if (this.#libp2p !== undefined) this.#settle([this.clusterId]);
    return issued;
  }

  /**
   * Whether this node holds an origin's records as completely as the ClusterSet does: itself once it published its
   * exports from listed caches; another origin once a completed sync with a peer that had settled it left this node
   * with the same digest (or a newer one). Before that, what this node holds of the origin may be partial (nothing
   * after a restart, a few deltas heard on the topic) and must not be read as "the origin exports nothing else".
   */
  isSettled(origin: ClusterId): boolean {
    if (this.#settled.has(origin) || this.state.isForgotten(origin)) return true;
    // Unheard for a whole horizon since this node started: no peer will ever settle it (it is gone for good).
    const started = this.#startedAtMs > 0 && this.#now() - this.#startedAtMs > this.#originHorizonMs();
    return started && this.state.heartbeatOf(origin) === undefined;
  }

  #settle(origins: readonly ClusterId[]): void {
    const fresh = origins.filter((o) => !this.#settled.has(o));
    if (fresh.length === 0) return;
    for (const o of fresh) this.#settled.add(o);
    this.metrics.settledOrigins.set(this.#settled.size);
    this.#log.info({ origins: fresh }, 'origins settled');
    this.dispatchEvent(new CustomEvent('settled', { detail: { origins: fresh } }));
  }

  /**
   * Publishes records this cluster made itself (stamped with {@link GossipNode.clock}): signs them, merges them and
   * queues them for the mesh. Prefer {@link GossipNode.setLocalExports}, which plans and stamps them.
   */
  publishLocal(records: readonly ExportRecord[]): ExportRecord[] {
    for (const r of records) {
      if (r.origin !== this.clusterId) throw new InvalidMessageError(`cannot publish a record of origin ${r.origin}`);
      this.clock.seed(r.version);
    }
    // Issued together, signed together: one signature per Merkle tree of up to MAX_SIGNED_BATCH records.
    const { applied } = this.state.merge(signRecords(this.#signer, records));
    for (const r of applied) this.#pending.set(serviceKey(r.namespace, r.name), r.proof ?? new Uint8Array());
    this.metrics.records.set(this.state.size);
    if (applied.length > 0) this.#scheduleFlush(DEFAULT_DELTA_COALESCE_MS);
    return [...applied];
  }

  /** Connected peers and their addresses. */
  peers(): PeerStatus[] {
    const node = this.#libp2p;
    if (node === undefined) return [];
    return connectedPeers(node).map((p) => ({
      peerId: p.toString(),
      addrs: node.getConnections(p).map((c) => c.remoteAddr.toString()),
    }));
  }

  status(): GossipStatus {
    const now = this.#now();
    const liveness = this.state.liveness(now, this.#endpointTtlMs, {
      self: this.clusterId,
      startedAtMs: this.#startedAtMs,
    });
    const alive = new Set(liveness.alive);
    return {
      clusterId: this.clusterId,
      clusterSetName: this.clusterSetName,
      peerId: this.#libp2p?.peerId.toString() ?? '',
      addrs: this.#addrs(),
      peers: this.peers(),
      settled: [...this.#settled].sort(),
      origins: this.state.digest().map((d) => {
        const hb = this.state.heartbeatOf(d.origin);
        const peerId = this.#bindings.peerIdOf(d.origin);
        return {
          origin: d.origin,
          ...(peerId === undefined ? {} : { peerId }),
          records: d.count,
          maxVersion: d.maxVersion,
          ...(hb === undefined ? {} : { incarnation: hb.heartbeat.incarnation, heartbeatAgeMs: now - hb.heardAtMs }),
          alive: alive.has(d.origin),
          ...(hb?.heartbeat.left === true ? { left: true } : {}),
          ...(this.#softwareOf(d.origin) === undefined ? {} : { version: this.#softwareOf(d.origin)! }),
        };
      }),
      version: this.#software,
      wire: { version: WIRE_VERSION, min: MIN_WIRE_VERSION },
      incompatiblePeers: [...this.#incompatible.values()],
    };
  }

  /** Live (not removed) records held of each origin: O(records), for scrapes rather than every liveness check. */
  liveRecordCounts(): Map<ClusterId, number> {
    const counts = new Map<ClusterId, number>();
    for (const origin of this.state.origins()) {
      let n = 0;
      for (const r of this.state.recordsOf(origin)) if (!r.removed) n++;
      counts.set(origin, n);
    }
    return counts;
  }

  /** Runs one anti-entropy session with `peer` now; resolves when done (errors are logged, never thrown). */
  async syncWith(peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    const node = this.#libp2p;
    if (node === undefined || this.#stopping) return;
    const key = peer.toString();
    if (this.#syncing.has(key) || this.#incompatible.has(key)) return;
    this.#syncing.add(key);
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.#init.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
    try {
      if (!(await this.#identifiedCompatible(peer))) return;
      const advertised = await runSyncClient(this.#syncHost(), node, peer, {
        signal,
        frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
      });
      this.metrics.syncSessions.inc({ role: 'client', result: 'ok' });
      this.#lastSyncAt = performance.now();
      this.#backdateHeartbeats(advertised);
      this.#seedFromAdvertised(advertised);
      this.#settle(this.#matchingDigests(advertised, key));
      this.#syncedPeers.add(key);
      this.#pursueUnsettled();
    } catch (err) {
      this.metrics.syncSessions.inc({ role: 'client', result: 'error' });
      this.#log.debug({ peer: key, err }, 'sync failed');
    } finally {
      this.metrics.syncDuration.observe({ role: 'client' }, (performance.now() - started) / 1000);
      this.#syncing.delete(key);
    }
  }

  /**
   * While an origin we have heard of is not settled, sync with the next connected peer we have not synced with since
   * start (each at most once: an origin no peer has settled stays unsettled until one does, or until it is heard).
   */
  #pursueUnsettled(): void {
    const node = this.#libp2p;
    if (node === undefined || this.#stopping) return;
    if (this.state.origins().every((o) => o === this.clusterId || this.#settled.has(o))) return;
    const next = connectedPeers(node).find((p) => !this.#syncedPeers.has(p.toString()));
    if (next !== undefined) this.#scheduleSync(next, 200);
  }

  /**
   * A restarted node whose clock is behind the one it ran with before continues above what its peers hold of it
   * (its own digest in DONE), so its beats and records are fresher than theirs at once; never beyond the tolerated
   * skew ahead of our clock.
   */
  #seedFromAdvertised(advertised: readonly SettledDigest[]): void {
    const own = advertised.find((a) => a.digest.origin === this.clusterId)?.digest;
    if (own === undefined) return;
    const limit = this.#now() + MAX_FUTURE_MS;
    for (const v of [own.maxVersion, own.heartbeat]) if (v !== undefined && v.wallMs <= limit) this.clock.seed(v);
  }

  /** Heartbeats the sync relayed count as heard when the peer heard them, not now. */
  #backdateHeartbeats(advertised: readonly SettledDigest[]): void {
    const now = this.#now();
    for (const { digest, heartbeatAgeMs } of advertised) {
      if (digest.heartbeat === undefined || heartbeatAgeMs === undefined || digest.origin === this.clusterId) continue;
      // No relay can date a beat further back than "withdrawn": ages beyond the TTL tell nothing more.
      const age = Math.min(heartbeatAgeMs, this.#endpointTtlMs + 1);
      if (this.state.backdateHeartbeat(digest.origin, digest.heartbeat, now - age)) {
        this.#log.debug({ origin: digest.origin, heartbeatAgeMs }, 'relayed heartbeat dated by the relay');
      }
    }
  }

  /**
   * The origins of a peer's settled digests that this node now holds at least as completely: the same count and hash,
   * or a newer max version (we heard more since). A peer that advertised more than it sent settles nothing of it.
   */
  #matchingDigests(advertised: readonly SettledDigest[], peer: string): ClusterId[] {
    const out: ClusterId[] = [];
    for (const { digest: theirs } of advertised) {
      if (!isClusterId(theirs.origin) || theirs.origin === this.clusterId) continue;
      const mine = this.state.digestOf(theirs.origin);
      const count = mine?.count ?? 0;
      const same = count === theirs.count && (count === 0 || mine?.hash === theirs.hash);
      const newer = mine !== undefined && compareHlc(mine.maxVersion, theirs.maxVersion) > 0;
      if (same || newer) out.push(theirs.origin);
      else this.#log.warn({ peer, origin: theirs.origin }, 'a peer advertised records of an origin it did not send');
    }
    return out;
  }

  /** Typed listener registration; returns a function that removes the listener. */
  on<K extends keyof GossipNodeEvents>(type: K, listener: (evt: GossipNodeEvents[K]) => void): () => void {
    const l = (evt: Event): void => listener(evt as GossipNodeEvents[K]);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
  }

  // ---- local records

  #seedClockFromState(): void {
    const own = this.state.digestOf(this.clusterId);
    if (own !== undefined) this.clock.seed(own.maxVersion);
    const hb = this.state.heartbeatOf(this.clusterId);
    if (hb !== undefined) this.clock.seed(hb.heartbeat.version);
    // A restarted origin learns its floor back with its old heartbeat: keep signing it.
    const floor = this.state.floorOf(this.clusterId);
    if (floor.wallMs > 0 && (this.#floor === undefined || compareHlc(floor, this.#floor) > 0)) this.#floor = floor;
    this.clock.seed(floor);
  }

  // ---- origin lifecycle

  #housekeepingIntervalMs(): number {
    const horizon = Math.min(this.#originHorizonMs(), this.#tombstoneHorizonMs());
    return Math.max(100, Math.min(HOUSEKEEPING_MAX_INTERVAL_MS, Math.floor(horizon / 8)));
  }

  #originHorizonMs(): number {
    return this.#init.originHorizonMs ?? DEFAULT_ORIGIN_HORIZON_MS;
  }

  #tombstoneHorizonMs(): number {
    return this.#init.tombstoneHorizonMs ?? DEFAULT_TOMBSTONE_HORIZON_MS;
  }

  /** Forgets origins unheard past the horizon, and collects this origin's old tombstones. */
  #housekeeping(): void {
    if (this.#stopping || this.#libp2p === undefined) return;
    try {
      const now = this.#now();
      const forgotten: ExportRecord[] = [];
      for (const origin of this.state.origins()) {
        if (origin === this.clusterId) continue;
        const hb = this.state.heartbeatOf(origin);
        const heard = hb?.heardAtMs ?? this.#startedAtMs;
        if (now - heard <= this.#originHorizonMs()) continue;
        // Also by the origin's own clock: a relay cannot make a live origin look forgotten with an inflated age.
        if (hb !== undefined && now - hb.heartbeat.version.wallMs <= this.#originHorizonMs()) continue;
        const dropped = this.state.forgetOrigin(origin);
        forgotten.push(...dropped.slice(0, 1));
        this.metrics.forgottenOrigins.inc();
        this.#log.warn(
          { origin, unheardMs: now - heard, records: dropped.length },
          'forgot a cluster unheard past the horizon (with its imports)',
        );
      }
      this.metrics.records.set(this.state.size);
      if (forgotten.length > 0) this.dispatchEvent(new CustomEvent('state:change', { detail: { records: forgotten } }));
      if (!this.#left) this.#collectOwnTombstones(now);
    } catch (err) {
      this.#log.error({ err }, 'housekeeping failed');
    }
  }

  /**
   * Re-issues own live records older than 3/4 of the tombstone horizon (so every node holds them above the floor long
   * before it rises past their old versions), then raises the own floor to now − horizon: tombstones below go here,
   * and everywhere once the floor reaches a node with a signed heartbeat.
   */
  #collectOwnTombstones(now: number): void {
    if (this.#desired === undefined) return; // not published from listed caches yet: nothing is known to be current
    const horizon = this.#tombstoneHorizonMs();
    const refreshBefore = now - Math.floor((horizon * 3) / 4);
    const floor: Hlc = { wallMs: now - horizon, logical: 0 };
    const stale = this.state
      .recordsOf(this.clusterId)
      .filter((r) => !r.removed && r.version.wallMs < refreshBefore && r.service !== undefined);
    if (stale.length > 0) {
      this.#seedClockFromState();
      this.publishLocal(
        stale.map((r) => ({
          origin: r.origin,
          namespace: r.namespace,
          name: r.name,
          removed: false as const,
          service: r.service!,
          version: this.clock.tick(now),
        })),
      );
      this.#log.info({ records: stale.length }, 're-issued own records ahead of the tombstone floor');
    }
    if (this.#floor !== undefined && compareHlc(floor, this.#floor) <= 0) return;
    const below = this.state.recordsOf(this.clusterId).filter((r) => compareHlc(r.version, floor) < 0);
    if (below.some((r) => !r.removed)) return; // a live record below the floor: wait for its re-issue
    this.state.raiseFloor(this.clusterId, floor);
    this.#floor = floor;
    this.#signNextBeat = true;
    this.metrics.records.set(this.state.size);
    if (below.length > 0) this.#log.info({ tombstones: below.length, floor }, 'collected own tombstones');
  }

  /**
   * Leaves the ClusterSet: tombstones every export and signs a heartbeat whose floor is above all of this origin's
   * records, so every node drops them (and with them this cluster's part of every import) and never takes them back
   * from a stale peer. Published on the topic a few times (waiting up to 10 s for a subscriber); peers relay it by
   * anti-entropy. Resolves with whether at least one peer took it: if none did, the others only forget this
   * cluster after the origin horizon. The node keeps running until stopped, exporting nothing.
   */
  async leave(): Promise<boolean> {
    if (this.#libp2p === undefined) return false;
    this.setLocalExports(new Map());
    const now = this.#now();
    this.#seedClockFromState();
    const floor = this.clock.tick(now);
    const version = this.clock.tick(now);
    const own = this.state.digestOf(this.clusterId);
    const hb = signHeartbeat(this.#signer, {
      heartbeat: { origin: this.clusterId, incarnation: this.#incarnation, version, floor, left: true },
      recordCount: 0,
      maxVersion: own?.maxVersion ?? { wallMs: 0, logical: 0 },
      recordsHash: '',
      addrs: [],
    });
    this.#left = true;
    clearTimeout(this.#heartbeatTimer);
    this.#floor = floor;
    this.state.observeHeartbeat(hb, now);
    this.metrics.records.set(this.state.size);
    let delivered = 0;
    const deadline = performance.now() + 10_000;
    while (delivered < 3) {
      if (await this.#publish([hb.proof ?? new Uint8Array()], 'heartbeat')) delivered++;
      else if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    if (delivered > 0) this.#log.warn({ clusterId: this.clusterId }, 'left the ClusterSet');
    else
      this.#log.error(
        { clusterId: this.clusterId },
        'left the ClusterSet, but no peer could be told: the others forget this cluster only after the origin horizon',
      );
    return delivered > 0;
  }

  #reconcileOwn(): ExportRecord[] {
    if (this.#desired === undefined) return [];
    this.#seedClockFromState();
    const tick = () => this.clock.tick(this.#now());
    const own = this.state.recordsOf(this.clusterId);
    const plan = planOwnRecords(this.clusterId, own, this.#desired, tick);
    // After a key rotation, every record still signed by the previous key is issued again under the new one (same
    // content, newer version), so no peer keeps a statement it will not relay once it follows the rotation.
    if (this.#previousKeyId !== undefined) {
      const planned = new Set(plan.map((r) => serviceKey(r.namespace, r.name)));
      for (const r of own) {
        if (planned.has(serviceKey(r.namespace, r.name)) || !this.#signedByPrevious(r)) continue;
        const { proof: _proof, version: _version, ...content } = r;
        plan.push({ ...content, version: tick() } as ExportRecord);
      }
    }
    return plan.length === 0 ? [] : this.publishLocal(plan);
  }

  #signedByPrevious(r: ExportRecord): boolean {
    if (r.proof === undefined) return false;
    try {
      return keyId(this.#verifier.decode(r.proof).publicKey) === this.#previousKeyId;
    } catch {
      return false;
    }
  }

  // ---- publishing

  #scheduleFlush(delayMs: number): void {
    if (this.#flushTimer !== undefined || this.#pending.size === 0 || this.#stopping) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#flush();
    }, delayMs);
  }

  async #flush(): Promise<void> {
    const node = this.#libp2p;
    if (node === undefined || this.#pending.size === 0) return;
    // A publish into an empty mesh is lost: wait for a subscriber (subscription-change reschedules us).
    if (node.services.pubsub.getSubscribers(this.topic).length === 0) return;
    const batch = [...this.#pending.entries()];
    this.#pending.clear();
    let chunk: Uint8Array[] = [];
    let size = 0;
    const chunks: Uint8Array[][] = [];
    for (const [, env] of batch) {
      if (size + env.length > TARGET_DELTA_BYTES && chunk.length > 0) {
        chunks.push(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(env);
      size += env.length + 4;
    }
    if (chunk.length > 0) chunks.push(chunk);
    for (const envelopes of chunks) {
      const ok = await this.#publish(envelopes, 'delta');
      if (!ok) {
        // Put back what did not go out (newer local changes made since win).
        for (const [k, env] of batch) if (!this.#pending.has(k)) this.#pending.set(k, env);
        this.#scheduleFlush(1000);
        return;
      }
    }
  }

  async #publish(envelopes: Uint8Array[], kind: 'delta' | 'heartbeat'): Promise<boolean> {
    const node = this.#libp2p;
    if (node === undefined) return false;
    const data = TopicMessage.encode({ version: WIRE_VERSION, envelopes: envelopes as Uint8Array<ArrayBuffer>[] });
    try {
      await node.services.pubsub.publish(this.topic, data);
      this.metrics.published.inc({ kind });
      this.metrics.publishedBytes.inc(data.length);
      return true;
    } catch (err) {
      this.#log.debug({ err, kind }, 'publish failed');
      return false;
    }
  }

  #addrs(): string[] {
    return this.#libp2p?.getMultiaddrs().map((a) => a.toString()) ?? [];
  }

  #heartbeat(): void {
    // After a leave the signed leave is this origin's last word: a later (unsigned) beat would hide it.
    if (this.#stopping || this.#libp2p === undefined || this.#left) return;
    const now = this.#now();
    try {
      const own = this.state.digestOf(this.clusterId);
      const publish = this.#libp2p.services.pubsub.getSubscribers(this.topic).length > 0;
      // The signed heartbeat (with our addresses) goes on the topic for the first beats after start, then rarely:
      // liveness itself relays hop by hop (LivenessExchange), at a fraction of the cost.
      const signedOnTopic =
        publish && (this.#signNextBeat || this.#heartbeats < 3 || this.#beats % SIGNED_HEARTBEAT_EVERY === 0);
      if (signedOnTopic) this.#signNextBeat = false;
      const version = this.clock.tick(now);
      const maxVersion = own?.maxVersion ?? { wallMs: 0, logical: 0 };
      const floor = this.#floor;
      const hb = signHeartbeat(this.#signer, {
        heartbeat: {
          origin: this.clusterId,
          incarnation: this.#incarnation,
          version,
          ...(floor === undefined ? {} : { floor }),
          ...(this.#left ? { left: true } : {}),
        },
        recordCount: own?.count ?? 0,
        maxVersion,
        recordsHash: own?.hash ?? '',
        addrs: signedOnTopic ? this.#addrs().slice(0, MAX_ADDRS_PER_HEARTBEAT) : [],
        ...(isSoftwareVersion(this.#software) ? { software: this.#software } : {}),
      });
      this.state.observeHeartbeat(hb, now);
      this.#beats++;
      this.#liveness?.observe({
        origin: this.clusterId,
        incarnation: this.#incarnation,
        version,
        beatAtMs: now,
        recordCount: own?.count ?? 0,
        maxVersion,
        addrs: this.#addrs().slice(0, MAX_ADDRS_PER_HEARTBEAT),
        ...(isSoftwareVersion(this.#software) ? { software: this.#software } : {}),
      });
      if (signedOnTopic) {
        this.#heartbeats++;
        // After a key rotation the hand-over rides ahead of every signed beat: a peer still bound to the previous
        // key must follow it before it weighs a statement of the new one.
        const rotation = this.#rotation?.proof;
        void this.#publish(rotation === undefined ? [hb.proof!] : [rotation, hb.proof!], 'heartbeat');
      }
    } catch (err) {
      this.#log.warn({ err }, 'heartbeat failed');
    }
    // Beat on the next multiple of the period (plus a little jitter), so all clusters' beats relay in the same frames.
    const period = this.#heartbeatIntervalMs;
    const delay = period - (now % period) + Math.random() * Math.min(100, period / 20);
    this.#heartbeatTimer = setTimeout(() => this.#heartbeat(), delay);
  }

  /** A fresher beat of another origin arrived through the liveness exchange. */
  #onBeat(beat: Beat, from: PeerId): void {
    if (beat.addrs !== undefined) this.#learnAddrs(beat.origin, beat.addrs);
    if (beat.software !== undefined) this.#originSoftware.set(beat.origin, beat.software);
    const hb: OriginHeartbeat = { origin: beat.origin, incarnation: beat.incarnation, version: beat.version };
    // A relayed age dates a beat back at most to "withdrawn" (see #backdateHeartbeats).
    const heardAt = Math.max(beat.beatAtMs, this.#now() - this.#endpointTtlMs - 1);
    if (!this.state.observeHeartbeat(hb, heardAt)) return;
    this.#settleIfComplete(beat.origin, beat.recordCount, beat.maxVersion);
    this.metrics.envelopes.inc({ kind: 'heartbeat', result: 'relayed' });
    this.dispatchEvent(
      new CustomEvent('heartbeat', { detail: { origin: beat.origin, incarnation: beat.incarnation } }),
    );
    // A relayed max version from the future (a lying member) triggers nothing.
    if (beat.maxVersion.wallMs > this.#now() + MAX_FUTURE_MS) return;
    if (this.#hasGap(beat.origin, beat.recordCount, beat.maxVersion)) this.#gapSync(from);
  }

  // ---- receiving

  #validateTopicMessage(from: PeerId, msg: Message): TopicValidatorResult {
    try {
      if (msg.type !== 'signed') return this.#topicResult(TopicValidatorResult.Reject, from, 'unsigned message');
      if (msg.data.length > MAX_TOPIC_MESSAGE_BYTES) {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'message too large');
      }
      let decoded: TopicMessage;
      try {
        decoded = TopicMessage.decode(msg.data, { limits: { envelopes: MAX_ENVELOPES_PER_FRAME } });
      } catch {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'message does not decode');
      }
      if (this.#incompatible.has(from.toString())) {
        return this.#topicResult(TopicValidatorResult.Ignore, from, 'incompatible peer');
      }
      if (decoded.version < MIN_WIRE_VERSION || decoded.version > WIRE_VERSION || decoded.envelopes.length === 0) {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'bad message version');
      }
      // Honest reordering stays within the replay window; anything older is a replay: refused (nothing of it
      // merged) and the relay scored down.
      const result = this.ingest(decoded.envelopes, msg.key.raw, from);
      if (result.reject !== undefined) return this.#topicResult(TopicValidatorResult.Reject, from, result.reject);
      return this.#topicResult(TopicValidatorResult.Accept, from);
    } catch (err) {
      // Never crash on input. An unexpected failure is ours, not the relay's: ignore the message (not relayed, no
      // penalty) instead of rejecting it, which would score an honest relay down.
      this.metrics.ingestErrors.inc();
      this.#log.error({ err, peer: from.toString() }, 'topic message failed (internal error)');
      return this.#topicResult(TopicValidatorResult.Ignore, from, 'internal error');
    }
  }

  #topicResult(result: TopicValidatorResult, from: PeerId, reason?: string): TopicValidatorResult {
    this.metrics.topicMessages.inc({ result });
    if (reason !== undefined) this.#log.debug({ peer: from.toString(), reason }, 'topic message rejected');
    return result;
  }

  /**
   * Verifies and applies a batch of envelopes from one message or frame. All of it is checked before any of it
   * touches state: one malformed or wrongly signed envelope rejects the batch. `publisherKey`, when given, must have
   * signed every envelope (topic messages carry only the publisher's own statements); a statement about a cluster id
   * bound to another key rejects a published batch, and is skipped (counted, logged) in a relayed one.
   */
  ingest(
    envelopes: readonly Uint8Array[],
    publisherKey: Uint8Array | undefined,
    from?: PeerId,
    opened?: readonly (OpenedEnvelope | Error)[],
  ): IngestResult {
    const records: ExportRecord[] = [];
    const heartbeats: HeartbeatInfo[] = [];
    let recordBytes = 0;
    const publisher = publisherKey === undefined ? undefined : keyId(publisherKey);
    for (const [i, bytes] of envelopes.entries()) {
      let kind: Kind = 'record';
      try {
        const pre = opened?.[i];
        if (pre instanceof Error) throw pre;
        const env = pre ?? this.#verifier.open(bytes);
        kind = KIND_NAME[env.kind] ?? 'record';
        // A key rotation is signed by the key it hands over from: on the topic it rides with its new key's messages.
        const rotation = env.kind === EnvelopeKind.binding ? bindingOf(env) : undefined;
        if (rotation?.rotatesTo !== undefined) {
          if (rotation.clusterSet !== this.clusterSetName) {
            return this.#rejectBatch(kind, 'invalid', 'rotation for another ClusterSet');
          }
          if (publisher !== undefined && keyId(rotation.rotatesTo) !== publisher) {
            return this.#rejectBatch(kind, 'invalid', 'rotation to a key other than the publisher');
          }
          this.#applyRotation(rotation, from);
          continue;
        }
        if (publisher !== undefined && keyId(env.publicKey) !== publisher) {
          return this.#rejectBatch(kind, 'invalid', 'envelope not signed by the publisher');
        }
        let origin: string;
        let record: ExportRecord | undefined;
        let heartbeat: HeartbeatInfo | undefined;
        if (env.kind === EnvelopeKind.record) {
          record = recordOf(env);
          origin = record.origin;
        } else if (env.kind === EnvelopeKind.heartbeat) {
          heartbeat = heartbeatOf(env);
          origin = heartbeat.heartbeat.origin;
        } else {
          const b = bindingOf(env);
          if (b.clusterSet !== this.clusterSetName) {
            return this.#rejectBatch(kind, 'invalid', 'binding for another ClusterSet');
          }
          origin = b.clusterId;
        }
        const check = this.#bindings.check(origin, env.publicKey);
        if (!check.ok && check.superseded && publisher === undefined) {
          // Signed by a key the cluster rotated away from: a relay's old copy, replaced by what the new key issues.
          this.metrics.envelopes.inc({ kind, result: 'superseded_key' });
          continue;
        }
        if (!check.ok) {
          this.metrics.bindingConflicts.inc({ cluster_id: origin });
          this.#log.warn(
            {
              clusterId: origin,
              boundTo: check.boundTo,
              claimedBy: peerIdOfKey(env.publicKey).toString(),
              peer: from?.toString(),
            },
            'refused a second PeerId claiming a bound cluster id',
          );
          // A publisher speaking for someone else's cluster id is at fault; a relay (sync) may just have bound the
          // id differently: skip that statement and keep the rest.
          if (publisher !== undefined) return this.#rejectBatch(kind, 'binding_conflict', 'binding conflict');
          this.metrics.envelopes.inc({ kind, result: 'binding_conflict' });
          continue;
        }
        if (record !== undefined) {
          records.push(record);
          recordBytes += bytes.length;
        }
        if (heartbeat !== undefined) heartbeats.push(heartbeat);
        if (env.kind === EnvelopeKind.binding) this.#bindings.remember(bindingOf(env));
      } catch (err) {
        if (err instanceof InvalidSignatureError) return this.#rejectBatch(kind, 'bad_signature', err.message);
        if (err instanceof InvalidMessageError) return this.#rejectBatch(kind, 'invalid', err.message);
        throw err;
      }
    }
    const now = this.#now();
    // Replays are judged before anything touches state: a replayed topic message is refused whole, not after its
    // other statements were merged. (Anti-entropy may legitimately carry old records: there they are only counted.)
    let replays = 0;
    for (const r of records) {
      const held = this.state.record(r.origin, serviceKey(r.namespace, r.name));
      if (held !== undefined && held.version.wallMs - r.version.wallMs > REPLAY_WINDOW_MS) replays++;
    }
    for (const info of heartbeats) {
      // Anti-entropy relays the heartbeat that carried an origin's floor, however old: not a replay there.
      if (publisher === undefined && info.heartbeat.floor !== undefined) continue;
      const held = this.state.heartbeatOf(info.heartbeat.origin)?.heartbeat.version;
      if (held !== undefined && held.wallMs - info.heartbeat.version.wallMs > REPLAY_WINDOW_MS) replays++;
    }
    if (replays > 0) {
      this.metrics.replays.inc(replays);
      this.metrics.envelopes.inc({ kind: 'record', result: 'replay' }, replays);
      if (publisher !== undefined) return { reject: 'replayed message', replays, applied: 0, recordBytes };
    }
    const merged = this.state.merge(records);
    const sizeBeforeBeats = this.state.size;
    this.metrics.envelopes.inc({ kind: 'record', result: 'accepted' }, merged.applied.length);
    this.metrics.envelopes.inc({ kind: 'record', result: 'stale' }, merged.stale);
    if (merged.invalid > 0) this.metrics.envelopes.inc({ kind: 'record', result: 'invalid' }, merged.invalid);
    let gapFrom = false;
    let ownChanged = false;
    const remote: ExportRecord[] = [];
    for (const r of merged.applied) {
      if (r.origin === this.clusterId) ownChanged = true;
      else remote.push(r);
    }
    for (const info of heartbeats) {
      const hb: OriginHeartbeat = info.heartbeat;
      if (hb.origin !== this.clusterId) this.#learnAddrs(hb.origin, info.addrs);
      if (this.state.observeHeartbeat(hb, now)) {
        // Only a fresher heartbeat says which version the origin runs now (an old one, relayed late, would roll it
        // back); a signed heartbeat always carries the version of a node that announces one: none means none.
        if (hb.origin !== this.clusterId) {
          if (info.software === undefined) this.#originSoftware.delete(hb.origin);
          else this.#originSoftware.set(hb.origin, info.software);
        }
        this.metrics.envelopes.inc({ kind: 'heartbeat', result: 'accepted' });
        if (hb.origin === this.clusterId) {
          this.clock.seed(hb.version);
          continue;
        }
        this.#liveness?.observe({
          origin: hb.origin,
          incarnation: hb.incarnation,
          version: hb.version,
          beatAtMs: now,
          recordCount: info.recordCount,
          maxVersion: info.maxVersion,
          addrs: info.addrs,
        });
        this.dispatchEvent(
          new CustomEvent('heartbeat', { detail: { origin: hb.origin, incarnation: hb.incarnation } }),
        );
        if (this.#hasGap(hb.origin, info.recordCount, info.maxVersion, info.recordsHash)) gapFrom = true;
        else this.#settleIfComplete(hb.origin, info.recordCount, info.maxVersion, info.recordsHash);
      } else {
        this.metrics.envelopes.inc({ kind: 'heartbeat', result: 'stale' });
      }
    }
    if (ownChanged) {
      // Our own records came back from a peer (after a restart): continue above them, and re-issue what differs.
      this.#seedClockFromState();
      this.#reconcileOwn();
    }
    // A heartbeat's floor (collected tombstones, or a leave) may have dropped records.
    const floorDropped = this.state.size < sizeBeforeBeats;
    this.metrics.records.set(this.state.size);
    if (remote.length > 0 || floorDropped) {
      this.dispatchEvent(new CustomEvent('state:change', { detail: { records: remote } }));
    }
    if (gapFrom && from !== undefined) this.#gapSync(from);
    return { replays, applied: merged.applied.length, recordBytes };
  }

  /**
   * {@link GossipNode.ingest} for a big batch (a sync RECORDS frame): signatures are checked by the VerifyPool's
   * worker threads while the caller reads the next frame; batches are applied in the order this was called.
   */
  ingestFrame(envelopes: readonly Uint8Array[], from: PeerId): Promise<IngestResult> {
    const opened: (OpenedEnvelope | Error | undefined)[] = [];
    const decoded: DecodedEnvelope[] = [];
    const at: number[] = [];
    for (const [i, bytes] of envelopes.entries()) {
      try {
        decoded.push(this.#verifier.decode(bytes));
        at.push(i);
        opened.push(undefined);
      } catch (err) {
        opened.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    const verified = this.#verifyPool.verify(decoded, this.#verifier).then((ok) => {
      for (const [j, i] of at.entries()) {
        opened[i] = ok[j] === true ? decoded[j]! : new InvalidSignatureError('signature does not verify');
      }
    });
    const applied = Promise.all([verified, this.#applyChain]).then(() =>
      this.ingest(envelopes, undefined, from, opened as (OpenedEnvelope | Error)[]),
    );
    this.#applyChain = applied.catch(() => undefined);
    return applied;
  }

  #applyRotation(rotation: Binding, from: PeerId | undefined): void {
    const result = this.#bindings.rotate(rotation);
    this.metrics.envelopes.inc({ kind: 'binding', result: `rotation_${result}` });
    if (result === 'rotated') {
      this.#log.warn(
        {
          clusterId: rotation.clusterId,
          from: peerIdOfKey(rotation.publicKey).toString(),
          to: peerIdOfKey(rotation.rotatesTo!).toString(),
          peer: from?.toString(),
        },
        'a cluster rotated its identity key',
      );
    } else if (result === 'refused') {
      this.metrics.bindingConflicts.inc({ cluster_id: rotation.clusterId });
      this.#log.warn(
        { clusterId: rotation.clusterId, signedBy: peerIdOfKey(rotation.publicKey).toString(), peer: from?.toString() },
        'refused a key rotation signed by a key that does not speak for the cluster id',
      );
    }
  }

  #rejectBatch(kind: Kind, result: string, reason: string): IngestResult {
    this.metrics.envelopes.inc({ kind, result });
    return { reject: reason, replays: 0, applied: 0, recordBytes: 0 };
  }

  /**
   * The origin's own beat says it holds exactly what we hold of it (count and newest version, and the hash when the
   * beat is signed): we know it as completely as it does, so it is settled. A restarted node holds less than the
   * beat says, so it still waits for a sync.
   */
  #settleIfComplete(origin: ClusterId, recordCount: number, maxVersion: Hlc, recordsHash?: string): void {
    if (this.#settled.has(origin) || this.#libp2p === undefined) return;
    if (this.#hasGap(origin, recordCount, maxVersion, recordsHash)) return;
    const mine = this.state.digestOf(origin);
    if ((mine?.count ?? 0) !== recordCount) return; // we hold more than it says: not the same set either
    this.#settle([origin]);
  }

  /** Whether a heartbeat says its origin holds records we do not: then we pull from the peer that relayed it. */
  #hasGap(origin: ClusterId, recordCount: number, maxVersion: Hlc, recordsHash?: string): boolean {
    const mine = this.state.digestOf(origin);
    if (mine === undefined) return recordCount > 0;
    const cmp = compareHlc(maxVersion, mine.maxVersion);
    if (cmp !== 0) return cmp > 0;
    return recordCount !== mine.count || (recordsHash !== undefined && recordsHash !== mine.hash);
  }

  /** The software version of an origin: this node's own, or the one it announced. */
  #softwareOf(origin: ClusterId): string | undefined {
    if (origin === this.clusterId) return this.#software;
    // A connected peer's identify is the surest word on the process running now (null: it announces none).
    const peerId = this.#bindings.peerIdOf(origin);
    const agent = peerId === undefined ? undefined : this.#agentSoftware.get(peerId);
    if (agent !== undefined) return agent ?? undefined;
    return this.#originSoftware.get(origin);
  }

  /**
   * Checks a peer's identify agent against this node's version (versioning.ts). An incompatible peer is logged,
   * counted, listed in status() and hung up on; redials retry it with backoff, so an upgraded peer gets back in.
   * Returns whether the peer is compatible.
   */
  #checkPeerVersion(peerId: PeerId, agent: string | undefined): boolean {
    const key = peerId.toString();
    const theirs = parseAgentVersion(agent);
    const verdict = compatibility(this.#software, theirs);
    const clusterId = this.#bindings.entries().find((e) => e.peerId === key)?.clusterId;
    this.#agentSoftware.set(key, theirs.software ?? null);
    if (verdict.ok) {
      if (this.#incompatible.delete(key)) {
        this.#log.info({ peerId: key, clusterId, version: theirs.software }, 'peer is compatible again');
        this.#countIncompatible();
      }
      if (clusterId !== undefined) {
        if (theirs.software === undefined) this.#originSoftware.delete(clusterId);
        else this.#originSoftware.set(clusterId, theirs.software);
      }
      this.#identifiedAs(key, true);
      return true;
    }
    const previous = this.#incompatible.get(key);
    const entry: IncompatiblePeer = {
      peerId: key,
      ...(clusterId === undefined ? {} : { clusterId }),
      ...(theirs.software === undefined ? {} : { version: theirs.software }),
      wire: theirs.wire,
      reason: verdict.reason,
      message: verdict.message,
      sinceMs: this.#now(),
    };
    this.#incompatible.set(key, entry);
    this.#identifiedAs(key, false);
    this.#countIncompatible();
    if (previous?.message !== verdict.message) {
      this.#log.warn(
        { peerId: key, clusterId, version: theirs.software, wire: theirs.wire, reason: verdict.reason },
        `refusing peer ${clusterId ?? key}: it ${verdict.message}`,
      );
    }
    // Hung up on a moment later, so the peer's identify of this node completes too and it says why on its side.
    const node = this.#libp2p;
    setTimeout(() => {
      if (this.#incompatible.has(key)) void node?.hangUp(peerId).catch(() => undefined);
    }, INCOMPATIBLE_HANGUP_DELAY_MS).unref();
    return false;
  }

  /**
   * Whether a peer passed the version check, waiting (up to IDENTIFY_WAIT_MS) for its identify when it has not run yet:
   * no sync session runs with a peer before its version is known. A peer whose identify never completes is served.
   */
  async #identifiedCompatible(peer: PeerId): Promise<boolean> {
    const key = peer.toString();
    const known = this.#identified.get(key);
    if (known !== undefined) return known;
    await new Promise<void>((resolve) => {
      const waiters = this.#identifyWaiters.get(key) ?? [];
      const done = () => {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        if (waiters.length === 0 && this.#identifyWaiters.get(key) === waiters) this.#identifyWaiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, IDENTIFY_WAIT_MS);
      timer.unref();
      waiters.push(done);
      this.#identifyWaiters.set(key, waiters);
    });
    return this.#identified.get(key) ?? true;
  }

  #identifiedAs(key: string, compatible: boolean): void {
    this.#identified.set(key, compatible);
    this.#releaseWaiters(key);
  }

  /** Lets the sessions waiting for a peer's identify go on (it ran, the peer left, or this node stops). */
  #releaseWaiters(key?: string): void {
    const keys = key === undefined ? [...this.#identifyWaiters.keys()] : [key];
    for (const k of keys) for (const w of [...(this.#identifyWaiters.get(k) ?? [])]) w();
  }

  #countIncompatible(): void {
    this.metrics.incompatiblePeers.reset();
    for (const p of this.#incompatible.values()) this.metrics.incompatiblePeers.inc({ reason: p.reason });
  }

  #learnAddrs(origin: string, learned: readonly string[]): void {
    const redialer = this.#redialer;
    const peerIdText = this.#bindings.peerIdOf(origin);
    if (redialer === undefined || peerIdText === undefined || learned.length === 0) return;
    try {
      const peerId = peerIdFromString(peerIdText);
      if (redialer.has(peerId)) return;
      const addrs: Multiaddr[] = [];
      for (const a of learned) {
        try {
          addrs.push(multiaddr(a));
        } catch {
          // ignore unparsable addresses
        }
      }
      redialer.add(peerId, addrs, false);
    } catch {
      // a bad address never matters
    }
  }

  // ---- anti-entropy

  #syncHost(): SyncHost {
    return {
      state: this.state,
      ingest: (envelopes, from) => this.ingestFrame(envelopes, from),
      bindingProof: (origin) => this.#bindings.proofOf(origin),
      rotationProofs: (origin) => this.#bindings.rotationsOf(origin),
      pullFrom: (peer) => this.#scheduleSync(peer, 200),
      settledOrigins: () => this.#settled,
      now: this.#now,
      heartbeatIntervalMs: this.#heartbeatIntervalMs,
      metrics: this.metrics,
      log: this.#log,
    };
  }

  /**
   * A heartbeat showed records we lack: pull from the peer that relayed it — unless a sync is already running or due
   * (a bootstrap sees gaps from every peer at once; the next beats show whatever is still missing after it).
   */
  #gapSync(from: PeerId): void {
    if (this.#syncBusy()) return;
    this.#scheduleSync(from, 500);
  }

  /** Whether a sync session is running or scheduled. */
  #syncBusy(): boolean {
    return this.#syncing.size > 0 || this.#syncSoon.size > 0;
  }

  #scheduleSync(peer: PeerId, delayMs: number): void {
    if (this.#stopping) return;
    const key = peer.toString();
    if (this.#syncSoon.has(key)) return;
    const t = setTimeout(() => {
      this.#syncSoon.delete(key);
      void this.syncWith(peer);
    }, delayMs);
    this.#syncSoon.set(key, t);
  }

  #periodicSync(): void {
    const node = this.#libp2p;
    if (node === undefined || this.#stopping) return;
    const peers = connectedPeers(node);
    const peer = peers[Math.floor(Math.random() * peers.length)];
    if (peer !== undefined) void this.syncWith(peer);
    this.#syncTimer = setTimeout(() => this.#periodicSync(), jitter(this.#syncIntervalMs, 0.25));
  }

  #onSyncStream(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer;
    if (this.#incompatible.has(peer.toString())) {
      stream.abort(new Error('incompatible version'));
      return;
    }
    if (!this.#rateLimiter.tryTake(peer.toString())) {
      this.metrics.syncRateLimited.inc();
      stream.abort(new Error('rate limited'));
      return;
    }
    const started = performance.now();
    const signal = AbortSignal.timeout(this.#init.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS);
    this.#identifiedCompatible(peer)
      .then((ok) => {
        if (!ok) throw new Error('incompatible version');
        return serveSync(this.#syncHost(), stream, peer, { signal, frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS });
      })
      .then(
        () => {
          this.metrics.syncSessions.inc({ role: 'server', result: 'ok' });
          this.metrics.syncDuration.observe({ role: 'server' }, (performance.now() - started) / 1000);
        },
        (err: unknown) => {
          this.metrics.syncSessions.inc({ role: 'server', result: 'error' });
          this.#log.debug({ peer: peer.toString(), err }, 'sync serve failed');
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        },
      );
  }
}
