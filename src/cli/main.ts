#!/usr/bin/env node
// The `mcs-gossip` command line: one entry point, one file per subcommand under ./commands.
import type { Command } from './command.js';
import { UsageError } from './usage-error.js';

// Each subcommand is loaded lazily so `--help` and small commands start fast.
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  version: { summary: 'print the version', load: async () => (await import('./commands/version.js')).version },
  resolve: {
    summary: 'explain what every cluster imports, from a file of objects (offline)',
    load: async () => (await import('./commands/resolve.js')).resolveCommand,
  },
  keygen: {
    summary: 'create a node identity key and print its PeerId',
    load: async () => (await import('./commands/keygen.js')).keygen,
  },
  psk: { summary: 'create a ClusterSet pre-shared key', load: async () => (await import('./commands/psk.js')).psk },
  leave: {
    summary: 'take this cluster out of its ClusterSet (its exports are withdrawn everywhere)',
    load: async () => (await import('./commands/leave.js')).leave,
  },
  status: {
    summary: 'show clusters, peers, exports and imports of the ClusterSet, from kubeconfig contexts',
    load: async () => (await import('./commands/status.js')).status,
  },
  diagnose: {
    summary: 'check the ClusterSet for known problems, each with its fix (PASS/WARN/FAIL)',
    load: async () => (await import('./commands/diagnose.js')).diagnose,
  },
  run: {
    summary: "run this cluster's node (watch exports, gossip, write imports)",
    load: async () => (await import('./commands/run.js')).run,
  },
};

function mainUsage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: mcs-gossip <command> [flags]',
    '',
    'A decentralized Kubernetes Multi-Cluster Services node.',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `mcs-gossip <command> --help` for the flags of one command. Installed as the kubectl plugin',
    '`kubectl-mcs`, the same commands run as `kubectl mcs <command>` (docs/status.md).',
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainUsage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const entry = commands[name === '--version' ? 'version' : name];
  if (entry === undefined) {
    process.stderr.write(`mcs-gossip: unknown command "${name}" (see mcs-gossip --help)\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.trimEnd() + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`mcs-gossip ${name}: ${err.message}\n`);
      return 2;
    }
    // A file named on the command line that cannot be read or written is bad input too: one line, exit 2.
    const fsError = fileProblem(err);
    if (fsError !== undefined) {
      process.stderr.write(`mcs-gossip ${name}: ${fsError}\n`);
      return 2;
    }
    throw err;
  }
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EROFS: 'read-only file system',
};

/** `cannot open "<path>": <why>` for a file system error naming a path, else undefined. */
export function fileProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e === undefined || e === null || typeof e.code !== 'string' || typeof e.path !== 'string') return undefined;
  const why = FILE_ERRORS[e.code];
  return why === undefined ? undefined : `cannot ${e.syscall ?? 'open'} "${e.path}": ${why}`;
}

/** Resolves once what was written to `stream` so far has been handed to the system. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/**
 * Every command but `run` ends the process once its output is written: a request left over (an API server that
 * does not answer, a keep-alive socket) must not keep `status` or `diagnose` alive after they printed. `run` ends
 * when its node stops, by itself.
 */
async function finish(code: number): Promise<void> {
  process.exitCode = code;
  if (process.argv[2] === 'run') return;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

main(process.argv.slice(2)).then(
  (code) => finish(code),
  (err: unknown) => {
    process.stderr.write(`mcs-gossip: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return finish(1);
  },
);
