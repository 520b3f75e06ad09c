import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The core is pure: it may import only itself and node:crypto (sha256, a pure function). This test lists every
// import of every non-test file under src/core, prints the list, and fails on anything else.
const ALLOWED = new Set(['node:crypto']);
const CORE = new URL('.', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return e.name === 'test-support' ? [] : sourceFiles(join(dir, e.name));
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)];
  return specifiers.map((m) => m[1] ?? m[2] ?? '');
}

describe('src/core purity', () => {
  it('imports nothing but itself and node:crypto (no Kubernetes client, libp2p, timers, fs or net)', () => {
    const external = new Set<string>();
    for (const file of sourceFiles(CORE)) {
      for (const spec of importsOf(file)) if (!spec.startsWith('./') && !spec.startsWith('../')) external.add(spec);
    }
    console.log(`src/core external imports: ${[...external].sort().join(', ')}`);
    expect([...external].filter((s) => !ALLOWED.has(s))).toEqual([]);
  });

  it('reads no clock and draws no randomness (outside comments, such as the usage example in index.ts)', () => {
    const code = (f: string) =>
      readFileSync(f, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
    const offenders = sourceFiles(CORE).filter((f) =>
      /Date\.now|new Date\(\)|Math\.random|performance\.now|setTimeout|setInterval|process\./.test(code(f)),
    );
    expect(offenders).toEqual([]);
  });
});
