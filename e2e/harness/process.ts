// Detached child processes that outlive the `up` command: started in their own process group with output in a
// log file; identified later by pid plus kernel start time, so `down` never signals a recycled pid.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';

export interface ProcessRecord {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: the process start time in clock ticks since boot. */
  readonly startTicks: string;
  readonly command: string;
  readonly log: string;
}

export interface StartedProcess extends ProcessRecord {
  /** Resolves with the exit code (or signal name) if the process ends; never rejects. */
  readonly exited: Promise<string>;
}

function startTicksOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function startDetached(
  command: string,
  args: readonly string[],
  log: string,
  cwd?: string,
  env?: Readonly<Record<string, string>>,
): StartedProcess {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd,
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    });
    // Listened to before anything can throw: a spawn that fails (ENOENT) reports it as an 'error' event.
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? `exit code ${code}`));
      child.once('error', (err) => resolve(`error ${err.message}`));
    });
    const pid = child.pid;
    if (pid === undefined) {
      const hint = isAbsolute(command) && !existsSync(command) ? ': not installed' : '';
      throw new Error(`could not start ${command}${hint} (see ${log})`);
    }
    child.unref();
    return { pid, startTicks: startTicksOf(pid) ?? '', command, log, exited };
  } finally {
    closeSync(fd);
  }
}

/** True while the recorded process (same pid and same start time) is running and not a zombie. */
export function isAlive(p: ProcessRecord): boolean {
  const ticks = startTicksOf(p.pid);
  if (ticks === undefined || ticks !== p.startTicks) return false;
  try {
    const state = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM the process group, wait up to `graceMs`, then SIGKILL. Returns once the process is gone. */
export async function stopProcess(p: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isAlive(p)) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-p.pid, sig);
    } catch {
      try {
        process.kill(p.pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(p) && Date.now() < deadline) await sleep(100);
  if (isAlive(p)) {
    signal('SIGKILL');
    while (isAlive(p)) await sleep(50);
  }
}

/** The last `lines` lines of a log file, for error messages. */
export async function tail(file: string, lines = 8): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
