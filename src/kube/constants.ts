/** Names, groups and defaults of the Kubernetes adapter. */
import { MANAGED_BY } from '../core/index.js';

export const CLUSTER_ID_PROPERTY = 'cluster.clusterset.k8s.io';
export const CLUSTERSET_PROPERTY = 'clusterset.k8s.io';
/** Our own ClusterProperty suffix (`.k8s.io` names are reserved for the KEP's properties). */
export const PROPERTY_SUFFIX = 'mcs-gossip.x-k8s.io';
/** ClusterProperty an operator sets to a comma/space-separated list of bootstrap multiaddrs. */
export const BOOTSTRAP_PROPERTY = `bootstrap.${PROPERTY_SUFFIX}`;
/** ClusterProperty the node writes: `<PeerId> <announce multiaddr>…`, to paste into other clusters' bootstrap lists. */
export const PEER_PROPERTY = `peer.${PROPERTY_SUFFIX}`;
/**
 * Annotation the node puts on the peer ClusterProperty once it has left a ClusterSet: `<ClusterSet> <RFC 3339 time>`,
 * followed by ` undelivered` when no peer could be told.
 */
export const LEFT_ANNOTATION = `${PROPERTY_SUFFIX}/left`;

export const ABOUT_GROUP = 'about.k8s.io';
export const ABOUT_VERSION = 'v1beta1';
export const MCS_GROUP = 'multicluster.x-k8s.io';
export const MCS_VERSION = 'v1beta1';

/** Label on every object the node creates that has no label of its own in the MCS API (derived Services). */
export const LABEL_OWNED_BY = 'app.kubernetes.io/managed-by';
export const OWNED_BY = MANAGED_BY;

/** Field manager / user agent of every write, so an operator can tell our writes apart in the audit log. */
export const FIELD_MANAGER = 'mcs-gossip';
/** Source of the Events the node emits. */
export const EVENT_COMPONENT = 'mcs-gossip';

export const DEFAULT_LEASE_NAME = 'mcs-gossip';
export const DEFAULT_LEASE_DURATION_MS = 15_000;
/** client-go's defaults: a leader that could not renew for 10 s steps down, 5 s before anyone may take over. */
export const DEFAULT_LEASE_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_LEASE_RETRY_MS = 2_000;

/** Reconciles per second the work queue starts at most (burst allowed), and per-key retry backoff. */
export const DEFAULT_QUEUE_QPS = 50;
export const DEFAULT_QUEUE_BURST = 200;
export const DEFAULT_RETRY_BASE_MS = 250;
export const DEFAULT_RETRY_MAX_MS = 60_000;
/** Informer restart backoff after a failed list or watch. */
export const INFORMER_BACKOFF_BASE_MS = 500;
export const INFORMER_BACKOFF_MAX_MS = 30_000;
/** Every key is re-checked this often even without events (a no-op when nothing differs). */
export const DEFAULT_RESYNC_MS = 5 * 60_000;
