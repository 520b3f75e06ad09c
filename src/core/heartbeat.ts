import type { Hlc } from './hlc.js';
import type { ClusterId } from './ids.js';

/** The liveness beacon of an origin; relayed like records, so an origin heard through any peer stays alive. */
export interface OriginHeartbeat {
  readonly origin: ClusterId;
  /** Increases on every start of the origin (e.g. the start stamp's `wallMs`, or a persisted counter). */
  readonly incarnation: number;
  readonly version: Hlc;
  /**
   * The origin's floor: it holds no record below this version any more (its tombstones below were collected, its live
   * records re-issued above it well before), so every node drops the origin's records below it and refuses such
   * records from then on. A stale peer can therefore never bring a collected removal back. Absent: none.
   */
  readonly floor?: Hlc;
  /** The origin left the ClusterSet: its floor is above all its records, so all of them go everywhere. */
  readonly left?: boolean;
  /** Opaque, as `ExportRecord.proof`. */
  readonly proof?: Uint8Array;
}
