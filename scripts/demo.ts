// `npm run demo`: a three-cluster local ClusterSet with mcs-gossip installed in each cluster by its Helm chart, the
// nodes running as containers (podman) of the image built here; a sample service exported in cluster-1 and imported
// everywhere. Left running with the commands to explore and to stop it; `--once` tears it down at the end.
//
//   npm run demo                 # build what is missing, start, show, leave running
//   npm run demo -- --once       # the same, then stop everything
//   npm run demo -- --down       # stop a demo left running
//
// Without podman the nodes run as local processes (`mcs-gossip run`), and the demo says so.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import {
  assignLoadBalancer,
  installRelease,
  peerEntry,
  RELEASE_NAMESPACE,
  RUNNER_PID_FILE,
  writeKeySecrets,
} from '../e2e/harness/chart-install.js';
import { down, ensureTools, kubeConfigFor, readState, repoRoot, toolsBin, up } from '../e2e/harness/clusterset.js';
import { freePorts } from '../e2e/harness/ports.js';
import { startDetached } from '../e2e/harness/process.js';
import { eventually } from '../e2e/harness/wait.js';
import { hasPodman, podmanConf, shOk } from '../e2e/tools/podman.js';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../src/gossip/keys.js';

const run = promisify(execFile);
const CLUSTERS = 3;
const started = Date.now();

function say(line: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[demo ${s}s] ${line}\n`);
}

async function kubectl(kubeconfig: string, context: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(join(toolsBin, 'kubectl'), ['--kubeconfig', kubeconfig, '--context', context, ...args]);
  return stdout;
}

async function stopRunner(dir: string): Promise<void> {
  const pid = Number(await readFile(join(dir, RUNNER_PID_FILE), 'utf8').catch(() => ''));
  if (!(pid > 0)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  say('stopping the pod runner (it removes the containers)');
  await eventually(
    'the pod runner to exit',
    async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    },
    60_000,
  );
  await rm(join(dir, RUNNER_PID_FILE), { force: true });
}

async function teardown(dir: string): Promise<void> {
  await stopRunner(dir);
  const n = await down(dir);
  say(`stopped ${n} processes of the ClusterSet in ${dir}`);
}

async function main(): Promise<number> {
  let values: { once?: boolean; down?: boolean; dir?: string };
  try {
    ({ values } = parseArgs({
      options: { once: { type: 'boolean' }, down: { type: 'boolean' }, dir: { type: 'string' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message} (flags: --once, --down, --dir DIR)\n`);
    return 2;
  }
  const dir = resolve(values.dir ?? join(repoRoot, '.demo'));
  if (values.down === true) {
    await teardown(dir);
    return 0;
  }
  if ((await readState(dir)) !== undefined) {
    const state = await readState(dir);
    if (state !== undefined && state.clusters.some((c) => c.components.length > 0)) {
      await teardown(dir); // a previous demo's leftovers
    }
  }
  const containers = hasPodman();
  say('building or reusing the Kubernetes programs (first time: ~20 min on 2 cores; then ~1 s)');
  await ensureTools((l) => say(l));
  let image: { repository: string; tag: string } | undefined;
  if (containers) {
    say('building or reusing the mcs-gossip image with podman (first time: a few minutes)');
    const ref = (await shOk('bash', [join(repoRoot, 'e2e', 'tools', 'image.sh')])).stdout.trim().split('\n').pop()!;
    const colon = ref.lastIndexOf(':');
    image = { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
    say(`image ${ref}`);
  } else {
    say('podman not found: the nodes run as local processes (`mcs-gossip run`), not as containers from the chart');
  }
  say(`starting ${CLUSTERS} clusters in ${dir}`);
  const state = await up({ dir, clusters: CLUSTERS, nodes: !containers, onProgress: (l) => say(l) });
  const kubeconfig = join(dir, 'kubeconfig');
  const names = state.clusters.map((c) => c.name);
  const metricsPorts = new Map<string, number>();
  if (containers && image !== undefined) {
    const log = join(dir, 'pod-runner.log');
    startDetached(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'e2e', 'harness', 'pod-runner-main.ts'), '--dir', dir],
      log,
      repoRoot,
    );
    say(`pod runner started (log: ${log}): it runs each mcs-gossip Pod's container with podman`);
    const psk = await generatePsk();
    const ports = await freePorts(2 * names.length, '127.0.0.1');
    const bootstrap: string[] = [];
    for (const [i, c] of names.entries()) {
      say(
        `${c}: keys into Secrets, helm install (bootstrap: ${bootstrap.length === 0 ? 'none, the first cluster' : bootstrap.join(', ')})`,
      );
      await writeKeySecrets(state, c, encodeIdentityKey(await generateIdentityKey()), psk);
      await installRelease(state, c, dir, {
        image,
        gossipPort: ports[2 * i]!,
        metricsPort: ports[2 * i + 1]!,
        bootstrap: [...bootstrap],
      });
      metricsPorts.set(c, ports[2 * i + 1]!);
      // The demo plays the cloud's LoadBalancer controller: the gossip Service gets 127.0.0.1 as its ingress.
      await assignLoadBalancer(state, c, '127.0.0.1');
      const entry = await peerEntry(state, c, `${c}=/ip4/127.0.0.1/`);
      say(`${c}: node ready; its peer entry for the next clusters: ${entry}`);
      bootstrap.push(entry);
    }
  } else {
    for (const c of state.clusters) {
      const node = c.components.find((p) => p.name === 'mcs-gossip');
      if (node?.health !== undefined) metricsPorts.set(c.name, Number(new URL(node.health).port));
    }
  }

  say('cluster-1: a sample Deployment (2 pods), its Service and a ServiceExport in namespace demo');
  for (const c of names) {
    const core = kubeConfigFor(state, c).makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'demo' } } });
  }
  const one = kubeConfigFor(state, 'cluster-1');
  const labels = { app: 'hello' };
  await one.makeApiClient(k8s.AppsV1Api).createNamespacedDeployment({
    namespace: 'demo',
    body: {
      metadata: { name: 'hello' },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'hello', image: 'registry.invalid/hello:1' }] },
        },
      },
    },
  });
  await one.makeApiClient(k8s.CoreV1Api).createNamespacedService({
    namespace: 'demo',
    body: {
      metadata: { name: 'hello' },
      spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  await one.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: 'multicluster.x-k8s.io',
    version: 'v1beta1',
    plural: 'serviceexports',
    namespace: 'demo',
    body: { apiVersion: 'multicluster.x-k8s.io/v1beta1', kind: 'ServiceExport', metadata: { name: 'hello' } },
  });
  const exportedAt = Date.now();
  for (const c of names.filter((n) => n !== 'cluster-1')) {
    await eventually(
      `the import of demo/hello in ${c}`,
      async () => {
        const out = await kubectl(
          kubeconfig,
          c,
          'get',
          'endpointslices',
          '-n',
          'demo',
          '-l',
          'multicluster.kubernetes.io/service-name=hello',
          '-o',
          'json',
        );
        const slices = (JSON.parse(out) as { items: { endpoints?: unknown[] }[] }).items;
        return slices.flatMap((s) => s.endpoints ?? []).length === 2 ? true : undefined;
      },
      120_000,
    );
  }
  say(`demo/hello imported with both endpoints in every cluster ${Date.now() - exportedAt} ms after the export`);

  for (const c of names.filter((n) => n !== 'cluster-1')) {
    process.stdout.write(`\n$ kubectl --context ${c} get serviceimports -A\n`);
    process.stdout.write(await kubectl(kubeconfig, c, 'get', 'serviceimports', '-A'));
  }
  process.stdout.write(`\n$ kubectl --context cluster-1 get serviceexport -n demo hello\n`);
  process.stdout.write(
    await kubectl(
      kubeconfig,
      'cluster-1',
      'get',
      'serviceexport',
      '-n',
      'demo',
      'hello',
      '-o',
      'custom-columns=NAME:.metadata.name,VALID:.status.conditions[?(@.type=="Valid")].status,READY:.status.conditions[?(@.type=="Ready")].status,CONFLICT:.status.conditions[?(@.type=="Conflict")].status',
    ),
  );
  // Every node hears every cluster (the last one installed joined moments ago) before the status is shown.
  await eventually(
    'every node hearing every cluster',
    async () => {
      for (const c of names) {
        const port = metricsPorts.get(c);
        if (port === undefined) continue;
        const st = (await fetch(`http://127.0.0.1:${port}/status`).then(
          (r) => r.json(),
          () => undefined,
        )) as { gossip?: { origins?: { origin: string; alive: boolean }[] } } | undefined;
        const alive = new Set((st?.gossip?.origins ?? []).filter((o) => o.alive).map((o) => o.origin));
        if (!names.every((n) => alive.has(n))) return undefined;
      }
      return true;
    },
    60_000,
  );
  process.stdout.write('\nNodes:\n');
  for (const c of names) {
    const port = metricsPorts.get(c);
    const ready =
      port === undefined
        ? 'unknown'
        : await fetch(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.text(),
            (e: Error) => e.message,
          );
    const status =
      port === undefined
        ? undefined
        : ((await fetch(`http://127.0.0.1:${port}/status`).then(
            (r) => r.json(),
            () => undefined,
          )) as { gossip?: { peerId?: string; origins?: { origin: string; alive: boolean }[] } } | undefined);
    const origins = (status?.gossip?.origins ?? []).map((o) => `${o.origin}${o.alive ? '' : ' (unheard)'}`).join(', ');
    process.stdout.write(`  ${c}  ${ready.trim()}  peer ${status?.gossip?.peerId ?? '?'}  hears ${origins}\n`);
  }

  if (values.once === true) {
    await teardown(dir);
    say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return 0;
  }
  const podman = containers ? `CONTAINERS_CONF=${podmanConf} podman ps` : '(no containers: nodes are local processes)';
  process.stdout.write(`
The ClusterSet is left running (${((Date.now() - started) / 1000).toFixed(0)} s to get here). Explore it:
  export KUBECONFIG=${kubeconfig} PATH=${toolsBin}:$PATH
  kubectl --context cluster-3 get serviceimports,endpointslices -n demo
  kubectl --context cluster-1 get serviceexport -n demo hello -o yaml
  kubectl --context cluster-2 -n ${RELEASE_NAMESPACE} get deploy,pods,svc,secrets
  curl -s http://127.0.0.1:${metricsPorts.get('cluster-1') ?? '<port>'}/status      # cluster-1's node
  ${podman}
Stop it:
  npm run demo -- --down
`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
