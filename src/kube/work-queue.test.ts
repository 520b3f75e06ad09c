import { describe, expect, it } from 'vitest';
import { WorkQueue } from './work-queue.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('deduplicates keys queued before they run', async () => {
    const runs: string[] = [];
    const q = new WorkQueue({ process: async (k) => void runs.push(k) });
    q.add('a');
    q.add('b');
    q.add('a');
    q.start();
    await q.idle();
    expect(runs).toEqual(['a', 'b']);
  });

  it('never runs one key twice at once, and reruns a key added while running', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue({
      concurrency: 4,
      process: async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(20);
        running--;
      },
    });
    q.start();
    q.add('k');
    await sleep(5);
    q.add('k');
    q.add('k');
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('retries failures with backoff until they succeed', async () => {
    let attempts = 0;
    const errors: number[] = [];
    const q = new WorkQueue({
      retryBaseMs: 5,
      process: async () => {
        attempts++;
        if (attempts < 3) throw new Error('boom');
      },
      onError: (_k, _e, attempt) => errors.push(attempt),
    });
    q.start();
    q.add('k');
    await q.idle();
    expect(attempts).toBe(3);
    expect(errors).toEqual([1, 2]);
  });

  it('limits the start rate with a token bucket', async () => {
    const q = new WorkQueue({ qps: 100, burst: 2, process: async () => {} });
    const t0 = Date.now();
    q.start();
    for (let i = 0; i < 6; i++) q.add(`k${i}`);
    await q.idle();
    // 2 from the burst, then 4 more at 100/s: at least ~40 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
  });

  it('runs nothing until started, and nothing after stop', async () => {
    const runs: string[] = [];
    const q = new WorkQueue({ process: async (k) => void runs.push(k) });
    q.add('a');
    await sleep(10);
    expect(runs).toEqual([]);
    q.start();
    await q.idle();
    q.stop();
    q.add('b');
    await sleep(10);
    expect(runs).toEqual(['a']);
  });

  it('runs event keys before background (resync) keys, and never spends event tokens on a resync', async () => {
    const runs: string[] = [];
    const q = new WorkQueue({
      concurrency: 2,
      qps: 1000,
      burst: 1000,
      backgroundQps: 20,
      process: async (k) => {
        runs.push(k);
        await sleep(1);
      },
    });
    for (let i = 0; i < 40; i++) q.addBackground(`bg-${i}`);
    q.start();
    await sleep(30);
    const before = runs.length;
    q.add('event');
    q.addBackground('event'); // already queued as an event: stays an event
    // The event starts at once (the background lane leaves a worker free), ahead of the resync keys still waiting.
    expect(runs[before]).toBe('event');
    expect(runs.filter((k) => k.startsWith('bg-')).length).toBeLessThan(40);
    await q.idle();
    expect(runs.filter((k) => k === 'event')).toHaveLength(1);
    expect(new Set(runs.filter((k) => k.startsWith('bg-'))).size).toBe(40);
  });
});
