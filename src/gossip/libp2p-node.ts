// The libp2p node of a ClusterSet member: TCP, pnet (the ClusterSet key: no key, no node), Noise, Yamux, identify,
// ping and gossipsub with StrictSign, scored for a small trusted mesh.
import { createHash } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, StrictSign } from '@libp2p/gossipsub';
import type { GossipSub } from '@libp2p/gossipsub';
import { createTopicScoreParams } from '@libp2p/gossipsub/score';
import type { RPC } from '@libp2p/gossipsub/message';
import { identify } from '@libp2p/identify';
import type { Identify } from '@libp2p/identify';
import type { ConnectionGater, Ed25519PrivateKey, Libp2p, PeerId } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import type { TCPSocketOptions } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import type { Registry } from 'prom-client';
import { MAX_TOPIC_MESSAGE_BYTES } from './constants.js';
import { GossipConfigError } from './errors.js';
import { gossipsubMetricsRegister, gossipsubTopicLabels } from './gossipsub-metrics.js';
import { pskKeyBytes } from './keys.js';
import { pnetProtector } from './pnet.js';

// A type alias, not an interface: libp2p's ServiceMap needs an index signature.
export type GossipServices = {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
};

export type GossipLibp2p = Libp2p<GossipServices>;

/** How often libp2p's connection monitor pings each connection (RTT only: a failed ping does not close it). */
export const CONNECTION_PING_INTERVAL_MS = 60_000;

export interface GossipLibp2pInit {
  readonly privateKey: Ed25519PrivateKey;
  /** The ClusterSet key (pnet `/key/swarm/psk/1.0.0/` format). Required. */
  readonly psk: Uint8Array | undefined;
  /** The ClusterSet topic: the only topic this node accepts subscriptions and messages for. */
  readonly topic: string;
  readonly listen: readonly string[];
  readonly announce?: readonly string[];
  readonly connectionGater?: ConnectionGater;
  /**
   * Gossipsub D (mesh degree). Default 4 (Dlo D-1, Dhi D+2): every extra mesh peer is one more copy of every
   * heartbeat, but with Dlo < 3 the mesh falls apart into cycles and deltas stop reaching everyone.
   */
  readonly meshDegree?: number;
  /** The identify agent (`mcs-gossip/<version> wire/<n>`, versioning.ts). Default: libp2p's. */
  readonly userAgent?: string;
  /** Where gossipsub's own metrics go (`gossipsub_*`). Default: none. */
  readonly metricsRegistry?: Registry;
}

/**
 * The peers with an open connection, one entry each. Same answer as `getPeers()`, which re-parses every peer id from
 * its string form on each call (a multibase decode per peer: timers calling it several times a second cost more CPU
 * than the node's whole idle work).
 */
export function connectedPeers(node: Pick<Libp2p, 'getConnections'>): PeerId[] {
  const peers = new Map<string, PeerId>();
  for (const c of node.getConnections()) {
    const key = c.remotePeer.toString();
    if (!peers.has(key)) peers.set(key, c.remotePeer);
  }
  return [...peers.values()];
}

function fastMessageId(msg: RPC.Message): string {
  const h = createHash('sha256');
  for (const part of [msg.from, msg.seqno, msg.signature, msg.data]) {
    h.update(String(part?.length ?? -1));
    if (part !== undefined) h.update(part);
  }
  return h.update(msg.topic).digest('base64');
}

/** Creates (does not start) the libp2p node; throws GossipConfigError without a valid ClusterSet key. */
/**
 * Dials leave from the node's own address when it listens on exactly one specific IPv4 address, so a peer (and a
 * firewall rule) sees one address per node, in and out; with a wildcard or several addresses the kernel picks.
 */
export function dialOptsFor(listen: readonly string[]): TCPSocketOptions {
  const ips = new Set<string>();
  for (const l of listen) {
    const m = /^\/ip4\/(\d{1,3}(?:\.\d{1,3}){3})\/tcp\/\d+$/.exec(l);
    if (m === null) return {};
    ips.add(m[1]!);
  }
  const [only] = ips;
  if (ips.size !== 1 || only === undefined || only === '0.0.0.0') return {};
  // net.connect's localAddress: @libp2p/tcp passes dialOpts through to it (its type names only a subset).
  return { localAddress: only } as TCPSocketOptions;
}

export async function createGossipLibp2p(init: GossipLibp2pInit): Promise<GossipLibp2p> {
  if (init.psk === undefined || init.psk.length === 0) {
    throw new GossipConfigError('a ClusterSet key (pre-shared key) is required: create one with `mcs-gossip psk`');
  }
  const key = pskKeyBytes(init.psk);
  const d = init.meshDegree ?? 4;
  return createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: [...init.listen], announce: [...(init.announce ?? [])] },
    transports: [tcp({ dialOpts: dialOptsFor(init.listen) })],
    connectionProtector: pnetProtector({ key }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(init.connectionGater === undefined ? {} : { connectionGater: init.connectionGater }),
    connectionManager: { maxConnections: 64 },
    ...(init.userAgent === undefined ? {} : { nodeInfo: { userAgent: init.userAgent } }),
    // A busy event loop (a full-state sync, a benchmark) must not make us drop healthy connections, so a failed ping
    // aborts nothing and pings only measure RTT: one a minute is plenty. Each costs ~570 bytes on the wire (a new
    // Yamux stream, multistream-select, 32 bytes each way, through Noise and pnet): at 30 s, pings were a quarter of
    // a node's idle traffic.
    connectionMonitor: { pingInterval: CONNECTION_PING_INTERVAL_MS, abortConnectionOnPingFailure: false },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowedTopics: [init.topic],
        emitSelf: false,
        fallbackToFloodsub: false,
        ...(init.metricsRegistry === undefined
          ? {}
          : {
              metricsRegister: gossipsubMetricsRegister(init.metricsRegistry),
              metricsTopicStrToLabel: gossipsubTopicLabels(init.topic),
            }),
        // The origin sends its own messages to every subscribed peer, not only its mesh peers: one hop fewer, and a
        // delta reaches every mesh component even while the mesh is still forming.
        floodPublish: true,
        doPX: false,
        D: d,
        Dlo: Math.max(1, d - 1),
        Dhi: d + 2,
        Dout: Math.max(0, Math.min(Math.floor(d / 2), d - 2)),
        Dscore: Math.min(d - 1, 2),
        Dlazy: 3,
        heartbeatInterval: 1000,
        // Gossipsub verifies the publisher's signature of every copy before its duplicate check, unless a fast id
        // recognises the copy first. Only validly signed messages enter that cache, so hashing the whole message
        // (signature included) lets no forged copy shadow a genuine one.
        fastMsgIdFn: fastMessageId,
        mcacheGossip: 3,
        gossipFactor: 0.25,
        // The gossip layer enforces its own limits; these bound what gossipsub buffers before our validator runs.
        maxInboundDataLength: MAX_TOPIC_MESSAGE_BYTES + 64 * 1024,
        maxOutboundBufferSize: 32 * 1024 * 1024,
        scoreParams: {
          // All clusters may sit behind one NAT, and tests run every node on 127.0.0.1.
          IPColocationFactorWeight: 0,
          behaviourPenaltyWeight: -1,
          topics: {
            [init.topic]: createTopicScoreParams({
              topicWeight: 1,
              // Low-traffic topic: do not punish peers for not delivering enough.
              timeInMeshWeight: 0,
              firstMessageDeliveriesWeight: 0,
              meshMessageDeliveriesWeight: 0,
              meshFailurePenaltyWeight: 0,
              // One invalid (forged, malformed, replayed) message pushes a peer below the graylist threshold;
              // the penalty decays over about a minute.
              invalidMessageDeliveriesWeight: -100,
              invalidMessageDeliveriesDecay: 0.95,
            }),
          },
        },
        scoreThresholds: {
          gossipThreshold: -10,
          publishThreshold: -50,
          graylistThreshold: -80,
          acceptPXThreshold: 10,
          opportunisticGraftThreshold: 5,
        },
      }),
    },
  });
}
