import { describe, expect, it } from 'vitest';
import { fuzz } from './fuzzer.js';

describe('fuzzer (short form; `npm run fuzz` runs 100,000)', () => {
  it('20,000 random and mutated messages reach every decoder and validator: nothing escapes, state unchanged', async () => {
    const r = await fuzz({ count: 20_000, seed: 20261201 });
    expect(r.escaped).toEqual([]);
    expect(r.stateUnchanged).toBe(true);
    for (const t of ['topic', 'sync', 'liveness', 'envelope']) expect(r.targets[t]?.tried).toBe(5_000);
  });
});
