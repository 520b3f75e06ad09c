// The events a GossipNode dispatches: its parts emit them through the shared context (context.ts).
import type { ClusterId, ExportRecord } from '../core/index.js';

/** Emitted when records of other clusters were applied to the state. */
export interface StateChangeDetail {
  readonly records: readonly ExportRecord[];
}

/** Emitted when a newer heartbeat of another cluster arrived. */
export interface HeartbeatDetail {
  readonly origin: ClusterId;
  readonly incarnation: number;
}

/** Emitted when origins became settled (see {@link GossipNode.isSettled}). */
export interface SettledDetail {
  readonly origins: readonly ClusterId[];
}

export interface GossipNodeEvents {
  'state:change': CustomEvent<StateChangeDetail>;
  settled: CustomEvent<SettledDetail>;
  heartbeat: CustomEvent<HeartbeatDetail>;
}
