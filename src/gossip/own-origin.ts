// What this origin says about itself besides its records: its run (start time, incarnation) and its floor or leave.
import { compareHlc } from '../core/index.js';
import type { ClusterId, ClusterSetState, Hlc, HlcClock } from '../core/index.js';

export class OwnOrigin {
  /** When this run started (ms, the node's clock); 0 before the first start. */
  startedAtMs = 0;
  /** The heartbeat incarnation: the start time, above every earlier one. */
  incarnation = 0;
  /** This origin's floor, signed into its heartbeats once it collected tombstones (or left). */
  floor: Hlc | undefined;
  left = false;
  /** The next beat goes on the topic signed (the floor rose: every node should learn it soon). */
  signNextBeat = false;

  readonly #clusterId: ClusterId;
  readonly #state: ClusterSetState;
  readonly #clock: HlcClock;

  constructor(clusterId: ClusterId, state: ClusterSetState, clock: HlcClock) {
    this.#clusterId = clusterId;
    this.#state = state;
    this.#clock = clock;
  }

  /** Seeds the clock above what the state holds of this origin (records, heartbeat, floor). */
  seedClock(): void {
    const own = this.#state.digestOf(this.#clusterId);
    if (own !== undefined) this.#clock.seed(own.maxVersion);
    const hb = this.#state.heartbeatOf(this.#clusterId);
    if (hb !== undefined) this.#clock.seed(hb.heartbeat.version);
    // A restarted origin learns its floor back with its old heartbeat: keep signing it.
    const floor = this.#state.floorOf(this.#clusterId);
    if (floor.wallMs > 0 && (this.floor === undefined || compareHlc(floor, this.floor) > 0)) this.floor = floor;
    this.#clock.seed(floor);
  }
}
