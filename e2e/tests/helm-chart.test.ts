// The Helm chart (charts/mcs-gossip) with the helm built from Go modules: lint, clear render errors, the CRDs it
// ships are exactly crds/, and a real install and uninstall on a control plane of the local ClusterSet.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../../src/gossip/keys.js';
import { down, kubeConfigFor, loadCrds, repoRoot, toolsBin, up, type ClusterSetState } from '../harness/clusterset.js';
import { chartNodeRules } from '../harness/node-identity.js';
import { eventually } from '../harness/wait.js';

const run = promisify(execFile);
const chart = join(repoRoot, 'charts', 'mcs-gossip');

async function helm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(toolsBin, 'helm'), args, { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const keys = ['--set=identity.keyBase64=eA==', '--set=clusterSetKey.keyBase64=eA=='];

describe('Helm chart', () => {
  let dir: string;
  let state: ClusterSetState;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-helm-'));
    state = await up({ dir, clusters: 1, clusterSetName: 'helm-test', onProgress: () => {} });
  });

  afterAll(async () => {
    if (state !== undefined) await down(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it('lints clean', async () => {
    const r = await helm('lint', chart, ...keys);
    expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  it('refuses to render without keys or with a bad cluster id, naming the value', async () => {
    const noKeys = await helm('template', 'x', chart);
    expect(noKeys.code).not.toBe(0);
    expect(noKeys.stderr).toContain('identity: set identity.existingSecret');
    const badId = await helm('template', 'x', chart, ...keys, '--set=clusterProperties.clusterId=Not_A_Label');
    expect(badId.code).not.toBe(0);
    expect(badId.stderr).toContain('clusterProperties.clusterId "Not_A_Label" must be a DNS label');
  });

  it('ships exactly the CRDs of crds/', async () => {
    const r = await helm('template', 'x', chart, ...keys, '--include-crds');
    const rendered = k8s
      .loadAllYaml(r.stdout)
      .filter(
        (o) => (o as k8s.KubernetesObject).kind === 'CustomResourceDefinition',
      ) as k8s.V1CustomResourceDefinition[];
    const byName = (l: k8s.V1CustomResourceDefinition[]) =>
      Object.fromEntries(l.map((c) => [c.metadata?.name, c.spec]));
    expect(byName(rendered)).toEqual(byName(await loadCrds()));
  });

  it('installs and uninstalls on a real control plane', async () => {
    const c = state.clusters[0];
    if (c === undefined) throw new Error('no cluster');
    const identity = Buffer.from(encodeIdentityKey(await generateIdentityKey())).toString('base64');
    const psk = Buffer.from(generatePsk()).toString('base64');
    const bootstrap = 'cluster-9=/ip4/127.0.0.9/tcp/7946/p2p/12D3KooWEeV2xidxPuxmB84FdF7Q67ysz5Xojk5Rz5P6SsLrSRbG';
    const install = await helm(
      'install',
      'mcs',
      chart,
      `--kubeconfig=${c.kubeconfig}`,
      '--namespace=mcs-gossip-system',
      '--create-namespace',
      `--set=identity.keyBase64=${identity}`,
      `--set=clusterSetKey.keyBase64=${psk}`,
      `--set=bootstrap={${bootstrap}}`,
    );
    expect(install.stderr.replace(/^.*found symbolic link.*\n/gm, '')).toBe('');
    expect(install.code).toBe(0);

    const kc = kubeConfigFor(state, c.name);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ns = 'mcs-gossip-system';

    const deploy = await apps.readNamespacedDeployment({ name: 'mcs-mcs-gossip', namespace: ns });
    const container = deploy.spec?.template.spec?.containers[0];
    expect(container?.args).toContain('--identity-key=/etc/mcs-gossip/identity/identity.key');
    expect(deploy.spec?.template.spec?.serviceAccountName).toBe('mcs-mcs-gossip');
    // kwok runs the pod (as a fake), so the Deployment's pod is scheduled and "Running".
    await eventually('the node pod Running', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      return pods.items.some((p) => p.status?.phase === 'Running') ? true : undefined;
    });
    const secret = await core.readNamespacedSecret({ name: 'mcs-mcs-gossip-identity', namespace: ns });
    expect(secret.data?.['identity.key']).toBe(identity);
    const role = await rbac.readClusterRole({ name: 'mcs-mcs-gossip' });
    expect(role.rules).toEqual(await chartNodeRules());
    const prop = (await custom.getClusterCustomObject({
      group: 'about.k8s.io',
      version: 'v1beta1',
      plural: 'clusterproperties',
      name: 'bootstrap.mcs-gossip.x-k8s.io',
    })) as { spec: { value: string } };
    expect(prop.spec.value).toBe(bootstrap);
    const svc = await core.readNamespacedService({ name: 'mcs-mcs-gossip', namespace: ns });
    expect(svc.spec?.ports?.[0]?.port).toBe(7946);

    const uninstall = await helm('uninstall', 'mcs', `--kubeconfig=${c.kubeconfig}`, '--namespace=mcs-gossip-system');
    expect(uninstall.code).toBe(0);
    await eventually('the ClusterRole gone', async () => {
      try {
        await rbac.readClusterRole({ name: 'mcs-mcs-gossip' });
        return undefined;
      } catch (err) {
        return err instanceof k8s.ApiException && err.code === 404 ? true : undefined;
      }
    });
  });
});
