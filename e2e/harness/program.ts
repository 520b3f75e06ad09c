// The mcs-gossip program the harness runs: the compiled output (`npm run build`, dist/), as the image and an npm
// install run it — not the TypeScript sources through tsx. Built here when dist/ is missing or older than any
// source file, once per machine at a time (a lock file), so a single test run from an editor gets a fresh build too.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RUNTIME_NODE_FLAGS } from '../../src/node/runtime-flags.js';
import { repoRoot } from './paths.js';

const exec = promisify(execFile);

/** The compiled CLI. */
export const programMain = join(repoRoot, 'dist', 'cli', 'main.js');
/** Written after each successful build (outside dist/, which npm packs): its mtime is the time the build started. */
const STAMP = join(repoRoot, '.build-stamp');
const LOCK = join(repoRoot, '.build.lock');
/** A lock not refreshed for this long belongs to a builder that is gone (a live one touches it every 5 s). */
const LOCK_STALE_MS = 30_000;
const BUILD_TIMEOUT_MS = 240_000;

/**
 * The command line (program first) that runs `mcs-gossip <args…>` from the compiled output, with the Node.js flags the
 * image uses (src/node/runtime-flags.ts). `MCS_GOSSIP_NODE_FLAGS`
 * (space-separated) adds Node.js flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the nodes of a
 * benchmark (docs/benchmarks.md).
 */
export function programArgv(...args: string[]): string[] {
  const extra = (process.env.MCS_GOSSIP_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  return [process.execPath, ...RUNTIME_NODE_FLAGS, ...extra, programMain, ...args];
}

/**
 * The newest mtime (ms) under `dir`: of its `.ts` files and of its directories (adding, deleting or renaming a file
 * changes its directory's mtime, even when the file keeps an old one).
 */
function newestSource(dir: string): number {
  let newest = statSync(dir).mtimeMs;
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

function holderAlive(text: string): boolean {
  const pid = Number(text.split('-')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Takes the build lock (one builder per checkout at a time); returns a release function. */
async function lock(): Promise<() => Promise<void>> {
  const token = `${process.pid}-${randomUUID()}`;
  const deadline = Date.now() + BUILD_TIMEOUT_MS + 60_000;
  for (;;) {
    try {
      await writeFile(LOCK, token, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [text, age] = await Promise.all([
        readFile(LOCK, 'utf8').catch(() => ''),
        stat(LOCK).then(
          (st) => Date.now() - st.mtimeMs,
          () => 0,
        ),
      ]);
      if (text !== '' && (!holderAlive(text) || age > LOCK_STALE_MS)) {
        // Only one of the waiters renames the abandoned lock away; the others find it gone and race for a new one.
        const aside = `${LOCK}.stale-${token}`;
        if (
          await rename(LOCK, aside).then(
            () => true,
            () => false,
          )
        )
          await rm(aside, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`waited too long for another build of dist/ (${LOCK})`, { cause: err });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const keepAlive = setInterval(() => {
    const now = new Date();
    void utimes(LOCK, now, now).catch(() => undefined);
  }, 5_000);
  keepAlive.unref();
  return async () => {
    clearInterval(keepAlive);
    // Ours only: a lock taken over meanwhile (we were thought gone) belongs to its new holder.
    if ((await readFile(LOCK, 'utf8').catch(() => '')) === token) await rm(LOCK, { force: true });
  };
}

async function build(log: (line: string) => void): Promise<void> {
  if (isFresh()) return;
  const release = await lock();
  try {
    if (isFresh()) return;
    const t0 = Date.now();
    // The stamp takes the time the build started (a source saved during the build counts as newer), and goes first:
    // a build that dies midway leaves no stamp, so its partial output is never taken for fresh.
    const started = new Date();
    await rm(STAMP, { force: true });
    log('building dist/ (npm run build): the harness runs the compiled program');
    try {
      await exec(
        process.execPath,
        [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: repoRoot,
          maxBuffer: 64 * 1024 * 1024,
          timeout: BUILD_TIMEOUT_MS,
        },
      );
    } catch (err) {
      const out = (err as { stdout?: string }).stdout ?? '';
      throw new Error(`npm run build failed:\n${out.split('\n').slice(0, 20).join('\n')}`, { cause: err });
    }
    const tmp = `${STAMP}.${process.pid}`;
    await writeFile(tmp, `${started.toISOString()}\n`);
    await utimes(tmp, started, started);
    await rename(tmp, STAMP);
    log(`built dist/ in ${Date.now() - t0} ms`);
  } finally {
    await release();
  }
}
