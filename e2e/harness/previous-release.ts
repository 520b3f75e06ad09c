// The previous released build (N−1), built from git history, so a test can run it beside the current one in one
// ClusterSet (docs/upgrades.md). Built once per commit into ~/.cache/mcs-gossip/releases/<version>-<commit>/ with
// the repository's node_modules when the release locked the same dependencies (else `npm ci` there), and reused by
// every later run and every fresh clone on this machine.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

const exec = promisify(execFile);

/** The release before this one: its version and the commit it was cut from (main when it landed). */
export const PREVIOUS_RELEASE = { version: '0.1.0', commit: 'f96a64026f3a9352617218859724c0f39fff82e4' } as const;

export interface BuiltRelease {
  readonly version: string;
  readonly commit: string;
  /** The release's `mcs-gossip` program: run it with `node <main> run …`. */
  readonly main: string;
  readonly dir: string;
}

/** The locked dependencies of a package-lock.json (the root package's own entry left out: its name and bins). */
function lockedDependencies(lockText: string): string {
  const lock = JSON.parse(lockText) as { packages?: Record<string, unknown> };
  const { '': _root, ...deps } = lock.packages ?? {};
  return createHash('sha256').update(JSON.stringify(deps)).digest('hex');
}

async function git(...args: string[]): Promise<string> {
  const { stdout } = await exec('git', ['-C', repoRoot, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Resolves a commit (a short hash is fine) to its full hash; fails with a clear message when history lacks it. */
async function resolveCommit(commit: string): Promise<string> {
  try {
    return (await git('rev-parse', '--verify', `${commit}^{commit}`)).trim();
  } catch {
    throw new Error(
      `the previous release's commit ${commit} is not in this clone's history (a shallow clone?): fetch it with \`git fetch --unshallow\``,
    );
  }
}

/** Builds (or finds in the cache) the previous release; `log` gets a line per step. */
export async function ensurePreviousRelease(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  release: { version: string; commit: string } = PREVIOUS_RELEASE,
): Promise<BuiltRelease> {
  const commit = await resolveCommit(release.commit);
  const cache = process.env.MCS_GOSSIP_CACHE ?? join(homedir(), '.cache', 'mcs-gossip');
  const dir = join(cache, 'releases', `${release.version}-${commit.slice(0, 12)}`);
  const main = join(dir, 'dist', 'cli', 'main.js');
  if (existsSync(main)) return { version: release.version, commit, main, dir };

  const t0 = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    log(`building the previous release ${release.version} (${commit.slice(0, 12)}) into ${dir}`);
    await exec('bash', ['-c', `git -C "$1" archive "$2" | tar -x -C "$3"`, 'archive', repoRoot, commit, tmp]);
    const ours = lockedDependencies(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
    const theirs = lockedDependencies(await readFile(join(tmp, 'package-lock.json'), 'utf8'));
    if (ours === theirs && existsSync(join(repoRoot, 'node_modules'))) {
      await symlink(join(repoRoot, 'node_modules'), join(tmp, 'node_modules'), 'dir');
    } else {
      log(`  its dependencies differ from this checkout's: npm ci`);
      await exec('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: tmp,
        maxBuffer: 64 * 1024 * 1024,
      });
    }
    await exec(process.execPath, [join(tmp, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
      cwd: tmp,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (!existsSync(join(tmp, 'dist', 'cli', 'main.js'))) throw new Error('the build produced no dist/cli/main.js');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    log(`  built in ${Math.round((Date.now() - t0) / 1000)} s`);
    return { version: release.version, commit, main, dir };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`building the previous release ${release.version} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
