import { describe, expect, it } from 'vitest';
import { Coalescer } from './coalescer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Coalescer', () => {
  it('runs the first request of a quiet period in the next turn, then at most once per interval', async () => {
    const runs: number[] = [];
    const start = performance.now();
    const c = new Coalescer(() => runs.push(performance.now() - start), 60);
    c.schedule();
    c.schedule();
    expect(runs).toEqual([]); // never synchronously
    await sleep(15);
    expect(runs).toHaveLength(1);
    expect(runs[0]!).toBeLessThan(15);
    // A burst right after a run: one more run, no sooner than the interval after the first.
    for (let i = 0; i < 10; i++) c.schedule();
    await sleep(20);
    expect(runs).toHaveLength(1);
    await sleep(70);
    expect(runs).toHaveLength(2);
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(59);
    // After a quiet period longer than the interval, again at once.
    await sleep(80);
    c.schedule();
    await sleep(10);
    expect(runs).toHaveLength(3);
    c.schedule();
    c.cancel();
    await sleep(80);
    expect(runs).toHaveLength(3);
  });
});
