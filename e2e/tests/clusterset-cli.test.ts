// `npm run clusterset` as a user runs it: bad input, a second `up`, a component that dies while starting,
// `down` leaving nothing behind, and `up` again.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, readState, repoRoot } from '../harness/clusterset.js';
import { isAlive } from '../harness/process.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in one process (Node 24 with the tsx loader), so a signal reaches exactly it. */
function clusterset(...args: string[]): Promise<Result> {
  return clustersetWith(() => {}, ...args);
}

function clustersetWith(onStderr: (text: string, child: ChildProcess) => void, ...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'e2e/harness/cli.ts'), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr(stderr, child);
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Processes whose command line mentions `dir` (what the harness started there). */
async function processesUnder(dir: string): Promise<string[]> {
  const r = await new Promise<string>((resolve) => {
    const ps = spawn('ps', ['-eo', 'pid,args'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    ps.stdout.on('data', (d: Buffer) => (out += d.toString()));
    ps.once('exit', () => resolve(out));
  });
  return r.split('\n').filter((l) => l.includes(dir) && !l.includes('ps -eo'));
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('npm run clusterset', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-cli-'));
  });
  afterAll(async () => {
    await down(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it('rejects bad flags with one line and exit code 2', async () => {
    for (const args of [
      ['up', '--clusters', '0'],
      ['up', '--clusters', 'x'],
      ['up', '--clusters', '2.5'],
      ['up', '--bogus'],
      ['frobnicate'],
    ]) {
      const r = await clusterset(...args, '--dir', dir);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^clusterset: /);
    }
    expect((await clusterset('up', '--clusters', '0', '--dir', dir)).stderr).toContain('--clusters');
  });

  it('fails fast when a component dies during up, naming it and its log, and cleans up', async () => {
    const r = await clusterset('up', '--clusters', '1', '--dir', dir, '--extra-args', 'kube-apiserver=--no-such-flag');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('kube-apiserver of cluster-1 exited during startup');
    expect(r.stderr).toContain(join(dir, 'cluster-1', 'logs', 'kube-apiserver.log'));
    expect(await processesUnder(dir)).toEqual([]);
    expect(await readState(dir)).toBeUndefined();
  });

  it('an interrupted up stops what it started; a killed one leaves a state that down stops', async () => {
    let sent = false;
    const interrupted = await clustersetWith(
      (err, child) => {
        if (!sent && err.includes('starting kube-apiserver')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
      'up',
      '--clusters',
      '1',
      '--dir',
      dir,
    );
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain('up interrupted; everything it started was stopped');
    expect(await processesUnder(dir)).toEqual([]);
    expect(await readState(dir)).toBeUndefined();

    let killed = false;
    const kill = await clustersetWith(
      (err, child) => {
        if (!killed && err.includes('starting kube-controller-manager')) {
          killed = true;
          child.kill('SIGKILL');
        }
      },
      'up',
      '--clusters',
      '1',
      '--dir',
      dir,
    );
    expect(kill.code).toBe(null);
    const recorded = (await readState(dir))?.clusters.flatMap((c) => c.components).map((p) => p.pid) ?? [];
    const running = (await processesUnder(dir)).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(running.length).toBeGreaterThan(0);
    expect(recorded).toEqual(expect.arrayContaining(running));
    // The killed up's lock is left behind with a dead pid; down stops everything, and the next up takes the lock.
    await access(join(dir, '.up.lock'));
    expect((await clusterset('down', '--dir', dir)).code).toBe(0);
    expect(await processesUnder(dir)).toEqual([]);
  });

  it('refuses a second up, then down stops everything and frees the ports, and up works again', async () => {
    const first = await clusterset('up', '--clusters', '1', '--dir', dir);
    expect(first.code, first.stderr).toBe(0);
    const state = await readState(dir);
    if (state === undefined) throw new Error('no state after up');
    const procs = state.clusters.flatMap((c) => c.components);
    expect(procs.map((p) => p.name)).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
    ]);
    expect(procs.every((p) => isAlive(p))).toBe(true);

    const status = await clusterset('status', '--dir', dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('5/5 processes up');

    const again = await clusterset('up', '--clusters', '1', '--dir', dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already running');
    expect((await readState(dir))?.startedAt).toBe(state.startedAt);
    expect(procs.every((p) => isAlive(p))).toBe(true);

    const env = await clusterset('env', '--dir', dir);
    expect(env.stdout).toContain(`KUBECONFIG='${join(dir, 'kubeconfig')}'`);

    const stopped = await clusterset('down', '--dir', dir);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain('stopped 5 processes');
    expect(procs.some((p) => isAlive(p))).toBe(false);
    expect(await processesUnder(dir)).toEqual([]);
    for (const p of procs) expect(await portIsFree(p.port), `${p.name} port ${p.port}`).toBe(true);

    const second = await clusterset('up', '--clusters', '1', '--dir', dir);
    expect(second.code, second.stderr).toBe(0);
    expect((await clusterset('down', '--dir', dir)).code).toBe(0);
  });
});
