import type { Hlc } from './hlc.js';
import type { ClusterId } from './ids.js';

/** The liveness beacon of an origin; relayed like records, so an origin heard through any peer stays alive. */
export interface OriginHeartbeat {
  readonly origin: ClusterId;
  /** Increases on every start of the origin (e.g. the start stamp's `wallMs`, or a persisted counter). */
  readonly incarnation: number;
  readonly version: Hlc;
  /** Opaque, as `ExportRecord.proof`. */
  readonly proof?: Uint8Array;
}
