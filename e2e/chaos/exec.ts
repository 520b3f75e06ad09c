// Running system programs (ip, iptables, apt-get, ss) with a deadline each, so no step of the chaos run can hang it.
import { execFile } from 'node:child_process';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Kill the program after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Resolve with the exit code instead of rejecting when the program fails. */
  readonly allowFail?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Root's sbin directories are not on every PATH (npm scripts, sudo -E): ip and iptables live there. */
const SBIN_PATH = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function withSbin(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const parts = (env.PATH ?? '/usr/bin:/bin').split(':');
  return { ...env, PATH: [...parts, ...SBIN_PATH.filter((p) => !parts.includes(p))].join(':') };
}

export function run(program: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      [...args],
      { timeout: options.timeoutMs ?? 30_000, env: withSbin(options.env), maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : err.killed ? 124 : 127;
        if (err !== null && options.allowFail !== true) {
          const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `exit ${code}`;
          reject(new Error(`${program} ${args.join(' ')}: ${why}${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}
