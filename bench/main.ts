// `npm run bench` runs the parts of issue 11's benchmark (propagation, churn, size, scale) one after another;
// `npm run bench -- <name> [args…]` runs one part (or the core and gossip micro-benchmarks). Benchmarks are programs
// that print tables and write bench/results/, never timed assertions in tests. Each module is loaded lazily and
// exports `run(argv)`.

interface Bench {
  run(argv: readonly string[]): Promise<void>;
}

const benches: Record<string, { summary: string; module: string }> = {
  core: { summary: 'resolve, merge and digest of the pure core at ClusterSet scale', module: './core.js' },
  gossip: { summary: 'the libp2p gossip layer', module: './gossip.js' },
  propagation: {
    summary: 'export and endpoint changes to every other real cluster, against the write + watch floor',
    module: './propagation.js',
  },
  churn: { summary: '1,000 endpoint changes in 10 s: convergence and remote writes', module: './churn.js' },
  size: {
    summary: 'one real node at 1,000 imports and at 5,000 Services: cost of one change, RSS',
    module: './size.js',
  },
  scale: { summary: 'simulated ClusterSets of 10 to 250+ nodes over real libp2p', module: './scale.js' },
};

/** What `npm run bench` with no part runs, in this order. */
const ALL = ['propagation', 'churn', 'size', 'scale'];

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    for (const part of ALL) {
      process.stdout.write(`\n=== bench ${part}\n`);
      const bench = (await import(new URL(benches[part]!.module, import.meta.url).href)) as Bench;
      await bench.run([]);
    }
    return 0;
  }
  const entry = benches[name];
  if (entry === undefined) {
    const list = Object.entries(benches).map(([n, b]) => `  ${n.padEnd(12)}${b.summary}`);
    process.stderr.write(
      [
        `bench: unknown part "${name}"`,
        'Usage: npm run bench [-- <name> [args…]]',
        '',
        'Benchmarks:',
        ...list,
        '',
      ].join('\n'),
    );
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
