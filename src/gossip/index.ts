/**
 * The gossip adapter: a cluster's member of the ClusterSet libp2p mesh. It publishes this cluster's export records as
 * signed deltas on the ClusterSet topic, relays heartbeats, repairs differences with anti-entropy on
 * `/mcs-gossip/sync/1.0.0`, and merges every verified record into the core's ClusterSetState.
 *
 * @example
 * ```ts
 * import { ClusterSetState } from '../core/index.js';
 * import { createGossipNode, loadIdentityKey, loadPsk } from './gossip/index.js';
 *
 * const state = new ClusterSetState();
 * const node = createGossipNode({
 *   clusterId: 'east',
 *   clusterSetName: 'prod',
 *   privateKey: await loadIdentityKey('/etc/mcs-gossip/identity.key'),
 *   psk: await loadPsk('/etc/mcs-gossip/clusterset.key'),
 *   listen: ['/ip4/0.0.0.0/tcp/7946'],
 *   bootstrap: ['west=/dns4/west.example.com/tcp/7946/p2p/12D3KooW…'],
 *   state,
 * });
 * node.on('state:change', () => queueResolve());
 * await node.start();
 * node.setLocalExports(desired); // whenever local ServiceExports change
 * ```
 */
import { GossipNode } from './gossip-node.js';
import type { GossipNodeInit } from './gossip-node.js';

export type {
  BootstrapEntry,
  GossipNodeEvents,
  GossipNodeInit,
  GossipStatus,
  HeartbeatDetail,
  IncompatiblePeer,
  OriginStatus,
  PeerStatus,
  StateChangeDetail,
} from './gossip-node.js';
export { GossipNode, parseBootstrapEntry } from './gossip-node.js';
export {
  BindingConflictError,
  GossipConfigError,
  InvalidMessageError,
  InvalidSignatureError,
  NotStartedError,
  RateLimitedError,
} from './errors.js';
export {
  encodeIdentityKey,
  generateIdentityKey,
  generatePsk,
  loadIdentityKey,
  loadPsk,
  parseIdentityKey,
  parsePsk,
  writeSecretFile,
} from './keys.js';
export { createGossipLibp2p } from './libp2p-node.js';
export type { GossipLibp2p, GossipLibp2pInit, GossipServices } from './libp2p-node.js';
export { GossipMetrics } from './metrics.js';
export { MemoryCluster, syntheticService } from './memory-cluster.js';
export type { LocalExportSink } from './memory-cluster.js';
export { DEFAULT_HEARTBEAT_INTERVAL_MS, MIN_WIRE_VERSION, SYNC_PROTOCOL, WIRE_VERSION, topicFor } from './constants.js';
export { agentVersion, compatibility, parseAgentVersion, UNANNOUNCED_VERSION } from './versioning.js';
export type { Compatibility, PeerVersion } from './versioning.js';

/** Creates (does not start) the gossip node of one cluster. Throws GossipConfigError on unusable configuration. */
export function createGossipNode(init: GossipNodeInit): GossipNode {
  return new GossipNode(init);
}
