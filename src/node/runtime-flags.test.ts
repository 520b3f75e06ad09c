import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUNTIME_NODE_FLAGS } from './runtime-flags.js';

describe('runtime flags', () => {
  it('are the ones the image runs node with', () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(entrypoint).toBeDefined();
    const argv = JSON.parse(entrypoint!) as string[];
    const node = argv.indexOf('node');
    expect(argv.slice(node + 1, node + 1 + RUNTIME_NODE_FLAGS.length)).toEqual(RUNTIME_NODE_FLAGS);
    expect(argv[node + 1 + RUNTIME_NODE_FLAGS.length]).toBe('/app/dist/cli/main.js');
  });
});
