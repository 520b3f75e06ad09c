// The mcs-gossip program the harness runs: the compiled output (`npm run build`, dist/), as the image and an npm
// install run it — not the TypeScript sources through tsx. Built here when dist/ is missing or older than any
// source file, once per machine at a time (a lock file), so a single test run from an editor gets a fresh build too.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { open, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

const exec = promisify(execFile);

/** The compiled CLI. */
export const programMain = join(repoRoot, 'dist', 'cli', 'main.js');
/** Written after each build the harness makes or checks: its mtime is the build's. */
const STAMP = join(repoRoot, 'dist', '.build-stamp');

/** The command line (program first) that runs `mcs-gossip <args…>` from the compiled output. */
export function programArgv(...args: string[]): string[] {
  return [process.execPath, programMain, ...args];
}

/** The newest mtime (ms) of the files under `dir` that end in `.ts` (tests included: cheap, and harmless). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isFresh(): boolean {
  if (!existsSync(programMain) || !existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  const inputs = [
    newestSource(join(repoRoot, 'src')),
    ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(repoRoot, f)).mtimeMs),
  ];
  return inputs.every((m) => m <= built);
}

let building: Promise<void> | undefined;

/** Makes sure dist/ holds a build of the current sources; builds it (`tsc -p tsconfig.build.json`) if not. */
export function ensureBuilt(log: (line: string) => void = () => {}): Promise<void> {
  building ??= build(log).finally(() => {
    building = undefined;
  });
  return building;
}

async function build(log: (line: string) => void): Promise<void> {
  if (isFresh()) return;
  const lockFile = join(repoRoot, '.build.lock');
  // One build at a time across processes (vitest workers, a CLI run): wait for another builder's lock to go.
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(lockFile).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      // A lock older than the longest build is left over by a killed builder.
      if (age > 120_000) await rm(lockFile, { force: true });
      else if (Date.now() > deadline) {
        throw new Error(`waited 180 s for another build of dist/ (${lockFile})`, { cause: err });
      } else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (isFresh()) return;
    const t0 = Date.now();
    // The stamp takes the time the build started: a source saved during the build counts as newer.
    const started = new Date();
    log('building dist/ (npm run build): the harness runs the compiled program');
    try {
      await exec(
        process.execPath,
        [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: repoRoot,
          maxBuffer: 64 * 1024 * 1024,
        },
      );
    } catch (err) {
      const out = (err as { stdout?: string }).stdout ?? '';
      throw new Error(`npm run build failed:\n${out.split('\n').slice(0, 20).join('\n')}`, { cause: err });
    }
    await writeFile(STAMP, `${started.toISOString()}\n`);
    await utimes(STAMP, started, started);
    log(`built dist/ in ${Date.now() - t0} ms`);
  } finally {
    await rm(lockFile, { force: true });
  }
}
