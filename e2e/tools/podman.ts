// Running podman from TypeScript the way e2e/tools/image*.sh do: with the repository's containers.conf (runc,
// cgroupfs: what these machines need) unless CONTAINERS_CONF is already set.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../harness/paths.js';

export const podmanConf = join(repoRoot, 'e2e', 'tools', 'podman', 'containers.conf');

export function podmanEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? podmanConf };
}

/** Whether a podman binary is on PATH and answers `podman --version`. */
export function hasPodman(): boolean {
  return spawnSync('podman', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program in the repository with podmanEnv(); never throws for a non-zero exit. */
export function sh(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env: { ...podmanEnv(), ...options.env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Like sh, but throws (with stderr's tail) unless the exit status is 0. */
export async function shOk(cmd: string, args: readonly string[]): Promise<Ran> {
  const r = await sh(cmd, args);
  if (r.code !== 0) {
    const tail = r.stderr.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}\n${tail}`);
  }
  return r;
}
