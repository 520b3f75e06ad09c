// A throwaway OCI registry (distribution's `registry`, built by e2e/tools/build.sh from Go modules) on
// 127.0.0.1:<free port>, storing into a temp directory; plain HTTP, no auth. For the release test, and by hand:
//   npx tsx e2e/tools/local-registry.ts        (prints its address; Ctrl-C stops it and removes its storage)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toolsBin } from '../harness/paths.js';
import { freePorts } from '../harness/ports.js';

export interface LocalRegistry {
  /** host:port, e.g. 127.0.0.1:23456: what image references and oci:// chart references start with. */
  readonly host: string;
  readonly dir: string;
  readonly logFile: string;
  stop(): Promise<void>;
}

export const registryBin = join(toolsBin, 'registry');

/** Starts the registry and resolves once GET /v2/ answers 200; throws with the log's tail if it does not start. */
export async function startRegistry(options: { timeoutMs?: number } = {}): Promise<LocalRegistry> {
  if (!existsSync(registryBin)) throw new Error(`${registryBin} missing: run bash e2e/tools/build.sh registry`);
  const dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-registry-'));
  const [port] = await freePorts(1);
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  // The registry insists on a config file; everything else comes from REGISTRY_* variables (they override it).
  await writeFile(config, 'version: 0.1\n');
  const logFile = join(dir, 'registry.log');
  const log = openSync(logFile, 'a');
  const child = spawn(registryBin, ['serve', config], {
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      REGISTRY_HTTP_ADDR: host,
      REGISTRY_HTTP_SECRET: randomBytes(16).toString('hex'),
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'storage'),
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_LEVEL: 'warn',
      REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
      // distribution 3 exports OpenTelemetry traces to localhost:4318 by default, logging an error every 5 s.
      OTEL_TRACES_EXPORTER: 'none',
    },
  });
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
      resolve();
    }),
  );
  const stop = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200) return { host, dir, logFile, stop };
    } catch {
      /* not listening yet */
    }
    if (exited !== undefined || Date.now() > deadline) {
      const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n');
      await stop();
      throw new Error(`registry on ${host} did not start: ${exited ?? 'timed out'}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await startRegistry();
  console.log(`registry on ${r.host} (storage ${r.dir}, log ${r.logFile}); Ctrl-C stops it`);
  const done = () => void r.stop().then(() => process.exit(0));
  process.once('SIGINT', done);
  process.once('SIGTERM', done);
}
