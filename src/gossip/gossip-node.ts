// The gossip node of one cluster: joins the ClusterSet mesh, publishes this cluster's export records as signed deltas,
// relays heartbeats, runs anti-entropy with its peers and merges what it receives into the ClusterSetState.
//
// GossipNode is the composition root: its parts (each its own file) share a GossipContext and are started and
// stopped together, in order, the way js-libp2p's kad-dht composes its services:
// - PeerVersions (peer-versions.ts): identify agents checked, incompatible peers refused;
// - Settledness (settledness.ts): which origins this node holds completely;
// - Publisher (publisher.ts): own records planned, signed, merged and published as coalesced deltas;
// - Ingest (ingest.ts): the topic validator, and batches of envelopes verified and applied;
// - AntiEntropy (anti-entropy.ts): sync sessions scheduled and served;
// - Heartbeats (heartbeats.ts): own beats, the liveness exchange, relayed beats, the leave;
// - Housekeeping (housekeeping.ts): forgotten origins, own tombstones collected;
// - Membership (membership.ts): bootstrap and learned peers redialled.
import type { ConnectionGater, Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ClusterSetState, DEFAULT_ENDPOINT_TTL_MS, HlcClock } from '../core/index.js';
import type { ClusterId, ExportedService, ExportRecord, Hlc, ServiceKey } from '../core/index.js';
import { AntiEntropy } from './anti-entropy.js';
import { BindingRegistry } from './bindings.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_ORIGIN_HORIZON_MS,
  DEFAULT_REDIAL_BASE_MS,
  DEFAULT_REDIAL_MAX_MS,
  DEFAULT_SYNC_INTERVAL_MS,
  DEFAULT_SYNC_TIMEOUT_MS,
  DEFAULT_TARGET_PEERS,
  DEFAULT_TOMBSTONE_HORIZON_MS,
  MIN_WIRE_VERSION,
  topicFor,
  WIRE_VERSION,
} from './constants.js';
import type { GossipContext } from './context.js';
import { EnvelopeSigner, EnvelopeVerifier, keyId, signBinding, signRotation } from './envelope.js';
import type { Binding, OpenedEnvelope } from './envelope.js';
import { GossipConfigError, NotStartedError } from './errors.js';
import type { GossipNodeEvents } from './events.js';
import { Heartbeats } from './heartbeats.js';
import { Housekeeping } from './housekeeping.js';
import { Ingest } from './ingest.js';
import type { IngestResult } from './ingest.js';
import { connectedPeers, createGossipLibp2p } from './libp2p-node.js';
import type { GossipLibp2p } from './libp2p-node.js';
import { Membership } from './membership.js';
import { GossipMetrics } from './metrics.js';
import { OwnOrigin } from './own-origin.js';
import { PeerVersions } from './peer-versions.js';
import type { IncompatiblePeer } from './peer-versions.js';
import { Publisher } from './publisher.js';
import { Settledness } from './settledness.js';
import { agentVersion } from './versioning.js';

export type { GossipNodeEvents, HeartbeatDetail, SettledDetail, StateChangeDetail } from './events.js';
export type { IncompatiblePeer } from './peer-versions.js';

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

interface MeshPeersOf {
  getMeshPeers(topic: string): readonly string[];
}

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
  readonly #bindings: BindingRegistry;
  readonly #endpointTtlMs: number;
  /** A key rotation from the previous identity key (GossipNodeInit.previousKey). */
  readonly #rotation: Binding | undefined;
  readonly #own: OwnOrigin;
  readonly #versions: PeerVersions;
  readonly #settledness: Settledness;
  readonly #publisher: Publisher;
  readonly #ingest: Ingest;
  readonly #antiEntropy: AntiEntropy;
  readonly #heartbeats: Heartbeats;
  readonly #housekeeping: Housekeeping;
  readonly #membership: Membership;

  #libp2p: GossipLibp2p | undefined;
  #stopping = false;

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
    this.#signer = new EnvelopeSigner(init.privateKey);
    const bootstrap = (init.bootstrap ?? []).map(parseBootstrapEntry);
    const pins = new Map<string, PeerId>();
    for (const b of bootstrap) if (b.clusterId !== undefined) pins.set(b.clusterId, b.peerId);
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
    let previousKeyId: string | undefined;
    if (previous === undefined) {
      this.#bindings.pin(init.clusterId, peerId);
    } else {
      // Bound to the previous key, then handed over: the previous key is superseded, the hand-over kept to relay.
      this.#bindings.pin(init.clusterId, previous.publicKey);
      this.#rotation = signRotation(previous, init.clusterId, init.clusterSetName, peerId, this.#now());
      previousKeyId = keyId(previous.publicKey);
      this.#bindings.rotate(this.#rotation);
    }
    const heartbeatIntervalMs = init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const syncTimeoutMs = init.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
    const originHorizonMs = init.originHorizonMs ?? DEFAULT_ORIGIN_HORIZON_MS;
    this.#endpointTtlMs = init.endpointTtlMs ?? DEFAULT_ENDPOINT_TTL_MS;
    const parent = init.logger ?? pino({ level: 'silent' });
    // A parent that already names the cluster (the node's logger) is not told it twice.
    this.#log = parent.child(
      parent.bindings().cluster === init.clusterId
        ? { component: 'gossip' }
        : { component: 'gossip', cluster: init.clusterId },
    );
    this.#own = new OwnOrigin(this.clusterId, this.state, this.clock);

    const ctx: GossipContext = {
      clusterId: this.clusterId,
      clusterSetName: this.clusterSetName,
      topic: this.topic,
      state: this.state,
      bindings: this.#bindings,
      metrics: this.metrics,
      log: this.#log,
      now: this.#now,
      clock: this.clock,
      own: this.#own,
      libp2p: () => this.#libp2p,
      stopping: () => this.#stopping,
      emit: (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail })),
    };
    const verifier = new EnvelopeVerifier();
    // The parts call each other only through the functions given here (no part imports the node).
    this.#versions = new PeerVersions(ctx, init.softwareVersion ?? 'unknown');
    this.#settledness = new Settledness(ctx, originHorizonMs);
    this.#membership = new Membership(ctx, {
      bootstrap,
      redial: {
        baseMs: init.redialBaseMs ?? DEFAULT_REDIAL_BASE_MS,
        maxMs: init.redialMaxMs ?? DEFAULT_REDIAL_MAX_MS,
        targetPeers: init.targetPeers ?? DEFAULT_TARGET_PEERS,
        dialTimeoutMs: 10_000,
      },
    });
    this.#publisher = new Publisher(ctx, {
      signer: this.#signer,
      verifier,
      ...(previousKeyId === undefined ? {} : { previousKeyId }),
    });
    this.#heartbeats = new Heartbeats(ctx, {
      signer: this.#signer,
      versions: this.#versions,
      settledness: this.#settledness,
      heartbeatIntervalMs,
      endpointTtlMs: this.#endpointTtlMs,
      rotationProof: this.#rotation?.proof,
      publish: (envelopes, kind) => this.#publisher.publish(envelopes, kind),
      addrs: () => this.#membership.addrs(),
      learnAddrs: (origin, addrs) => this.#membership.learnAddrs(origin, addrs),
      gapSync: (from) => this.#antiEntropy.gapSync(from),
    });
    this.#ingest = new Ingest(ctx, {
      verifier,
      versions: this.#versions,
      settledness: this.#settledness,
      learnAddrs: (origin, addrs) => this.#membership.learnAddrs(origin, addrs),
      relayBeat: (beat) => this.#heartbeats.relay(beat),
      gapSync: (from) => this.#antiEntropy.gapSync(from),
      reconcileOwn: () => this.#publisher.reconcile(),
      viaNode: (envelopes, publisherKey, from, opened) => this.ingest(envelopes, publisherKey, from, opened),
    });
    this.#antiEntropy = new AntiEntropy(ctx, {
      versions: this.#versions,
      settledness: this.#settledness,
      // Through the public method, as GossipNode.ingest (see IngestInit.viaNode).
      ingestFrame: (envelopes, from) => this.ingestFrame(envelopes, from),
      adoptAdvertised: (advertised) => this.#heartbeats.adoptAdvertised(advertised),
      syncIntervalMs: init.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS,
      syncTimeoutMs,
      heartbeatIntervalMs,
    });
    this.#housekeeping = new Housekeeping(ctx, {
      publisher: this.#publisher,
      originHorizonMs,
      tombstoneHorizonMs: init.tombstoneHorizonMs ?? DEFAULT_TOMBSTONE_HORIZON_MS,
    });

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
    this.#settledness.clear();
    this.#antiEntropy.reset();
    const node = await createGossipLibp2p({
      privateKey: this.#init.privateKey,
      psk: this.#init.psk,
      topic: this.topic,
      listen: this.#init.listen ?? ['/ip4/0.0.0.0/tcp/7946'],
      ...(this.#init.announce === undefined ? {} : { announce: this.#init.announce }),
      ...(this.#init.connectionGater === undefined ? {} : { connectionGater: this.#init.connectionGater }),
      ...(this.#init.meshDegree === undefined ? {} : { meshDegree: this.#init.meshDegree }),
      userAgent: agentVersion(this.#versions.software),
      metricsRegistry: this.metrics.registry,
    });
    this.#libp2p = node;
    const pubsub = node.services.pubsub;
    pubsub.topicValidators.set(this.topic, (peer, msg) => this.#ingest.validateTopicMessage(peer, msg));
    await this.#antiEntropy.handle(node);
    await this.#heartbeats.handle(node);
    node.addEventListener('peer:connect', (evt) => {
      this.#versions.connected(evt.detail);
      this.#membership.connected(evt.detail);
      this.#heartbeats.forgetPeer(evt.detail);
      this.metrics.peers.set(connectedPeers(node).length);
      this.#antiEntropy.connected(evt.detail);
    });
    // Directly connected peers are remembered, so they are redialled when we drop below the target peer count.
    node.addEventListener('peer:identify', (evt) => {
      if (!this.#versions.check(evt.detail.peerId, evt.detail.agentVersion)) return;
      this.#membership.identified(evt.detail.peerId, evt.detail.listenAddrs);
    });
    node.addEventListener('peer:disconnect', (evt) => {
      this.#versions.disconnected(evt.detail);
      this.#membership.disconnected(evt.detail);
      this.#heartbeats.forgetPeer(evt.detail);
      this.metrics.peers.set(connectedPeers(node).length);
    });
    pubsub.addEventListener('subscription-change', () => this.#publisher.scheduleFlush(0));
    await node.start();
    pubsub.subscribe(this.topic);

    const nowMs = this.#now();
    this.#own.startedAtMs = nowMs;
    this.#own.seedClock();
    // Every start gets a higher incarnation than the last, as long as the clock has not gone back past it.
    this.#own.incarnation = this.clock.tick(nowMs).wallMs;
    const binding = signBinding(this.#signer, this.clusterId, this.clusterSetName, nowMs);
    this.#bindings.remember(binding);
    // The rotation goes first, so a peer bound to the previous key follows it before it weighs the new binding.
    if (this.#rotation !== undefined) this.#publisher.queue('\u0000rotation', this.#rotation.proof);
    this.#publisher.queue('\u0000binding', binding.proof);

    this.#membership.start(node);
    this.#heartbeats.start();
    this.#antiEntropy.start();
    this.#housekeeping.start();
    this.#log.info(
      { peerId: node.peerId.toString(), addrs: this.#membership.addrs(), topic: this.topic },
      'gossip node started',
    );
  }

  async stop(): Promise<void> {
    const node = this.#libp2p;
    if (node === undefined) return;
    this.#stopping = true;
    this.#heartbeats.stopBeating();
    this.#antiEntropy.stop();
    this.#housekeeping.stop();
    this.#publisher.stop();
    this.#versions.stop();
    this.#membership.stop();
    this.#heartbeats.stop();
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
    const issued = this.#publisher.setDesired(desired);
    if (this.#libp2p !== undefined) this.#settledness.settle([this.clusterId]);
    return issued;
  }

  /**
   * {@link GossipNode.setLocalExports} for the keys an event touched: `desired` is the whole of what this cluster
   * exports (kept for later reconciles), but only `keys` are compared with what this origin holds, so the cost is
   * that of the keys. Before a first `setLocalExports` it is one.
   */
  updateLocalExports(desired: ReadonlyMap<ServiceKey, ExportedService>, keys: Iterable<ServiceKey>): ExportRecord[] {
    const first = !this.#publisher.hasDesired();
    const issued = this.#publisher.setDesiredKeys(desired, keys);
    if (first && this.#libp2p !== undefined) this.#settledness.settle([this.clusterId]);
    return issued;
  }

  /**
   * Whether this node holds an origin's records as completely as the ClusterSet does: itself once it published its
   * exports from listed caches; another origin once a completed sync with a peer that had settled it left this node
   * with the same digest (or a newer one). Before that, what this node holds of the origin may be partial (nothing
   * after a restart, a few deltas heard on the topic) and must not be read as "the origin exports nothing else".
   */
  isSettled(origin: ClusterId): boolean {
    return this.#settledness.isSettled(origin);
  }

  /**
   * Publishes records this cluster made itself (stamped with {@link GossipNode.clock}): signs them, merges them and
   * queues them for the mesh. Prefer {@link GossipNode.setLocalExports}, which plans and stamps them.
   */
  publishLocal(records: readonly ExportRecord[]): ExportRecord[] {
    return this.#publisher.publishLocal(records);
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
      startedAtMs: this.#own.startedAtMs,
    });
    const alive = new Set(liveness.alive);
    return {
      clusterId: this.clusterId,
      clusterSetName: this.clusterSetName,
      peerId: this.#libp2p?.peerId.toString() ?? '',
      addrs: this.#membership.addrs(),
      peers: this.peers(),
      settled: [...this.#settledness.origins].sort(),
      origins: this.state.digest().map((d) => {
        const hb = this.state.heartbeatOf(d.origin);
        const peerId = this.#bindings.peerIdOf(d.origin);
        const version = this.#versions.softwareOf(d.origin);
        return {
          origin: d.origin,
          ...(peerId === undefined ? {} : { peerId }),
          records: d.count,
          maxVersion: d.maxVersion,
          ...(hb === undefined ? {} : { incarnation: hb.heartbeat.incarnation, heartbeatAgeMs: now - hb.heardAtMs }),
          alive: alive.has(d.origin),
          ...(hb?.heartbeat.left === true ? { left: true } : {}),
          ...(version === undefined ? {} : { version }),
        };
      }),
      version: this.#versions.software,
      wire: { version: WIRE_VERSION, min: MIN_WIRE_VERSION },
      incompatiblePeers: this.#versions.incompatiblePeers(),
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
  syncWith(peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#antiEntropy.syncWith(peer, options);
  }

  /** Typed listener registration; returns a function that removes the listener. */
  on<K extends keyof GossipNodeEvents>(type: K, listener: (evt: GossipNodeEvents[K]) => void): () => void {
    const l = (evt: Event): void => listener(evt as GossipNodeEvents[K]);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
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
    return this.#heartbeats.leave();
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
    return this.#ingest.ingest(envelopes, publisherKey, from, opened);
  }

  /**
   * {@link GossipNode.ingest} for a big batch (a sync RECORDS frame): signatures are checked by the VerifyPool's
   * worker threads while the caller reads the next frame; batches are applied in the order this was called.
   */
  ingestFrame(envelopes: readonly Uint8Array[], from: PeerId): Promise<IngestResult> {
    return this.#ingest.ingestFrame(envelopes, from);
  }
}
