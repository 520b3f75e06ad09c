/**
 * What `status` and `diagnose` read of each context: the node's `/status` (as the CLI sees it: every field a node
 * of another version may lack is optional), the node pods, the ServiceExports and ServiceImports.
 */

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface OriginView {
  readonly origin: string;
  readonly alive: boolean;
  readonly left?: boolean;
  readonly peerId?: string;
  readonly records?: number;
  readonly heartbeatAgeMs?: number;
  /** The version the cluster announces (absent for nodes older than 0.2). */
  readonly version?: string;
}

export interface IncompatiblePeer {
  readonly peerId: string;
  readonly clusterId?: string;
  readonly version?: string;
  readonly reason: string;
}

/** GET /status of a node, every field optional but readiness (nodes of other versions report more or less). */
export interface NodeStatusView {
  readonly readiness: { readonly ready: boolean; readonly reason: string };
  readonly identity?: { readonly clusterId: string; readonly clusterSetName: string };
  readonly leader?: boolean;
  readonly version?: string;
  readonly wire?: { readonly version: number; readonly min: number };
  readonly gossip?: {
    readonly clusterId?: string;
    readonly clusterSetName?: string;
    readonly peerId?: string;
    readonly addrs?: readonly string[];
    readonly peers?: readonly { readonly peerId: string }[];
    readonly origins?: readonly OriginView[];
  };
  readonly incompatiblePeers?: readonly IncompatiblePeer[];
  readonly config?: { readonly endpointTtlMs?: number; readonly heartbeatIntervalMs?: number };
  readonly withdrawnOrigins?: readonly string[];
}

/** One node pod and what its `/status` gave through the API server's pod proxy. */
export interface NodeProbe {
  readonly namespace: string;
  readonly pod: string;
  readonly port?: number;
  readonly podIP?: string;
  /** The `run` args of the pod's container (for `--endpoint-ttl`, `--heartbeat-interval`). */
  readonly args: readonly string[];
  readonly status?: NodeStatusView;
  /** Why `/status` could not be read. */
  readonly error?: string;
}

export interface ExportView {
  readonly namespace: string;
  readonly name: string;
  readonly conditions: readonly Condition[];
}

export interface ImportView {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly ips: readonly string[];
  /** `name:port/PROTOCOL`, sorted. */
  readonly ports: readonly string[];
  /** Source clusters (status.clusters), sorted. */
  readonly clusters: readonly string[];
  readonly conditions: readonly Condition[];
}

/** Everything read of one context. */
export interface ContextReport {
  readonly context: string;
  /** From the ClusterProperties (undefined when absent or unreadable). */
  readonly clusterId?: string;
  readonly clusterSetName?: string;
  /** The API server could not be read at all. */
  readonly apiError?: string;
  /** Every node pod found, each probed. */
  readonly pods: readonly NodeProbe[];
  /** The pod whose status counts: the leader's, else the first that answered, else the first. */
  readonly node?: NodeProbe;
  readonly exports: readonly ExportView[];
  readonly imports: readonly ImportView[];
  /** Namespaces of the cluster (undefined when they could not be listed). */
  readonly namespaces?: readonly string[];
  /** Lists that failed (e.g. forbidden), one line each. */
  readonly readErrors: readonly string[];
}

/** The cluster id a context goes by: its ClusterProperty, else its node's, else the context name. */
export function clusterOf(r: ContextReport): string {
  return r.clusterId ?? r.node?.status?.identity?.clusterId ?? r.context;
}

export function conditionOf(conds: readonly Condition[], type: string): Condition | undefined {
  return conds.find((c) => c.type === type);
}
