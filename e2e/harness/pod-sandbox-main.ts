// The Pods' runner of one cluster of a ClusterSet started with `up --data-plane`, as a process of its own (`up`
// starts it; `down` stops it, which removes every sandbox it made):
//   node --import tsx e2e/harness/pod-sandbox-main.ts --dir DIR --cluster NAME
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { kubeConfigFor, readState } from './clusterset.js';
import { PodSandboxes } from './pod-sandbox.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, cluster: { type: 'string' } }, strict: true });
  if (values.dir === undefined || values.cluster === undefined) {
    process.stderr.write('pod-sandboxes: --dir DIR and --cluster NAME are required\n');
    return 2;
  }
  const dir = resolve(values.dir);
  const state = await readState(dir);
  if (state === undefined) {
    process.stderr.write(`pod-sandboxes: no ClusterSet in ${dir}\n`);
    return 2;
  }
  const net = state.dataPlane?.clusters.find((c) => c.name === values.cluster);
  if (net === undefined) {
    process.stderr.write(`pod-sandboxes: --cluster ${values.cluster}: no data plane for it in ${dir}\n`);
    return 2;
  }
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const runner = new PodSandboxes({
    kubeConfig: kubeConfigFor(state, net.name),
    net,
    dir: join(dir, net.name, 'pods'),
    log,
  });
  runner.start();
  log(`following the Pods of ${net.name} (netns ${net.netns})`);
  await new Promise<void>((done) => {
    process.once('SIGTERM', () => done());
    process.once('SIGINT', () => done());
  });
  log('stopping: removing every sandbox');
  await runner.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pod-sandboxes: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
