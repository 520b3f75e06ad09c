// What the parts of a GossipNode share: who this node is, the state it merges into, and the node's services.
import type { Logger } from 'pino';
import type { ClusterId, ClusterSetState, HlcClock } from '../core/index.js';
import type { BindingRegistry } from './bindings.js';
import type { GossipNodeEvents } from './events.js';
import type { GossipLibp2p } from './libp2p-node.js';
import type { GossipMetrics } from './metrics.js';
import type { OwnOrigin } from './own-origin.js';

export interface GossipContext {
  readonly clusterId: ClusterId;
  readonly clusterSetName: string;
  readonly topic: string;
  readonly state: ClusterSetState;
  readonly bindings: BindingRegistry;
  readonly metrics: GossipMetrics;
  readonly log: Logger;
  /** Wall clock (ms). */
  readonly now: () => number;
  /** This origin's clock: seeded above every own record learned back from peers. */
  readonly clock: HlcClock;
  readonly own: OwnOrigin;
  /** The libp2p node while started; undefined before start and after stop. */
  readonly libp2p: () => GossipLibp2p | undefined;
  /** Whether the node is stopping (or stopped): nothing new is scheduled. */
  readonly stopping: () => boolean;
  /** Dispatches one of the GossipNode's events. */
  readonly emit: <K extends keyof GossipNodeEvents>(type: K, detail: GossipNodeEvents[K]['detail']) => void;
}
