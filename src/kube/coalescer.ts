/**
 * Runs a function soon after it is asked for, and at most once per interval: the first request of a quiet period
 * runs in the next turn of the event loop (events read together run together, with no fixed delay added), later
 * ones wait until `minIntervalMs` after the last run, however many arrive meanwhile. A leading-edge throttle, where a
 * debounce would add its whole delay to every isolated change.
 */
export class Coalescer {
  readonly #run: () => void;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #last = Number.NEGATIVE_INFINITY;

  constructor(run: () => void, minIntervalMs: number, now: () => number = () => performance.now()) {
    this.#run = run;
    this.#minIntervalMs = Math.max(0, minIntervalMs);
    this.#now = now;
  }

  /** Asks for a run (a no-op while one is scheduled). */
  schedule(): void {
    if (this.#timer !== undefined) return;
    // Rounded up: timers count whole milliseconds and would fire up to one early.
    const wait = Math.max(0, Math.ceil(this.#last + this.#minIntervalMs - this.#now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = this.#now();
      this.#run();
    }, wait);
  }

  /** Whether a run is scheduled. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /** Drops a scheduled run. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
