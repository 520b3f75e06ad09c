/**
 * The composition root: one cluster's mcs-gossip node, wiring the Kubernetes adapter (src/kube) and the gossip layer
 * (src/gossip) through the pure core (src/core), plus its HTTP endpoint for metrics and probes.
 *
 * @example
 * ```ts
 * import * as k8s from '@kubernetes/client-node';
 * import { loadIdentityKey, loadPsk } from '../gossip/index.js';
 * import { createMcsNode, HealthServer } from './node/index.js';
 *
 * const kubeConfig = new k8s.KubeConfig();
 * kubeConfig.loadFromDefault();
 * const node = createMcsNode({
 *   kubeConfig,
 *   privateKey: await loadIdentityKey('/etc/mcs-gossip/identity.key'),
 *   psk: await loadPsk('/etc/mcs-gossip/clusterset.key'),
 *   listen: ['/ip4/0.0.0.0/tcp/7946'],
 * });
 * const health = new HealthServer({ host: '0.0.0.0', port: 8080, metrics: () => node.metrics(),
 *   readiness: () => node.readiness(), status: () => node.status() });
 * await health.start();
 * await node.start();
 * process.once('SIGTERM', () => void node.stop().then(() => health.stop()));
 * ```
 */
import { McsNode, type McsNodeInit } from './mcs-node.js';

export type { McsNodeInit, NodeReadiness, NodeStatus } from './mcs-node.js';
export { McsNode } from './mcs-node.js';
export type { HealthServerInit } from './health-server.js';
export { HealthServer } from './health-server.js';

/** Creates (does not start) the node of one cluster. */
export function createMcsNode(init: McsNodeInit): McsNode {
  return new McsNode(init);
}
