/**
 * Hybrid logical clock stamps: the version of every export record and heartbeat.
 *
 * A stamp is close to wall time (so operators can read it) but never goes backwards for one origin, even when the
 * machine clock does, and it orders causally: a stamp issued after observing another is greater than it.
 * Monotonicity across restarts comes from {@link HlcClock.seed}: a restarting origin seeds its clock from the highest
 * stamp it ever issued (a persisted floor, or its own records learned back from peers by anti-entropy) before it
 * issues anything new, so its new records always supersede the old ones everywhere.
 */
export interface Hlc {
  /** Milliseconds since the Unix epoch: the largest wall time seen when the stamp was issued. */
  readonly wallMs: number;
  /** Counter that orders stamps issued within the same `wallMs`. */
  readonly logical: number;
}

/** The stamp below every issued stamp. */
export const ZERO_HLC: Hlc = Object.freeze({ wallMs: 0, logical: 0 });

/** Total order on stamps: by wall time, then logical counter. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wallMs - b.wallMs || a.logical - b.logical;
}

/** The greater of two stamps. */
export function maxHlc(a: Hlc, b: Hlc): Hlc {
  return compareHlc(a, b) >= 0 ? a : b;
}

/** A stamp made of two non-negative safe integers; anything else is rejected before it can touch state. */
export function isValidHlc(v: Hlc): boolean {
  return Number.isSafeInteger(v.wallMs) && v.wallMs >= 0 && Number.isSafeInteger(v.logical) && v.logical >= 0;
}

/** `wallMs.logical`, for logs and messages. */
export function formatHlc(v: Hlc): string {
  return `${v.wallMs}.${v.logical}`;
}

/**
 * The clock of one origin. Pure: wall time is passed in by the caller, so tests drive it explicitly and the clock
 * can be replayed.
 */
export class HlcClock {
  #last: Hlc;

  /** @param floor the highest stamp this origin is known to have issued before (default: none). */
  constructor(floor: Hlc = ZERO_HLC) {
    this.#last = floor;
  }

  /** The last stamp issued or observed. */
  get last(): Hlc {
    return this.#last;
  }

  /** Raises the floor: every later stamp is greater than `floor`. Used on start and when peers hand back our records. */
  seed(floor: Hlc): void {
    this.#last = maxHlc(this.#last, floor);
  }

  /** A new stamp for a local event, strictly greater than every stamp issued, observed or seeded so far. */
  tick(nowMs: number): Hlc {
    const last = this.#last;
    this.#last =
      nowMs > last.wallMs ? { wallMs: nowMs, logical: 0 } : { wallMs: last.wallMs, logical: last.logical + 1 };
    return this.#last;
  }

  /** Folds in a stamp received from a peer and returns a new local stamp greater than both. */
  observe(remote: Hlc, nowMs: number): Hlc {
    const last = this.#last;
    const wallMs = Math.max(nowMs, last.wallMs, remote.wallMs);
    let logical = 0;
    if (wallMs === last.wallMs && wallMs === remote.wallMs) logical = Math.max(last.logical, remote.logical) + 1;
    else if (wallMs === last.wallMs) logical = last.logical + 1;
    else if (wallMs === remote.wallMs) logical = remote.logical + 1;
    this.#last = { wallMs, logical };
    return this.#last;
  }
}
