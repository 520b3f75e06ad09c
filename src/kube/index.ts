/**
 * The Kubernetes adapter: turns this cluster's ServiceExports (with their Services and EndpointSlices) into the core's
 * local exports, and writes the core's resolution into the cluster — ServiceImports, derived Services (the
 * ClusterSetIP), imported EndpointSlices, ServiceExport conditions and Events — writing only real differences.
 * It reads its identity from the ClusterProperties and, with several replicas, elects one writer with a Lease.
 * It never imports the gossip layer: the composition root (src/node) wires the two.
 *
 * @example
 * ```ts
 * import * as k8s from '@kubernetes/client-node';
 * import { ClusterSetState, resolve } from '../core/index.js';
 * import { createKubeAdapter } from './kube/index.js';
 *
 * const kubeConfig = new k8s.KubeConfig();
 * kubeConfig.loadFromDefault();
 * const kube = createKubeAdapter({ kubeConfig });
 * const state = new ClusterSetState();
 * kube.on('local:change', () => {
 *   const local = kube.localExports(); // undefined while the identity is missing or invalid
 *   const id = kube.identity();
 *   if (local === undefined || !id.ok) return;
 *   // publish local.desired (gossip), merge what peers publish into `state`, then:
 *   kube.apply(resolve(state, { localCluster: id.identity.clusterId, namespaces: kube.namespaces(), localExports: local.exports }));
 * });
 * await kube.start();
 * ```
 */
import { KubeAdapter, type KubeAdapterInit } from './kube-adapter.js';

export type {
  KubeAdapterEvents,
  KubeAdapterInit,
  KubeReadiness,
  LeaderElectionInit,
  LocalChangeDetail,
  RefusedKey,
} from './kube-adapter.js';
export { KubeAdapter } from './kube-adapter.js';
export { Coalescer } from './coalescer.js';
export type { ClusterIdentity, IdentityProblem, IdentityStatus } from './identity.js';
export { formatPeerProperty, isDnsLabel, parseBootstrapProperty, validateIdentity } from './identity.js';
export { KubeMetrics } from './metrics.js';
export { LeaderElector } from './leader-election.js';
export type { LeaderElectorInit } from './leader-election.js';
export { WorkQueue } from './work-queue.js';
export type { WorkQueueInit } from './work-queue.js';
export {
  BOOTSTRAP_PROPERTY,
  CLUSTER_ID_PROPERTY,
  CLUSTERSET_PROPERTY,
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_NAME,
  DEFAULT_LEASE_RENEW_DEADLINE_MS,
  DEFAULT_LEASE_RETRY_MS,
  FIELD_MANAGER,
  LABEL_OWNED_BY,
  OWNED_BY,
  PEER_PROPERTY,
} from './constants.js';
export type { ClusterProperty, ServiceExport, ServiceImport } from './objects.js';

/** Creates (does not start) the Kubernetes adapter of one cluster. */
export function createKubeAdapter(init: KubeAdapterInit): KubeAdapter {
  return new KubeAdapter(init);
}
