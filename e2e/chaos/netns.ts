// The chaos run's isolation: a network namespace of its own with only a loopback device, in which the whole ClusterSet
// runs. Firewall rules made in there (faults.ts) filter that loopback only and never the host's traffic or rules.
import { spawn } from 'node:child_process';
import { run } from './exec.js';

/** Set in the re-run process: the name of the namespace it runs in. */
export const NETNS_ENV = 'MCS_CHAOS_NETNS';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function namespaceName(pid = process.pid): string {
  return `mcs-chaos-${pid}`;
}

async function hasIptables(): Promise<boolean> {
  const r = await run('iptables', ['--version'], { allowFail: true });
  return r.code === 0;
}

/** Installs Debian's iptables when missing; the package lists are refreshed only if a plain install fails. */
export async function ensureIptables(log: (line: string) => void): Promise<void> {
  if (await hasIptables()) return;
  log('iptables is missing: apt-get install -y iptables');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const first = await run('apt-get', ['install', '-y', 'iptables'], { allowFail: true, timeoutMs: 300_000, env });
  if (first.code !== 0) {
    log('apt-get install failed: apt-get update, then install again');
    await run('apt-get', ['update'], { timeoutMs: 300_000, env });
    await run('apt-get', ['install', '-y', 'iptables'], { timeoutMs: 300_000, env });
  }
  if (!(await hasIptables())) throw new Error('iptables is still not usable after apt-get install -y iptables');
}

/** A fresh namespace with its loopback up (127.0.0.0/8 is all local on it, so every node address exists). */
export async function createNamespace(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  try {
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await run('ip', ['netns', 'del', name], { allowFail: true });
    throw err;
  }
}

/** Pids of the processes running in the namespace: all started by this run (nothing else enters it). */
async function pidsIn(name: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', name], { allowFail: true });
  return r.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Ends what is left in the namespace (the inner run was killed before it could stop its ClusterSet): SIGTERM, then
 * SIGKILL after a grace period, by pid. Then deletes the namespace. Never throws.
 */
export async function deleteNamespace(name: string, log: (line: string) => void): Promise<void> {
  let pids = await pidsIn(name);
  if (pids.length > 0) {
    log(`stopping ${pids.length} processes left in network namespace ${name}`);
    for (const pid of pids) signalPid(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (pids.length > 0 && Date.now() < deadline) {
      await sleep(250);
      pids = await pidsIn(name);
    }
    for (const pid of pids) signalPid(pid, 'SIGKILL');
  }
  const r = await run('ip', ['netns', 'del', name], { allowFail: true });
  if (r.code !== 0) log(`ip netns del ${name} failed: ${r.stderr.trim()}`);
}

/** True when this process runs in the namespace `name` (checked before any firewall rule is touched). */
export async function insideNamespace(name: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'identify', String(process.pid)], { allowFail: true });
  return r.code === 0 && r.stdout.trim() === name;
}

export interface ReexecOptions {
  readonly namespace: string;
  /** The script and its arguments, after `node --import tsx`. */
  readonly args: readonly string[];
  readonly cwd: string;
  readonly log: (line: string) => void;
  /** How long the inner run may take to clean up after a forwarded signal before it is killed. */
  readonly graceMs?: number;
}

/**
 * Runs this same program again inside the namespace, with its output on ours, and returns its exit code. SIGINT and
 * SIGTERM are forwarded (the inner run then stops its ClusterSet); if it does not end within the grace period, it is
 * killed. The caller deletes the namespace afterwards in every case.
 */
export function reexecInside(options: ReexecOptions): Promise<number> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      options.namespace,
      'env',
      `${NETNS_ENV}=${options.namespace}`,
      process.execPath,
      '--import',
      'tsx',
      ...options.args,
    ],
    { cwd: options.cwd, stdio: 'inherit' },
  );
  return new Promise((resolve) => {
    let killTimer: NodeJS.Timeout | undefined;
    const forward = (signal: NodeJS.Signals) => {
      options.log(`${signal}: asking the run inside ${options.namespace} to clean up`);
      child.kill(signal);
      killTimer ??= setTimeout(() => {
        options.log(`the inner run did not end within ${(options.graceMs ?? 120_000) / 1000} s: killing it`);
        child.kill('SIGKILL');
      }, options.graceMs ?? 120_000);
    };
    const onInt = () => forward('SIGINT');
    const onTerm = () => forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const done = (code: number) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (killTimer !== undefined) clearTimeout(killTimer);
      resolve(code);
    };
    child.once('error', (err) => {
      options.log(`could not run ip netns exec: ${err.message}`);
      done(1);
    });
    child.once('exit', (code, signal) => done(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}
