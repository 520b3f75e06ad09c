// Prometheus metrics of the Kubernetes adapter, on the Registry the composition root passes in (never the global one).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class KubeMetrics {
  /** 1 while the ClusterProperties give a valid identity. */
  readonly identityReady: Gauge;
  /** Times the identity was found missing or invalid, by reason. */
  readonly identityProblems: Counter<'reason'>;
  /** API writes, by resource, verb and result (ok, conflict, notfound, error). */
  readonly apiWrites: Counter<'resource' | 'verb' | 'result'>;
  readonly apiWriteDuration: Histogram<'resource' | 'verb'>;
  /** Reconciles of a service key, by result. */
  readonly reconciles: Counter<'result'>;
  readonly reconcileDuration: Histogram;
  /** Keys queued, running or waiting for a retry. */
  readonly queueDepth: Gauge;
  /** Failed list/watch attempts by resource. */
  readonly informerErrors: Counter<'resource'>;
  /** 1 while this replica holds the Lease (or runs without leader election). */
  readonly leader: Gauge;
  /** Service keys left as they are in the cluster until the origins their objects name have synced. */
  readonly heldKeys: Gauge;
  /** Service keys whose last reconcile the API server refused (4xx): retried on a change, a resync or backoff. */
  readonly refusedKeys: Gauge;
  /** Live export records held that importers could not write, so resolution skips them, by origin. */
  readonly unimportableRecords: Gauge<'origin'>;
  /** Exported services not imported because their namespace does not exist in this cluster. */
  readonly namespaceMissing: Gauge;
  /**
   * New derived Services by how their ClusterSetIP was chosen: `planned` (the node's pick, taken), `refused` (the
   * node's pick refused, the API server's instead), `api` (no pick: service ranges unknown or no free address).
   */
  readonly clusterIpPicks: Counter<'result'>;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.identityReady = new Gauge({
      name: 'mcs_gossip_identity_ready',
      help: '1 while the ClusterProperties give this cluster a valid identity',
      registers,
    });
    this.identityProblems = new Counter({
      name: 'mcs_gossip_identity_problems_total',
      help: 'Times the cluster identity was found missing or invalid, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.apiWrites = new Counter({
      name: 'mcs_gossip_kube_api_writes_total',
      help: 'Kubernetes API writes, by resource, verb and result',
      labelNames: ['resource', 'verb', 'result'],
      registers,
    });
    this.apiWriteDuration = new Histogram({
      name: 'mcs_gossip_kube_api_write_duration_seconds',
      help: 'Latency of Kubernetes API writes',
      labelNames: ['resource', 'verb'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.reconciles = new Counter({
      name: 'mcs_gossip_reconciles_total',
      help: 'Reconciles of a service key, by result',
      labelNames: ['result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'mcs_gossip_reconcile_duration_seconds',
      help: 'Duration of one reconcile of a service key',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'mcs_gossip_reconcile_queue_depth',
      help: 'Service keys queued, running or waiting for a retry',
      registers,
    });
    this.informerErrors = new Counter({
      name: 'mcs_gossip_kube_informer_errors_total',
      help: 'Failed list or watch attempts, by resource',
      labelNames: ['resource'],
      registers,
    });
    this.heldKeys = new Gauge({
      name: 'mcs_gossip_held_keys',
      help: 'Service keys whose imports are kept as they are until the source clusters they name have synced',
      registers,
    });
    this.refusedKeys = new Gauge({
      name: 'mcs_gossip_refused_keys',
      help: 'Service keys whose last reconcile the Kubernetes API refused (4xx); retried on a change, a resync or backoff',
      registers,
    });
    this.unimportableRecords = new Gauge({
      name: 'mcs_gossip_unimportable_records',
      help: 'Live export records that fail the importers API validation and are skipped by resolution, by origin',
      labelNames: ['origin'],
      registers,
    });
    this.namespaceMissing = new Gauge({
      name: 'mcs_gossip_imports_namespace_missing',
      help: 'Exported services this cluster does not import because their namespace does not exist here',
      registers,
    });
    this.clusterIpPicks = new Counter({
      name: 'mcs_gossip_cluster_ip_picks_total',
      help: 'New derived Services by how their ClusterSetIP was chosen: planned by the node, refused, or by the API server',
      labelNames: ['result'],
      registers,
    });
    this.leader = new Gauge({
      name: 'mcs_gossip_leader',
      help: '1 while this replica is the leader that gossips and writes',
      registers,
    });
  }
}
