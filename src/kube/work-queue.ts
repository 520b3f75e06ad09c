/**
 * A deduplicating, rate-limited work queue of string keys, in the manner of client-go's workqueue: a key queued
 * many times before it runs runs once; a key is never processed by two workers at once (added while running, it
 * runs again after); failures retry with per-key exponential backoff; starts are limited by a token bucket.
 *
 * Two lanes: keys added by events ({@link WorkQueue.add}) always go first; keys of a periodic resync
 * ({@link WorkQueue.addBackground}) run only while no event key waits, paced by a bucket of their own, so a resync of
 * every key never delays a real change nor spends its tokens.
 */

export interface WorkQueueInit {
  /** Processes one key; a rejection schedules a retry with backoff. */
  readonly process: (key: string) => Promise<void>;
  /** Concurrent workers. Default 4. */
  readonly concurrency?: number;
  /** Keys started per second (token bucket refill). Default 50. */
  readonly qps?: number;
  /** Token bucket size. Default 200. */
  readonly burst?: number;
  /** First retry delay (ms), doubled per consecutive failure of a key. Default 250. */
  readonly retryBaseMs?: number;
  /** Longest retry delay (ms). Default 60 000. */
  readonly retryMaxMs?: number;
  /** Background keys started per second (their own bucket, of size `backgroundQps`). Default 20. */
  readonly backgroundQps?: number;
  /** Called when a key failed (for logs and metrics). */
  readonly onError?: (key: string, err: unknown, attempt: number) => void;
  /** Clock (ms). Default `Date.now`. */
  readonly now?: () => number;
}

export class WorkQueue {
  readonly #init: WorkQueueInit;
  readonly #concurrency: number;
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  /** Keys waiting, in FIFO order (a Set keeps insertion order and deduplicates). */
  readonly #queue = new Set<string>();
  /** Background keys waiting (a resync), run only while `#queue` is empty. */
  readonly #background = new Set<string>();
  readonly #backgroundQps: number;
  #backgroundTokens: number;
  readonly #running = new Set<string>();
  /** Keys added while running: they go back to the queue when their run ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retryTimers = new Map<string, NodeJS.Timeout>();
  readonly #idleWaiters: (() => void)[] = [];
  #tokens: number;
  #lastRefill: number;
  #pumpTimer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(init: WorkQueueInit) {
    this.#init = init;
    this.#concurrency = Math.max(1, init.concurrency ?? 4);
    this.#qps = init.qps ?? 50;
    this.#burst = Math.max(1, init.burst ?? 200);
    this.#now = init.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#backgroundQps = Math.max(1, init.backgroundQps ?? 20);
    this.#backgroundTokens = this.#backgroundQps;
    this.#lastRefill = this.#now();
  }

  start(): void {
    this.#started = true;
    this.#pump();
  }

  /** Stops starting keys and cancels retries; keys running finish. Queued keys stay queued for a later start. */
  stop(): void {
    this.#started = false;
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    for (const t of this.#retryTimers.values()) clearTimeout(t);
    this.#retryTimers.clear();
  }

  isStarted(): boolean {
    return this.#started;
  }

  /** Queues `key` (no-op if already queued; re-queued after its run if running). */
  add(key: string): void {
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#background.delete(key);
    this.#queue.add(key);
    this.#pump();
  }

  /** Queues `key` in the background lane (a resync): it runs when no event key waits; never a duplicate. */
  addBackground(key: string): void {
    if (this.#running.has(key) || this.#queue.has(key) || this.#retryTimers.has(key)) return;
    this.#background.add(key);
    this.#pump();
  }

  /** Keys waiting in the background lane. */
  get backgroundLength(): number {
    return this.#background.size;
  }

  /** Keys waiting (both lanes), running, or waiting for a retry. */
  get length(): number {
    return this.#queue.size + this.#background.size + this.#running.size + this.#retryTimers.size;
  }

  /** Resolves when nothing is queued, running or waiting for a retry. */
  async idle(): Promise<void> {
    if (this.length === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #refill(): void {
    const now = this.#now();
    const seconds = (now - this.#lastRefill) / 1000;
    this.#tokens = Math.min(this.#burst, this.#tokens + seconds * this.#qps);
    this.#backgroundTokens = Math.min(this.#backgroundQps, this.#backgroundTokens + seconds * this.#backgroundQps);
    this.#lastRefill = now;
  }

  #wake(waitMs: number): void {
    if (this.#pumpTimer !== undefined) return;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.#pump();
    }, waitMs);
  }

  #pump(): void {
    if (!this.#started) return;
    this.#refill();
    while (this.#running.size < this.#concurrency && this.#queue.size > 0) {
      if (this.#tokens < 1) {
        this.#wake(Math.ceil(((1 - this.#tokens) / this.#qps) * 1000));
        return;
      }
      const key = this.#queue.values().next().value as string;
      this.#queue.delete(key);
      this.#tokens -= 1;
      this.#run(key);
    }
    // The background lane: only with no event key waiting, and one worker left free for the next event.
    while (
      this.#queue.size === 0 &&
      this.#background.size > 0 &&
      this.#running.size < Math.max(1, this.#concurrency - 1)
    ) {
      if (this.#backgroundTokens < 1) {
        this.#wake(Math.ceil(((1 - this.#backgroundTokens) / this.#backgroundQps) * 1000));
        return;
      }
      const key = this.#background.values().next().value as string;
      this.#background.delete(key);
      if (this.#running.has(key)) continue;
      this.#backgroundTokens -= 1;
      this.#run(key);
    }
    this.#checkIdle();
  }

  #run(key: string): void {
    this.#running.add(key);
    void this.#init
      .process(key)
      .then(
        () => {
          this.#failures.delete(key);
        },
        (err: unknown) => {
          const attempt = (this.#failures.get(key) ?? 0) + 1;
          this.#failures.set(key, attempt);
          this.#init.onError?.(key, err, attempt);
          if (this.#dirty.has(key)) return; // runs again at once anyway
          const base = this.#init.retryBaseMs ?? 250;
          const delay = Math.min(this.#init.retryMaxMs ?? 60_000, base * 2 ** Math.min(attempt - 1, 20));
          const prior = this.#retryTimers.get(key);
          if (prior !== undefined) clearTimeout(prior);
          this.#retryTimers.set(
            key,
            setTimeout(() => {
              this.#retryTimers.delete(key);
              this.add(key);
            }, delay),
          );
        },
      )
      .finally(() => {
        this.#running.delete(key);
        if (this.#dirty.delete(key)) this.#queue.add(key);
        this.#pump();
      });
  }

  #checkIdle(): void {
    if (this.length > 0) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}
