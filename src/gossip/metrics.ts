// Prometheus metrics of the gossip layer, registered on the Registry the composition root passes in (never the
// global one, so several nodes can live in one process).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What gossipsub itself says of the ClusterSet topic's mesh (read at scrape time). */
export interface MeshStats {
  /** Peers in this node's gossipsub mesh of the topic. */
  readonly meshPeers: number;
  /** Peers known to subscribe to the topic. */
  readonly subscribers: number;
  /** Peers gossipsub holds a stream with, whatever their topics. */
  readonly pubsubPeers: number;
}

export class GossipMetrics {
  /** Envelopes received, by kind (record, heartbeat, binding) and result (accepted, stale, replay, invalid, …). */
  readonly envelopes: Counter<'kind' | 'result'>;
  /** Topic messages received, by validation result (accept, ignore, reject). */
  readonly topicMessages: Counter<'result'>;
  readonly bindingConflicts: Counter<'cluster_id'>;
  readonly replays: Counter;
  /** Origins forgotten after being unheard past the horizon. */
  readonly forgottenOrigins: Counter;
  /** Topic messages that failed inside ingest (a bug of ours): ignored, the relay not scored down. */
  readonly ingestErrors: Counter;
  readonly published: Counter<'kind'>;
  readonly publishedBytes: Counter;
  readonly syncSessions: Counter<'role' | 'result'>;
  readonly syncBytes: Counter<'direction'>;
  /** Client sessions begun with a summary, by whether the server's was the same (`same`) or asked for digests. */
  readonly syncSummaries: Counter<'result'>;
  readonly syncDuration: Histogram<'role'>;
  readonly syncRateLimited: Counter;
  /** Liveness frames, by direction (in, out, invalid, rate_limited), and their bytes (in, out). */
  readonly livenessFrames: Counter<'direction'>;
  readonly livenessBytes: Counter<'direction'>;
  readonly dials: Counter<'result'>;
  readonly peers: Gauge;
  readonly records: Gauge;
  /** Origins held as completely as the ClusterSet does (GossipNode.isSettled). */
  readonly settledOrigins: Gauge;
  /** Peers refused for their version (docs/upgrades.md), by reason (WireVersion, SoftwareVersion). */
  readonly incompatiblePeers: Gauge<'reason'>;
  #mesh: () => MeshStats | undefined = () => undefined;
  /** Plain running totals of sync frame bytes, cheap to read (benchmarks, status). */
  syncBytesIn = 0;
  syncBytesOut = 0;
  /** Bytes of the signed envelopes (records, heartbeats, bindings) received in sync RECORDS frames. */
  syncEnvelopeBytesIn = 0;
  syncEnvelopesIn = 0;
  /** Bytes of the record envelopes alone received by sync (what a repair really transferred). */
  syncRecordBytesIn = 0;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.settledOrigins = new Gauge({
      name: 'mcs_gossip_settled_origins',
      help: 'Clusters whose records this node holds as completely as the ClusterSet does since it started',
      registers,
    });
    this.incompatiblePeers = new Gauge({
      name: 'mcs_gossip_incompatible_peers',
      help: 'Peers refused because their version is incompatible with this node (docs/upgrades.md), by reason',
      labelNames: ['reason'],
      registers,
    });
    this.envelopes = new Counter({
      name: 'mcs_gossip_envelopes_received_total',
      help: 'Signed envelopes received, by kind and result',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.topicMessages = new Counter({
      name: 'mcs_gossip_topic_messages_total',
      help: 'ClusterSet topic messages validated, by result',
      labelNames: ['result'],
      registers,
    });
    this.bindingConflicts = new Counter({
      name: 'mcs_gossip_binding_conflicts_total',
      help: 'Claims of a bound cluster id by another PeerId, refused',
      labelNames: ['cluster_id'],
      registers,
    });
    this.forgottenOrigins = new Counter({
      name: 'mcs_gossip_forgotten_origins_total',
      help: 'Clusters forgotten with their imports after being unheard past the origin horizon',
      registers,
    });
    this.ingestErrors = new Counter({
      name: 'mcs_gossip_ingest_errors_total',
      help: 'Topic messages whose processing failed with an internal error (ignored, sender not penalised)',
      registers,
    });
    this.replays = new Counter({
      name: 'mcs_gossip_replays_total',
      help: 'Records or heartbeats older than the held version by more than the replay window',
      registers,
    });
    this.published = new Counter({
      name: 'mcs_gossip_published_messages_total',
      help: 'Messages published on the ClusterSet topic, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.publishedBytes = new Counter({
      name: 'mcs_gossip_published_bytes_total',
      help: 'Bytes published on the ClusterSet topic',
      registers,
    });
    this.syncSessions = new Counter({
      name: 'mcs_gossip_sync_sessions_total',
      help: 'Anti-entropy sessions, by role (client, server) and result',
      labelNames: ['role', 'result'],
      registers,
    });
    this.syncBytes = new Counter({
      name: 'mcs_gossip_sync_bytes_total',
      help: 'Anti-entropy frame bytes, by direction (in, out)',
      labelNames: ['direction'],
      registers,
    });
    this.syncSummaries = new Counter({
      name: 'mcs_gossip_sync_summaries_total',
      help: 'Client sync sessions begun with the summary of its digests, by result (same: done at once; differ: digests sent after)',
      labelNames: ['result'],
      registers,
    });
    this.syncDuration = new Histogram({
      name: 'mcs_gossip_sync_duration_seconds',
      help: 'Duration of anti-entropy sessions',
      labelNames: ['role'],
      buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 30],
      registers,
    });
    this.syncRateLimited = new Counter({
      name: 'mcs_gossip_sync_rate_limited_total',
      help: 'Sync requests refused because the peer exceeded its rate',
      registers,
    });
    this.livenessFrames = new Counter({
      name: 'mcs_gossip_liveness_frames_total',
      help: 'Liveness frames, by direction (in, out) or refusal (invalid, rate_limited)',
      labelNames: ['direction'],
      registers,
    });
    this.livenessBytes = new Counter({
      name: 'mcs_gossip_liveness_bytes_total',
      help: 'Liveness frame bytes, by direction (in, out)',
      labelNames: ['direction'],
      registers,
    });
    this.dials = new Counter({
      name: 'mcs_gossip_dials_total',
      help: 'Redial attempts, by result',
      labelNames: ['result'],
      registers,
    });
    this.peers = new Gauge({ name: 'mcs_gossip_connected_peers', help: 'Connected peers', registers });
    this.records = new Gauge({ name: 'mcs_gossip_records', help: 'Records held, tombstones included', registers });
    // Besides gossipsub's own `gossipsub_*` series (gossipsub-metrics.ts), these few are read from the gossipsub
    // instance when scraped, under our names (dashboards and tests rely on them).
    const mesh = (name: string, help: string, value: (m: MeshStats) => number) => {
      const read = () => this.#mesh();
      return new Gauge({
        name,
        help,
        registers,
        collect() {
          const m = read();
          this.set(m === undefined ? 0 : value(m));
        },
      });
    };
    mesh('mcs_gossip_mesh_peers', "Peers in this node's gossipsub mesh of the ClusterSet topic", (m) => m.meshPeers);
    mesh('mcs_gossip_topic_subscribers', 'Peers known to subscribe to the ClusterSet topic', (m) => m.subscribers);
    mesh('mcs_gossip_pubsub_peers', 'Peers gossipsub holds a stream with', (m) => m.pubsubPeers);
  }

  /** Where the mesh gauges read gossipsub's state (the gossip node sets it; 0 while it is not started). */
  readMesh(read: () => MeshStats | undefined): void {
    this.#mesh = read;
  }
}
