// The chart's pod spec, executed: the image is built here (podman, a Debian test base), pushed to a local registry,
// the chart installed with `helm install` in two clusters of the local ClusterSet — the first alone, the second
// bootstrapping from the first's published peer entry, as the README says — and each Deployment's Pod run by
// e2e/harness/pod-runner.ts exactly as the pod spec says (image pulled from the registry, args, env with fieldRefs,
// secret volumes, the ServiceAccount token at the in-cluster paths, securityContext). Then an export flows between
// the two clusters. What kubelet does and podman does not — probes — is checked here.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../../src/gossip/keys.js';
import {
  assignLoadBalancer,
  helm,
  installRelease,
  peerEntry,
  POD_SELECTOR,
  RELEASE_NAMESPACE,
  writeKeySecrets,
} from '../harness/chart-install.js';
import { down, kubeConfigFor, repoRoot, up, type ClusterSetState } from '../harness/clusterset.js';
import { PodRunner } from '../harness/pod-runner.js';
import { freePorts } from '../harness/ports.js';
import { startRegistry, type LocalRegistry } from '../tools/local-registry.js';
import { hasPodman, podmanEnv, shOk } from '../tools/podman.js';
import {
  admin,
  deployWeb,
  ensureNamespace,
  eventually,
  exportService,
  getImport,
  importedSlices,
} from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2'] as const;

describe.skipIf(!hasPodman())('the chart’s pod spec, run as containers', () => {
  let dir: string;
  let state: ClusterSetState;
  let registry: LocalRegistry;
  const runners = new Map<string, PodRunner>();
  const a = (c: string) => admin(state, c);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-chart-pods-'));
    const built = (await shOk('bash', [join(repoRoot, 'e2e', 'tools', 'image.sh')])).stdout.trim().split('\n').pop()!;
    registry = await startRegistry();
    const image = `${registry.host}/mcs-gossip/mcs-gossip`;
    await shOk('podman', ['tag', built, `${image}:test`]);
    await shOk('podman', ['push', '--tls-verify=false', `${image}:test`]);
    // Gone from the local store: the runner must pull it from the registry, as a kubelet would.
    await shOk('podman', ['rmi', `${image}:test`]);
    state = await up({ dir: join(dir, 'clusterset'), clusters: CLUSTERS.length, onProgress: () => {} });

    const psk = await generatePsk();
    const ports = await freePorts(2 * CLUSTERS.length, '127.0.0.1');
    const bootstrap: string[] = [];
    for (const [i, c] of CLUSTERS.entries()) {
      await writeKeySecrets(state, c, encodeIdentityKey(await generateIdentityKey()), psk);
      await installRelease(state, c, dir, {
        image: { repository: image, tag: 'test' },
        gossipPort: ports[2 * i]!,
        metricsPort: ports[2 * i + 1]!,
        bootstrap: [...bootstrap],
        extra: ['--set', 'heartbeatInterval=1s', '--set', 'endpointTtl=5s'],
      });
      const server = new URL(kubeConfigFor(state, c).getCurrentCluster()!.server);
      const runner = new PodRunner({
        kubeConfig: kubeConfigFor(state, c),
        cluster: c,
        namespace: RELEASE_NAMESPACE,
        labelSelector: POD_SELECTOR,
        dir: join(dir, `${c}-pods`),
        podmanEnv: podmanEnv(),
        apiServer: { host: server.hostname, port: Number(server.port) },
        nodeIp: '127.0.0.1',
        insecureRegistries: [registry.host],
        log: (line) => console.log(line),
      });
      runner.start();
      runners.set(c, runner);
      // The next cluster bootstraps from this one's published entry: with the gossip LoadBalancer's address
      // (the test plays the cloud's LoadBalancer controller), so the entry is what another cluster can dial.
      await assignLoadBalancer(state, c, '127.0.0.1');
      bootstrap.push(await peerEntry(state, c, `${c}=/ip4/127.0.0.1/tcp/${ports[2 * i]!}/p2p/`));
    }
  }, 900_000);

  afterAll(async () => {
    for (const r of runners.values()) await r.stop();
    if (state !== undefined) await down(join(dir, 'clusterset'));
    await registry?.stop();
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  const podOf = (c: string) =>
    eventually(`the mcs-gossip container of ${c}`, async () => {
      const r = runners.get(c)!;
      if (r.failures().size > 0) throw new Error([...r.failures().values()].join('; '));
      return r.running()[0];
    });

  it('runs each container as written: user, read-only root, no capabilities, no privilege escalation, tini', async () => {
    for (const c of CLUSTERS) {
      const pod = await podOf(c);
      const info = (await runners.get(c)!.inspect(pod)) as {
        Config: { User: string; Entrypoint?: string[] | string };
        HostConfig: { ReadonlyRootfs: boolean; CapDrop?: string[]; SecurityOpt?: string[] };
      };
      expect(info.Config.User).toBe('65532:65532');
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.SecurityOpt ?? []).toContain('no-new-privileges');
      expect((info.HostConfig.CapDrop ?? []).length).toBeGreaterThan(10);
      const pid1 = await shOk('podman', ['exec', pod.container, 'cat', '/proc/1/cmdline']);
      expect(pid1.stdout.split('\0')[0]).toMatch(/tini$/);
    }
  });

  it('passes the probes the pod spec declares (liveness, then readiness)', async () => {
    for (const c of CLUSTERS) {
      const pod = await podOf(c);
      const runner = runners.get(c)!;
      await eventually(`${c} liveness`, async () =>
        (await runner.probe(pod, 'livenessProbe').catch(() => ({ code: 0 }))).code === 200 ? true : undefined,
      );
      await eventually(`${c} readiness`, async () =>
        (await runner.probe(pod, 'readinessProbe').catch(() => ({ code: 0 }))).code === 200 ? true : undefined,
      );
    }
  });

  it('carries an export of cluster-1 into cluster-2', async () => {
    for (const c of CLUSTERS) await ensureNamespace(a(c).core, 'web');
    await deployWeb(a('cluster-1'), 'web', 'web', 2);
    await exportService(a('cluster-1'), 'web', 'web');
    await eventually(
      'the import in cluster-2 with 2 endpoints',
      async () => {
        const si = await getImport(a('cluster-2'), 'web', 'web');
        const n = (await importedSlices(a('cluster-2'), 'web', 'web')).flatMap((s) => s.endpoints ?? []).length;
        return si?.spec.ips?.length === 1 && n === 2 ? true : undefined;
      },
      90_000,
    );
  });

  it('stops the container when the release is uninstalled', async () => {
    const pod = await podOf('cluster-2');
    await helm(state, 'cluster-2', dir, 'uninstall', 'mcs-gossip', '--namespace', RELEASE_NAMESPACE, '--wait');
    await eventually('the container gone', async () =>
      runners
        .get('cluster-2')!
        .running()
        .some((p) => p.uid === pod.uid)
        ? undefined
        : true,
    );
  });
});
