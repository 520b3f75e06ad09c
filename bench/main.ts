// `npm run bench -- <name> [args…]`: benchmarks are programs that print tables, never timed assertions in tests.
// Each bench module is loaded lazily and exports `run(argv)`.

interface Bench {
  run(argv: readonly string[]): Promise<void>;
}

const benches: Record<string, { summary: string; module: string }> = {
  core: { summary: 'resolve, merge and digest of the pure core at ClusterSet scale', module: './core.js' },
  gossip: { summary: 'the libp2p gossip layer', module: './gossip.js' },
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const entry = name === undefined ? undefined : benches[name];
  if (entry === undefined) {
    const list = Object.entries(benches).map(([n, b]) => `  ${n.padEnd(8)}${b.summary}`);
    process.stderr.write(['Usage: npm run bench -- <name> [args…]', '', 'Benchmarks:', ...list, ''].join('\n'));
    return 2;
  }
  // A computed specifier: a bench module another engineer has not written yet must not break type-checking.
  const bench = (await import(new URL(entry.module, import.meta.url).href)) as Bench;
  await bench.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
