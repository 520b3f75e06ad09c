import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHlc, HlcClock, isValidHlc } from './hlc.js';
import type { Hlc } from './hlc.js';

const event = fc.oneof(
  fc.record({ kind: fc.constant('tick' as const), nowMs: fc.nat(2_000) }),
  fc.record({
    kind: fc.constant('observe' as const),
    nowMs: fc.nat(2_000),
    remote: fc.record({ wallMs: fc.nat(2_500), logical: fc.nat(5) }),
  }),
);

describe('HlcClock', () => {
  it('issues strictly increasing stamps whatever the wall clock does, above everything observed', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 50 }), (events) => {
        const clock = new HlcClock();
        let last: Hlc = clock.last;
        for (const e of events) {
          const stamp = e.kind === 'tick' ? clock.tick(e.nowMs) : clock.observe(e.remote, e.nowMs);
          expect(compareHlc(stamp, last)).toBeGreaterThan(0);
          if (e.kind === 'observe') expect(compareHlc(stamp, e.remote)).toBeGreaterThan(0);
          expect(stamp.wallMs).toBeGreaterThanOrEqual(e.nowMs);
          expect(isValidHlc(stamp)).toBe(true);
          last = stamp;
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('stays monotonic across a restart when seeded with the highest stamp issued before', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(2_000), { minLength: 1, maxLength: 30 }), fc.nat(2_000), (before, restartMs) => {
        const first = new HlcClock();
        let highest: Hlc = first.last;
        for (const t of before) highest = first.tick(t);
        // The machine clock after restart may be behind (restartMs can be small): the seed keeps order.
        const second = new HlcClock();
        second.seed(highest);
        expect(compareHlc(second.tick(restartMs), highest)).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('follows wall time when it moves forward', () => {
    const clock = new HlcClock();
    expect(clock.tick(100)).toEqual({ wallMs: 100, logical: 0 });
    expect(clock.tick(100)).toEqual({ wallMs: 100, logical: 1 });
    expect(clock.tick(50)).toEqual({ wallMs: 100, logical: 2 });
    expect(clock.observe({ wallMs: 200, logical: 7 }, 150)).toEqual({ wallMs: 200, logical: 8 });
    expect(clock.tick(300)).toEqual({ wallMs: 300, logical: 0 });
  });

  it('rejects malformed stamps', () => {
    expect(isValidHlc({ wallMs: -1, logical: 0 })).toBe(false);
    expect(isValidHlc({ wallMs: 1, logical: 0.5 })).toBe(false);
    expect(isValidHlc({ wallMs: Number.NaN, logical: 0 })).toBe(false);
    expect(isValidHlc({ wallMs: 1, logical: 0 })).toBe(true);
  });
});
