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
  readonly wire?: number;
  readonly reason: string;
  /** Why the node refuses it, in the node's words (absent from nodes before 0.2). */
  readonly message?: string;
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
  /** Node pods found but not used (not Running, being deleted, no container port `metrics`), with why. */
  readonly skippedPods?: readonly string[];
  /** Reads that failed (e.g. forbidden): what was not read, so empty data is not taken for "none". */
  readonly readErrors: readonly ReadError[];
}

/** What a failed read was of. */
export type ReadTarget = 'pods' | 'serviceexports' | 'serviceimports' | 'namespaces' | 'clusterid' | 'clusterset';

/** A read of a context that failed: which resource, and the API server's (or the connection's) one-line message. */
export interface ReadError {
  readonly what: ReadTarget;
  /** The resource as people name it: `ServiceExports`, `ClusterProperty cluster.clusterset.k8s.io`. */
  readonly resource: string;
  readonly message: string;
}

/** The resource name for each read target. */
export const READ_RESOURCE: Record<ReadTarget, string> = {
  pods: 'Pods (node pods)',
  serviceexports: 'ServiceExports',
  serviceimports: 'ServiceImports',
  namespaces: 'Namespaces',
  clusterid: 'ClusterProperty cluster.clusterset.k8s.io',
  clusterset: 'ClusterProperty clusterset.k8s.io',
};

/** The read error of `what` in `r`, if that read failed. */
export function readErrorOf(r: ContextReport, what: ReadTarget): ReadError | undefined {
  return r.readErrors.find((e) => e.what === what);
}

/** `ServiceExports unreadable: HTTP 403 Forbidden: …` */
export function formatReadError(e: ReadError): string {
  return `${e.resource} unreadable: ${e.message}`;
}

/** The cluster id a context goes by: its ClusterProperty, else its node's, else the context name. */
export function clusterOf(r: ContextReport): string {
  return r.clusterId ?? r.node?.status?.identity?.clusterId ?? r.context;
}

export function conditionOf(conds: readonly Condition[], type: string): Condition | undefined {
  return conds.find((c) => c.type === type);
}

/** Why a context has no node pod: the pods are unreadable, none is running (and which were skipped), or none. */
export function noNodeReason(r: ContextReport): string {
  const unreadable = readErrorOf(r, 'pods');
  if (unreadable !== undefined) return `node pods unreadable: ${unreadable.message}`;
  if (r.skippedPods !== undefined && r.skippedPods.length > 0)
    return `no running node pod (found ${r.skippedPods.join(', ')})`;
  return 'no node pod found (label app.kubernetes.io/name=mcs-gossip)';
}
