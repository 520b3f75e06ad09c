// The pod runner as a process of its own, for a ClusterSet left running (`npm run demo`): one PodRunner per cluster
// of the ClusterSet in --dir, following the mcs-gossip Pods until SIGTERM, when it removes the containers it started.
//   node --import tsx e2e/harness/pod-runner-main.ts --dir DIR
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { POD_SELECTOR, RELEASE_NAMESPACE, RUNNER_PID_FILE } from './chart-install.js';
import { kubeConfigFor, readState } from './clusterset.js';
import { PodRunner } from './pod-runner.js';
import { podmanEnv } from '../tools/podman.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: 'string' } }, strict: true });
  if (values.dir === undefined) {
    process.stderr.write('pod-runner: --dir DIR is required\n');
    return 2;
  }
  const dir = resolve(values.dir);
  const state = await readState(dir);
  if (state === undefined) {
    process.stderr.write(`pod-runner: no ClusterSet in ${dir}\n`);
    return 2;
  }
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const runners = state.clusters.map((c) => {
    const kubeConfig = kubeConfigFor(state, c.name);
    const server = new URL(kubeConfig.getCurrentCluster()!.server);
    return new PodRunner({
      kubeConfig,
      cluster: c.name,
      namespace: RELEASE_NAMESPACE,
      labelSelector: POD_SELECTOR,
      dir: join(dir, c.name, 'pods'),
      podmanEnv: podmanEnv(),
      apiServer: { host: server.hostname, port: Number(server.port) },
      nodeIp: '127.0.0.1',
      log,
    });
  });
  for (const r of runners) r.start();
  await writeFile(join(dir, RUNNER_PID_FILE), String(process.pid));
  log(`following the mcs-gossip pods of ${state.clusters.map((c) => c.name).join(', ')}`);
  await new Promise<void>((done) => {
    process.once('SIGTERM', () => done());
    process.once('SIGINT', () => done());
  });
  log('stopping: removing the containers');
  for (const r of runners) await r.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pod-runner: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
