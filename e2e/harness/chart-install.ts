// Installing the Helm chart into clusters of the local ClusterSet the way the README tells users to: keys as Secrets
// (`existingSecret`), the first cluster alone, then every other one bootstrapping from the first's published peer
// entry. Shared by the chart's pod-spec test and `npm run demo`.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ignoreAlreadyExists } from './api-errors.js';
import { kubeConfigFor, repoRoot, toolsBin, type ClusterSetState } from './clusterset.js';
import { eventually } from './wait.js';

const run = promisify(execFile);

export const RELEASE_NAMESPACE = 'mcs-gossip-system';
export const RELEASE = 'mcs-gossip';
export const POD_SELECTOR = 'app.kubernetes.io/name=mcs-gossip';
/** Where e2e/harness/pod-runner-main.ts writes its pid, in the ClusterSet's directory. */
export const RUNNER_PID_FILE = 'pod-runner.pid';
const PEER_PROPERTY = 'peer.mcs-gossip.x-k8s.io';
const ABOUT = { group: 'about.k8s.io', version: 'v1beta1', plural: 'clusterproperties' } as const;

/** The kubeconfig of one cluster as a file (helm takes a file), written into `dir`. */
export async function kubeconfigFile(state: ClusterSetState, cluster: string, dir: string): Promise<string> {
  const file = join(dir, `${cluster}.kubeconfig`);
  await writeFile(file, kubeConfigFor(state, cluster).exportConfig(), { mode: 0o600 });
  return file;
}

/** `helm …` against one cluster; throws with helm's stderr on failure. */
export async function helm(
  state: ClusterSetState,
  cluster: string,
  dir: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  const kubeconfig = await kubeconfigFile(state, cluster, dir);
  try {
    return await run(join(toolsBin, 'helm'), [...args, '--kubeconfig', kubeconfig], { cwd: repoRoot });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.slice(0, 2).join(' ')} in ${cluster}: ${(e.stderr ?? e.message).trim()}`, {
      cause: err,
    });
  }
}

/** The release namespace and the two key Secrets the chart reads with `existingSecret`. */
export async function writeKeySecrets(
  state: ClusterSetState,
  cluster: string,
  identityKey: Uint8Array,
  clusterSetKey: Uint8Array,
): Promise<void> {
  const core = kubeConfigFor(state, cluster).makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: RELEASE_NAMESPACE } } }).catch(ignoreAlreadyExists);
  const secret = (name: string, key: string, bytes: Uint8Array) =>
    core
      .createNamespacedSecret({
        namespace: RELEASE_NAMESPACE,
        body: { metadata: { name }, data: { [key]: Buffer.from(bytes).toString('base64') } },
      })
      .catch(ignoreAlreadyExists);
  await secret('mcs-gossip-identity', 'identity.key', identityKey);
  await secret('mcs-gossip-clusterset-key', 'clusterset.key', clusterSetKey);
}

export interface ReleaseValues {
  readonly image: { readonly repository: string; readonly tag: string; readonly pullPolicy?: string };
  readonly gossipPort: number;
  readonly metricsPort: number;
  /** Other clusters' peer entries (`CLUSTERID=MULTIADDR/p2p/PEERID`). */
  readonly bootstrap: readonly string[];
  readonly extra?: readonly string[];
}

/** `helm install` of the chart in one cluster, keys from the Secrets of {@link writeKeySecrets}. */
export async function installRelease(
  state: ClusterSetState,
  cluster: string,
  dir: string,
  v: ReleaseValues,
): Promise<void> {
  await helm(
    state,
    cluster,
    dir,
    'install',
    RELEASE,
    join(repoRoot, 'charts', 'mcs-gossip'),
    '--namespace',
    RELEASE_NAMESPACE,
    '--set',
    `image.repository=${v.image.repository}`,
    '--set',
    `image.tag=${v.image.tag}`,
    '--set',
    `image.pullPolicy=${v.image.pullPolicy ?? 'IfNotPresent'}`,
    '--set',
    'identity.existingSecret=mcs-gossip-identity',
    '--set',
    'clusterSetKey.existingSecret=mcs-gossip-clusterset-key',
    '--set',
    `gossip.port=${v.gossipPort}`,
    '--set',
    `metrics.port=${v.metricsPort}`,
    '--set-json',
    `bootstrap=${JSON.stringify(v.bootstrap)}`,
    ...(v.extra ?? []),
  );
}

/**
 * Plays the cloud's LoadBalancer controller for the release's gossip Service: gives it `ip` as its ingress (the
 * containers share the host network, so the node is reached at `ip` on the Service port).
 */
export async function assignLoadBalancer(state: ClusterSetState, cluster: string, ip: string): Promise<void> {
  const core = kubeConfigFor(state, cluster).makeApiClient(k8s.CoreV1Api);
  await core.patchNamespacedServiceStatus(
    { namespace: RELEASE_NAMESPACE, name: RELEASE, body: { status: { loadBalancer: { ingress: [{ ip }] } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

/** The cluster's published peer entry (ClusterProperty peer.mcs-gossip.x-k8s.io), once it starts with `prefix`. */
export function peerEntry(state: ClusterSetState, cluster: string, prefix = '', timeoutMs = 120_000): Promise<string> {
  const custom = kubeConfigFor(state, cluster).makeApiClient(k8s.CustomObjectsApi);
  return eventually(
    `${cluster}'s peer entry`,
    async () => {
      try {
        const prop = (await custom.getClusterCustomObject({ ...ABOUT, name: PEER_PROPERTY })) as {
          spec?: { value?: string };
        };
        const value = prop.spec?.value ?? '';
        return value.startsWith(prefix) && value.includes('/p2p/') ? value : undefined;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
    timeoutMs,
  );
}
